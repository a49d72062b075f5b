"""COCO detection: an instances JSON and its image folder per split, through torchvision's CocoDetection and pycocotools."""

import contextlib
import io
import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from jsonargparse.typing import PositiveInt
from PIL import Image
from pycocotools.coco import COCO
from torch import Tensor
from torchvision.datasets import CocoDetection, VisionDataset

from ..errors import DatasetNotFoundError, InputError, one_line
from .detection import DetectionDataModule, DetectionSample, Objects, Recipe, SplitObjects, first_missing
from .predict import ImageFiles
from .unreadable import BadImages, NextReadable

SPLITS = ("train", "val")
REQUIRED = ("images", "annotations", "categories")


class COCOImages(CocoDetection):
    """CocoDetection over an annotation index parsed and checked at setup, with its targets prepared there.

    CocoDetection's own ``__init__`` would parse the file again (train2017's is 450 MB, after the
    datamodule already read it to check it), so the parsed index is passed in and only
    VisionDataset's part of the set-up runs. Images decode as CocoDetection decodes them (PIL, RGB),
    through ``readable``: a file that does not decode fails or is skipped (``bad_images``).
    """

    def __init__(
        self, images: Path, coco: COCO, objects: dict[int, Objects], transforms: DetectionSample, bad_images: BadImages
    ) -> None:
        VisionDataset.__init__(self, str(images), transforms=transforms)
        self.coco = coco
        self.ids = sorted(coco.imgs)
        self.objects = objects
        paths = [os.path.join(images, coco.imgs[id]["file_name"]) for id in self.ids]
        self.readable = NextReadable(paths, images, bad_images, " to go on without it")

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Any]]:
        index, image = self.readable(index)
        return self.transforms(image, self.objects[self.ids[index]])


class COCOImageFiles(ImageFiles):
    """A COCO file's images for ``bam predict``, in image id order, with what its results file needs: ``image_ids[i]``,
    the id of file ``i``, and ``category_ids[label - 1]``, the file's own id of a label's category."""

    def __init__(
        self,
        folder: Path,
        transform: Callable[[Image.Image], Tensor],
        bad_images: BadImages,
        coco: COCO,
        category_ids: list[int],
    ) -> None:
        self.image_ids = sorted(coco.imgs)
        self.category_ids = category_ids
        super().__init__(folder, transform, bad_images, [folder / coco.imgs[id]["file_name"] for id in self.image_ids])


