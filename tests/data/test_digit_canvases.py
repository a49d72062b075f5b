import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import VOCDetection

from bam_lightning.data.digit_canvases import main, source_split, write_coco, write_voc
from bam_lightning.data.digits import load_digits
from bam_lightning.errors import InputError

SMALL = {"n_train": 6, "n_val": 4, "size": 128, "seed": 0}


def grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).mean(axis=-1)


def ink_box(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
    """The box the pixels say: around the annotated one, everything brighter than halfway from background to ink.

    The background is read in a ring 2-3 pixels outside the annotated box (nearer, the ink's soft rim
    brightens it), the ink as the box's brightest pixels.
    """
    height, width = image.shape
    top, left, bottom, right = max(y0 - 3, 0), max(x0 - 3, 0), min(y1 + 4, height), min(x1 + 4, width)
    region = image[top:bottom, left:right]
    ring = np.ones(region.shape, dtype=bool)
    ring[max(y0 - 1 - top, 0) : y1 + 2 - top, max(x0 - 1 - left, 0) : x1 + 2 - left] = False
    inside = image[y0 : y1 + 1, x0 : x1 + 1]
    background, bright = np.median(region[ring]), np.percentile(inside, 95)
    assert bright > background + 100, "the box holds no ink brighter than the background around it"
    rows, cols = np.nonzero(region > (background + bright) / 2)
    return left + cols.min(), top + rows.min(), left + cols.max(), top + rows.max()


def test_coco_json_loads_with_pycocotools_and_its_boxes_sit_tight_on_the_ink(tmp_path: Path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    write_coco(tmp_path, **SMALL, classes=(7, 2, 5))
    offsets = []  # per box, where the pixels put its four sides minus where the file does
    for split, n in (("train", 6), ("val", 4)):
        coco = COCO(str(tmp_path / "annotations" / f"instances_{split}.json"))
        assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [(1, "digit2"), (3, "digit5"), (5, "digit7")]
        assert len(coco.getImgIds()) == n
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            image = grey(tmp_path / split / info["file_name"])
            assert image.shape == (info["height"], info["width"]) == (128, 128)
            annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            assert 1 <= len(annotations) <= 4
            for ann in annotations:
                x, y, w, h = ann["bbox"]
                box = (int(x), int(y), int(x + w) - 1, int(y + h) - 1)  # first and last ink column and row
                offsets.append(np.subtract(ink_box(image, *box), box))
                assert ann["category_id"] in (1, 3, 5) and ann["iscrowd"] == 0
                assert 0 < ann["area"] <= w * h and 16 <= max(w, h) <= 48
    # JPEG and noise move a side by a pixel now and then, never more than 2; a box off by one would be off on most.
    offsets = np.abs(offsets)
    assert offsets.max() <= 2 and (offsets == 0).mean(axis=0).min() >= 0.8, offsets


def test_voc_xml_reads_with_torchvision_and_gives_the_coco_boxes(tmp_path: Path):
    write_coco(tmp_path / "coco", **SMALL)
    write_voc(tmp_path / "voc", **SMALL)
    for image_set, split in (("trainval", "train"), ("test", "val")):
        coco = json.loads((tmp_path / "coco" / "annotations" / f"instances_{split}.json").read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        voc = VOCDetection(str(tmp_path / "voc"), year="2007", image_set=image_set, download=False)
        assert len(voc) == len(coco["images"])
        for (image, target), info in zip(voc, coco["images"], strict=True):
            annotation = target["annotation"]
            assert annotation["size"] == {"width": "128", "height": "128", "depth": "3"} and image.size == (128, 128)
            coco_image = Image.open(tmp_path / "coco" / split / info["file_name"])
            assert np.array_equal(np.asarray(image), np.asarray(coco_image.convert("RGB")))  # the same canvas
            # VOC: 1-based, both corners inside; COCO: 0-based x, y and widths.
            voc_boxes = [
                (o["name"], *(int(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")), o["difficult"])
                for o in annotation["object"]
            ]
            coco_boxes = [
                (
                    names[a["category_id"]],
                    a["bbox"][0] + 1,
                    a["bbox"][1] + 1,
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                    "0",
                )
                for a in coco["annotations"]
                if a["image_id"] == info["id"]
            ]
            assert voc_boxes == coco_boxes


def test_a_seed_writes_the_same_files_and_another_seed_others(tmp_path: Path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    for seed, folder in ((0, "a"), (0, "b"), (1, "c")):
        write_voc(tmp_path / folder, n_train=3, n_val=2, size=64, seed=seed, classes=(1, 7))
    a, b, c = (files(tmp_path / folder) for folder in "abc")
    assert a == b and len(a) == 2 * 5 + 2
    assert a.keys() == c.keys() and all(a[name] != c[name] for name in a if name.endswith(".jpg"))


def test_train_and_val_draw_on_disjoint_source_digits_of_every_class():
    _, labels = load_digits()
    train, val = source_split(labels, (1, 4, 9), seed=0)
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted([*train, *val]) == np.flatnonzero(np.isin(labels, (1, 4, 9))).tolist()
    for digit in (1, 4, 9):
        share = (labels[val] == digit).sum() / (labels == digit).sum()
        assert abs(share - 0.2) < 0.01
    assert not np.array_equal(val, source_split(labels, (1, 4, 9), seed=1)[1])


def test_main_writes_the_chosen_format_and_classes(tmp_path: Path, capsys: pytest.CaptureFixture):
    main(["--format", "voc", "--out", str(tmp_path), "--train", "2", "--val", "1", "--size", "64", "--classes", "3", "8"])
    assert capsys.readouterr().out.strip() == str(tmp_path)
    folder = tmp_path / "VOCdevkit" / "VOC2007"
    assert (folder / "ImageSets" / "Main" / "trainval.txt").read_text() == "000001\n000002\n"
    assert (folder / "ImageSets" / "Main" / "test.txt").read_text() == "000003\n"
    names = {
        o["name"]
        for image_set in ("trainval", "test")
        for _, target in VOCDetection(str(tmp_path), year="2007", image_set=image_set)
        for o in target["annotation"]["object"]
    }
    assert names <= {"digit3", "digit8"}


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--classes", "3", "12"], "distinct digits 0-9"),
        (["--classes", "3", "3"], "distinct digits 0-9"),
        (["--size", "16"], "at least 32"),
        (["--val", "0"], "at least 1"),
    ],
)
def test_bad_arguments_say_what_to_change(tmp_path: Path, argument: list[str], message: str):
    with pytest.raises(InputError, match=message):
        main(["--format", "coco", "--out", str(tmp_path), *argument])
    assert not any(tmp_path.iterdir())  # checked before anything is written
