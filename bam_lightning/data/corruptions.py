"""Corruption robustness test data (Hendrycks & Dietterich, ICLR 2019): the benchmark's facts, its summary arithmetic,
and the datamodules of the published CIFAR-10-C / CIFAR-100-C files and of any copy written in their format.

The published format: a folder with one ``<corruption>.npy`` per corruption (uint8, N x 32 x 32 x 3, severities 1 to 5
stacked in five equal blocks of N / 5 images, 10,000 each in the published files) and ``labels.npy`` (N labels, the
test labels repeated in every block). Every test batch carries, beside images and labels, the index of its images'
group, one (corruption, severity) pair of the datamodule's ``corruption_groups``: ``ImageClassifier`` counts errors per
group from it and logs ``test/corruption/...`` only, never the clean ``test/err1`` of the same run folder.
"""

import statistics
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.utils import download_and_extract_archive

from ..errors import DatasetNotFoundError, InputError, nearest, one_line
from .base import ImageDataModule, normalized
from .cifar import CIFAR10DataModule, CIFAR100DataModule

# The 15 corruptions the benchmark's mean corruption error averages, then the 4 extra ones it publishes apart.
BENCHMARK = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
Group = tuple[str, int]  # a corruption at a severity


@dataclass(frozen=True)
class Reference:
    """A reference network's top-1 errors in percent, by corruption and severity, and on the clean images: what the
    mean corruption error (mCE) and the relative mCE are normalised by."""

    errors: Mapping[str, tuple[float, float, float, float, float]]
    clean_err1: float


# AlexNet's ImageNet-C top-1 errors (%) per severity 1..5: the table "use these values to normalize raw corruption error
# to calculate mCE" of the hendrycks/robustness README (Hendrycks & Dietterich, ICLR 2019; also the spreadsheet it links
# under "Calculating the mCE"). Clean: AlexNet's top-1 error in the paper's Table 1 (43.5 %).
ALEXNET = Reference(
    errors={
        "gaussian_noise": (69.528, 82.542, 93.554, 98.138, 99.452),
        "shot_noise": (71.224, 85.108, 93.574, 98.182, 99.146),
        "impulse_noise": (78.374, 89.808, 94.870, 98.720, 99.548),
        "defocus_blur": (65.624, 73.202, 85.036, 91.364, 94.714),
        "glass_blur": (64.308, 75.054, 88.806, 91.622, 93.344),
        "motion_blur": (58.430, 70.048, 82.108, 89.750, 92.638),
        "zoom_blur": (70.008, 76.992, 80.784, 84.198, 87.198),
        "snow": (71.726, 88.392, 86.468, 91.870, 94.952),
        "frost": (61.390, 79.734, 88.790, 89.942, 93.430),
        "fog": (67.474, 76.050, 84.378, 87.260, 94.500),
        "brightness": (45.140, 48.502, 54.048, 62.166, 72.440),
        "contrast": (64.548, 76.150, 88.874, 97.760, 99.270),
        "elastic_transform": (52.596, 70.116, 55.686, 64.076, 80.554),
        "pixelate": (52.218, 54.620, 73.728, 87.092, 91.262),
        "jpeg_compression": (51.002, 54.718, 57.294, 65.458, 74.778),
        "speckle_noise": (66.192, 74.440, 90.246, 94.548, 97.268),
        "gaussian_blur": (54.732, 70.444, 82.574, 89.864, 95.940),
        "spatter": (47.196, 62.194, 75.052, 84.132, 90.182),
        "saturate": (59.342, 65.514, 51.174, 70.834, 82.260),
    },
    clean_err1=43.5,
)


