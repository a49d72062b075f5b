"""ImageNet-C in its published tree: labels numbered by the clean ImageNet's classes, and its bad trees in one line."""

import shutil

import lightning.pytorch as L
import pytest

from bam_lightning.data.corruptions import ALEXNET
from bam_lightning.data.imagenet_c import ImageNetCDataModule

from helpers.classifier import tiny_classifier
from helpers.cli_args import CPU, EAGER, TINY_MODEL
from helpers.command import one_line_error
from helpers.datasets import write_image_folder, write_imagenet_c

CLASSES = ("n00000000", "n00000001", "n00000002")  # write_image_folder's three


def test_the_tree_reads_every_group_with_the_clean_class_numbers_centre_cropped(tmp_path):
    write_image_folder(tmp_path / "imagenet", classes=3, per_class=1)
    write_imagenet_c(tmp_path / "c", classes=CLASSES[1:], size=40)  # no image of the first class: labels 1 and 2
    c, clean = str(tmp_path / "c"), str(tmp_path / "imagenet")
    data = ImageNetCDataModule(root=c, corruptions=["fog", "snow"], clean_root=clean, image_size=32)
    assert data.num_classes == 3 and data.reference is not None
    data.setup("test")
    assert len(data.test_set) == 2 * 5 * 2 and data.corruption_groups[5] == ("snow", 1)
    image, label, group = data.test_set[5 * 2 + 1]
    assert image.shape == (3, 32, 32) and label == 2 and group == 5
    assert ImageNetCDataModule(root=str(tmp_path / "c"), corruptions=["fog"]).classes == list(CLASSES[1:])


def _test(root, *extra):
    return ["test", *TINY_MODEL, *CPU, *EAGER, "--data", "bam_lightning.data.ImageNetCDataModule",
            "--data.root", str(root / "c"), "--data.corruptions", "[fog, snow]", "--data.num_workers", "0",
            "--data.image_size", "32", "--trainer.default_root_dir", str(root / "runs"), *extra]  # fmt: skip


@pytest.fixture
def tree(tmp_path):
    write_image_folder(tmp_path / "imagenet", classes=2, per_class=1)
    write_imagenet_c(tmp_path / "c", classes=CLASSES[:2])
    return tmp_path


def test_a_missing_severity_folder_and_a_class_the_clean_data_lacks_are_one_line_each(tree, capsys):
    shutil.rmtree(tree / "c" / "snow" / "3")
    line = one_line_error(_test(tree), capsys)
    assert line.startswith(f"bam: error: ImageNet-C under {tree / 'c'} has no severity folder {tree / 'c' / 'snow' / '3'}")
    (tree / "c" / "fog" / "2" / "n09999999").mkdir()
    line = one_line_error(_test(tree, "--data.clean_root", str(tree / "imagenet"), "--data.severities", "[2]"), capsys)
    assert line == (
        f"bam: error: {tree / 'c' / 'fog' / '2' / 'n09999999'} is not a class of {tree / 'imagenet'}/train:"
        " the tree must hold the clean ImageNet's classes"
    )
    line = one_line_error(_test(tree, "--data.corruptions", "[frog]"), capsys)
    assert f"has no folder {tree / 'c' / 'frog'} (did you mean 'fog'?): it holds fog, snow" in line


def test_a_test_on_it_gives_the_mce_and_the_relative_mce_only_with_a_clean_error(tmp_path, capsys):
    write_imagenet_c(tmp_path / "c", corruptions=("fog", "spatter"), classes=CLASSES[:2])
    model = tiny_classifier(num_classes=2)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    results = {}
    for clean in (None, 10.0):
        data = ImageNetCDataModule(root=str(tmp_path / "c"), corruptions=["fog", "spatter"], clean_err1=clean, image_size=32)
        (results[clean],) = trainer.test(model, datamodule=data, verbose=False)
    fog = [results[None][f"test/corruption/fog/s{s}/err1"] for s in range(1, 6)]
    assert results[None]["test/corruption/mce"] == pytest.approx(100 * sum(fog) / sum(ALEXNET.errors["fog"]))
    assert "relative_mce" not in " ".join(results[None])
    assert "bam: warning: no clean test/err1 logged in this run (no logger): relative mCE skipped" in capsys.readouterr().err
    rise = sum(ALEXNET.errors["fog"]) - 5 * ALEXNET.clean_err1
    assert results[10.0]["test/corruption/relative_mce"] == pytest.approx(100 * (sum(fog) - 50) / rise)
    assert not any(key.startswith("test/") and "corruption" not in key for key in results[10.0])
