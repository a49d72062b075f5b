"""Tiny datasets in the real on-disk formats, for tests that must not download anything.

Each class has its own blocky colour pattern, shared by its training and test images, and
every image adds noise to it: a tiny model beats chance within a few steps. The same
``seed`` writes the same files.
"""

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from bam_lightning.data import cifar_pickles


def _prototypes(rng: np.random.Generator, num_classes: int, height: int, width: int) -> np.ndarray:
    """num_classes x H x W x 3: a 4 x 4 grid of random colours per class, stretched to the image."""
    grid = rng.integers(0, 256, (num_classes, 4, 4, 3))
    rows, cols = np.arange(height) * 4 // height, np.arange(width) * 4 // width
    return grid[:, rows][:, :, cols]


def _noisy(rng: np.random.Generator, patterns: np.ndarray) -> np.ndarray:
    return np.clip(patterns + rng.normal(0, 16, patterns.shape), 0, 255).astype(np.uint8)


def _cifar_splits(num_classes: int, sizes: tuple[int, int], seed: int) -> list[tuple[list[int], np.ndarray]]:
    """(labels, N x 3072 channel-major rows) for train and test; labels balanced and shuffled."""
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, num_classes, 32, 32)
    splits = []
    for n in sizes:
        labels = rng.permutation(np.arange(n) % num_classes)
        images = _noisy(rng, prototypes[labels])
        splits.append((labels.tolist(), images.transpose(0, 3, 1, 2).reshape(n, 3072)))
    return splits


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar100(root: str | Path, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` with the keys torchvision's CIFAR100 reads; returns ``root``."""
    splits = _cifar_splits(100, (n_train, n_test), seed)
    cifar_pickles.write_cifar100(Path(root) / "cifar-100-python", dict(zip(("train", "test"), splits, strict=True)))
    return Path(root)


def write_cifar10(root: str | Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py/`` (training images spread over ``data_batch_1..5``); returns ``root``."""
    folder = Path(root) / "cifar-10-batches-py"
    (train_labels, train_data), (test_labels, test_data) = _cifar_splits(10, (n_train, n_test), seed)

    def write(name: str, batch_label: str, labels: list[int], data: np.ndarray) -> None:
        filenames = [f"{name}_{i:05d}.png" for i in range(len(labels))]
        _pickle(folder / name, {"batch_label": batch_label, "labels": labels, "data": data, "filenames": filenames})

    for i, part in enumerate(np.array_split(np.arange(n_train), 5)):
        write(f"data_batch_{i + 1}", f"training batch {i + 1} of 5", [train_labels[j] for j in part], train_data[part])
    write("test_batch", "testing batch 1 of 1", test_labels, test_data)
    _pickle(
        folder / "batches.meta",
        {
            "num_cases_per_batch": -(-n_train // 5),
            "label_names": [f"label_{i}" for i in range(10)],
            "num_vis": 3072,
        },
    )
    return Path(root)


def write_image_folder(
    root: str | Path, classes: int = 3, per_class: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0
) -> Path:
    """JPEGs of ``size`` (width, height) in ``root/{train,val}/<class>/*.JPEG``, classes named like WordNet ids."""
    rng = np.random.default_rng(seed)
    width, height = size
    prototypes = _prototypes(rng, classes, height, width)
    for split in ("train", "val"):
        for c in range(classes):
            folder = Path(root) / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(_noisy(rng, np.repeat(prototypes[c : c + 1], per_class, axis=0))):
                Image.fromarray(image).save(folder / f"{split}_{c}_{i}.JPEG", quality=90)
    return Path(root)


def write_cifar_c(
    root: str | Path,
    folder: str = "CIFAR-100-C",
    corruptions: tuple[str, ...] = ("fog", "snow", "spatter"),
    per_severity: int = 4,
    num_classes: int = 100,
    seed: int = 0,
) -> Path:
    """``root/<folder>/<corruption>.npy`` (uint8, 5 * per_severity x 32 x 32 x 3, severities 1..5 in five blocks) and
    ``labels.npy`` (the same labels repeated per block), as the published CIFAR-C archives hold them; returns the folder.
    Each image is its class pattern under noise that grows with the severity."""
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, num_classes, 32, 32)
    labels = rng.permutation(np.arange(per_severity) % num_classes)
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    for name in corruptions:
        blocks = [np.clip(prototypes[labels] + rng.normal(0, 24 * s, (per_severity, 32, 32, 3)), 0, 255) for s in range(1, 6)]
        np.save(out / f"{name}.npy", np.concatenate(blocks).astype(np.uint8))
    np.save(out / "labels.npy", np.tile(labels, 5))
    return out


def write_imagenet_c(
    root: str | Path,
    corruptions: tuple[str, ...] = ("fog", "snow"),
    classes: tuple[str, ...] = ("n00000000", "n00000001"),
    per_class: int = 1,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """JPEGs of ``size`` x ``size`` in ``root/<corruption>/<severity>/<wnid>/*.JPEG``, the published ImageNet-C tree."""
    rng = np.random.default_rng(seed)
    for name in corruptions:
        for severity in range(1, 6):
            for c, wnid in enumerate(classes):
                folder = Path(root) / name / str(severity) / wnid
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(per_class):
                    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                    Image.fromarray(image).save(folder / f"ILSVRC2012_val_{c:04d}{i:04d}.JPEG", quality=90)
    return Path(root)


# Detection: coloured rectangles (one colour per class) on noise, in COCO's and PASCAL VOC's on-disk formats.

COCO_CATEGORIES = ((7, "train"), (1, "person"), (3, "car"))  # ids skip numbers and are listed unsorted, as COCO may


def _detection_image(rng: np.random.Generator, size: tuple[int, int], rectangles: list[tuple]) -> Image.Image:
    """Noise of ``size`` (width, height) with ``(class_index, x1, y1, x2, y2)`` rectangles painted in their class colour."""
    width, height = size
    canvas = _noisy(rng, np.full((height, width, 3), 96.0))
    colours = np.random.default_rng(1234).integers(0, 256, (32, 3))
    for index, x1, y1, x2, y2 in rectangles:
        canvas[max(int(y1), 0) : max(int(y2), 0), max(int(x1), 0) : max(int(x2), 0)] = colours[index % 32]
    return Image.fromarray(canvas)


def _random_boxes(rng: np.random.Generator, size: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """1-3 xyxy boxes inside an image of ``size``, at least 4 pixels a side."""
    width, height = size
    boxes = []
    for _ in range(rng.integers(1, 4)):
        x1, y1 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        boxes.append((float(x1), float(y1), float(rng.integers(x1 + 4, width + 1)), float(rng.integers(y1 + 4, height + 1))))
    return boxes


def write_coco(
    root: str | Path,
    split: str = "train2017",
    boxes: list[list[tuple]] | None = None,
    images: int = 4,
    size: tuple[int, int] = (64, 48),
    categories: tuple[tuple[int, str], ...] = COCO_CATEGORIES,
    seed: int = 0,
) -> Path:
    """``root/{split}/*.jpg`` and ``root/annotations/instances_{split}.json``; returns the JSON's path.

    ``boxes``: per image, ``(category_id, x, y, width, height, iscrowd)`` in COCO's xywh (written as given, even
    outside the image); None draws 1-3 boxes per image for ``images`` images. Image ids start at 100 and step by 3.
    """
    rng = np.random.default_rng(seed)
    ids = [id for id, _ in categories]
    if boxes is None:
        boxes = [
            [(ids[rng.integers(len(ids))], x1, y1, x2 - x1, y2 - y1, 0) for x1, y1, x2, y2 in _random_boxes(rng, size)]
            for _ in range(images)
        ]
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    data: dict = {"info": {"description": "test"}, "licenses": [], "images": [], "annotations": []}
    data["categories"] = [{"id": id, "name": name, "supercategory": "thing"} for id, name in categories]
    for i, objects in enumerate(boxes):
        image_id, file_name = 100 + 3 * i, f"{split}_{i:06d}.jpg"
        painted = [(ids.index(c) if c in ids else 0, x, y, x + w, y + h) for c, x, y, w, h, _ in objects]
        _detection_image(rng, size, painted).save(folder / file_name, quality=90)
        data["images"].append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
        for category, x, y, w, h, crowd in objects:
            data["annotations"].append(
                {
                    "id": len(data["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": crowd,
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                }
            )
    path = Path(root) / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


VOC_NAMES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def write_voc(
    root: str | Path,
    year: str = "2007",
    image_set: str = "trainval",
    objects: list[list[tuple]] | None = None,
    images: int = 3,
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
) -> Path:
    """``root/VOCdevkit/VOC{year}/`` with ``JPEGImages/``, ``Annotations/*.xml`` and ``ImageSets/Main/{image_set}.txt``;
    returns that folder.

    ``objects``: per image, ``(name, xmin, ymin, xmax, ymax, difficult)`` in VOC's 1-based inclusive pixels; None
    draws 1-3 objects per image for ``images`` images. Images are named ``{year}_{image_set}_{i:04d}``.
    """
    rng = np.random.default_rng(seed)
    if objects is None:
        objects = [
            [(VOC_NAMES[rng.integers(20)], x1 + 1, y1 + 1, x2, y2, 0) for x1, y1, x2, y2 in _random_boxes(rng, size)]
            for _ in range(images)
        ]
    folder = Path(root) / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    names = []
    for i, image_objects in enumerate(objects):
        name = f"{year}_{image_set}_{i:04d}"
        names.append(name)
        painted = [
            (VOC_NAMES.index(n) if n in VOC_NAMES else 0, x1 - 1, y1 - 1, x2, y2) for n, x1, y1, x2, y2, _ in image_objects
        ]
        _detection_image(rng, size, painted).save(folder / "JPEGImages" / f"{name}.jpg", quality=90)
        xml = [
            f"<annotation><folder>VOC{year}</folder><filename>{name}.jpg</filename>",
            f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size><segmented>0</segmented>",
        ]
        for n, x1, y1, x2, y2, difficult in image_objects:
            xml.append(
                f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}</difficult>"
                f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            )
        (folder / "Annotations" / f"{name}.xml").write_text("\n".join([*xml, "</annotation>"]))
    (folder / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{name}\n" for name in names))
    return folder
