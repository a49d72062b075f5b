"""scikit-learn's handwritten digits, upsampled: a real dataset that trains offline in minutes on a CPU.

The 1,797 images (8 x 8, grey, 10 classes) ship inside the scikit-learn wheel, so nothing is
downloaded. They are upsampled to the 32-pixel input the CIFAR backbones are registered for
and their grey copied to three channels, so every backbone and BAM placement takes them as
they take CIFAR. ``main`` writes test digits as PNGs, the input ``make demo`` gives ``bam attention``::

    python -c "from bam_lightning.data.digits import main; main()" digit0.png digit1.png digit2.png

(not ``python -m``: the package imports this module first, and runpy warns about that).
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jsonargparse import ArgumentParser
from jsonargparse.typing import ClosedUnitInterval
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T

from ..errors import InputError
from . import augment
from .augment import AutoAugment
from .base import ImageDataModule, normalized


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


def main(args: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="bam_lightning.data.digits", description="Write test digits 0, 1, 2, ... as PNGs at the demo's input size."
    )
    parser.add_argument("paths", nargs="+", type=str, help="one PNG per digit, in label order")
    parser.add_argument("--image_size", type=int, default=32)
    parsed = parser.parse_args(args)
    DigitsDataModule(image_size=parsed.image_size).save_test_digits([Path(path) for path in parsed.paths])
    print(" ".join(map(str, parsed.paths)))