class COCODataModule(DetectionDataModule):
    """COCO detection in its published layout: ``root/{train_images,val_images}/`` and their instances JSON files.

    The defaults are COCO 2017, whose train/val split is the 2014 trainval35k/minival split of the
    paper; other splits are a matter of the four paths (relative to ``root``, or absolute). The val
    split serves validation, test and predict without ``predict_dir`` (COCO's test labels are not public).

    Targets: category ids (COCO's 1..90 with gaps) become labels 1..K in sorted id order and
    ``classes`` their names; boxes go from COCO's xywh to xyxy, clipped to the image. An image
    without objects is kept (an empty [0, 4] box tensor: it teaches the detector background).
    Crowd boxes (``iscrowd=1``) are left out of training targets and kept in evaluation targets
    with ``iscrowd`` true, which the COCO metric ignores.

    Setup refuses bad input in one line naming the file (and the image and annotation): a
    missing file, folder or listed image (``DatasetNotFoundError``, with the flag that moves it),
    a file that is not a COCO instances file, train and val files with different categories (the
    labels would mean other classes), a box with reversed corners (a file written wrong, e.g. xyxy
    as xywh, not to be trained around). Boxes with no area in their image (COCO 2017 has a few) and
    annotations of unlisted images are left out, counted in one ``bam:`` line per split. An image
    that does not decode is met when a batch reads it (``bad_images``).

    Args:
        root: folder that holds the image folders and the annotation files.
        train_images: folder of the training images, relative to ``root``.
        train_annotations: instances JSON of the training images, relative to ``root``.
        val_images: folder of the evaluation images, relative to ``root``.
        val_annotations: instances JSON of the evaluation images, relative to ``root``; its
            categories are read first, for ``num_classes``.
        recipe: training augmentation, ``faster_rcnn`` (flip) or ``ssd`` (see ``DetectionDataModule``).
    """

    def __init__(
        self,
        *,
        root: str = "data/coco",
        train_images: str = "train2017",
        train_annotations: str = "annotations/instances_train2017.json",
        val_images: str = "val2017",
        val_annotations: str = "annotations/instances_val2017.json",
        recipe: Recipe = "faster_rcnn",
        batch_size: PositiveInt = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(recipe=recipe, batch_size=batch_size, **kwargs)
        self.root = root
        self.images = {"train": Path(root) / train_images, "val": Path(root) / val_images}
        self.annotations = {"train": Path(root) / train_annotations, "val": Path(root) / val_annotations}
        self._indexes: dict[str, COCO] = {}  # each file is parsed once, whichever reads it first

    @cached_property
    def categories(self) -> dict[int, str]:
        """Category id -> name, in sorted id order (the order of the labels), from the val file."""
        cats = self._index("val").cats
        return {id: cats[id]["name"] for id in sorted(cats)}

    @cached_property
    def labels(self) -> dict[int, int]:
        """Category id -> label: 1..K in sorted id order, so COCO's ids with gaps become contiguous labels."""
        return {id: label for label, id in enumerate(self.categories, start=1)}

    @property
    def classes(self) -> list[str]:
        return list(self.categories.values())

    @property
    def num_classes(self) -> int:
        """Read before ``setup`` (the CLI sizes the detector with it): parses the val annotations, opens no image."""
        return len(self.categories)

    def setup_splits(self, stage: str | None) -> None:
        # The val file first: the labels are numbered from its categories. The training file
        # (450 MB for train2017) is only read when training.
        self.val_set = self.test_set = self._split("val")
        if stage in ("fit", None):
            self.train_set = self._split("train")

    def eval_images(self) -> COCOImageFiles:
        coco = self._listed("val")
        return COCOImageFiles(self.images["val"], self.eval_sample.transform, self.bad_images, coco, list(self.categories))

    def _split(self, split: str) -> COCOImages:
        coco, images, annotations = self._listed(split), self.images[split], self.annotations[split]
        train = split == "train"
        prepare = SplitObjects(train)
        objects = {id: self._objects(coco, id, prepare, annotations) for id in coco.imgs}
        unlisted = sum(ann["image_id"] not in coco.imgs for ann in coco.dataset["annotations"])
        prepare.report(f"COCO {annotations}", unlisted)
        return COCOImages(images, coco, objects, self.train_sample if train else self.eval_sample, self.bad_images)

    def _listed(self, split: str) -> COCO:
        """The split's parsed index, once checked: its categories are the val file's, and every image it lists is in its
        folder."""
        coco, images, annotations = self._index(split), self.images[split], self.annotations[split]
        names = {id: cat["name"] for id, cat in sorted(coco.cats.items())}
        if names != self.categories:
            first = min(set(names.items()) ^ set(self.categories.items()))[0]
            raise InputError(
                f"{annotations} and {self.annotations['val']} list different categories (id {first} differs):"
                " both must list the same, the labels are numbered from them"
            )
        if not images.is_dir():
            raise DatasetNotFoundError(
                f"COCO images not found: {images} is not a folder; pass --data.root DIR or --data.{split}_images DIR"
            )
        missing, first = first_missing(images, (image["file_name"] for image in coco.imgs.values()))
        if missing:
            raise DatasetNotFoundError(
                f"{missing} of the {len(coco.imgs)} images {annotations} lists are not in {images} (the first {first}):"
                f" pass --data.{split}_images DIR, the folder that holds them"
            )
        return coco

    def _objects(self, coco: COCO, image_id: int, prepare: SplitObjects, path: Path) -> Objects:
        image, anns = coco.imgs[image_id], coco.imgToAnns.get(image_id, [])
        try:
            xywh = np.array([ann["bbox"] for ann in anns], dtype=np.float32).reshape(-1, 4)
            width, height = float(image["width"]), float(image["height"])
            categories = [ann["category_id"] for ann in anns]
            iscrowd = [bool(ann.get("iscrowd", 0)) for ann in anns]
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                f"{path} is not a COCO instances file: image id {image_id} or its annotations miss a field or hold"
                f" no number ({type(error).__name__}: {one_line(error)}); pass a COCO instances file"
            ) from None
        unknown = [(ann["id"], ann["category_id"]) for ann in anns if ann["category_id"] not in self.labels]
        if unknown:
            raise InputError(f"{path}: annotation {unknown[0][0]} has category {unknown[0][1]}, which the file does not list")
        reversed_ = np.flatnonzero((xywh[:, 2:] < 0).any(axis=1))
        if len(reversed_):
            ann = anns[reversed_[0]]
            raise InputError(
                f"{path}: annotation {ann['id']} of image {image['file_name']} has a negative width or height"
                f" (bbox {ann['bbox']}, COCO boxes are [x, y, width, height]): a broken annotation; fix or delete it"
            )
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return prepare(image_id, xyxy, [self.labels[c] for c in categories], iscrowd, width, height)

    def _index(self, split: str) -> COCO:
        if split not in self._indexes:
            self._indexes[split] = read_index(self.annotations[split], split)
        return self._indexes[split]


def read_index(path: Path, split: str) -> COCO:
    """pycocotools' index of an instances file, or one line saying why the file is not one."""
    fix = f"pass --data.{split}_annotations FILE, a COCO instances JSON"
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise DatasetNotFoundError(
            f"COCO annotations not found: {path} is not a file; pass --data.root DIR or --data.{split}_annotations FILE"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not JSON ({one_line(error)}): {fix}") from None
    missing = [key for key in REQUIRED if key not in data] if isinstance(data, dict) else list(REQUIRED)
    if missing:
        raise InputError(f"{path} is not a COCO instances file (it has no {', '.join(map(repr, missing))}): {fix}")
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints its progress
            coco.createIndex()
        names = [cat["name"] for cat in coco.cats.values()]
    except (KeyError, TypeError) as error:
        raise InputError(
            f"{path} is not a COCO instances file (an entry has no {one_line(error)} or is not an object): {fix}"
        ) from None
    if not names or not coco.imgs:
        raise InputError(f"{path} lists no {'categories' if not names else 'images'}: {fix}")
    if not all(isinstance(image.get("file_name"), str) for image in coco.imgs.values()):
        raise InputError(f"{path} is not a COCO instances file (an image has no 'file_name'): {fix}")
    return coco
