"""Random images held in memory: the whole training system without a dataset on disk.

For measuring (``make bench`` times ``bam fit`` against a bare PyTorch loop on it, where
reading and decoding images would hide the framework's cost) and for checking a cluster
setup before the real data is in place::

    bam fit --config configs/cifar100_wrn.yaml --data bam_lightning.data.SyntheticDataModule

Nothing is learnt from it: labels are random.
"""

from typing import Any

import torch
from jsonargparse.typing import NonNegativeInt
from torch.utils.data import TensorDataset

from .base import ImageDataModule


class SyntheticDataModule(ImageDataModule):
    """Normal-noise images and uniform labels, drawn once from ``seed``.

    ``bam predict`` reads the images under ``predict_dir`` resized and cropped, not normalised.

    Args:
        num_classes: label range (and the model's head, through the CLI's link).
        image_size: side of the square images.
        train_size: images in the training split; ``val_size`` for validation, test and predict.
        seed: the draw, independent of the run's seed so every run sees the same data.
    """

    def __init__(
        self,
        *,
        num_classes: int = 100,
        image_size: int = 32,
        train_size: int = 1024,
        val_size: int = 256,
        seed: int = 0,
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_workers=num_workers, pin_memory=pin_memory, **kwargs)
        self._num_classes = num_classes
        self._image_size = image_size
        self.sizes = {"train": train_size, "val": val_size}
        self.seed = seed

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def image_size(self) -> int:
        return self._image_size

    def _split(self, size: int, seed: int) -> TensorDataset:
        generator = torch.Generator().manual_seed(seed)
        images = torch.randn(size, 3, self.image_size, self.image_size, generator=generator)
        return TensorDataset(images, torch.randint(self.num_classes, (size,), generator=generator))

    def setup_splits(self, stage: str | None) -> None:
        self.train_set = self._split(self.sizes["train"], self.seed)
        self.val_set = self.test_set = self._split(self.sizes["val"], self.seed + 1)
