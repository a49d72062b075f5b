"""CIFAR-10 and CIFAR-100 with the usual augmentation (4-pixel padded crop, horizontal flip)."""

from pathlib import Path
from typing import Any

import torch
from jsonargparse.typing import ClosedUnitInterval
from torch.utils.data import Dataset, Subset
from torchvision import transforms as T
from torchvision.datasets import CIFAR10, CIFAR100

from ..errors import DatasetNotFoundError, InputError, one_line
from . import augment
from .augment import AutoAugment
from .base import ImageDataModule, normalized
from .cifar_pickles import CIFARPickles


class _CIFARDataModule(ImageDataModule):
    """CIFAR in torchvision's layout; subclasses name the dataset and its statistics.

    ``val_size=0`` validates on the test set, the usual CIFAR protocol (the papers report
    test accuracy); a positive ``val_size`` holds that many training images out instead,
    the same ones for the same ``split_seed``, seen with the eval transforms.

    Args:
        root: folder that holds the dataset's folder (``cifar-10-batches-py/`` or
            ``cifar-100-python/``).
        download: fetch the published archive in ``prepare_data`` if files are missing.
        val_size: training images held out for validation; 0 validates on the test set.
        split_seed: seed of the permutation that picks the held-out images.
        verify_md5: check the files against the published checksums (torchvision's
            reader); false reads a re-packed copy in the same pickled format.
        auto_augment: a policy after the crop and flip of the training images: ``none``, ``randaugment``
            (2 ops of magnitude 9), ``trivialaugment``, ``autoaugment_cifar10`` or ``autoaugment_imagenet``.
        random_erasing: the probability of RandomErasing on each normalised training image (0: off).
    """

    name: str
    dataset_class: type[CIFAR10]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size = 32

    def __init__(
        self,
        *,
        root: str = "data",
        download: bool = True,
        val_size: int = 0,
        split_seed: int = 0,
        verify_md5: bool = True,
        auto_augment: AutoAugment = "none",
        random_erasing: ClosedUnitInterval = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if val_size < 0:
            raise InputError(f"--data.val_size must be 0 or more, got {val_size}")
        self.root = root
        self.download = download
        self.val_size = val_size
        self.split_seed = split_seed
        self.verify_md5 = verify_md5
        steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *augment.auto_augment(auto_augment)]
        self.train_transform = normalized(*steps, mean=self.mean, std=self.std, after=augment.random_erasing(random_erasing))
        self.eval_transform = normalized(mean=self.mean, std=self.std)

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.dataset_class.base_folder

    def _files_missing(self) -> bool:
        cls = self.dataset_class
        names = [name for name, _md5 in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        return not all((self.folder / name).is_file() for name in names)

    @property
    def classes(self) -> list[str] | None:
        """The names in the dataset's meta file, once ``setup`` has read it (fit stores them in the checkpoint)."""
        test_set = getattr(self, "test_set", None)
        return None if test_set is None else test_set.classes

    def prepare_splits(self) -> None:
        """Download only what is missing: present files, re-packed ones included, are never replaced."""
        if not self.download or not self._files_missing():
            return
        try:
            self.dataset_class(self.root, train=False, download=True)
        except (OSError, RuntimeError) as error:  # network, disk, or a corrupt archive
            raise DatasetNotFoundError(
                f"could not download {self.name} to {self.root} ({one_line(error)}): download it elsewhere"
                f" and pass --data.root DIR (the folder that holds {self.dataset_class.base_folder}/),"
                " with --data.download false"
            ) from error

    def setup_splits(self, stage: str | None) -> None:
        if self._files_missing():
            raise DatasetNotFoundError(
                f"{self.name} not found under {self.folder}: pass --data.download true, or --data.root DIR"
                f" pointing at the folder that holds {self.dataset_class.base_folder}/"
            )
        self.test_set = self._split(train=False, transform=self.eval_transform)
        if self.val_size == 0:
            self.train_set = self._split(train=True, transform=self.train_transform)
            self.val_set = self.test_set
            return
        train, held_out = self._split(True, self.train_transform), self._split(True, self.eval_transform)
        if self.val_size >= len(train):
            raise InputError(
                f"--data.val_size {self.val_size} leaves no training images: {self.name} under {self.folder} has {len(train)}"
            )
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.split_seed)).tolist()
        self.train_set = Subset(train, order[self.val_size :])
        self.val_set = Subset(held_out, order[: self.val_size])

    def _split(self, train: bool, transform: T.Compose) -> Dataset:
        if not self.verify_md5:
            return CIFARPickles(self.root, self.dataset_class, train, transform)
        try:
            return self.dataset_class(self.root, train=train, transform=transform, download=False)
        except RuntimeError as error:  # torchvision's checksum failure: the files are there
            raise InputError(
                f"{self.name} files under {self.folder} do not match the published MD5 checksums: for a"
                " re-packed copy in the same format pass --data.verify_md5 false, else delete the folder"
                " and pass --data.download true"
            ) from error


class CIFAR10DataModule(_CIFARDataModule):
    """CIFAR-10: 50,000 training and 10,000 test images, 32 x 32 pixels, 10 classes."""

    name = "CIFAR-10"
    dataset_class = CIFAR10
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)


class CIFAR100DataModule(_CIFARDataModule):
    """CIFAR-100, the paper's CIFAR benchmark: 50,000 training and 10,000 test images, 100 classes."""

    name = "CIFAR-100"
    dataset_class = CIFAR100
    num_classes = 100
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
