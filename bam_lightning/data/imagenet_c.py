"""ImageNet-C (Hendrycks & Dietterich, ICLR 2019) in its published tree ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``.

No download: the published archives (Zenodo record 2235448, blur/digital/extra/noise/weather.tar) hold 50,000 images
per corruption and severity, tens of GB in all; unpack them under one folder and point ``root`` at it.
"""

from functools import cached_property
from pathlib import Path
from typing import Any

from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveInt
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, find_classes

from ..errors import DatasetNotFoundError, InputError
from .base import normalized
from .corruptions import ALEXNET, CorruptionDataModule
from .imagenet import MEAN, STD, ImageNetDataModule


class CorruptedImages(Dataset):
    """``(image, label, group index)`` of image files listed as ``(path, label, group)``."""

    def __init__(self, samples: list[tuple[Path, int, int]], transform: T.Compose) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        path, label, group = self.samples[index]
        return self.transform(default_loader(str(path))), label, group


class ImageNetCDataModule(CorruptionDataModule):
    """ImageNet-C: the 50,000 ImageNet validation images under 19 corruptions at 5 severities, 1,000 classes.

    Labels are numbered by the clean ImageNet's class folders (``clean_root``), as the network was trained; the mCE is
    normalised by AlexNet's errors (``corruptions.ALEXNET``). The published images are already the validation crop
    (resized to 256, centre 224), so they are only centre-cropped to ``image_size`` (as the benchmark's own test does)
    and normalised with ImageNet's statistics.

    Args:
        root: the folder that holds one folder per corruption.
        clean_root: the clean ImageNet (``train/<wnid>/``) whose class folders number the labels; null: the class
            folders of the first corruption's first severity (all 1,000 in the published tree: the same order).
        clean_err1: the network's clean top-1 error (%), for the relative mCE; null: the ``test/err1`` that ``bam test``
            on the clean ImageNet logged into the same run, if any.
        image_size: side of the centre crop the model sees.
    """

    name = "ImageNet-C"
    reference = ALEXNET

    def __init__(
        self,
        *,
        root: str = "data/imagenet-c",
        clean_root: str | None = None,
        clean_err1: NonNegativeFloat | None = None,
        image_size: int = 224,
        batch_size: PositiveInt = 64,
        num_workers: NonNegativeInt = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, **kwargs)
        self.root = root
        self.clean_root = clean_root
        self.clean_err1 = clean_err1
        self._image_size = image_size
        self.eval_transform = normalized(T.CenterCrop(image_size), mean=MEAN, std=STD)

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def classes(self) -> list[str]:
        """The class folder names that number the labels (see ``clean_root``)."""
        if self.clean_root is not None:
            return ImageNetDataModule(root=self.clean_root).classes
        return find_classes(self._severity_folder(self.corruptions[0], self.severities[0]))[0]

    def _severity_folder(self, corruption: str, severity: int) -> Path:
        root = Path(self.root)
        if not root.is_dir():
            raise DatasetNotFoundError(f"ImageNet-C not found: no folder {root}; pass --data.root DIR")
        if not (root / corruption).is_dir():
            raise self.missing(corruption, sorted(p.name for p in root.iterdir() if p.is_dir()), f"folder {root / corruption}")
        folder = root / corruption / str(severity)
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"ImageNet-C under {root} has no severity folder {folder}: unpack the published archive again, or pass"
                " --data.severities with those present"
            )
        return folder

    def setup_test(self) -> None:
        index = {name: i for i, name in enumerate(self.classes)}
        samples = []
        for group, (corruption, severity) in enumerate(self.corruption_groups):
            folder = self._severity_folder(corruption, severity)
            for wnid in sorted(p.name for p in folder.iterdir() if p.is_dir()):
                if wnid not in index:
                    source = f"{self.clean_root}/train" if self.clean_root is not None else "the first severity folder"
                    raise InputError(
                        f"{folder / wnid} is not a class of {source}: the tree must hold the clean ImageNet's classes"
                    )
                files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
                samples += [(path, index[wnid], group) for path in files]
        self.test_set = CorruptedImages(samples, self.eval_transform)
