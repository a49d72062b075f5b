"""Detection through the real `bam` command: the paper's configs, shrunk, on tiny COCO and VOC trees written on the spot."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.utils import save_image

from bam_lightning.cli import task_of
from bam_lightning.data.digit_canvases import write_coco
from bam_lightning.tasks.classification import ImageClassifier
from bam_lightning.tasks.detection import ObjectDetector

from helpers.cli_args import CPU
from helpers.command import bam, one_line_error, refusal
from helpers.datasets import write_voc
from helpers.scalars import scalars

CONFIGS = Path(__file__).parents[2] / "configs"
SHORT = [
    "--trainer.max_epochs",
    "1",
    "--trainer.max_steps",
    "-1",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.log_every_n_steps",
    "1",
]
UNTRAINED = ["--model.attention", "null", "--model.backbone_weights", "null", "--model.backbone"]
SSD_ON = ["--model.detector", "ssd300", *UNTRAINED]
SMALL_MOBILENET = ["--model.backbone_kwargs", "{width_mult: 0.25}", "--model.backbone_weights", "null"]


def coco_args(root: Path, config: str = "coco/faster_rcnn_r50_bam.yaml", *extra: str) -> list[str]:
    return [
        "--config", str(CONFIGS / config), *CPU, *SHORT,
        "--data.root", str(root / "coco"), "--data.train_images", "train", "--data.val_images", "val",
        "--data.train_annotations", "annotations/instances_train.json",
        "--data.val_annotations", "annotations/instances_val.json",
        "--data.batch_size", "2", "--data.num_workers", "0", "--data.pin_memory", "false",
        "--trainer.default_root_dir", str(root / "runs"), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """Real handwritten digits pasted on canvases, in COCO's layout (category ids 1, 3, 5, ...: they skip numbers)."""
    root = tmp_path_factory.mktemp("detection")
    write_coco(root / "coco", n_train=6, n_val=4, size=96, classes=(0, 1, 2))
    return root


@pytest.fixture(scope="module")
def fitted_c4(coco):
    """The paper's COCO Faster R-CNN config, on a ResNet-18 with few RoIs, one epoch of two steps."""
    tiny = "{min_size: 96, max_size: 128, rois_per_image: 16, test_proposals: 20, freeze: false}"
    args = coco_args(coco, "coco/faster_rcnn_r50_bam.yaml", "--model.backbone", "resnet18", "--model.attention", "bam")
    bam("fit", *args, "--model.detector_kwargs", tiny, "--model.backbone_weights", "null", cwd=coco)
    return coco


def test_the_data_in_the_config_chooses_the_task():
    assert task_of(["fit", "--config", str(CONFIGS / "voc" / "ssd300_vgg16.yaml")])[0] is ObjectDetector
    assert task_of(["fit", "--config", str(CONFIGS / "cifar100_wrn.yaml")])[0] is ImageClassifier
    assert task_of(["fit", "--config", str(CONFIGS / "cifar100_wrn.yaml"), "--data=COCODataModule"])[0] is ObjectDetector
    assert task_of(["fit", "--config", "missing.yaml"])[0] is ImageClassifier  # LightningCLI names the missing file


def test_faster_rcnn_fit_logs_the_papers_maps_and_images_and_test_reports_them(fitted_c4):
    run = fitted_c4 / "runs" / "lightning_logs" / "version_0"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["num_classes"] == 3
    assert checkpoint["hyper_parameters"]["class_names"] == ["digit0", "digit1", "digit2"]
    logged = scalars(run)
    for name in ("map", "map_50", "map_75"):
        assert 0 <= logged[f"val/{name}"][-1] <= 100, name  # percent, as the paper prints them
    sizes = [name for name in ("small", "medium", "large") if f"val/map_{name}" in logged]
    assert "small" in sizes and "large" not in sizes  # digits of at most 36 px: COCO's "no object" (-1) is not logged
    assert {"train/loss", "train/loss_classifier", "train/loss_objectness"} <= set(logged)
    assert len(list((run / "checkpoints").glob("best-epoch000-map50_*.ckpt"))) == 1
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == [f"val/detections/{i}" for i in range(2)]  # the first batch: predicted and true boxes
    result = bam("test", *coco_args(fitted_c4), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), cwd=fitted_c4)
    assert "test/map_50" in result.stdout and "test/map_75" in result.stdout  # the checkpoint's own model: resnet18


