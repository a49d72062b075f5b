"""ImageNet-1K (or any ImageFolder tree) with the public BAM code's recipe."""

from functools import cached_property
from pathlib import Path
from typing import Any

from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt
from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from ..errors import DatasetNotFoundError, InputError, one_line
from . import augment
from .augment import AutoAugment
from .base import ImageDataModule, normalized
from .unreadable import BadImages, NextReadable

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class CheckedImageFolder(ImageFolder):
    """An ImageFolder that names the file it cannot decode, and fails or skips it (``bad_images``).

    ``readable`` (``unreadable.NextReadable``) decodes each file: ``"fail"`` stops at the first
    bad file a batch meets, with its name; ``"skip"`` returns the next readable image of the
    folder order instead (so the batch keeps its size and a label that matches) and prints one
    line per file. Only the loading is guarded: an error in a transform is a bug.
    """

    def __init__(self, root: str, transform: T.Compose, bad_images: BadImages = "fail") -> None:
        super().__init__(root, transform=transform)
        self.readable = NextReadable([path for path, _ in self.samples], root, bad_images, " to train without it", self.loader)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        index, image = self.readable(index)
        return (self.transform(image) if self.transform else image), self.targets[index]


class ImageNetDataModule(ImageDataModule):
    """ImageNet in the ImageFolder layout ``root/{train,val}/<class>/*.JPEG``.

    Training: random resized crop and horizontal flip; evaluation: resize then centre
    crop. The val split serves validation and test, since ImageNet's test labels
    are not public.

    Args:
        root: folder that holds ``train/`` and ``val/``, one subfolder per class in each.
        image_size: side of the crops the model sees.
        resize_size: shorter side the eval images are resized to before the centre crop.
        batch_size: images per device and step; under DDP the global batch is
            batch_size x devices x nodes (the ImageNet recipe is 256 in total).
        num_workers: loader processes per device; JPEG decoding needs several.
        auto_augment: a policy after the crop and flip of the training images: ``none``, ``randaugment``
            (2 ops of magnitude 9), ``trivialaugment``, ``autoaugment_cifar10`` or ``autoaugment_imagenet``.
        random_erasing: the probability of RandomErasing on each normalised training image (0: off).
    """

    def __init__(
        self,
        *,
        root: str = "data/imagenet",
        image_size: int = 224,
        resize_size: int = 256,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 8,
        auto_augment: AutoAugment = "none",
        random_erasing: ClosedUnitInterval = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, **kwargs)
        self.root = root
        self._image_size = image_size
        steps = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *augment.auto_augment(auto_augment)]
        self.train_transform = normalized(*steps, mean=MEAN, std=STD, after=augment.random_erasing(random_erasing))
        self.eval_transform = normalized(T.Resize(resize_size), T.CenterCrop(image_size), mean=MEAN, std=STD)

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def num_classes(self) -> int:
        """Read before ``setup`` (the CLI sizes the model with it): counts folders, opens no image."""
        return len(self.classes)

    @cached_property
    def classes(self) -> list[str]:
        """Class folder names of ``train/``, sorted as ImageFolder numbers them; two or more.

        One class is refused here, where the model's ``num_classes`` is read: a classifier of one
        class has nothing to tell apart (its loss is 0 from the start), and torchmetrics would
        end the run in a traceback about ``num_classes``.
        """
        classes = self._classes("train")
        if len(classes) < 2:
            raise InputError(
                f"{Path(self.root) / 'train'} holds one class folder ({classes[0]!r}), and a classifier needs two or more:"
                " add a folder per class to train/ and val/, or pass --data.root DIR of a tree that has them"
            )
        return classes

    @property
    def predict_transform(self) -> T.Compose:
        return self.eval_transform  # it resizes and crops any image already

    def setup_splits(self, stage: str | None) -> None:
        val_classes = self._classes("val")
        if val_classes != self.classes:
            first = min(set(val_classes) ^ set(self.classes))
            where = "val/ but not train/" if first in val_classes else "train/ but not val/"
            raise InputError(f"ImageNet under {self.root}: class {first!r} is in {where}; both must hold the same class folders")
        # Scanning train/ (1.28 M files) is skipped when only evaluating.
        if stage in ("fit", None):
            self.train_set = self._folder("train", self.train_transform)
        self.val_set = self.test_set = self._folder("val", self.eval_transform)

    def _not_found(self, detail: str = "") -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"ImageNet not found: expected {self.root}/train/<class>/*.JPEG and {self.root}/val/<class>/*.JPEG"
            f"{detail}; pass --data.root DIR"
        )

    def _classes(self, split: str) -> list[str]:
        try:
            return find_classes(Path(self.root) / split)[0]
        except (FileNotFoundError, NotADirectoryError):  # no such folder, or no class folder in it
            raise self._not_found() from None

    def _folder(self, split: str, transform: T.Compose) -> CheckedImageFolder:
        try:
            return CheckedImageFolder(str(Path(self.root) / split), transform, self.bad_images)
        except FileNotFoundError as error:  # a class folder without images
            raise self._not_found(f" ({one_line(error)})") from error
