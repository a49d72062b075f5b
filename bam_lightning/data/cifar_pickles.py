"""CIFAR-10/100 read from torchvision's on-disk layout without its MD5 check.

torchvision compares every file with the published archive's checksum, also with
``download=False``, so a re-packed copy in the same pickled format (or a test's tiny copy)
is refused as "not found or corrupted". This reader trusts the files instead, so it checks
what it reads: without the checksum a truncated or foreign file would otherwise fail deep
inside pickle or numpy, or later in a loader worker, with nothing that names the file.
"""

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10

from ..errors import InputError, one_line

PIXELS = 3 * 32 * 32  # one image: R plane, G plane, B plane of 32 x 32


def unreadable(path: Path, reason: str) -> InputError:
    """The one-line error for a file that is there but is not a usable CIFAR pickle."""
    return InputError(
        f"{path} is not a readable CIFAR pickle ({reason}): re-copy the dataset,"
        f" or pass --data.download true after deleting {path.parent}"
    )


def load_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle as a dict; ``latin1`` reads the Python 2 pickles of the published archive.

    Damaged bytes can make unpickling raise almost any exception (the pickle docs name
    UnpicklingError, EOFError, AttributeError, ImportError and IndexError, "but not
    necessarily limited to"), so every one becomes the same error naming the file.
    """
    try:
        with open(path, "rb") as f:
            content = pickle.load(f, encoding="latin1")
    except Exception as error:
        raise unreadable(path, one_line(error)) from error
    if not isinstance(content, dict):
        raise unreadable(path, f"it holds a {type(content).__name__}, not a dict")
    return content


def read_classes(path: Path, key: str) -> list[str]:
    """The class names stored under ``key`` in a meta file."""
    names = load_pickle(path).get(key)
    if not isinstance(names, list | tuple) or not names or not all(isinstance(name, str) for name in names):
        raise unreadable(path, f"no list of class names under {key!r}")
    return list(names)


def read_batch(path: Path, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """One batch file's N x 3072 uint8 rows and N labels in ``0..num_classes-1``.

    Checked here because a wrong size would otherwise surface as a reshape error far from
    the file, a wrong dtype only in ``Image.fromarray`` inside a loader worker, and an
    out-of-range label as a device-side assert in the loss.
    """
    batch = load_pickle(path)
    if "data" not in batch:
        raise unreadable(path, "no 'data' key")
    labels = batch["labels"] if "labels" in batch else batch.get("fine_labels")
    if labels is None:
        raise unreadable(path, "no 'labels' or 'fine_labels' key")
    try:
        data = np.asarray(batch["data"])
        targets = [int(y) for y in labels]
    except (TypeError, ValueError) as error:
        raise unreadable(path, one_line(error)) from error
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = " x ".join(map(str, data.shape))
        raise unreadable(path, f"'data' is {data.dtype} of shape {shape}, not uint8 N x {PIXELS}")
    if len(targets) != len(data):
        raise unreadable(path, f"{len(targets)} labels for {len(data)} images")
    outside = [y for y in targets if not 0 <= y < num_classes]
    if outside:
        raise unreadable(path, f"label {outside[0]} is outside 0..{num_classes - 1}, the classes its meta file names")
    return data, targets


class CIFARPickles(Dataset):
    """The images and labels of one split, as ``(transform(PIL image), label)`` pairs.

    Args:
        root: folder that holds ``layout.base_folder``.
        layout: torchvision's ``CIFAR10`` or ``CIFAR100``: only its file names are used.
        train: the training files, else the test file.
        transform: applied to each PIL image.

    Raises:
        InputError: a file cannot be unpickled, lacks a key, or holds data of the wrong
            size, type or label range; the one-line message names the file.
    """

    def __init__(self, root: str | Path, layout: type[CIFAR10], train: bool, transform: Callable | None = None) -> None:
        folder = Path(root) / layout.base_folder
        self.classes: list[str] = read_classes(folder / layout.meta["filename"], layout.meta["key"])
        files = layout.train_list if train else layout.test_list
        batches = [read_batch(folder / name, len(self.classes)) for name, _md5 in files]
        # Channel-major rows (R plane, G plane, B plane) -> N x H x W x C, what PIL expects.
        self.data = np.concatenate([data for data, _ in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets = [y for _, targets in batches for y in targets]
        if not self.targets:  # a loader of nothing: Lightning would skip every epoch with a mere warning
            names = ", ".join(name for name, _md5 in files)
            raise InputError(
                f"{folder}: {names} hold no images: re-copy the dataset, or pass --data.download true after deleting {folder}"
            )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform else image), self.targets[index]


def write_cifar100(folder: Path, splits: dict[str, tuple[list[int], np.ndarray]]) -> None:
    """``folder/{train,test,meta}`` in the pickled layout torchvision's CIFAR100 reads, from labels and N x 3072 rows.

    For a dataset written on the spot: the tests' tiny ones and ``make gpu-check``'s loader
    measurement. Each row holds an image's R, G and B planes of 32 x 32 (``PIXELS``), uint8.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, (labels, data) in splits.items():
        batch = {
            "filenames": [f"{name}_{i:05d}.png" for i in range(len(labels))],
            "batch_label": f"{'training' if name == 'train' else 'testing'} batch 1 of 1",
            "fine_labels": labels,
            "coarse_labels": [label // 5 for label in labels],
            "data": data,
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {
        "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
        "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta))
