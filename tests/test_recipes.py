"""configs/recipes/modern.yaml after the digits demo: it trains, its checkpoint holds the EMA, bam test evaluates that."""

from pathlib import Path

import torch

from command import bam
from test_cli import CPU

CONFIGS = Path(__file__).parents[1] / "configs"
MODERN = ["--config", str(CONFIGS / "demo_digits.yaml"), "--config", str(CONFIGS / "recipes" / "modern.yaml"), *CPU]


def test_the_demo_trains_with_the_modern_recipe_and_tests_its_ema(tmp_path):
    short = ["--trainer.max_epochs", "6", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"]
    fitted = bam("fit", *MODERN, *short, "--trainer.default_root_dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert "bam: EMA of the weights (decay 0.9998)" in fitted.stderr
    last = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert "current_model_state" in checkpoint and checkpoint["hyper_parameters"]["mixup_alpha"] == 0.2
    assert checkpoint["lr_schedulers"][0]["total"] == 6  # WarmupCosine as long as the run
    tested = bam("test", *MODERN, "--trainer.limit_test_batches", "1", "--ckpt_path", str(last), cwd=tmp_path)
    assert f"bam: {last} holds the EMA of the weights: test uses the average" in tested.stderr
