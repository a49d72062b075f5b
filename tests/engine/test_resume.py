"""Exact resume, end to end: a run stopped and resumed ends as the run that never stopped, to the bit.

Every run is a `bam fit` subprocess on a tiny CIFAR-100 (64 images, 4 steps an epoch), on CPU
with a fixed seed and ``deterministic: true``, with MultiStepLR dropping the learning rate
after epoch 0, so the schedule's position matters. A run is stopped at an epoch's end
(``max_epochs``) or by a SIGTERM sent, as a scheduler sends it, to the main process and its
loader workers while a given batch runs (``helpers.resume.SigtermAt``, which the subprocess imports
from tests/), then resumed with ``--ckpt_path last``. Weights, optimizer state, scheduler
state, step counts, what the checkpoint callbacks recorded of the best models and every logged
scalar must equal the straight run's. A run whose best epoch is before the stop (the digits demo,
its learning rate made 30 times larger after epoch 0) is stopped once and twice: ``--ckpt_path
best`` must still mean the straight run's best checkpoint.
"""

import signal
import subprocess
from functools import partial
from pathlib import Path

import pytest

from helpers.cli_args import CPU
from helpers.command import bam
from helpers.datasets import write_cifar100
from helpers.resume import TESTS, assert_same_run, fit, last, logged, sigterm_then_resume

# The digits demo, 2 epochs of 6 steps on 96 images, validated on 64: the learning rate 30 times larger after epoch 0
# makes epoch 1 worse, so the best checkpoint is epoch 0's.
DEMO = Path(__file__).parents[2] / "configs" / "demo_digits.yaml"
BEST_FIRST = [
    "--config", str(DEMO), *CPU, "--seed_everything", "0", "--trainer.deterministic", "true", "--trainer.max_epochs", "2",
    "--data.batch_size", "16", "--trainer.limit_train_batches", "6", "--trainer.limit_val_batches", "4",
    "--model.lr_scheduler", "torch.optim.lr_scheduler.MultiStepLR", "--model.lr_scheduler.init_args.milestones", "[1]",
    "--model.lr_scheduler.init_args.gamma", "30",
]  # fmt: skip


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
    monkeypatch.setenv("PYTHONPATH", TESTS)  # the subprocess imports helpers.resume.SigtermAt from there
    name = f"sigterm_{stage}"
    data = ["--data.num_workers", str(workers)]  # the straight run loaded in the main process
    callback = ["--trainer.callbacks+=helpers.resume.SigtermAt", "--trainer.callbacks.step", str(step)]
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
    monkeypatch.setenv("PYTHONPATH", TESTS)  # the subprocess imports helpers.resume.SigtermAt from there
    name = f"stopped_{len(steps)}_times"
    sigterm_then_resume(partial(best_first_fit, root, name), steps)
    assert_same_run(root, name)  # val/acc1_best's values among the scalars
    assert [run.name for run in (root / name / "lightning_logs").iterdir()] == ["version_0"]
    assert best_of(root, name) == best
