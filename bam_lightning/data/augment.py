"""Automatic augmentation for the classification datamodules: torchvision's ``transforms.v2`` policies, chosen by name."""

from collections.abc import Callable
from typing import Literal

from torchvision.transforms import v2

from ..errors import InputError

AutoAugment = Literal["none", "randaugment", "trivialaugment", "autoaugment_cifar10", "autoaugment_imagenet"]

# Each policy at torchvision's defaults (RandAugment: 2 ops of magnitude 9, timm's rand-m9-n2), on the PIL image.
POLICIES: dict[str, Callable[[], list[Callable]]] = {
    "none": list,
    "randaugment": lambda: [v2.RandAugment(num_ops=2, magnitude=9)],
    "trivialaugment": lambda: [v2.TrivialAugmentWide()],
    "autoaugment_cifar10": lambda: [v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)],
    "autoaugment_imagenet": lambda: [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)],
}


def auto_augment(name: AutoAugment) -> list[Callable]:
    """The steps of policy ``name``, to follow the crop and flip of a training transform."""
    if name not in POLICIES:
        raise InputError(f"--data.auto_augment {name!r}: choose one of {', '.join(POLICIES)}")
    return POLICIES[name]()


def random_erasing(probability: float) -> list[Callable]:
    """RandomErasing (Zhong et al. 2020) with ``probability``, on the normalised tensor as torchvision applies it."""
    if not 0 <= probability <= 1:
        raise InputError(f"--data.random_erasing {probability}: give a probability between 0 and 1 (0: off)")
    return [v2.RandomErasing(probability)] if probability else []
