"""The loader side every image datamodule shares, so subclasses only say where the images are."""

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
from jsonargparse.typing import NonNegativeInt, PositiveInt
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision import transforms as T

from .predict import ImageFiles
from .sampler import EpochShuffle, ResumableBatchSampler, ResumableLoader, SeededSamples, ignore_stop_signals
from .unreadable import BadImages, NextReadable, check_bad_images


def normalized(*steps: Callable, mean: Sequence[float], std: Sequence[float], after: Sequence[Callable] = ()) -> T.Compose:
    """``steps`` on a PIL image, then a float tensor normalised per channel (every split ends the same way), then ``after``."""
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std), *after])


Statistics = tuple[Sequence[float], Sequence[float]]  # per-channel mean and std of a normalisation


def input_statistics(datamodule: object) -> Statistics | None:
    """Mean and std of a datamodule's eval ``Normalize`` (None if it has none): how its images are put back in colour."""
    steps = getattr(getattr(datamodule, "eval_transform", None), "transforms", [])
    return next(((step.mean, step.std) for step in steps if isinstance(step, T.Normalize)), None)


class SplitLoaders(pl.LightningDataModule):
    """One loader recipe for every split, shared by the image and the detection datamodules.

    Subclasses fill ``train_set``, ``val_set`` and ``test_set`` in ``setup``, and for ``bam predict``
    ``predict_set``, a ``data.predict.ImageFiles`` (the folder ``predict_dir``; detection also the
    evaluation split's images). No ``save_hyperparameters``:
    checkpoints stay small and plain, and the CLI's config already records every argument. ``collate_fn`` is how samples become a
    batch (None: torch's default stacking; detection keeps lists, its images differ in size).

    The loader options below have their one home here: a datamodule passes them on with ``super().__init__(**kwargs)``,
    which jsonargparse follows, so ``--data.help`` and ``--print_config`` list them, with this help, under every
    datamodule. One declares an option again only for a default of its own (ImageNet's batch), and that keeps its help
    from here unless the datamodule documents it. ``root`` is not one of them: its default and the layout under it are
    each dataset's, and the digits and synthetic data have none. Arguments are keyword-only, since through ``**kwargs``
    a position would mean another parameter in each datamodule.

    Args:
        batch_size: images per device and step; under DDP the global batch is
            batch_size x devices x nodes.
        num_workers: loader processes per device; 0 loads in the main process.
        pin_memory: page-locked host batches, for faster copies to a GPU.
        persistent_workers: keep workers alive between epochs (only with num_workers > 0).
        predict_dir: the folder ``bam predict`` reads (every image file, any depth); a detection datamodule
            without one predicts on its evaluation split.
        bad_images: what an image file that does not decode (truncated, not an image) does: ``fail`` stops with
            its name; ``skip`` names it and goes on: a split loads its next image (detection: with that image's
            boxes) in its place and counts the skipped at the end (``unreadable.NextReadable``), ``bam predict``
            leaves the file's rows out.
    """

    train_set: Dataset
    val_set: Dataset
    test_set: Dataset
    predict_set: ImageFiles
    collate_fn: Callable[[list], Any] | None = None

    def __init__(
        self,
        *,
        batch_size: PositiveInt = 128,
        num_workers: NonNegativeInt = 4,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        predict_dir: str | None = None,
        bad_images: BadImages = "fail",
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.predict_dir = predict_dir
        self.bad_images = check_bad_images(bad_images)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_set, shuffle=False)

    def teardown(self, stage: str | None = None) -> None:
        """Say how many unreadable images each set skipped (``bad_images="skip"``, ``unreadable.NextReadable``) when a
        run ends."""
        splits = [getattr(self, name) for name in ("train_set", "val_set", "test_set") if hasattr(self, name)]
        for split in {id(split): split for split in splits}.values():  # val_set is test_set in most
            for part in split.datasets if isinstance(split, ConcatDataset) else [split]:
                readable = getattr(part, "readable", None)
                if isinstance(readable, NextReadable):
                    readable.report()

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
    square images and a class count the CLI hands to the model, and ``bam predict`` on a folder of the user's images.

    Subclasses set up their splits in ``setup_splits`` and give their eval transform; predicting
    reads no split, only ``predict_dir`` (so a CIFAR run predicts where CIFAR was never downloaded).
    """

    classes: list[str] | None = None  # class names, where the data has them; fit stores them in the checkpoint

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Classes the model must predict; the CLI links it into the model before ``setup``."""

    @property
    @abstractmethod
    def image_size(self) -> int:
        """Side of the square images the loaders yield."""

    @property
    def predict_transform(self) -> Callable[[Image.Image], Tensor]:
        """The eval transform for images of any size: the centred square of the model's side, normalised as in training.

        Datamodules whose eval transform already resizes and crops (ImageNet) return it instead.
        """
        steps = [T.Resize(self.image_size), T.CenterCrop(self.image_size)]
        statistics = input_statistics(self)
        if statistics is None:  # data that is not normalised (SyntheticDataModule)
            return T.Compose([*steps, T.ToTensor()])
        return normalized(*steps, mean=statistics[0], std=statistics[1])

    @abstractmethod
    def setup_splits(self, stage: str | None) -> None:
        """Fill ``train_set``, ``val_set`` and ``test_set`` (``setup`` for every stage but predict)."""

    def prepare_data(self) -> None:
        """Nothing to fetch by default; a datamodule that downloads does it in ``prepare_splits``, never for predict."""
        if not self._predicting:
            self.prepare_splits()

    def prepare_splits(self) -> None:
        """Download what the splits need (CIFAR); nothing by default."""

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":  # bam checks predict_dir before the run (cli.runs.prepare_predictions)
            self.predict_set = ImageFiles(self.predict_dir, self.predict_transform, self.bad_images)
            return
        self.setup_splits(stage)

    @property
    def _predicting(self) -> bool:
        trainer = self.trainer
        return trainer is not None and trainer.state.fn == TrainerFn.PREDICTING
