"""``bam attention`` on a checkpoint fitted here, on real photos from scikit-image."""

import shutil
import sys
from functools import partial

import pytest
import torch
from PIL import Image
from skimage import data as photos

from bam_lightning.cli import main
from bam_lightning.data import CIFAR100DataModule
from bam_lightning.data.imagenet import MEAN
from bam_lightning.tasks.classification import ImageClassifier
from bam_lightning.tools.attention import input_size, load_checkpoint_classifier, normalization, run_statistics
from bam_lightning.tools.cams import last_stage

from helpers.classifier import fit_checkpoint
from helpers.command import bam, one_line_error

PANEL = 256
BAMS = 2  # WRN-10-1


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention")
    Image.fromarray(photos.astronaut()).save(root / "astronaut.jpg")
    Image.fromarray(photos.coffee()).save(root / "coffee.png")  # 600 x 400: cropped to a square
    (root / "notes.jpg").write_text("not an image")
    torch.save({"state_dict": {}, "hyper_parameters": {"optimizer": partial(print)}}, root / "code.ckpt")
    return {
        "root": root,
        "bam": fit_checkpoint(root / "bam.ckpt", "bam"),
        "baseline": fit_checkpoint(root / "baseline.ckpt", None),
    }


def test_one_row_per_image_and_one_column_per_bam(files, capsys):
    out = files["root"] / "maps" / "two.png"
    main(["attention", "--ckpt_path", str(files["bam"]), "--image", str(files["root"] / "astronaut.jpg"),
          "--image", str(files["root"] / "coffee.png"), "--out", str(out)])  # fmt: skip
    assert Image.open(out).size == ((1 + BAMS) * PANEL, 2 * PANEL)
    assert "the rule for 32 px" in capsys.readouterr().out  # no config.yaml: CIFAR-100's statistics


def test_statistics_come_from_the_datamodule_in_the_runs_config(files, capsys):
    run = files["root"] / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = shutil.copy(files["bam"], run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text("data:\n  class_path: bam_lightning.data.CIFAR10DataModule\n  init_args: {root: nowhere}\n")
    (mean, _std), name = run_statistics(ckpt)
    assert name == "CIFAR10DataModule" and mean == (0.4914, 0.4822, 0.4465)
    main(["attention", "--ckpt_path", str(ckpt), "--image", str(files["root"] / "coffee.png"), "--out", str(run / "maps.png")])
    assert "CIFAR10DataModule's, from the run's config.yaml" in capsys.readouterr().out
    (run / "config.yaml").write_text("data:\n  class_path: bam_lightning.data.NoSuchData\n")
    with pytest.raises(SystemExit):
        main(["attention", "--ckpt_path", str(ckpt), "--image", str(files["root"] / "coffee.png")])
    assert "names data bam_lightning.data.NoSuchData that cannot be built" in capsys.readouterr().err


def test_as_a_command_with_its_own_panel_and_input_size(files):
    out = files["root"] / "one.png"
    args = ["attention", "--ckpt_path", str(files["bam"]), "--image", str(files["root"] / "coffee.png"),
            "--out", str(out), "--panel_px", "100", "--size", "48"]  # fmt: skip
    bam(*args, cwd=files["root"])
    assert Image.open(out).size == ((1 + BAMS) * 100, 100)


@pytest.mark.parametrize(
    "ckpt,image,message",
    [
        ("missing.ckpt", "astronaut.jpg", "no checkpoint file at"),
        ("baseline", "astronaut.jpg", "this checkpoint's model has no BAM (attention: None): train with model.attention bam"),
        ("code.ckpt", "astronaut.jpg", "is refused: it holds more than tensors and numbers"),  # a pickled function is never run
        ("notes.jpg", "astronaut.jpg", "is not a readable checkpoint"),
        ("bam", "missing.jpg", "missing.jpg is missing: give the path of an image file"),
        ("bam", "notes.jpg", "cannot read image"),
    ],
)
def test_user_errors_end_in_one_line(files, capsys, ckpt, image, message):
    ckpt_path, image_path = files.get(ckpt, files["root"] / ckpt), files["root"] / image
    with pytest.raises(SystemExit) as exit_info:
        main(["attention", "--ckpt_path", str(ckpt_path), "--image", str(image_path), "--out", str(files["root"] / "x.png")])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and error.startswith("bam: error:") and error.count("\n") == 1


def test_input_size_and_statistics_follow_the_model():
    assert input_size(ImageClassifier("wrn", 4, backbone_kwargs={"depth": 10, "widen_factor": 1})) == 32
    assert input_size(ImageClassifier("wrn", 4, image_size=40, backbone_kwargs={"depth": 10, "widen_factor": 1})) == 40
    assert normalization(224)[0] == MEAN and normalization(32)[0] == CIFAR100DataModule.mean


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "eigencam"])
def test_class_activation_maps_on_each_bam_and_the_last_stage(files, capsys, method):
    out = files["root"] / "cams" / f"{method}.png"
    main(["attention", "--ckpt_path", str(files["bam"]), "--image", str(files["root"] / "astronaut.jpg"),
          "--method", method, "--out", str(out)])  # fmt: skip
    assert Image.open(out).size == ((1 + BAMS + 1) * PANEL, PANEL)  # the image, each BAM's output, the last stage


def test_a_baseline_gets_the_last_stages_map_alone(files):
    out = files["root"] / "cams" / "baseline.png"
    main(["attention", "--ckpt_path", str(files["baseline"]), "--image", str(files["root"] / "coffee.png"),
          "--method", "gradcam", "--out", str(out)])  # fmt: skip
    assert Image.open(out).size == (2 * PANEL, PANEL)


def test_grad_cam_without_its_package_and_an_unknown_method_end_in_one_line(files, capsys, monkeypatch):
    args = ["attention", "--ckpt_path", str(files["bam"]), "--image", str(files["root"] / "astronaut.jpg")]
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)  # as where the extra is not installed
    assert "pip install 'bam_lightning[gradcam]'" in one_line_error([*args, "--method", "gradcam"], capsys)
    line = one_line_error([*args, "--method", "gradkam"], capsys)
    assert "gradkam" in line and "gradcam" in line, line


def test_the_last_stage_is_the_last_map_before_the_pooling(files):
    classifier = load_checkpoint_classifier(files["bam"], "attention")
    name, _ = last_stage(classifier.model, torch.zeros(1, 3, 32, 32))
    assert name == "relu"  # WRN: layer3, bn, relu, then the global pooling