def test_a_checkpoint_trained_on_other_classes_is_refused_in_one_line(fitted_c4, tmp_path, capsys):
    write_coco(tmp_path / "coco", n_train=2, n_val=2, size=96, classes=(0, 1, 2, 3))
    checkpoint = fitted_c4 / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    last = one_line_error(["test", *coco_args(tmp_path), "--ckpt_path", str(checkpoint)], capsys)
    assert last.startswith(f"bam: error: {checkpoint} does not fit this model")
    assert "num_classes=3" in last and "box_predictor" in last


@pytest.mark.long
def test_stairnet_with_bam_on_voc_reports_the_voc07_figure_and_draws_detections(tmp_path):
    objects = [[("dog", 5, 6, 40, 30, 0), ("cat", 20, 10, 60, 44, 1)], [("person", 3, 3, 30, 40, 0)], []]
    for image_set in ("trainval", "test"):
        write_voc(tmp_path / "data", image_set=image_set, objects=objects)
    args = [
        "--config", str(CONFIGS / "voc" / "stairnet300_mobilenet_bam.yaml"), *CPU, *SHORT, *SMALL_MOBILENET,
        "--data.root", str(tmp_path / "data"), "--data.train_sets", "[2007-trainval]", "--data.batch_size", "2",
        "--data.num_workers", "0", "--data.pin_memory", "false", "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--trainer.check_val_every_n_epoch", "1",
    ]  # fmt: skip
    bam("fit", *args, cwd=tmp_path)
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    logged = scalars(run)
    assert {"val/map_50", "val/map_50_coco", "val/map"} <= set(logged)  # map_50: VOC 2007's 11-point figure
    image = tmp_path / "data" / "VOCdevkit" / "VOC2007" / "JPEGImages"
    first = sorted(image.iterdir())[0]
    out = tmp_path / "drawn" / "detections.png"
    result = bam(
        "detect",
        "--ckpt_path",
        str(run / "checkpoints" / "last.ckpt"),
        "--image",
        str(first),
        "--out",
        str(out),
        "--score",
        "0",
        cwd=tmp_path,
    )
    assert out.is_file() and result.stdout.startswith(f"{first}: ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.val_annotations", "annotations/none.json"], "annotations/none.json"),
        (["--model.detector", "yolo"], "unknown detector 'yolo': choose one of faster_rcnn_c4, ssd300, stairnet300"),
        (["--model.placement", "every_block", "--model.detector", "ssd300"], "placement 'every_block' does not apply"),
        (["--model.backbone_weights", "torchvision:V9"], "torchvision has no weights 'V9' for resnet50"),
        (["--data.recipe", "yolo"], "recipe"),
        (["--model.detector_kwargs", "{min_sise: 600}"], "faster_rcnn_c4 has no option 'min_sise' (did you mean 'min_size'?)"),
        (["--model.detector_kwargs", "{rois_per_image: 0}"], "faster_rcnn_c4 needs rois_per_image and test_proposals of 1"),
        (["--model.log_images", "-1"], "model.log_images"),
        (["--model.backbone", "vgg16"], "faster_rcnn_c4 cuts a ResNet (resnet50, resnet101, ...), not VGG"),
        (["--data.val_annotations", "annotations/instances_train.json"], "are not in"),  # the train file's images
        ([*SSD_ON, "mobilenet_v1", "--model.detector_kwargs", "{head: wide}"], "head must be conv or separable, got 'wide'"),
        ([*SSD_ON, "mobilenet_v1", "--model.detector_kwargs", "{extras_norm: group}"], "extras_norm must be none or batch"),
        ([*SSD_ON, "vgg16", "--model.detector_kwargs", "{extras_norm: batch}"], "extras_norm applies to mobilenet_v1's extras"),
        (
            ["--model.detector", "stairnet300", *UNTRAINED, "mobilenet_v1", "--model.detector_kwargs", "{width: 0}"],
            "width must be a positive number of channels, got 0",
        ),
    ],
    ids=[
        "missing-annotations",
        "unknown-detector",
        "placement-on-heads",
        "unknown-weights",
        "unknown-recipe",
        "misspelt-detector-option",
        "no-rois",
        "negative-image-interval",
        "not-a-resnet",
        "val-file-for-other-images",
        "unknown-ssd-head",
        "unknown-extras-norm",
        "extras-norm-on-vgg",
        "no-stairnet-width",
    ],  # fmt: skip
)
def test_bad_detection_input_ends_in_one_line(coco, args, message, capsys):
    assert message in one_line_error(["fit", *coco_args(coco, "coco/faster_rcnn_r50_bam.yaml", *args)], capsys)


