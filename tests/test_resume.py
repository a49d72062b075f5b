"""Exact resume, end to end: a run stopped and resumed ends as the run that never stopped, to the bit.

Every run is a `bam fit` subprocess on a tiny CIFAR-100 (64 images, 4 steps an epoch), on CPU
with a fixed seed and ``deterministic: true``, with MultiStepLR dropping the learning rate
after epoch 0, so the schedule's position matters. A run is stopped at an epoch's end
(``max_epochs``) or by a SIGTERM sent, as a scheduler sends it, to the main process and its
loader workers while a given batch runs (``SigtermAt``, which the subprocess imports from
this folder), then resumed with ``--ckpt_path last``. Weights, optimizer state, scheduler
state, step counts, what the checkpoint callbacks recorded of the best models and every logged
scalar must equal the straight run's. A run whose best epoch is before the stop (the digits demo,
its learning rate made 30 times larger after epoch 0) is stopped once and twice: ``--ckpt_path
best`` must still mean the straight run's best checkpoint.
"""

import multiprocessing
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import pytest
import torch

from bam_lightning.checkpoints import newest_checkpoint

from command import bam
from datasets import write_cifar100
from test_cli import CPU, cifar_args, scalars

EXACT = ["--seed_everything", "0", "--trainer.deterministic", "true", "--model.lr_scheduler.init_args.milestones", "[1]"]
# The digits demo, 2 epochs of 6 steps on 96 images, validated on 64: the learning rate 30 times larger after epoch 0
# makes epoch 1 worse, so the best checkpoint is epoch 0's.
DEMO = Path(__file__).parents[1] / "configs" / "demo_digits.yaml"
BEST_FIRST = [
    "--config", str(DEMO), *CPU, "--seed_everything", "0", "--trainer.deterministic", "true", "--trainer.max_epochs", "2",
    "--data.batch_size", "16", "--trainer.limit_train_batches", "6", "--trainer.limit_val_batches", "4",
    "--model.lr_scheduler", "torch.optim.lr_scheduler.MultiStepLR", "--model.lr_scheduler.init_args.milestones", "[1]",
    "--model.lr_scheduler.init_args.gamma", "30",
]  # fmt: skip


class SigtermAt(L.Callback):
    """SIGTERM, from another process, to this one and its loader workers, in the first ``stage`` batch after ``step`` steps.

    ``stage`` is ``train`` or ``validate``. The signal arrives while the batch's hooks run, so
    where Lightning stops does not depend on timing.
    """

    def __init__(self, step: int, stage: str = "train") -> None:
        self.step = step
        self.stage = stage

    def _send(self, trainer: L.Trainer, stage: str) -> None:
        if stage == self.stage and trainer.global_step == self.step and not trainer.sanity_checking:
            pids = [str(p.pid) for p in (multiprocessing.current_process(), *multiprocessing.active_children())]
            kill = "import os, signal, sys; [os.kill(int(pid), signal.SIGTERM) for pid in sys.argv[1:]]"
            subprocess.run([sys.executable, "-c", kill, *pids], check=True)
            self.step = -1  # once

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._send(trainer, "train")

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._send(trainer, "validate")


def fit(root: Path, name: str, epochs: int, *extra: str, check: bool = True):
    args = cifar_args(root, "--trainer.default_root_dir", str(root / name), "--trainer.max_epochs", str(epochs), *EXACT)
    return bam("fit", *args, *extra, cwd=root, check=check)


def last(root: Path, name: str) -> dict[str, Any]:
    return torch.load(newest_checkpoint(root / name), weights_only=True)


def logged(root: Path, name: str) -> dict[str, list[float]]:
    """Every scalar the runs under ``root/name`` logged, one run after the other.

    Less ``hp_metric``, the placeholder TensorBoard's logger writes once per run.
    """
    runs = sorted((root / name / "lightning_logs").iterdir(), key=lambda run: int(run.name.split("_")[1]))
    values: dict[str, list[float]] = {}
    for run in runs:
        for tag, series in scalars(run).items():
            values.setdefault(tag, []).extend(series)
    values.pop("hp_metric", None)
    return values


def assert_identical(a: Any, b: Any, where: str) -> None:
    """Equal to the bit: tensors by ``torch.equal`` (and dtype), containers item by item, the rest by ``==``."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def checkpoint_records(checkpoint: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each ModelCheckpoint recorded in ``checkpoint`` of the best models, with files by name: the runs compared
    keep them in folders of their own. Less ``current_score``, the score of the last file this process saved, which
    Lightning does not restore."""
    records = {}
    for key, state in checkpoint["callbacks"].items():
        if "best_k_models" in state:
            paths = {field: Path(state[field]).name for field in ("best_model_path", "kth_best_model_path", "last_model_path")}
            best = {Path(path).name: score for path, score in state["best_k_models"].items()}
            scores = {field: state[field] for field in ("monitor", "best_model_score", "kth_value")}
            records[key] = paths | scores | {"best_k_models": best}
    return records


