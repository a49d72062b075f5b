"""scikit-learn's handwritten digits, upsampled: a real dataset that trains offline in minutes on a CPU.

The 1,797 images (8 x 8, grey, 10 classes) ship inside the scikit-learn wheel, so nothing is
downloaded. They are upsampled to the 32-pixel input the CIFAR backbones are registered for
and their grey copied to three channels, so every backbone and BAM placement takes them as
they take CIFAR. ``main`` writes test digits as PNGs, the input ``make demo`` gives ``bam attention``::

    python -c "from bam_lightning.data.digits import main; main()" digit0.png digit1.png digit2.png

``DigitsCDataModule`` tests on a corrupted copy of the test split in the CIFAR-C format, which it writes where missing
(``write_corrupted_digits``; ``python -c "from bam_lightning.data.digits import corrupt; corrupt()" data`` writes it
under ``data/digits-c/``).

(not ``python -m``: the package imports this module first, and runpy warns about that).
"""

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jsonargparse import ArgumentParser
from jsonargparse.typing import ClosedUnitInterval
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as F

from ..errors import InputError
from . import augment
from .augment import AutoAugment
from .base import ImageDataModule, normalized
from .corruptions import SEVERITIES, CorruptedArraysDataModule


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images as N x 8 x 8 uint8 (0 = background, 255 = ink) and labels as N int64."""
    try:
        from sklearn.datasets import load_digits as load  # optional: only this datamodule needs it
    except ImportError as error:
        raise InputError("the digits demo needs scikit-learn: pip install 'bam_lightning[demo]'") from error
    digits = load()
    return (digits.images * (255 / 16)).round().astype(np.uint8), digits.target.astype(np.int64)


class DigitImages(Dataset):
    """Arrays as PIL images, so torchvision's transforms treat them as they treat any photo."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, transform: Callable) -> None:
        self.images = images
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), int(self.targets[index])


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 handwritten digits, bilinearly upsampled to ``image_size`` and grey in 3 channels.

    One fixed stratified split: ``test_fraction`` of each class is the test set (360 images at
    0.2), the rest trains (1,437). Validation uses the test set, as the CIFAR configs do, so
    ``val/acc1`` is test accuracy and the best checkpoint is chosen on the test set: report
    ``last.ckpt``. Training shifts each image by up to one original pixel (zero padding, then
    a random crop); no flips, since a mirrored digit is another symbol or none.

    Args:
        image_size: side of the upsampled images; the CIFAR backbones expect 32.
        test_fraction: share of each class held out as the test set.
        split_seed: seed of the split; the same seed gives the same images in each set.
        auto_augment: a policy after the shift, as the CIFAR datamodules' (``bam_lightning.data.augment``).
        random_erasing: the probability of RandomErasing on each normalised training image (0: off).
    """

    num_classes = 10
    classes = [str(digit) for digit in range(10)]
    # Pixel statistics of all 1,797 images after bilinear upsampling to 32 pixels, in [0, 1].
    mean = (0.3055,) * 3
    std = (0.3235,) * 3

    def __init__(
        self,
        *,
        image_size: int = 32,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        auto_augment: AutoAugment = "none",
        random_erasing: ClosedUnitInterval = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 < test_fraction < 1:
            raise InputError(f"--data.test_fraction must be between 0 and 1, got {test_fraction}")
        self._image_size = image_size
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        # What the network sees before normalisation; also what the PNG export writes.
        self.upsample = T.Compose([T.Resize(image_size, T.InterpolationMode.BILINEAR), T.Grayscale(num_output_channels=3)])
        shift = [T.RandomCrop(image_size, padding=image_size // 8), *augment.auto_augment(auto_augment)]
        erasing = augment.random_erasing(random_erasing)
        self.train_transform = normalized(self.upsample, *shift, mean=self.mean, std=self.std, after=erasing)
        self.eval_transform = normalized(self.upsample, mean=self.mean, std=self.std)

    @property
    def image_size(self) -> int:
        return self._image_size

    def split(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and test images: stratified by class, fixed by ``split_seed``."""
        from sklearn.model_selection import train_test_split  # load_digits has checked that it is installed

        return train_test_split(
            np.arange(len(targets)), test_size=self.test_fraction, stratify=targets, random_state=self.split_seed
        )

    @property
    def predict_transform(self) -> T.Compose:
        """A photo of a digit as the digits were seen: the centred square, grey in three channels."""
        return normalized(T.Resize(self.image_size), T.CenterCrop(self.image_size), self.upsample, mean=self.mean, std=self.std)

    def setup_splits(self, stage: str | None) -> None:
        images, targets = load_digits()
        train, test = self.split(targets)
        self.train_set = DigitImages(images[train], targets[train], self.train_transform)
        self.test_set = DigitImages(images[test], targets[test], self.eval_transform)
        self.val_set = self.test_set

    def save_test_digits(self, paths: Sequence[str | Path]) -> None:
        """The first test image of label 0 to ``paths[0]``, of label 1 to ``paths[1]``, ... as RGB PNGs."""
        if len(paths) > self.num_classes:
            raise InputError(f"there are {self.num_classes} digits, got {len(paths)} paths")
        images, targets = load_digits()
        test = self.split(targets)[1]
        for label, path in enumerate(paths):
            first = next(i for i in test if targets[i] == label)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.upsample(Image.fromarray(images[first])).save(path)


