"""Exact resume's tools: a tiny deterministic fit, a SIGTERM mid-run, and the check that a resumed run ended as the run
that never stopped, to the bit (weights, optimizer and scheduler state, step counts, what the checkpoint callbacks
recorded of the best models, every logged scalar).

``fit`` is tests/engine/test_resume.py's run: ``bam fit`` on a tiny CIFAR-100 (64 images, 4 steps an epoch), on CPU
with a fixed seed and ``deterministic: true``, with MultiStepLR dropping the learning rate after epoch 0.
"""

import multiprocessing
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from bam_lightning.checkpoints import newest_checkpoint

from helpers.cli_args import cifar_args
from helpers.command import bam
from helpers.scalars import THROUGHPUT, scalars

TESTS = str(Path(__file__).resolve().parents[1])
"""The folder ``bam`` imports ``helpers.resume.SigtermAt`` from: a test passing it puts this on PYTHONPATH."""
EXACT = ["--seed_everything", "0", "--trainer.deterministic", "true", "--model.lr_scheduler.init_args.milestones", "[1]"]


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

    Less ``hp_metric``, the placeholder TensorBoard's logger writes once per run, and the throughput (``THROUGHPUT``),
    which a resumed process counts from zero again: never part of what a resume restores.
    """
    runs = sorted((root / name / "lightning_logs").iterdir(), key=lambda run: int(run.name.split("_")[1]))
    values: dict[str, list[float]] = {}
    for run in runs:
        for tag, series in scalars(run).items():
            if not THROUGHPUT.fullmatch(tag):
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

    The command imports ``SigtermAt`` from here: the caller puts ``TESTS`` on PYTHONPATH.
    """
    resume: tuple[str, ...] = ()
    for step in steps:
        stopped = run(
            *resume, "--trainer.callbacks+=helpers.resume.SigtermAt", "--trainer.callbacks.step", str(step), check=False
        )
        assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
        resume = ("--ckpt_path", "last")
    run(*resume)