def detect(root: Path, **options: str):
    """``bam detect`` of the fitted checkpoint in ``root``, on one validation image into ``out.png`` unless ``options``
    (``image=``, ``out=``, ``score=``) say otherwise."""
    checkpoint = root / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    given = {"image": str(sorted((root / "coco" / "val").iterdir())[0]), "out": "out.png", **options}
    return bam(
        "detect", "--ckpt_path", str(checkpoint), *[v for k, o in given.items() for v in (f"--{k}", o)], cwd=root, check=False
    )


def test_bam_detect_draws_and_names_the_checkpoints_detections(fitted_c4):
    result = detect(fitted_c4, out="drawn/boxes.png", score="0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(fitted_c4 / "drawn" / "boxes.png").size == (96, 96)  # one canvas, its folder made
    assert result.stdout.startswith(f"{sorted((fitted_c4 / 'coco' / 'val').iterdir())[0]}: digit")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image": "missing.jpg"}, "--image missing.jpg is missing: give the path of an image file"),
        ({"image": "coco/val"}, "--image coco/val is a folder: give an image file (repeat --image for more)"),
        ({"score": "2"}, "--score is a detection score between 0 and 1, got 2.0"),
        ({"out": "x.jpg"}, "--out x.jpg must end in .png"),
        ({"out": "coco"}, "--out coco is a folder: give the PNG file to write, e.g. coco/detections.png"),
        ({"out": "coco/annotations/instances_val.json/d.png"}, "folder coco/annotations/instances_val.json is a file, not"),
        ({"out": "coco/annotations/instances_val.json/a/d.png"}, "is under coco/annotations/instances_val.json, a file"),
        ({"out": "/proc/d.png"}, "--out's folder /proc takes no file (No such file or directory): give a folder you can"),
    ],
    ids=["missing-image", "image-folder", "score", "out-suffix", "out-folder", "out-in-a-file", "out-under-a-file",
         "out-unwritable"],
)  # fmt: skip
def test_bam_detect_refuses_bad_input_in_one_line(fitted_c4, options, message):
    last = refusal(detect(fitted_c4, **options))
    assert message in last, last


def test_a_datamodules_own_refusal_is_one_line_not_jsonargparses_union_report(capsys):
    args = ["fit", "--config", str(CONFIGS / "voc" / "ssd300_vgg16.yaml"), "--data.test_set", "2013-test"]
    assert "'2013-test' is not a VOC image set" in one_line_error(args, capsys)


def test_detection_configs_and_checkpoints_are_refused_where_they_do_not_belong(tmp_path, capsys):
    config = str(CONFIGS / "voc" / "ssd300_vgg16.yaml")
    assert "bam summary --detection" in one_line_error(["summary", "--config", config], capsys)
    classifier = ImageClassifier("wrn", 10, backbone_kwargs={"depth": 10, "widen_factor": 1})
    torch.save({"state_dict": classifier.state_dict(), "hyper_parameters": dict(classifier.hparams)}, tmp_path / "c.ckpt")
    image = tmp_path / "image.png"
    save_image(torch.zeros(3, 8, 8), image)
    last = one_line_error(["detect", "--ckpt_path", str(tmp_path / "c.ckpt"), "--image", str(image)], capsys)
    assert "is not a detector's checkpoint" in last
