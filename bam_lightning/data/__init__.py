"""Datamodules for the paper's benchmarks: CIFAR-10/100 and ImageNet (any ImageFolder tree) for classification, COCO
and PASCAL VOC for detection; CIFAR-10-C, CIFAR-100-C and ImageNet-C for corruption robustness; digits (and their
corrupted copy) for the offline demo; random in-memory images for measuring speed."""

from .base import ImageDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .coco import COCODataModule
from .corruptions import CIFAR10CDataModule, CIFAR100CDataModule
from .detection import DetectionDataModule
from .digits import DigitsCDataModule, DigitsDataModule
from .imagenet import ImageNetDataModule
from .imagenet_c import ImageNetCDataModule
from .synthetic import SyntheticDataModule
from .voc import VOCDataModule

__all__ = [
    "CIFAR10CDataModule",
    "CIFAR10DataModule",
    "CIFAR100CDataModule",
    "CIFAR100DataModule",
    "COCODataModule",
    "DetectionDataModule",
    "DigitsCDataModule",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageNetCDataModule",
    "ImageNetDataModule",
    "SyntheticDataModule",
    "VOCDataModule",
]
