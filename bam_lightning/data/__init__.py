"""Datamodules for the paper's benchmarks: CIFAR-10/100 and ImageNet (any ImageFolder tree); digits for the offline demo."""

from .base import ImageDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .digits import DigitsDataModule
from .imagenet import ImageNetDataModule

__all__ = ["CIFAR10DataModule", "CIFAR100DataModule", "DigitsDataModule", "ImageDataModule", "ImageNetDataModule"]
