"""MixUp / CutMix of the training batch: the draws follow the seed and the step, the loss takes soft targets, exact resume."""

from functools import partial
from pathlib import Path

import pytest
import torch

from bam_lightning.data.mixing import BatchMixing

from helpers.command import refusal
from helpers.datasets import write_cifar100
from helpers.resume import TESTS, assert_same_run, fit, logged, sigterm_then_resume

MIX = ["--model.mixup_alpha", "0.4", "--model.cutmix_alpha", "1.0"]


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 5


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_the_draws_follow_the_step_and_rank_and_leave_the_global_generator_alone(alphas):
    mixing = BatchMixing(5, *alphas)
    images, labels = batch()
    before = torch.get_rng_state()
    first = mixing(images, labels, step=3, rank=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, mixing(images, labels, step=3, rank=0), strict=True))
    others = [mixing(images, labels, step=s, rank=r)[0] for s, r in ((4, 0), (3, 1), (5, 0), (6, 1))]
    assert any(not torch.equal(first[0], other) for other in others)
    mixed, soft = first
    assert soft.shape == (8, 5) and torch.allclose(soft.sum(dim=1), torch.ones(8)) and not torch.equal(mixed, images)


def test_off_by_default_and_negative_alphas_refused():
    assert not BatchMixing(5).active
    with pytest.raises(ValueError, match="mixup_alpha -0.1"):
        BatchMixing(5, mixup_alpha=-0.1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixing")
    write_cifar100(root / "data", n_train=64, n_test=32)
    fit(root, "straight", 2, *MIX)
    return root


def test_stopped_by_sigterm_and_resumed_with_mixing_ends_as_the_run_that_never_stopped(root, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", TESTS)  # the subprocess imports helpers.resume.SigtermAt from there
    sigterm_then_resume(partial(fit, root, "sigterm", 2, *MIX))
    assert_same_run(root, "sigterm")


def test_mixing_changes_the_training_losses_and_train_acc1_counts_the_dominant_label(root):
    plain = logged_fit(root, "plain")
    mixed = logged(root, "straight")
    assert plain["train/loss"] != mixed["train/loss"]
    assert len(mixed["train/acc1"]) == 2 and all(0 <= a <= 100 for a in mixed["train/acc1"])


def logged_fit(root: Path, name: str) -> dict[str, list[float]]:
    fit(root, name, 2)
    return logged(root, name)


@pytest.mark.parametrize("option", ["--model.mixup_alpha", "--model.cutmix_alpha"])
def test_a_negative_alpha_ends_in_one_line(root, option):
    line = refusal(fit(root, "bad", 1, option, "-0.5", check=False))
    assert option.removeprefix("--") in line and "-0.5" in line, line
