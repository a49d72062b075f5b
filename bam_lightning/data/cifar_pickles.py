"""CIFAR-10/100 read from torchvision's on-disk layout without its MD5 check.

torchvision compares every file with the published archive's checksum, also with
``download=False``, so a re-packed copy in the same pickled format (or a test's tiny copy)
is refused as "not found or corrupted". This reader trusts the files instead.
"""

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10


def load_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle; ``latin1`` reads the Python 2 pickles of the published archive."""
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


class CIFARPickles(Dataset):
    """The images and labels of one split, as ``(transform(PIL image), label)`` pairs.

    Args:
        root: folder that holds ``layout.base_folder``.
        layout: torchvision's ``CIFAR10`` or ``CIFAR100``: only its file names are used.
        train: the training files, else the test file.
        transform: applied to each PIL image.
    """

    def __init__(self, root: str | Path, layout: type[CIFAR10], train: bool, transform: Callable | None = None) -> None:
        folder = Path(root) / layout.base_folder
        batches = [load_pickle(folder / name) for name, _md5 in (layout.train_list if train else layout.test_list)]
        # Channel-major rows (R plane, G plane, B plane) -> N x H x W x C, what PIL expects.
        self.data = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets = [int(y) for b in batches for y in (b["labels"] if "labels" in b else b["fine_labels"])]
        self.classes: list[str] = load_pickle(folder / layout.meta["filename"])[layout.meta["key"]]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform else image), self.targets[index]
