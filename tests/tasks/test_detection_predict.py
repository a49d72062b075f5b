"""``bam predict`` with a detector: every detection into ``detections.csv``, and on a COCO file's images COCO's results.

The detector is the offline demo's, shrunk and trained for two steps on digit canvases in COCO's layout:
barely trained, it returns its full 200 low-scoring detections per image, which checks the rows
as well as a good detector's few would. Each check computes the detections again, independently:
the checkpoint loaded by hand, run on the image files decoded by PIL.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from torchvision.transforms.functional import to_tensor

from bam_lightning.data.digit_canvases import main as write_canvases
from bam_lightning.tasks.detection import ObjectDetector

from helpers.canvases import CANVASES, DIGITS, coco_args, voc_args
from helpers.command import bam, refusal

# class score near 1/4 and the 200 kept per image are chosen among ties that another thread count breaks otherwise.
PLAIN = ["--model.detector_kwargs", "{head: conv, extras_norm: none}"]
KEPT = 200  # SSD's detections per image


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Canvases in COCO's and VOC's layouts (the same images) and a detector fitted on the COCO one; its last.ckpt."""
    root = tmp_path_factory.mktemp("detection_predict")
    for layout in ("coco", "voc"):
        write_canvases(["--format", layout, "--out", str(root / layout), *CANVASES])
    bam("fit", *coco_args(root, *PLAIN), cwd=root)
    return root, root / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


def predict(root: Path, checkpoint: Path, *extra: str, layout: str = "coco", check: bool = True):
    given = ["--ckpt_path", str(checkpoint), *PLAIN, *extra]
    args = coco_args(root, *given) if layout == "coco" else voc_args(root, "--data.classes", DIGITS, *given)
    return bam("predict", *args, cwd=root, check=check)


def written(result, name: str) -> Path:
    """The file of ``name`` that the command's stderr says it wrote: in a run folder beside the logs."""
    path = next(Path(line.rpartition(" to ")[2]) for line in result.stderr.splitlines() if line.endswith(f"/{name}"))
    assert path.parent.parent.name == "lightning_logs" and (path.parent / "hparams.yaml").is_file()
    return path


def csv_rows(result) -> list[list[str]]:
    with written(result, "detections.csv").open() as file:
        header, *rows = csv.reader(file)
    assert header == ["file", "label", "score", "x0", "y0", "x1", "y1"]
    return rows


def detected(checkpoint: Path, files: list[Path]) -> list[tuple[str, str, float, list[float]]]:
    """``(file name, label name, score, box)`` of every detection, the checkpoint run on ``files`` as one batch."""
    model = ObjectDetector.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    with torch.no_grad():
        found = model([to_tensor(Image.open(file).convert("RGB")) for file in files])
    names = model.hparams.class_names
    return [
        (file.name, names[label - 1], score, box)
        for file, image in zip(files, found, strict=True)
        for box, label, score in zip(image["boxes"].tolist(), image["labels"].tolist(), image["scores"].tolist(), strict=True)
    ]


def assert_rows_are(rows: list[list[str]], expected: list[tuple[str, str, float, list[float]]]) -> None:
    """The same detections file by file, in the files' order, each unambiguous expected one matched to a row of its file.

    A barely trained detector's scores nearly tie: which of two near-equal boxes NMS keeps, and which comes first,
    changes with the arithmetic of the run (bam predict's process, this one). So detections are matched, not compared
    by position, and one whose score is within 1e-4 of another of its file and label is not asked for.
    """
    assert len(rows) == len(expected) > 0
    assert [row[0] for row in rows] == [name for name, *_ in expected]
    scores: dict[tuple[str, str], list[float]] = {}
    for name, label, score, _ in expected:
        scores.setdefault((name, label), []).append(score)
    left, asked = list(rows), 0
    for name, label, score, box in expected:
        if sum(abs(score - other) < 1e-4 for other in scores[name, label]) > 1:
            continue
        asked += 1
        match = next(
            (
                row
                for row in left
                if row[:2] == [name, label]
                and float(row[2]) == pytest.approx(score, abs=1e-6)
                and [float(v) for v in row[3:]] == pytest.approx(box, abs=0.006)
            ),
            None,
        )
        assert match is not None, f"no row for {name} {label} {score} {box}"
        left.remove(match)
    assert asked >= len({name for name, *_ in expected})  # at least one a file, on average


