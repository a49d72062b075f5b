"""Datamodules for the paper's benchmarks: CIFAR-10/100 and ImageNet (any ImageFolder tree); digits for the offline
demo; random in-memory images for measuring speed."""

from .base import ImageDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .digits import DigitsDataModule
from .imagenet import ImageNetDataModule
from .synthetic import SyntheticDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageNetDataModule",
    "SyntheticDataModule",
]
