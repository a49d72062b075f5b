"""Tiny datasets in the real on-disk formats, for tests that must not download anything.

Each class has its own blocky colour pattern, shared by its training and test images, and
every image adds noise to it: a tiny model beats chance within a few steps. The same
``seed`` writes the same files.
"""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def _prototypes(rng: np.random.Generator, num_classes: int, height: int, width: int) -> np.ndarray:
    """num_classes x H x W x 3: a 4 x 4 grid of random colours per class, stretched to the image."""
    grid = rng.integers(0, 256, (num_classes, 4, 4, 3))
    rows, cols = np.arange(height) * 4 // height, np.arange(width) * 4 // width
    return grid[:, rows][:, :, cols]


def _noisy(rng: np.random.Generator, patterns: np.ndarray) -> np.ndarray:
    return np.clip(patterns + rng.normal(0, 16, patterns.shape), 0, 255).astype(np.uint8)


def _cifar_splits(num_classes: int, sizes: tuple[int, int], seed: int) -> list[tuple[list[int], np.ndarray]]:
    """(labels, N x 3072 channel-major rows) for train and test; labels balanced and shuffled."""
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, num_classes, 32, 32)
    splits = []
    for n in sizes:
        labels = rng.permutation(np.arange(n) % num_classes)
        images = _noisy(rng, prototypes[labels])
        splits.append((labels.tolist(), images.transpose(0, 3, 1, 2).reshape(n, 3072)))
    return splits


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar100(root: str | Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` with the keys torchvision's CIFAR100 reads; returns ``root``."""
    folder = Path(root) / "cifar-100-python"
    splits = _cifar_splits(100, (n_train, n_test), seed)
    for name, batch_label, (labels, data) in zip(("train", "test"), ("training", "testing"), splits, strict=True):
        _pickle(
            folder / name,
            {
                "filenames": [f"{name}_{i:05d}.png" for i in range(len(labels))],
                "batch_label": f"{batch_label} batch 1 of 1",
                "fine_labels": labels,
                "coarse_labels": [label // 5 for label in labels],
                "data": data,
            },
        )
    _pickle(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
        },
    )
    return Path(root)


def write_cifar10(root: str | Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py/`` (training images spread over ``data_batch_1..5``); returns ``root``."""
    folder = Path(root) / "cifar-10-batches-py"
    (train_labels, train_data), (test_labels, test_data) = _cifar_splits(10, (n_train, n_test), seed)

    def write(name: str, batch_label: str, labels: list[int], data: np.ndarray) -> None:
        filenames = [f"{name}_{i:05d}.png" for i in range(len(labels))]
        _pickle(folder / name, {"batch_label": batch_label, "labels": labels, "data": data, "filenames": filenames})

    for i, part in enumerate(np.array_split(np.arange(n_train), 5)):
        write(f"data_batch_{i + 1}", f"training batch {i + 1} of 5", [train_labels[j] for j in part], train_data[part])
    write("test_batch", "testing batch 1 of 1", test_labels, test_data)
    _pickle(
        folder / "batches.meta",
        {
            "num_cases_per_batch": -(-n_train // 5),
            "label_names": [f"label_{i}" for i in range(10)],
            "num_vis": 3072,
        },
    )
    return Path(root)


def write_image_folder(
    root: str | Path, classes: int = 3, per_class: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0
) -> Path:
    """JPEGs of ``size`` (width, height) in ``root/{train,val}/<class>/*.JPEG``, classes named like WordNet ids."""
    rng = np.random.default_rng(seed)
    width, height = size
    prototypes = _prototypes(rng, classes, height, width)
    for split in ("train", "val"):
        for c in range(classes):
            folder = Path(root) / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(_noisy(rng, np.repeat(prototypes[c : c + 1], per_class, axis=0))):
                Image.fromarray(image).save(folder / f"{split}_{c}_{i}.JPEG", quality=90)
    return Path(root)