def test_the_val_split_gives_every_detection_in_the_images_pixels_and_cocos_results(trained):
    root, checkpoint = trained
    result = predict(root, checkpoint)  # no --data.predict_dir: the val file's images
    rows = csv_rows(result)
    val = sorted((root / "coco" / "val").iterdir())  # named by image id, as the file lists them
    assert_rows_are(rows, detected(checkpoint, val))  # the four images are one batch of four, as in bam predict
    assert {len([row for row in rows if row[0] == file.name]) for file in val} == {KEPT}  # SSD's own: at most 200 each
    truth = COCO(str(root / "coco" / "annotations" / "instances_val.json"))
    results = truth.loadRes(str(written(result, "detections.json")))  # pycocotools reads it
    assert len(results.getAnnIds()) == len(rows)
    ids = {image["file_name"]: id for id, image in truth.imgs.items()}
    categories = {category["name"]: id for id, category in truth.cats.items()}  # digit0 1, digit1 3, digit2 5
    for row, entry in zip(rows, json.loads(written(result, "detections.json").read_text()), strict=True):
        assert (entry["image_id"], entry["category_id"]) == (ids[row[0]], categories[row[1]])
        x0, y0, x1, y1 = (float(v) for v in row[3:])
        assert entry["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0], abs=0.011) and entry["score"] == float(row[2])


def test_a_folder_of_ones_own_images_any_size_skipping_one_that_does_not_decode(trained, tmp_path):
    root, checkpoint = trained
    canvases = sorted((root / "coco" / "val").iterdir())
    images = [tmp_path / "a.jpg", tmp_path / "b" / "c.png", tmp_path / "b" / "d.jpeg", tmp_path / "e.JPG"]
    images[1].parent.mkdir()
    for i, (canvas, image) in enumerate(zip(canvases, images, strict=True)):
        Image.open(canvas).resize((64 + 24 * i, 64 - 8 * i)).save(image)  # wider, lower: boxes in each image's pixels
    (tmp_path / "z_broken.jpg").write_bytes(b"not an image")  # last: the four good ones are bam predict's first batch
    shutil.copy(root / "coco" / "annotations" / "instances_val.json", tmp_path / "notes.json")  # not an image: not read
    last = refusal(predict(root, checkpoint, "--data.predict_dir", str(tmp_path), check=False))
    assert last.startswith(f"bam: error: {tmp_path / 'z_broken.jpg'} is not a readable image (PIL cannot identify it")
    result = predict(root, checkpoint, "--data.predict_dir", str(tmp_path), "--data.bad_images", "skip")
    assert f"bam: skipping unreadable image {tmp_path / 'z_broken.jpg'}" in result.stderr
    rows = csv_rows(result)
    expected = detected(checkpoint, images)
    named = {image.name: image.relative_to(tmp_path).as_posix() for image in images}  # b/c.png: its path under the folder
    assert_rows_are(rows, [(named[name], *rest) for name, *rest in expected])
    assert not (written(result, "detections.csv").parent / "detections.json").exists()  # no COCO file lists them


def test_a_voc_split_gives_the_csv_alone(trained):
    root, checkpoint = trained
    result = predict(root, checkpoint, layout="voc")  # a checkpoint of the same three classes, on VOC2007's test set
    test = sorted((root / "voc" / "VOCdevkit" / "VOC2007" / "JPEGImages").iterdir())[-4:]  # 000009 - 000012
    assert_rows_are(csv_rows(result), detected(checkpoint, test))
    assert not (written(result, "detections.csv").parent / "detections.json").exists()


@pytest.mark.long
def test_two_processes_write_the_file_one_process_writes(trained):
    root, checkpoint = trained
    one = ["--data.batch_size", "1"]  # each image alone in both runs: the same arithmetic, to the bit
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    single = csv_rows(predict(root, checkpoint, *one))
    assert csv_rows(predict(root, checkpoint, *one, *ddp)) == single


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data.predict_dir", "nowhere"], "--data.predict_dir nowhere is not a folder: give the folder of your images"),
        (["--data.predict_dir", "coco/annotations"], "--data.predict_dir coco/annotations holds no image file"),
        (["--ckpt_path", "null"], "bam predict needs the trained network: give --ckpt_path"),
    ],
    ids=["not-a-folder", "no-image", "no-checkpoint"],
)
def test_each_mistake_is_one_line_from_the_real_command(trained, extra, message):
    root, checkpoint = trained
    last = refusal(predict(root, checkpoint, *extra, check=False))
    assert message in last, last