def assert_same_run(root: Path, name: str, also: tuple[str, ...] = ()) -> None:
    """The run ``name`` ended as ``straight``: its last checkpoint's state (and the keys ``also``), what its checkpoint
    callbacks recorded of the best models and every scalar."""
    straight, resumed = last(root, "straight"), last(root, name)
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "epoch", "global_step", *also):
        assert_identical(resumed[key], straight[key], key)
    assert_identical(checkpoint_records(resumed), checkpoint_records(straight), "callbacks")
    assert logged(root, name) == logged(root, "straight")


def sigterm_then_resume(run: Callable[..., subprocess.CompletedProcess], steps: Sequence[int] = (5,)) -> None:
    """``run(*extra, check=...)`` (a ``bam fit``) stopped by SIGTERM after each of ``steps`` steps, and resumed from its
    last.ckpt after each stop.

    The command imports ``SigtermAt`` from this folder: the caller puts it on PYTHONPATH.
    """
    resume: tuple[str, ...] = ()
    for step in steps:
        stopped = run(*resume, "--trainer.callbacks+=test_resume.SigtermAt", "--trainer.callbacks.step", str(step), check=False)
        assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
        resume = ("--ckpt_path", "last")
    run(*resume)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The run that never stopped: 2 epochs, 8 steps, learning rate 0.1 then 0.02."""
    root = tmp_path_factory.mktemp("resume")
    write_cifar100(root / "data", n_train=64, n_test=32)
    fit(root, "straight", 2)
    checkpoint = last(root, "straight")
    assert checkpoint["global_step"] == 8 and logged(root, "straight")["lr-SGD"] == pytest.approx([0.1, 0.02])
    return root


def test_resumed_at_an_epoch_end_ends_as_the_run_that_never_stopped(root):
    fit(root, "epoch_end", 1)
    fit(root, "epoch_end", 2, "--ckpt_path", "last")
    assert_same_run(root, "epoch_end")


@pytest.mark.parametrize(
    "step,stage,workers",
    [(5, "train", 1), (4, "validate", 0)],
    ids=["inside-an-epoch-with-a-worker", "inside-validation"],
)
def test_stopped_by_sigterm_and_resumed_ends_as_the_run_that_never_stopped(root, monkeypatch, step, stage, workers):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the subprocess imports SigtermAt from here
    name = f"sigterm_{stage}"
    data = ["--data.num_workers", str(workers)]  # the straight run loaded in the main process
    callback = ["--trainer.callbacks+=test_resume.SigtermAt", "--trainer.callbacks.step", str(step)]
    stopped = fit(root, name, 2, *data, *callback, "--trainer.callbacks.stage", stage, check=False)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    assert "bam: stopped by SIGTERM; last.ckpt" in stopped.stderr and "Traceback" not in stopped.stderr
    assert last(root, name)["global_step"] == step  # written on SIGTERM, not at the epoch's end before it
    fit(root, name, 2, *data, "--ckpt_path", "last")
    assert_same_run(root, name)


def best_first_fit(root: Path, name: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return bam("fit", *BEST_FIRST, "--trainer.default_root_dir", str(root / name), *extra, cwd=root, check=check)


def best_of(root: Path, name: str) -> str:
    """The file ``bam test --ckpt_path best`` evaluates for the run ``name``, by name (logged nowhere: the runs stay)."""
    args = ["--trainer.default_root_dir", str(root / name), "--trainer.limit_test_batches", "1", "--trainer.logger", "false"]
    tested = bam("test", *BEST_FIRST, *args, "--ckpt_path", "best", cwd=root)
    return Path(tested.stderr.split("bam: using ", 1)[1].splitlines()[0]).name


@pytest.fixture(scope="module")
def best_first(tmp_path_factory):
    """The digits demo's run that never stopped, whose epoch 0 is its best, and the file ``--ckpt_path best`` means."""
    root = tmp_path_factory.mktemp("best_first")
    best_first_fit(root, "straight")
    accuracy = logged(root, "straight")["val/acc1"]
    assert len(accuracy) == 2 and accuracy[1] < accuracy[0], accuracy
    best = best_of(root, "straight")
    assert best == f"best-epoch000-acc1_{accuracy[0]:.2f}.ckpt"
    return root, best


@pytest.mark.parametrize("steps", [(8,), (8, 10)], ids=["stopped-once", "stopped-twice"])
def test_a_run_stopped_after_its_best_epoch_keeps_its_best_checkpoint(best_first, monkeypatch, steps):
    """Stopped in epoch 1 (steps 7 to 12), after the best epoch, and resumed in the run's own folder."""
    root, best = best_first
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the subprocess imports SigtermAt from here
    name = f"stopped_{len(steps)}_times"
    sigterm_then_resume(partial(best_first_fit, root, name), steps)
    assert_same_run(root, name)  # val/acc1_best's values among the scalars
    assert [run.name for run in (root / name / "lightning_logs").iterdir()] == ["version_0"]
    assert best_of(root, name) == best
