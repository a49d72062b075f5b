"""What the detection datamodules share: box-aware augmentation, list batches, and targets checked once at setup.

Annotations are read, checked and turned into boxes when the datamodule sets up, in the main
process: a broken file stops the run there, named, instead of inside a loader worker mid-epoch.
Loading then only decodes the image and hands the prepared boxes to the transforms.
"""

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from PIL import Image
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import InputError
from .base import SplitLoaders
from .imagenet import MEAN
from .predict import ImageFiles

Recipe = Literal["ssd", "faster_rcnn"]
RECIPES = ("ssd", "faster_rcnn")
SSD_SIZE = 300
# RandomZoomOut paints the uint8 image's new border in the ImageNet mean colour: after the
# backbone's normalisation that is zero, the border adds no signal of its own.
MEAN_COLOUR = tuple(round(255 * m) for m in MEAN)


@dataclass(frozen=True)
class Objects:
    """One image's prepared annotation: ``boxes`` float32 [N, 4] xyxy inside the image, ``labels`` int64 [N] in
    1..K, ``iscrowd`` bool [N] (COCO crowds, VOC "difficult": only ever in evaluation targets)."""

    image_id: int
    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray


class SplitObjects:
    """Turns one split's raw boxes into ``Objects`` and counts the boxes it drops, for one line per split.

    Training targets leave crowd/difficult boxes out (a detector trained on them learns a box
    around a group, or on a barely visible object); evaluation targets keep them flagged, so the
    metrics ignore detections on them rather than count them as false positives. Boxes are
    clipped to the image, and those left with no area are dropped: torchvision's detectors
    refuse a degenerate training box, and no detection can match one.
    """

    def __init__(self, train: bool) -> None:
        self.train = train
        self.boxes = 0
        self.dropped = 0

    def __call__(
        self, image_id: int, boxes: ArrayLike, labels: ArrayLike, iscrowd: ArrayLike, width: float, height: float
    ) -> Objects:
        """``boxes`` xyxy in pixels, one label and crowd flag each, of an image ``width`` x ``height``."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels, dtype=np.int64)
        iscrowd = np.asarray(iscrowd, dtype=bool)
        if self.train:
            boxes, labels, iscrowd = boxes[~iscrowd], labels[~iscrowd], iscrowd[~iscrowd]
        boxes = np.clip(boxes, 0, np.array([width, height, width, height], dtype=np.float32))
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        self.boxes += len(keep)
        self.dropped += int((~keep).sum())
        return Objects(image_id, boxes[keep], labels[keep], iscrowd[keep])

    def report(self, split: str, unlisted: int = 0) -> None:
        """One ``bam:`` line when boxes were dropped or ``unlisted`` annotations (COCO's of an image id the file does not
        list, which have no image to train on) were left out; silence when neither was."""
        left_out = [f"dropped {self.dropped} of {self.boxes} box(es) with no area inside their image"] if self.dropped else []
        if unlisted:
            left_out.append(f"left out {unlisted} annotation(s) of images the file does not list")
        if left_out:
            print(f"bam: {split}: {'; '.join(left_out)}", file=sys.stderr, flush=True)


class DetectionSample:
    """``(PIL image, Objects)`` -> ``(image, target)`` through a transforms.v2 pipeline: a dataset's ``transforms``.

    The boxes become ``tv_tensors.BoundingBoxes`` on the decoded image's own canvas, so every
    geometric transform moves them with the pixels.
    """

    def __init__(self, transform: v2.Transform) -> None:
        self.transform = transform

    def __call__(self, image: Image.Image, objects: Objects) -> tuple[Tensor, dict[str, Any]]:
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor(objects.boxes), format=tv_tensors.BoundingBoxFormat.XYXY, canvas_size=(image.height, image.width)
            ),
            "labels": torch.tensor(objects.labels),
            "image_id": objects.image_id,
            "iscrowd": torch.tensor(objects.iscrowd),
        }
        return self.transform(image, target)


def labels_and_crowd(sample: tuple[Any, dict[str, Any]]) -> tuple[Tensor, Tensor]:
    """SanitizeBoundingBoxes' ``labels_getter``: what it drops from ``boxes`` it drops from both (its default finds
    ``labels`` alone, and would leave ``iscrowd`` one entry per box no longer there)."""
    return sample[1]["labels"], sample[1]["iscrowd"]


def train_transform(recipe: Recipe) -> v2.Compose:
    """The training augmentation of ``recipe``.

    ``ssd``: SSD's photometric distortion, zoom-out, IoU crop and flip, then its fixed 300 x 300
    input (resized here, on uint8 in the loader workers; SSD's own transform then has nothing
    left to resize), then the boxes the crop cut to nothing are dropped. ``faster_rcnn``: a flip
    alone; the detector resizes (shorter side 600) itself.
    """
    if recipe == "ssd":
        augment = [
            v2.RandomPhotometricDistort(),
            v2.RandomZoomOut(fill=MEAN_COLOUR),
            v2.RandomIoUCrop(),
            v2.RandomHorizontalFlip(),
            v2.Resize((SSD_SIZE, SSD_SIZE)),
            v2.SanitizeBoundingBoxes(labels_getter=labels_and_crowd),
        ]
    else:
        augment = [v2.RandomHorizontalFlip()]
    return _to_model(*augment)


def eval_transform() -> v2.Compose:
    """No resize: the detector's own transform resizes and maps its boxes back to the image's coordinates."""
    return _to_model()


def _to_model(*augment: v2.Transform) -> v2.Compose:
    # uint8 through the augmentation (as torchvision's detection references), then float in [0, 1], not
    # normalised: torchvision's detectors normalise inside. Plain tensors out, for pinning and the model.
    return v2.Compose([v2.ToImage(), *augment, v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()])


def collate_lists(batch: list[tuple[Any, ...]]) -> tuple[tuple[Any, ...], ...]:
    """``(images, targets)`` as tuples (``bam predict``'s ``(images, indices, readable)``): images differ in size and
    targets in box count, so nothing is stacked."""
    return tuple(zip(*batch, strict=True))  # type: ignore[return-value]


def first_missing(folder: Path, names: Iterable[str]) -> tuple[int, str | None]:
    """How many of ``names`` (paths relative to ``folder``) are not files, and the first of them.

    One directory listing instead of a ``stat`` per image: checking 118 k COCO images costs a
    fraction of a second, and a wrong folder is named at setup instead of at its first batch.
    """
    listed = set(os.listdir(folder)) if folder.is_dir() else set()
    missing = [name for name in names if name not in listed and not (folder / name).is_file()]
    return len(missing), (missing[0] if missing else None)


class DetectionDataModule(SplitLoaders, ABC):
    """Base of the detection datamodules: the image datamodules' loaders (exact resume, any number of workers), list
    batches, and one of two training recipes.

    A batch is ``(images, targets)``: a tuple of float C x H x W images in [0, 1] and a tuple of
    dicts with ``boxes`` (float32 [N, 4], absolute xyxy), ``labels`` (int64 [N], 1..K; 0 is
    torchvision's background), ``image_id`` and ``iscrowd`` (bool [N]). Subclasses fill
    ``train_set``, ``val_set`` and ``test_set`` in ``setup_splits`` with datasets whose ``transforms``
    is ``self.train_sample`` or ``self.eval_sample``.

    ``bam predict`` detects objects on every image under ``predict_dir`` or, without one, on the
    evaluation split's images (``eval_images``), each as evaluation loads it (not resized: the
    detector resizes, and maps its boxes back to the image's own pixels). Of the split it reads only
    the list of its images (COCO: the val file, whose categories also name the classes; VOC: the
    image set's list), not its boxes.

    Args:
        recipe: training augmentation, ``ssd`` (photometric distortion, zoom-out, IoU crop, flip,
            300 x 300) or ``faster_rcnn`` (flip; the detector resizes). Evaluation never resizes.
    """

    collate_fn = staticmethod(collate_lists)
    # How the dataset's benchmark measures detection; the CLI hands it to ObjectDetector(metric=...):
    # "coco" (COCO's mAPs) or "voc07" (PASCAL VOC 2007's 11-point mAP@.5, difficult objects left out).
    metric = "coco"

    def __init__(self, *, recipe: Recipe, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if recipe not in RECIPES:
            raise InputError(f"--data.recipe must be ssd or faster_rcnn, got {recipe!r}")
        self.recipe = recipe
        self.train_sample = DetectionSample(train_transform(recipe))
        self.eval_sample = DetectionSample(eval_transform())

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Object classes K, without the background; readable before ``setup`` (the CLI sizes the detector with it)."""

    @property
    @abstractmethod
    def classes(self) -> list[str]:
        """The K class names: ``classes[i]`` is label ``i + 1``."""

    def setup(self, stage: str | None = None) -> None:
        if stage != "predict":
            self.setup_splits(stage)
        elif self.predict_dir is not None:  # bam checks the folder before the run (cli.runs.prepare_predictions)
            self.predict_set = ImageFiles(self.predict_dir, self.eval_sample.transform, self.bad_images)
        else:
            self.predict_set = self.eval_images()

    @abstractmethod
    def setup_splits(self, stage: str | None) -> None:
        """Fill ``train_set`` (when fitting), ``val_set`` and ``test_set``: ``setup`` for every stage but predict."""

    @abstractmethod
    def eval_images(self) -> ImageFiles:
        """The evaluation split's image files, in its order, as ``bam predict`` reads them without ``predict_dir``."""