def corruption_summary(
    errors: Mapping[Group, float], reference: Reference | None = None, clean_err1: float | None = None
) -> dict[str, float]:
    """Every error of a corruption test under the names it is logged by (below ``test/corruption/``).

    ``<name>/s<k>/err1`` per corruption and severity, ``<name>/err1`` their mean over the severities tested, and
    ``mean_err1``: the mean of those over the 15 benchmark corruptions present (the four extra ones are reported, not
    averaged); for data with none of them (the digits demo's corruptions) the mean over every corruption present.
    With a ``reference`` (ImageNet-C: AlexNet), ``mce``: the mean over the benchmark corruptions of each one's errors
    summed over the severities tested, divided by the reference's summed over the same, in percent; and with the clean
    error too, ``relative_mce``: the same of the errors' rise above the clean error, over the reference's rise.
    """
    corruptions = list(dict.fromkeys(name for name, _ in errors))
    by_corruption = {name: {s: e for (n, s), e in errors.items() if n == name} for name in corruptions}
    out = {f"{name}/s{s}/err1": e for (name, s), e in errors.items()}
    out |= {f"{name}/err1": statistics.fmean(found.values()) for name, found in by_corruption.items()}
    averaged = [name for name in corruptions if name in BENCHMARK] or corruptions
    out["mean_err1"] = statistics.fmean(out[f"{name}/err1"] for name in averaged)
    scored = [name for name in corruptions if reference is not None and name in BENCHMARK]
    if scored:

        def normalised(name: str, clean: float, reference_clean: float) -> float:
            found = by_corruption[name]
            ours = sum(e - clean for e in found.values())
            theirs = sum(reference.errors[name][s - 1] - reference_clean for s in found)
            return 100 * ours / theirs

        out["mce"] = statistics.fmean(normalised(name, 0.0, 0.0) for name in scored)
        if clean_err1 is not None:
            out["relative_mce"] = statistics.fmean(normalised(name, clean_err1, reference.clean_err1) for name in scored)
    return out


def corruption_table(errors: Mapping[Group, float]) -> str:
    """The top-1 errors (%) as a corruption x severity table with each corruption's mean: what ``bam test`` prints."""
    severities = sorted({s for _, s in errors})
    corruptions = list(dict.fromkeys(name for name, _ in errors))
    width = max(len("corruption"), *map(len, corruptions))
    lines = [f"{'corruption':<{width}}" + "".join(f"{f's{s}':>8}" for s in severities) + f"{'mean':>8}"]
    for name in corruptions:
        row = [errors.get((name, s)) for s in severities]
        cells = "".join(f"{e:>8.2f}" if e is not None else f"{'':>8}" for e in row)
        lines.append(f"{name:<{width}}{cells}{statistics.fmean(e for e in row if e is not None):>8.2f}")
    return "\n".join(lines)


class CorruptedArrays(Dataset):
    """The images of one folder in the published format, group after group: ``(image, label, group index)``.

    Arrays are memory-mapped (the published CIFAR-100-C is 19 files of 150 MB): only the rows read are loaded.
    Each file is checked before any is read: dtype uint8, shape N x H x W x 3 with N divisible by 5, N the labels' count.
    """

    def __init__(
        self, folder: Path, corruptions: Sequence[str], severities: Sequence[int], size: int, transform: Callable
    ) -> None:
        self.labels = np.load(folder / "labels.npy", mmap_mode="r")
        self.arrays = {name: self._checked(folder / f"{name}.npy", size) for name in corruptions}
        self.groups: list[Group] = [(name, s) for name in corruptions for s in severities]
        self.block = len(self.labels) // len(SEVERITIES)
        self.transform = transform

    def _checked(self, path: Path, size: int) -> np.ndarray:
        array = np.load(path, mmap_mode="r")
        n = len(self.labels)
        expected = f"uint8 images of {n} x {size} x {size} x 3 (labels.npy holds {n} labels)"
        if array.dtype != np.uint8 or array.shape[1:] != (size, size, 3):
            raise InputError(f"{path} holds {array.dtype} of shape {array.shape}, not {expected}: write it in that format")
        if len(array) != n or n % len(SEVERITIES):
            raise InputError(
                f"{path} holds {len(array)} images and labels.npy {n} labels: both must be the same count, divisible by 5"
                " (severities 1 to 5 in five equal blocks)"
            )
        return array

    def __len__(self) -> int:
        return len(self.groups) * self.block

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        group, position = divmod(index, self.block)
        name, severity = self.groups[group]
        row = (severity - 1) * self.block + position
        return self.transform(Image.fromarray(np.asarray(self.arrays[name][row]))), int(self.labels[row]), group


