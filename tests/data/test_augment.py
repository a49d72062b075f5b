"""``--data.auto_augment`` and ``--data.random_erasing``: torchvision's policies in the training transforms only."""

import pytest
import torch
from lightning.pytorch import seed_everything
from torchvision import transforms as T
from torchvision.transforms import v2

from bam_lightning.data import CIFAR100DataModule, ImageNetDataModule

from helpers.cli_args import cifar_args
from helpers.command import bam, refusal
from helpers.datasets import write_cifar100

POLICY_CLASS = {
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
    "autoaugment_cifar10": v2.AutoAugment,
    "autoaugment_imagenet": v2.AutoAugment,
}


def kinds(transform: T.Compose) -> list[type]:
    return [type(step) for step in transform.transforms]


@pytest.mark.parametrize("datamodule", [CIFAR100DataModule, ImageNetDataModule])
@pytest.mark.parametrize("policy", sorted(POLICY_CLASS))
def test_the_policy_follows_the_flip_and_erasing_the_normalisation_in_training_only(datamodule, policy):
    dm = datamodule(auto_augment=policy, random_erasing=0.25)
    train = kinds(dm.train_transform)
    assert train[1:] == [T.RandomHorizontalFlip, POLICY_CLASS[policy], T.ToTensor, T.Normalize, v2.RandomErasing]
    assert dm.train_transform.transforms[-1].p == 0.25
    assert not {POLICY_CLASS[policy], v2.RandomErasing} & set(kinds(dm.eval_transform))
    plain = kinds(datamodule().train_transform)
    assert plain == [train[0], T.RandomHorizontalFlip, T.ToTensor, T.Normalize]  # the defaults: none, 0


def test_the_augmented_images_follow_from_the_seed(tmp_path):
    write_cifar100(tmp_path)
    dm = CIFAR100DataModule(root=str(tmp_path), download=False, verify_md5=False, auto_augment="randaugment", random_erasing=0.5)
    dm.setup("fit")

    def draws(seed: int) -> torch.Tensor:
        seed_everything(seed)
        return torch.stack([dm.train_set[i][0] for i in range(8)])

    assert torch.equal(draws(0), draws(0)) and not torch.equal(draws(0), draws(1))


def test_bam_fit_trains_with_them(tmp_path):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    augment = ["--data.auto_augment", "trivialaugment", "--data.random_erasing", "0.25", "--trainer.max_epochs", "1"]
    bam("fit", *cifar_args(tmp_path, *augment), cwd=tmp_path)
    config = next((tmp_path / "runs").rglob("config.yaml")).read_text()
    assert "auto_augment: trivialaugment" in config and "random_erasing: 0.25" in config


@pytest.mark.parametrize(
    "option,value,facts",
    [
        ("auto_augment", "randaug", ["auto_augment", "randaug", "randaugment"]),
        ("random_erasing", "1.5", ["random_erasing", "1.5"]),
    ],
)
def test_bad_values_end_in_one_line(tmp_path, option, value, facts):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    line = refusal(bam("fit", *cifar_args(tmp_path, f"--data.{option}", value), cwd=tmp_path, check=False))
    assert all(fact in line for fact in facts), line
