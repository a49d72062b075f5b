"""``--ema.decay``: a fit whose checkpoints hold the EMA of the weights, its evaluation, its exact resume, its refusals."""

import shutil
from functools import partial
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers.command import bam, refusal
from helpers.datasets import write_cifar100
from helpers.resume import TESTS, assert_same_run, fit, last, sigterm_then_resume

EMA = ["--ema.decay", "0.5"]  # a short memory: over 8 steps the average is far from the trained weights


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The EMA run that never stopped (helpers.resume's tiny CIFAR-100: 2 epochs, 8 steps)."""
    root = tmp_path_factory.mktemp("ema")
    write_cifar100(root / "data", n_train=64, n_test=32)
    result = fit(root, "straight", 2, *EMA)
    assert "bam: EMA of the weights (decay 0.5)" in result.stderr
    return root


def test_the_checkpoint_holds_the_average_and_the_trained_weights_beside_it(root):
    checkpoint = last(root, "straight")
    average, trained = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert average.keys() == trained.keys() and "averaging_state" in checkpoint
    assert any(not torch.equal(average[k], trained[k]) for k in average if average[k].is_floating_point())


def test_bam_test_of_the_checkpoint_says_it_evaluates_the_average(root, tmp_path):
    run = next((root / "straight").rglob("last.ckpt")).parents[1]
    path = Path(shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path))  # outside the run: its logs stay the straight run's
    args = ["--config", str(run / "config.yaml"), "--trainer.default_root_dir", str(tmp_path)]
    result = bam("test", *args, "--ckpt_path", str(path), cwd=root, env={"PYTHONWARNINGS": "default"})
    assert f"bam: {path} holds the EMA of the weights: test uses the average" in result.stderr
    assert "callbacks used to create the checkpoint" not in result.stderr  # Lightning's warning, which does not apply


def test_stopped_by_sigterm_and_resumed_with_the_ema_ends_as_the_run_that_never_stopped(root, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", TESTS)  # the subprocess imports helpers.resume.SigtermAt from there
    sigterm_then_resume(partial(fit, root, "sigterm", 2, *EMA))
    assert_same_run(root, "sigterm", also=("current_model_state", "averaging_state"))


def test_resuming_an_ema_run_without_its_decay_is_refused(root):
    path = next((root / "straight").rglob("last.ckpt"))
    line = refusal(fit(root, "no_ema", 3, "--ckpt_path", str(path), check=False))
    assert all(fact in line for fact in (str(path), "EMA", "--ema.decay")), line


@pytest.mark.parametrize("decay", ["0", "1", "1.5", "-0.1"])
def test_a_decay_outside_0_1_is_refused(root, decay):
    line = refusal(fit(root, "bad_decay", 1, "--ema.decay", decay, check=False))
    assert f"--ema.decay {float(decay)}" in line and "between 0 and 1" in line, line


def test_bam_attention_says_it_draws_the_average(root, tmp_path):
    Image.new("RGB", (40, 40), "gray").save(tmp_path / "gray.png")
    path = next((root / "straight").rglob("last.ckpt"))
    drawn = bam(
        "attention", "--ckpt_path", str(path), "--image", str(tmp_path / "gray.png"), "--out", str(tmp_path / "a.png"), cwd=root
    )
    assert f"bam attention: {path} holds the EMA of the weights: using the average" in drawn.stdout
