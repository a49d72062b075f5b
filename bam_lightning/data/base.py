"""The loader side every image datamodule shares, so subclasses only say where the images are."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from .sampler import EpochShuffle, ResumableBatchSampler, ResumableLoader, SeededSamples, ignore_stop_signals


def normalized(*steps: Callable, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """``steps`` on a PIL image, then a float tensor normalised per channel: every split ends the same way."""
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def one_line(error: BaseException) -> str:
    """An exception's text on one line: the ``bam`` command prints error messages as one line."""
    return " ".join(str(error).split()) or type(error).__name__


class SplitLoaders(pl.LightningDataModule):
    """One loader recipe for every split, shared by the image and the detection datamodules.

    Subclasses fill ``train_set``, ``val_set`` and ``test_set`` in ``setup``; predict uses
    the test set. No ``save_hyperparameters``: checkpoints stay small and plain, and the
    CLI's config already records every argument. ``collate_fn`` is how samples become a
    batch (None: torch's default stacking; detection keeps lists, its images differ in size).

    Args:
        root: folder that holds the dataset.
        batch_size: images per device and step; under DDP the global batch is
            batch_size x devices x nodes.
        num_workers: loader processes per device; 0 loads in the main process.
        pin_memory: page-locked host batches, for faster copies to a GPU.
        persistent_workers: keep workers alive between epochs (only with num_workers > 0).
    """

    train_set: Dataset
    val_set: Dataset
    test_set: Dataset
    collate_fn: Callable[[list], Any] | None = None

    def __init__(
        self,
        root: str = "data",
        batch_size: PositiveInt = 128,
        num_workers: NonNegativeInt = 4,
        pin_memory: bool = True,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        self.root = root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        # DataLoader refuses persistent workers without workers; the flag is a no-op then.
        options = {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers and self.num_workers > 0,
            "worker_init_fn": ignore_stop_signals,  # a job's SIGTERM stops the run, not its workers
            "collate_fn": self.collate_fn,
        }
        if not shuffle:
            return DataLoader(dataset, batch_size=self.batch_size, **options)
        # Order, augmentation and the position in the epoch survive a resume (see data/sampler.py).
        batches = ResumableBatchSampler(EpochShuffle(len(dataset)), self.batch_size, drop_last=False)
        return ResumableLoader(SeededSamples(dataset), batch_sampler=batches, **options)


class ImageDataModule(SplitLoaders, ABC):
    """Base of the image datamodules: one loader recipe for every split (``SplitLoaders``, whose arguments it takes),
    square images and a class count the CLI hands to the model."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Classes the model must predict; the CLI links it into the model before ``setup``."""

    @property
    @abstractmethod
    def image_size(self) -> int:
        """Side of the square images the loaders yield."""
