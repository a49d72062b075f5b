"""Datamodules for the paper's benchmarks: CIFAR-10/100 and ImageNet (any ImageFolder tree) for classification, COCO
and PASCAL VOC for detection; digits for the offline demo; random in-memory images for measuring speed."""

from .base import ImageDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .coco import COCODataModule
from .detection import DetectionDataModule
from .digits import DigitsDataModule
from .imagenet import ImageNetDataModule
from .synthetic import SyntheticDataModule
from .voc import VOCDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "COCODataModule",
    "DetectionDataModule",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageNetDataModule",
    "SyntheticDataModule",
    "VOCDataModule",
]
