"""A recipe option given with a checkpoint (issue 36's probe): one the checkpoint contradicts is refused by name, on a
checkpoint of the digits demo trained with mixup."""

from pathlib import Path

import pytest

from helpers.cli_args import CPU
from helpers.command import bam, refusal

DEMO = ["--config", str(Path(__file__).parents[2] / "configs" / "demo_digits.yaml"), *CPU]


@pytest.fixture(scope="module")
def mixup_checkpoint(tmp_path_factory) -> Path:
    """One epoch of two batches with --model.mixup_alpha 0.2: its last.ckpt."""
    root = tmp_path_factory.mktemp("mixup")
    short = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    bam("fit", *DEMO, *short, "--model.mixup_alpha", "0.2", "--trainer.default_root_dir", str(root), cwd=root)
    return root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(("option", "value", "trained"), [("mixup_alpha", "0", "0.2"), ("label_smoothing", "0.5", "0.0")])
def test_a_recipe_option_the_checkpoint_contradicts_is_refused_by_name(mixup_checkpoint, option, value, trained):
    """Their types are jsonargparse's restricted numbers (NonNegativeFloat, ClosedUnitInterval), which the refusal writes."""
    args = ["--ckpt_path", str(mixup_checkpoint), "--trainer.limit_test_batches", "1", f"--model.{option}", value]
    line = refusal(bam("test", *DEMO, *args, cwd=mixup_checkpoint.parent, check=False))
    assert line.startswith(
        f"bam: error: --model.{option} {float(value)} contradicts the checkpoint {mixup_checkpoint},"
        f" trained with {option}={trained}:"
    )


def test_an_ema_decay_no_fit_takes_is_refused_by_every_command(mixup_checkpoint):
    """A test uses the checkpoint's weights, not the decay; but 1.5 is no decay at all, wherever it is given."""
    args = ["--ckpt_path", str(mixup_checkpoint), "--trainer.limit_test_batches", "1", "--ema.decay", "1.5"]
    line = refusal(bam("test", *DEMO, *args, cwd=mixup_checkpoint.parent, check=False))
    assert line == "bam: error: --ema.decay 1.5: give a decay between 0 and 1, e.g. 0.9999 (about the last 10,000 steps)"
