"""ImageNet-1K (or any ImageFolder tree) with the public BAM code's recipe."""

from functools import cached_property
from pathlib import Path

from torchvision import transforms as T
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import find_classes

from ..errors import DatasetNotFoundError, InputError
from .base import ImageDataModule, normalized, one_line

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class ImageNetDataModule(ImageDataModule):
    """ImageNet in the ImageFolder layout ``root/{train,val}/<class>/*.JPEG``.

    Training: random resized crop and horizontal flip; evaluation: resize then centre
    crop. The val split serves validation, test and predict, since ImageNet's test labels
    are not public.

    Args:
        root: folder that holds ``train/`` and ``val/``, one subfolder per class in each.
        image_size: side of the crops the model sees.
        resize_size: shorter side the eval images are resized to before the centre crop.
        batch_size: images per device and step; under DDP the global batch is
            batch_size x devices x nodes (the ImageNet recipe is 256 in total).
        num_workers: loader processes per device; JPEG decoding needs several.
        pin_memory: page-locked host batches, for faster copies to a GPU.
        persistent_workers: keep workers alive between epochs (only with num_workers > 0).
    """

    def __init__(
        self,
        root: str = "data/imagenet",
        image_size: int = 224,
        resize_size: int = 256,
        batch_size: int = 64,
        num_workers: int = 8,
        pin_memory: bool = True,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__(root, batch_size, num_workers, pin_memory, persistent_workers)
        self._image_size = image_size
        self.train_transform = normalized(T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), mean=MEAN, std=STD)
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
        """Class folder names of ``train/``, sorted as ImageFolder numbers them."""
        return self._classes("train")

    def setup(self, stage: str | None = None) -> None:
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

    def _folder(self, split: str, transform: T.Compose) -> ImageFolder:
        try:
            return ImageFolder(str(Path(self.root) / split), transform=transform)
        except FileNotFoundError as error:  # a class folder without images
            raise self._not_found(f" ({one_line(error)})") from error