def _pixelate(images: Tensor, factor: float) -> Tensor:
    side = images.shape[-1]
    small = F.resize(images, [round(side * factor)] * 2, T.InterpolationMode.BILINEAR, antialias=True)
    return F.resize(small, [side, side], T.InterpolationMode.NEAREST)


def _jpeg(images: Tensor, quality: int) -> Tensor:
    """Through PIL's JPEG encoder, as ImageNet-C's recipe (torchvision's ``jpeg`` functional is deprecated since 0.29)."""
    out = []
    for image in F.to_dtype(images, torch.uint8, scale=True):
        encoded = io.BytesIO()
        F.to_pil_image(image).save(encoded, "JPEG", quality=quality)
        out.append(F.pil_to_tensor(Image.open(encoded)))
    return F.to_dtype(torch.stack(out), torch.float32, scale=True)


# The digits demo's corruptions, each of a batch of float images in [0, 1] at severity 1..5: torchvision's functionals
# (JPEG: PIL's) at settings of the ImageNet-C / CIFAR-C recipes (Hendrycks & Dietterich 2019) for the same corruption.
DIGIT_CORRUPTIONS: dict[str, Callable[[Tensor, int], Tensor]] = {
    "gaussian_noise": lambda x, s: F.gaussian_noise(x, sigma=(0.08, 0.12, 0.18, 0.26, 0.38)[s - 1]),
    "gaussian_blur": lambda x, s: F.gaussian_blur(x, [7, 7], [(0.5, 0.75, 1.0, 1.25, 1.5)[s - 1]] * 2),
    "jpeg_compression": lambda x, s: _jpeg(x, (25, 18, 15, 10, 7)[s - 1]),
    "contrast": lambda x, s: F.adjust_contrast(x, (0.75, 0.5, 0.4, 0.3, 0.15)[s - 1]),
    "pixelate": lambda x, s: _pixelate(x, (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]),
}


def write_corrupted_digits(folder: str | Path, digits: DigitsDataModule | None = None, seed: int = 0) -> Path:
    """The test split of ``digits`` (the demo's by default), as the network sees it before normalisation, under each of
    ``DIGIT_CORRUPTIONS`` at severities 1 to 5, in the CIFAR-C format: ``<corruption>.npy`` (uint8, 5 N x H x W x 3, the
    severities stacked) and ``labels.npy``. The same ``seed`` writes the same files (the noise is drawn from it)."""
    digits = digits or DigitsDataModule()
    images, targets = load_digits()
    test = digits.split(targets)[1]
    clean = torch.stack([T.functional.pil_to_tensor(digits.upsample(Image.fromarray(images[i]))) for i in test])
    clean = F.to_dtype(clean, torch.float32, scale=True)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, corrupt in DIGIT_CORRUPTIONS.items():
            blocks = [F.to_dtype(corrupt(clean, s).clamp(0, 1), torch.uint8, scale=True) for s in SEVERITIES]
            np.save(folder / f"{name}.npy", torch.cat(blocks).permute(0, 2, 3, 1).numpy())
    np.save(folder / "labels.npy", np.tile(targets[test], len(SEVERITIES)))
    return folder


class DigitsCDataModule(CorruptedArraysDataModule):
    """The digits demo's test split under five corruptions at five severities (``DIGIT_CORRUPTIONS``), in the CIFAR-C
    format under ``root/digits-c/``, written there where missing (``write_corrupted_digits``, seed 0); normalised as the
    demo's test images. Its mean corruption error averages the corruptions named as the benchmark's (all but
    ``gaussian_blur``, one of the benchmark's extra four)."""

    name = "digits-C"
    folder_name = "digits-c"
    published = tuple(DIGIT_CORRUPTIONS)
    num_classes = DigitsDataModule.num_classes
    classes = DigitsDataModule.classes
    mean, std = DigitsDataModule.mean, DigitsDataModule.std

    def prepare_splits(self) -> None:
        if not (self.folder / "labels.npy").is_file():
            write_corrupted_digits(self.folder)


def corrupt(args: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="bam_lightning.data.digits.corrupt",
        description="Write the digits demo's test split, corrupted, in the CIFAR-C format under ROOT/digits-c/.",
    )
    parser.add_argument("root", type=str, help="the folder DigitsCDataModule's --data.root names")
    parser.add_argument("--seed", type=int, default=0)
    parsed = parser.parse_args(args)
    print(write_corrupted_digits(Path(parsed.root) / DigitsCDataModule.folder_name, seed=parsed.seed))


def main(args: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="bam_lightning.data.digits", description="Write test digits 0, 1, 2, ... as PNGs at the demo's input size."
    )
    parser.add_argument("paths", nargs="+", type=str, help="one PNG per digit, in label order")
    parser.add_argument("--image_size", type=int, default=32)
    parsed = parser.parse_args(args)
    DigitsDataModule(image_size=parsed.image_size).save_test_digits([Path(path) for path in parsed.paths])
    print(" ".join(map(str, parsed.paths)))
