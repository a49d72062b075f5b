"""A user's own images for ``bam predict``: every image file under a folder, at any depth (or the files of a split).

The files are taken in sorted path order, which is the order of ``predictions.csv``, and each
sample carries its index so that the rows of several processes can be put back in that order
(``predictions.PredictionsCSV``). A file that does not decode is named: ``bad_images="fail"``
stops there, ``"skip"`` leaves its row out and says so, as ``--data.bad_images`` does for training.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import InputError
from .unreadable import BadImages, refuse_or_skip


def find_images(folder: str | Path) -> list[Path]:
    """Image files (torchvision's extensions, any case) under ``folder``, sorted; at least one, else refused."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--data.predict_dir {folder} is not a folder: give the folder of your images")
    files = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise InputError(f"--data.predict_dir {folder} holds no image file ({', '.join(IMG_EXTENSIONS)}), at any depth")
    return files


class ImageFiles(Dataset):
    """``(image, index, readable)`` for each file of ``find_images(folder)``, or of ``files`` (paths under ``folder``,
    in their order) where given; an unreadable one is zeros when skipped."""

    def __init__(
        self,
        folder: str | Path,
        transform: Callable[[Image.Image], Tensor],
        bad_images: BadImages = "fail",
        files: Sequence[Path] | None = None,
    ) -> None:
        self.root = Path(folder)
        self.files = find_images(folder) if files is None else list(files)
        self.transform = transform
        self.bad_images = bad_images
        self._blank: Tensor | None = None  # what a skipped file gives: zeros of the transform's shape

    def __len__(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        """The file as ``predictions.csv`` names it: its path under the folder."""
        return self.files[index].relative_to(self.root).as_posix()

    def __getitem__(self, index: int) -> tuple[Tensor, int, bool]:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                x = self.transform(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as error:  # PIL: not an image, truncated, broken header
            refuse_or_skip(path, error, self.bad_images)
            return self.blank(), index, False
        return x, index, True

    def blank(self) -> Tensor:
        if self._blank is None:
            self._blank = torch.zeros_like(self.transform(Image.new("RGB", (64, 64))))
        return self._blank