class CorruptionDataModule(ImageDataModule):
    """Corruption test data: which corruptions and severities to test, and the group of every test image.

    Test only: ``bam fit`` or ``validate`` with it is refused. Its test batches are ``(images, labels, groups)``, each
    group an index into ``corruption_groups``. Subclasses fill ``test_set`` in ``setup_test``.

    Args:
        corruptions: the corruptions to test; null: all those the published data holds.
        severities: the severities to test, of 1 to 5; null: all five.
    """

    name: str
    published: tuple[str, ...] = BENCHMARK + EXTRA  # the corruptions the published data holds, in its order
    reference: Reference | None = None  # what the mCE is normalised by, where the benchmark has one
    clean_err1: float | None = None  # the clean test error the relative mCE needs; None: read from the run's logs

    def __init__(self, *, corruptions: list[str] | None = None, severities: list[int] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        outside = [s for s in severities or () if s not in SEVERITIES]
        if outside:  # jsonargparse's own line for a list of Literal names the datamodule, not the option
            raise InputError(f"--data.severities {severities}: {outside[0]} is no severity; they are 1 to 5")
        self.corruptions = list(corruptions or self.published)
        self.severities = sorted(set(severities or SEVERITIES))

    @property
    def corruption_groups(self) -> list[Group]:
        """The (corruption, severity) of each group index the test batches carry."""
        return [(name, s) for name in self.corruptions for s in self.severities]

    def setup_splits(self, stage: str | None) -> None:
        if stage != "test":
            raise InputError(f"{self.name} holds test images only: run bam test with it, not bam {stage}")
        self.setup_test()

    @abstractmethod
    def setup_test(self) -> None:
        """Check the data and fill ``test_set``."""

    def missing(self, name: str, found: Sequence[str], what: str) -> InputError:
        """A corruption to test that the data lacks, with the nearest it has."""
        return InputError(
            f"{self.name} has no {what}{nearest(name, found)}: it holds {', '.join(found) or 'no corruption'};"
            " pass --data.corruptions with those to test"
        )


class CorruptedArraysDataModule(CorruptionDataModule):
    """Test data in the published CIFAR-C format under ``root/<folder_name>/``; subclasses name the data and its
    normalisation (that of the clean test images: the network saw those).

    Args:
        root: folder that holds the data's folder.
    """

    folder_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size = 32

    def __init__(self, *, root: str = "data", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.eval_transform = normalized(mean=self.mean, std=self.std)

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.folder_name

    def setup_test(self) -> None:
        if not (self.folder / "labels.npy").is_file():
            raise DatasetNotFoundError(f"{self.name} not found: no {self.folder}/labels.npy; {self.where()}")
        found = sorted(path.stem for path in self.folder.glob("*.npy") if path.stem != "labels")
        for name in self.corruptions:
            if name not in found:
                raise self.missing(name, found, f"{self.folder}/{name}.npy")
        self.test_set = CorruptedArrays(self.folder, self.corruptions, self.severities, self.image_size, self.eval_transform)

    def where(self) -> str:
        """What to do where the folder is missing."""
        return f"pass --data.root DIR, the folder that holds {self.folder_name}/"


class _CIFARCDataModule(CorruptedArraysDataModule):
    """A published CIFAR-C archive, downloaded from Zenodo and checked against its published MD5 where missing.

    Args:
        download: fetch and unpack the published archive in ``prepare_data`` where ``labels.npy`` is missing.
    """

    url: str
    md5: str

    def __init__(self, *, download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.download = download

    def prepare_splits(self) -> None:
        if not self.download or (self.folder / "labels.npy").is_file():
            return
        try:
            download_and_extract_archive(self.url, self.root, md5=self.md5)
        except (OSError, RuntimeError) as error:  # network, disk, or a corrupt archive
            raise DatasetNotFoundError(
                f"could not download {self.name} to {self.root} ({one_line(error)}): download {self.url} elsewhere,"
                f" unpack it and pass --data.root DIR (the folder that holds {self.folder_name}/) with --data.download false"
            ) from error

    def where(self) -> str:
        return f"pass --data.download true, or {super().where()}"


class CIFAR10CDataModule(_CIFARCDataModule):
    """CIFAR-10-C: the CIFAR-10 test images under 19 corruptions at 5 severities (Zenodo record 2535967)."""

    name = "CIFAR-10-C"
    folder_name = "CIFAR-10-C"
    url = "https://zenodo.org/record/2535967/files/CIFAR-10-C.tar"
    md5 = "56bf5dcef84df0e2308c6dcbcbbd8499"
    num_classes = CIFAR10DataModule.num_classes
    mean, std = CIFAR10DataModule.mean, CIFAR10DataModule.std


class CIFAR100CDataModule(_CIFARCDataModule):
    """CIFAR-100-C: the CIFAR-100 test images under 19 corruptions at 5 severities (Zenodo record 3555552)."""

    name = "CIFAR-100-C"
    folder_name = "CIFAR-100-C"
    url = "https://zenodo.org/record/3555552/files/CIFAR-100-C.tar"
    md5 = "11f0ed0f1191edbf9fa23466ae6021d3"
    num_classes = CIFAR100DataModule.num_classes
    mean, std = CIFAR100DataModule.mean, CIFAR100DataModule.std
