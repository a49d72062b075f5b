"""PASCAL VOC detection (VOCdevkit layout) through torchvision's VOCDetection: the SSD papers' 07+12 protocol by default."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from jsonargparse.typing import PositiveInt
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset
from torchvision.datasets import VOCDetection

from ..errors import DatasetNotFoundError, InputError, one_line
from .detection import DetectionDataModule, DetectionSample, Objects, Recipe, SplitObjects, first_missing
from .predict import ImageFiles
from .unreadable import NextReadable

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
YEARS = tuple(str(year) for year in range(2007, 2013))
CORNERS = ("xmin", "ymin", "xmax", "ymax")
FIX = "pass --data.root DIR (the folder that holds VOCdevkit/), or --data.download true"


def parse_set(name: str) -> tuple[str, str]:
    """``"2007-trainval"`` -> ``("2007", "trainval")``, or one line naming what VOCDetection can read."""
    year, _, image_set = name.partition("-")
    if year not in YEARS or image_set not in ("train", "val", "trainval", *(("test",) if year == "2007" else ())):
        raise InputError(
            f"{name!r} is not a VOC image set: write YEAR-SET, YEAR 2007 to 2012 and SET train, val or trainval"
            " (test only for 2007, the one year whose test labels are public), e.g. 2007-trainval"
        )
    return year, image_set


class VOCImages(VOCDetection):
    """VOCDetection whose targets were parsed and checked at setup: ``objects[i]`` is image i's, so loading reads
    no XML. VOCDetection lists the files (and downloads them); ``readable`` decodes them, and fails or skips one that
    does not decode (``bad_images``)."""

    objects: list[Objects]
    readable: NextReadable

    def __getitem__(self, index: int) -> tuple[Tensor, dict]:
        index, image = self.readable(index)
        return self.transforms(image, self.objects[index])


class VOCDataModule(DetectionDataModule):
    """PASCAL VOC under ``root/VOCdevkit/VOC{year}/`` (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/``).

    Trains on the union of ``train_sets`` (by default 07+12: VOC2007 and VOC2012 trainval, 16,551
    images); validation, test and predict use ``test_set`` (VOC2007 test, 4,952 images), the
    protocol of the SSD and BAM papers. Labels are ``classes`` in their order, 1..K: by default
    VOC's 20 in the standard order; a VOCdevkit tree of one's own labels gives its own names
    (``--data.classes [cat, dog]``), and the detector's head follows their count.

    Boxes: VOC numbers pixels from 1 and a box includes both corner pixels, so ``(xmin, ymin,
    xmax, ymax)`` becomes ``(xmin - 1, ymin - 1, xmax, ymax)`` in the detectors' continuous
    coordinates (as Detectron2 reads VOC): ``xmin=1, xmax=W`` covers the whole image width.
    "difficult" objects are left out of training targets (SSD's recipe) and kept in evaluation
    targets with ``iscrowd`` true: the VOC07 metric and torchmetrics' COCO-style mAP ignore them.

    A malformed set name or an empty or repeated ``classes`` is refused when the datamodule is
    created. Setup reads every XML of its splits and refuses bad input in one line naming the file
    (and the object): a missing devkit, set list, annotation or image (``DatasetNotFoundError``), an
    XML that does not parse or lacks a field, an object whose name is not among ``classes`` (dropped,
    it would train as background), reversed corners. Boxes with no area once clipped are left out,
    counted in one ``bam:`` line per split. An image that does not decode is met when a batch reads
    it (``bad_images``).

    Args:
        root: folder that holds ``VOCdevkit/``.
        train_sets: training image sets, ``YEAR-SET`` (SET train, val or trainval; 2007 also test).
        test_set: the image set of validation, test and predict.
        classes: the object names the XML files use, label 1 first; VOC's 20 by default.
        recipe: training augmentation, ``ssd`` (300 x 300) or ``faster_rcnn`` (see ``DetectionDataModule``).
        download: fetch the sets' archives with torchvision's downloader in ``prepare_data``
            where their files are missing (VOC2007 trainval 439 MB, test 431 MB, VOC2012 trainval 1.9 GB).
    """

    metric = "voc07"

    def __init__(
        self,
        *,
        root: str = "data",
        train_sets: Sequence[str] = ("2007-trainval", "2012-trainval"),
        test_set: str = "2007-test",
        classes: Sequence[str] = VOC_CLASSES,
        recipe: Recipe = "ssd",
        download: bool = False,
        batch_size: PositiveInt = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(recipe=recipe, batch_size=batch_size, **kwargs)
        self.root = root
        self._classes = check_classes(classes)
        if not train_sets:
            raise InputError("--data.train_sets is empty: name at least one VOC image set, e.g. [2007-trainval]")
        # Not self.test_set: that name holds the test split's dataset after setup, as in every datamodule.
        self.image_sets = {"train": list(train_sets), "test": [test_set]}
        for name in [*train_sets, test_set]:
            parse_set(name)
        self.download = download

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def num_classes(self) -> int:
        return len(self._classes)

    def _set_file(self, name: str) -> Path:
        year, image_set = parse_set(name)
        return Path(self.root) / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / f"{image_set}.txt"

    def prepare_data(self) -> None:
        """Download only the sets whose list is missing: present files are never fetched or extracted again."""
        if not self.download:
            return
        for name in dict.fromkeys(self.image_sets["train"] + self.image_sets["test"]):
            if self._set_file(name).is_file():
                continue
            try:
                VOCDetection(self.root, *parse_set(name), download=True)
            except (OSError, RuntimeError) as error:  # network, disk, or a corrupt archive
                raise DatasetNotFoundError(
                    f"could not download PASCAL VOC {name} to {self.root} ({one_line(error)}): download it elsewhere"
                    " and pass --data.root DIR (the folder that holds VOCdevkit/), with --data.download false"
                ) from error

    def setup_splits(self, stage: str | None) -> None:
        if stage in ("fit", None):
            self.train_set = self._split("train")
        self.val_set = self.test_set = self._split("test")

    def eval_images(self) -> ImageFiles:
        files = [Path(path) for path in self._images(self.image_sets["test"][0], self.eval_sample).images]
        return ImageFiles(files[0].parent, self.eval_sample.transform, self.bad_images, files)

    def _split(self, split: str) -> Dataset:
        train, names = split == "train", self.image_sets[split]
        prepare = SplitObjects(train)
        parts: list[VOCImages] = []
        for name in names:
            part = self._images(name, self.train_sample if train else self.eval_sample)
            first_id = sum(map(len, parts))  # image ids run on across the sets of a split
            part.objects = [
                read_objects(Path(xml), first_id + i, prepare, self._classes) for i, xml in enumerate(part.annotations)
            ]
            parts.append(part)
        prepare.report(f"VOC {'+'.join(names)}")
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def _images(self, name: str, transforms: DetectionSample) -> VOCImages:
        try:
            images = VOCImages(self.root, *parse_set(name), transforms=transforms)
        except (RuntimeError, FileNotFoundError):  # no VOCdevkit/VOC{year}; no ImageSets/Main/{set}.txt
            raise DatasetNotFoundError(f"PASCAL VOC {name} not found: {self._set_file(name)} is missing; {FIX}") from None
        if not images.images:
            raise InputError(f"{self._set_file(name)} lists no images: name another set or fix the file")
        folder = Path(images.images[0]).parent
        missing, first = first_missing(folder, (Path(path).name for path in images.images))
        if missing:
            raise DatasetNotFoundError(
                f"{missing} of the {len(images)} images of PASCAL VOC {name} are not in {folder} (the first {first}); {FIX}"
            )
        images.readable = NextReadable(images.images, folder, self.bad_images, " to go on without it")
        return images


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """``classes`` as labels 1..K, or one line: none at all, or a name given twice."""
    names = tuple(classes)
    if not names:
        raise InputError("--data.classes is empty: list the object names your XML files use, e.g. [cat, dog]")
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise InputError(f"--data.classes names {repeated!r} more than once: list each object name once")
    return names


def read_objects(xml: Path, image_id: int, prepare: SplitObjects, classes: Sequence[str]) -> Objects:
    """One image's ``Objects`` from its VOC XML (through VOCDetection's parser), labels by ``classes``, or one line naming
    the file."""
    try:
        root = ElementTree.parse(xml).getroot()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"PASCAL VOC annotation {xml} not found (its image set lists it); {FIX}") from None
    except ElementTree.ParseError as error:
        raise InputError(f"{xml} is not a readable VOC annotation (XML: {one_line(error)}): repair or replace it") from None
    annotation = VOCDetection.parse_voc_xml(root).get("annotation")
    if not isinstance(annotation, dict):
        raise InputError(f"{xml} is not a VOC annotation (its root is <{root.tag}>, not <annotation>): repair or replace it")
    width, height = (_number(xml, annotation, "size", side) for side in ("width", "height"))
    boxes, labels, difficult = [], [], []
    for i, obj in enumerate(annotation["object"], start=1):
        name = obj.get("name") if isinstance(obj, dict) else None
        if name not in classes:
            what = "has no <name>" if name is None else f"is a {name!r}, not one of the {len(classes)} classes"
            raise InputError(
                f"{xml}: object {i} {what} ({', '.join(classes)}): fix its <name>, or pass --data.classes [...]"
                " listing every object name of your labels"
            )
        xmin, ymin, xmax, ymax = (_number(xml, obj, "bndbox", corner, f"object {i}") for corner in CORNERS)
        if xmax < xmin or ymax < ymin:
            raise InputError(
                f"{xml}: object {i} ({name}) has its corners reversed (xmin {xmin:g}, xmax {xmax:g}, ymin {ymin:g},"
                f" ymax {ymax:g}): a broken annotation; fix or delete it"
            )
        flag = obj.get("difficult", "0")
        if flag not in ("0", "1"):
            raise InputError(f"{xml}: object {i} has <difficult>{flag}</difficult>; it must be 0 or 1")
        boxes.append((xmin - 1, ymin - 1, xmax, ymax))
        labels.append(classes.index(name) + 1)
        difficult.append(flag == "1")
    return prepare(image_id, boxes, labels, difficult, width, height)


def _number(xml: Path, node: dict, parent: str, key: str, where: str = "") -> float:
    value = node.get(parent)
    value = value.get(key) if isinstance(value, dict) else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        place = f"{where}'s " if where else ""
        raise InputError(
            f"{xml}: {place}<{parent}><{key}> is missing or not a number ({value!r}): repair or replace the file"
        ) from None
