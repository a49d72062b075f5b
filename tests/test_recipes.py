"""configs/recipes/modern.yaml after the digits demo: it trains, its checkpoint holds the EMA, bam test evaluates that."""

from functools import partial
from pathlib import Path

import torch

from helpers.cli_args import CPU, cifar_args
from helpers.command import bam
from helpers.datasets import write_cifar100
from helpers.resume import TESTS, assert_same_run, last, sigterm_then_resume

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


def modern_fit(root: Path, name: str, *extra: str, check: bool = True):
    """helpers.resume's tiny CIFAR-100 run (2 epochs, 8 steps, deterministic) with the whole modern delta on."""
    delta = ["--config", str(CONFIGS / "recipes" / "modern.yaml"), "--model.lr_scheduler.init_args.warmup", "1"]
    exact = ["--seed_everything", "0", "--trainer.deterministic", "true", "--ema.decay", "0.5"]
    run = ["--trainer.default_root_dir", str(root / name), "--trainer.max_epochs", "2"]
    return bam("fit", *cifar_args(root, *run, *delta, *exact), *extra, cwd=root, check=check)


def test_stopped_by_sigterm_and_resumed_with_the_modern_delta_ends_as_the_run_that_never_stopped(tmp_path, monkeypatch):
    write_cifar100(tmp_path / "data", n_train=64, n_test=32)
    modern_fit(tmp_path, "straight")
    monkeypatch.setenv("PYTHONPATH", TESTS)  # the subprocess imports helpers.resume.SigtermAt from there
    sigterm_then_resume(partial(modern_fit, tmp_path, "sigterm"))
    straight = last(tmp_path, "straight")
    assert straight["hyper_parameters"]["cutmix_alpha"] == 1.0 and "averaging_state" in straight
    assert_same_run(tmp_path, "sigterm", also=("current_model_state", "averaging_state"))
