"""Detection on a user's own data through the real ``bam fit``: a VOCdevkit tree of one's own classes, images that do
not decode.

The data are ``digit_canvases``' handwritten digits, written by its own command line in VOC's
layout; the detector is the offline demo's config (``configs/demo_detect.yaml``) on a MobileNet
of width 0.25, for one epoch of two steps and one validation batch.
"""

from pathlib import Path

import pytest
import torch

from bam_lightning.data.digit_canvases import main as write_canvases

from helpers.canvases import CANVASES, DIGITS, coco_args, voc_args
from helpers.command import bam, refusal
from helpers.scalars import scalars


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    """Eight training and four test canvases of digits 0-2, objects named digit0..digit2, as the demo data's tool writes."""
    root = tmp_path_factory.mktemp("own_voc")
    write_canvases(
        ["--format", "voc", "--out", str(root / "voc"), "--train", "8", "--val", "4", "--size", "64", "--classes", "0", "1", "2"]
    )
    return root


def test_a_voc_tree_of_ones_own_classes_trains_and_validates(voc, tmp_path):
    bam("fit", *voc_args(voc, "--data.classes", DIGITS, "--trainer.default_root_dir", str(tmp_path)), cwd=voc)
    run = tmp_path / "lightning_logs" / "version_0"
    trained = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["hyper_parameters"]
    assert trained["num_classes"] == 3 and trained["class_names"] == ["digit0", "digit1", "digit2"]
    logged = scalars(run)
    assert {"val/map_50", "val/map_50_coco"} <= set(logged) and len(logged["train/loss"]) == 2  # VOC07's figure


@pytest.mark.parametrize(
    "classes, message",
    [
        ("[]", "--data.classes is empty: list the object names your XML files use"),
        ("[digit0, digit1, digit0]", "--data.classes names 'digit0' more than once"),
        (None, ", not one of the 20 classes (aeroplane, bicycle, "),
        ("[digit0, digit1]", "is a 'digit2', not one of the 2 classes (digit0, digit1): fix its <name>, or pass --data.classes"),
    ],
    ids=["empty", "repeated", "voc-default", "one-missing"],
)
def test_classes_that_do_not_fit_the_labels_end_in_one_line(voc, classes, message):
    given = [] if classes is None else ["--data.classes", classes]
    last = refusal(bam("fit", *voc_args(voc, *given), cwd=voc, check=False))
    assert message in last, last
    if classes in (None, "[digit0, digit1]"):  # names the file and the object
        assert f"{voc / 'voc' / 'VOCdevkit' / 'VOC2007' / 'Annotations'}/" in last and ".xml: object " in last


def test_bad_images_takes_fail_or_skip(voc):
    last = refusal(bam("fit", *voc_args(voc, "--data.bad_images", "maybe"), cwd=voc, check=False))
    assert last.startswith("bam: error: data.bad_images: 'maybe' is not one of fail, skip"), last


def write_damaged(root: Path, layout: str) -> tuple[Path, Path]:
    """Canvases in ``layout`` under ``root/layout``, one training image replaced by garbage bytes and one evaluation image
    truncated to half its bytes; returns those two files."""
    write_canvases(["--format", layout, "--out", str(root / layout), *CANVASES])
    if layout == "coco":
        garbage, truncated = root / "coco" / "train" / "000000000003.jpg", root / "coco" / "val" / "000000000010.jpg"
    else:  # one VOC2007 folder: trainval are 000001-000008, test 000009-000012
        folder = root / "voc" / "VOCdevkit" / "VOC2007" / "JPEGImages"
        garbage, truncated = folder / "000003.jpg", folder / "000010.jpg"
    garbage.write_bytes(b"this is not a JPEG " * 8)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    return garbage, truncated


@pytest.mark.parametrize("layout", ["coco", "voc"])
def test_an_image_that_does_not_decode_stops_the_run_naming_it_or_is_skipped_with_one_line(tmp_path, layout):
    garbage, truncated = write_damaged(tmp_path, layout)
    args = coco_args(tmp_path) if layout == "coco" else voc_args(tmp_path, "--data.classes", DIGITS)
    last = refusal(bam("fit", *args, cwd=tmp_path, check=False))  # the sanity check's validation meets it first
    assert last.startswith(f"bam: error: {truncated} is not a readable image (image file is truncated"), last
    assert last.endswith("): replace or delete it, or pass --data.bad_images skip to go on without it"), last
    result = bam("fit", *args, "--data.bad_images", "skip", cwd=tmp_path)
    err = result.stderr
    assert f"bam: skipping unreadable image {garbage} (PIL cannot identify it as an image)" in err
    assert f"bam: skipping unreadable image {truncated} (image file is truncated" in err
    # Named once each, though validation (the sanity check's, then the epoch's) read the truncated one twice.
    assert err.count(str(garbage)) == err.count(str(truncated)) == 1
    assert err.count("unreadable image(s) of ") == 2 and "bam: skipped 1 unreadable image(s) of 8 under " in err
    run = tmp_path / "runs" / "lightning_logs" / "version_1"
    assert (run / "checkpoints" / "last.ckpt").is_file() and "val/map_50" in scalars(run)
