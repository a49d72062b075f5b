"""The offline demo as ``make demo`` runs it: its config through the ``bam`` command, fit, then test of last.ckpt.

A real training run (about a minute on two free cores, up to ~3 under the parallel suite):
the demo's promise of >= 95 % test accuracy is checked on the real digits, not on a stand-in.
Its wall time is printed (``pytest -s``), not asserted: speed is a benchmark, not a test.
"""

import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers.command import bam
from helpers.scalars import scalars

CONFIG = Path(__file__).parents[1] / "configs" / "demo_digits.yaml"


def demo(*args: str, cwd: Path):
    """``bam`` on the demo's config, on one thread as ``make demo`` runs it."""
    return bam(*args, "--config", str(CONFIG), "--trainer.default_root_dir", str(cwd), cwd=cwd, timeout=600)


@pytest.mark.long
def test_demo_trains_to_95_percent_test_accuracy_with_checkpoints_and_tensorboard_logs(tmp_path):
    start = time.perf_counter()
    demo("fit", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    fitted = time.perf_counter()
    run = tmp_path / "lightning_logs" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    result = demo("test", "--ckpt_path", str(last), cwd=tmp_path)
    print(f"demo: fit {fitted - start:.0f} s, test {time.perf_counter() - fitted:.0f} s")

    max_epochs = yaml.safe_load(CONFIG.read_text())["trainer"]["max_epochs"]
    assert torch.load(last, weights_only=True)["epoch"] == max_epochs - 1
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    assert list(run.glob("events.out.tfevents.*")) and len(scalars(run)["val/acc1"]) == max_epochs
    tested = scalars(run)  # the test of a run's checkpoint logs into that run (run_logs)
    assert "test/acc1" in result.stdout and not (tmp_path / "lightning_logs" / "version_1").exists()
    assert tested["test/acc1"][-1] >= 95, tested
