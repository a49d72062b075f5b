"""Detection data made of real images, written as COCO or PASCAL VOC: a detector to train offline on a CPU in minutes.

scikit-learn's handwritten digits (the 8 x 8 scans in its wheel, see ``digits.py``) are pasted
at random places and sizes onto textured, noisy canvases, 1 to 4 per canvas, so every box is known
to the pixel. Train and val canvases draw on disjoint sets of source digits: val measures how
well the detector finds handwriting it has not seen, not how well it remembers a scan. The files
are COCO's and VOC's own layouts, so the detection datamodules and the evaluation read them as
they read the real datasets::

    python -c "from bam_lightning.data.digit_canvases import main; main()" --format coco --out data/digit_canvases

(not ``python -m``: the package imports this module's package first, and runpy warns about that).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

import numpy as np
from jsonargparse import ArgumentParser
from PIL import Image

from ..errors import InputError
from .digits import load_digits

DIGITS = tuple(range(10))
GAP = 4  # pixels between the squares digits are pasted in: no digit's faint edge reaches another's box
VAL_SHARE = 0.2  # of each class's source digits, for val canvases only
JPEG_QUALITY = 90


@dataclass
class Canvas:
    """One image and its objects; boxes are ``(x0, y0, x1, y1)``, the first and last ink column and row (0-based)."""

    image: np.ndarray  # H x W x 3 uint8
    boxes: np.ndarray  # N x 4 int
    digits: np.ndarray  # N int: the digit each box holds
    areas: np.ndarray  # N int: ink pixels per box, COCO's "area" (a segment's, not its box's)


def source_split(labels: np.ndarray, classes: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the source digits for train and for val canvases: disjoint, each class split 80/20."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for digit in classes:
        members = rng.permutation(np.flatnonzero(labels == digit))
        cut = round(len(members) * VAL_SHARE)
        val.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _upsampled(rng: np.random.Generator, cells: int, size: int, low: float, high: float) -> np.ndarray:
    """size x size x 3 of uniform values on a cells x cells grid, bilinearly smoothed: a texture of blobs."""
    grid = rng.uniform(low, high, (3, cells, cells)).astype(np.float32)
    return np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BILINEAR)) for c in grid], -1)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark, coloured, uneven: broad blobs, finer mottling and sensor-like noise, so "not dark" is not "digit"."""
    texture = _upsampled(rng, 4, size, 15, 70) + _upsampled(rng, 16, size, -10, 10)
    return texture + rng.normal(0, 3, (size, size, 3))


def ink(digit: np.ndarray, side: int) -> np.ndarray:
    """side x side share of ink in [0, 1]: the scan upsampled bilinearly, its soft rim steepened.

    Bilinear upsampling blurs each stroke over a source pixel (side / 8 canvas pixels); mapping the
    scan's levels 0.25..0.75 to 0..1 makes the rim at most two canvas pixels wide, so the tight
    box (pixels at least half ink) leaves only a faint rim outside it.
    """
    level = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    return np.clip((level - 0.25) * 2, 0, 1)


def _place(rng: np.random.Generator, size: int, squares: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """A free (x, y, side) square, GAP pixels clear of the others; None when 20 tries find none."""
    for _ in range(20):
        side = int(rng.integers(size // 8, size * 3 // 8 + 1))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
        if all(x + side + GAP <= u or u + s + GAP <= x or y + side + GAP <= v or v + s + GAP <= y for u, v, s in squares):
            return x, y, side
    return None


def canvas(rng: np.random.Generator, size: int, images: np.ndarray, labels: np.ndarray, pool: np.ndarray) -> Canvas:
    """1-4 digits from ``pool`` (indices into ``images``), each in its own colour, on a fresh background."""
    image = background(rng, size)
    squares, boxes, digits, areas = [], [], [], []
    for _ in range(rng.integers(1, 5)):
        square = _place(rng, size, squares)
        if square is None:
            continue
        squares.append(square)
        x, y, side = square
        source = rng.choice(pool)
        alpha = ink(images[source], side)[..., None]
        colour = rng.uniform(200, 255, 3)
        image[y : y + side, x : x + side] = image[y : y + side, x : x + side] * (1 - alpha) + colour * alpha
        rows, cols = np.nonzero(alpha[..., 0] >= 0.5)
        boxes.append((x + cols.min(), y + rows.min(), x + cols.max(), y + rows.max()))
        digits.append(labels[source])
        areas.append(len(rows))
    return Canvas(
        np.clip(image, 0, 255).round().astype(np.uint8),
        np.array(boxes, dtype=np.int64).reshape(-1, 4),
        np.array(digits, dtype=np.int64),
        np.array(areas, dtype=np.int64),
    )


def canvases(n_train: int, n_val: int, size: int, seed: int, classes: Sequence[int]) -> tuple[list[Canvas], list[Canvas]]:
    """Train and val canvases, the same for the same arguments whichever format they are written in."""
    if n_train < 1 or n_val < 1:
        raise InputError(f"--train and --val must be at least 1, got {n_train} and {n_val}")
    if size < 32:
        raise InputError(f"--size must be at least 32 pixels (digits are pasted 1/8 to 3/8 of it wide), got {size}")
    if not classes or len(set(classes)) != len(classes) or not set(classes) <= set(DIGITS):
        raise InputError(f"--classes must be distinct digits 0-9, at least one, got {list(classes)}")
    images, labels = load_digits()
    train_pool, val_pool = source_split(labels, sorted(classes), seed)
    rng = np.random.default_rng(seed)
    return (
        [canvas(rng, size, images, labels, train_pool) for _ in range(n_train)],
        [canvas(rng, size, images, labels, val_pool) for _ in range(n_val)],
    )


def class_name(digit: int) -> str:
    return f"digit{digit}"


def write_coco(
    root: str | Path, n_train: int = 512, n_val: int = 128, size: int = 128, seed: int = 0, classes: Sequence[int] = DIGITS
) -> Path:
    """``root/annotations/instances_{train,val}.json`` and ``root/{train,val}/*.jpg``; returns ``root``.

    As in COCO, category ids skip numbers (1, 3, 5, ... for the sorted ``classes``), image and
    annotation ids are unique across both splits, boxes are ``[x, y, width, height]`` in continuous
    pixels (a box over columns 3..7 is x 3, width 5) and ``area`` counts the object's own pixels.
    Boxes only: there is no ``segmentation``.
    """
    splits = canvases(n_train, n_val, size, seed, classes)
    category = {digit: 2 * k + 1 for k, digit in enumerate(sorted(classes))}
    categories = [{"id": id, "name": class_name(digit), "supercategory": "digit"} for digit, id in category.items()]
    image_id, annotation_id = 0, 0
    for split, items in zip(("train", "val"), splits, strict=True):
        folder = Path(root) / split
        folder.mkdir(parents=True, exist_ok=True)
        data: dict = {"info": {"description": "scikit-learn digits on canvases (bam_lightning.data.digit_canvases)"}}
        data |= {"licenses": [], "images": [], "annotations": [], "categories": categories}
        for item in items:
            image_id += 1
            file_name = f"{image_id:012d}.jpg"
            Image.fromarray(item.image).save(folder / file_name, quality=JPEG_QUALITY)
            data["images"].append({"id": image_id, "file_name": file_name, "width": size, "height": size})
            for (x0, y0, x1, y1), digit, area in zip(item.boxes.tolist(), item.digits.tolist(), item.areas.tolist(), strict=True):
                annotation_id += 1
                data["annotations"].append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": category[digit],
                        "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
                        "area": float(area),
                        "iscrowd": 0,
                    }
                )
        path = Path(root) / "annotations" / f"instances_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return Path(root)


def _voc_xml(name: str, item: Canvas) -> ElementTree.ElementTree:
    """The annotation as the VOC2007 devkit lays it out, corners in its 1-based inclusive pixels."""
    root = ElementTree.Element("annotation")

    def add(parent: ElementTree.Element, tag: str, text: object = None) -> ElementTree.Element:
        child = ElementTree.SubElement(parent, tag)
        if text is not None:
            child.text = str(text)
        return child

    add(root, "folder", "VOC2007")
    add(root, "filename", f"{name}.jpg")
    add(add(root, "source"), "database", "scikit-learn digits on canvases")
    size = add(root, "size")
    for tag, value in zip(("width", "height", "depth"), (item.image.shape[1], item.image.shape[0], 3), strict=True):
        add(size, tag, value)
    add(root, "segmented", 0)
    for box, digit in zip(item.boxes.tolist(), item.digits.tolist(), strict=True):
        obj = add(root, "object")
        for tag, value in (("name", class_name(digit)), ("pose", "Unspecified"), ("truncated", 0), ("difficult", 0)):
            add(obj, tag, value)
        bndbox = add(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            add(bndbox, tag, value + 1)
    tree = ElementTree.ElementTree(root)
    ElementTree.indent(tree, space="\t")
    return tree


def write_voc(
    root: str | Path, n_train: int = 512, n_val: int = 128, size: int = 128, seed: int = 0, classes: Sequence[int] = DIGITS
) -> Path:
    """``root/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}``, train canvases as ``trainval``, val as
    ``test``; returns ``root``. Images are numbered 000001, 000002, ... across both, as in VOC2007."""
    splits = canvases(n_train, n_val, size, seed, classes)
    folder = Path(root) / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    number = 0
    for image_set, items in zip(("trainval", "test"), splits, strict=True):
        names = []
        for item in items:
            number += 1
            name = f"{number:06d}"
            names.append(name)
            Image.fromarray(item.image).save(folder / "JPEGImages" / f"{name}.jpg", quality=JPEG_QUALITY)
            _voc_xml(name, item).write(folder / "Annotations" / f"{name}.xml", encoding="unicode")
        (folder / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{name}\n" for name in names))
    return Path(root)


def main(args: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="bam_lightning.data.digit_canvases",
        description="Write handwritten digits pasted on canvases as a COCO or PASCAL VOC detection dataset.",
    )
    parser.add_argument("--format", type=Literal["coco", "voc"], required=True)
    parser.add_argument("--out", type=str, required=True, help="dataset root to write into")
    parser.add_argument("--train", type=int, default=512, help="training canvases (VOC: trainval)")
    parser.add_argument("--val", type=int, default=128, help="validation canvases (VOC: test)")
    parser.add_argument("--size", type=int, default=128, help="canvas side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, nargs="+", default=list(DIGITS), help="digits to use, e.g. 0 1 2")
    parsed = parser.parse_args(args)
    write = write_coco if parsed.format == "coco" else write_voc
    print(write(Path(parsed.out), parsed.train, parsed.val, parsed.size, parsed.seed, parsed.classes))
