"""CIFAR-C test data in the published format, the benchmark's summary arithmetic, and each bad input's one line."""

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from bam_lightning.data.corruptions import (
    ALEXNET,
    CIFAR10CDataModule,
    CIFAR100CDataModule,
    corruption_summary,
    corruption_table,
)

from helpers.cli_args import CPU, EAGER, TINY_MODEL
from helpers.command import one_line_error
from helpers.datasets import write_cifar_c


def test_a_published_folder_reads_group_after_group_with_each_severity_from_its_block(tmp_path):
    folder = write_cifar_c(tmp_path, per_severity=4)
    data = CIFAR100CDataModule(root=str(tmp_path), corruptions=["snow", "fog"], severities=[4, 2], download=False)
    data.setup("test")
    data.test_set.transform = T.PILToTensor()  # the raw pixels, to find them in the files
    assert data.corruption_groups == [("snow", 2), ("snow", 4), ("fog", 2), ("fog", 4)]
    assert len(data.test_set) == 16
    snow, fog, labels = (np.load(folder / f"{name}.npy") for name in ("snow", "fog", "labels"))
    image, label, group = data.test_set[1 * 4 + 3]  # snow at severity 4, the 4th image of its block
    assert group == 1 and label == labels[3 * 4 + 3]
    assert torch.equal(image, torch.from_numpy(snow[3 * 4 + 3]).permute(2, 0, 1))
    image, label, group = data.test_set[2 * 4]  # fog at severity 2, the first of its block
    assert group == 2 and torch.equal(image, torch.from_numpy(fog[4]).permute(2, 0, 1)) and label == labels[4]


def test_every_published_corruption_by_default_and_the_clean_normalisation():
    data = CIFAR10CDataModule(download=False)
    assert len(data.corruptions) == 19 and data.severities == [1, 2, 3, 4, 5]
    assert data.num_classes == 10 and data.eval_transform.transforms[-1].mean == (0.4914, 0.4822, 0.4465)


def test_the_mean_takes_the_benchmark_corruptions_and_the_mce_alexnets_errors_over_the_same_severities():
    errors = {("gaussian_noise", 1): 50.0, ("gaussian_noise", 2): 60.0, ("fog", 1): 30.0, ("speckle_noise", 1): 90.0}
    summary = corruption_summary(errors, ALEXNET, clean_err1=20.0)
    assert summary["gaussian_noise/s2/err1"] == 60 and summary["gaussian_noise/err1"] == 55
    assert summary["speckle_noise/err1"] == 90 and summary["mean_err1"] == pytest.approx(42.5)  # extra: not in the mean
    gaussian, fog = 100 * 110 / (69.528 + 82.542), 100 * 30 / 67.474
    assert summary["mce"] == pytest.approx((gaussian + fog) / 2)
    gaussian, fog = 100 * (30 + 40) / (69.528 - 43.5 + 82.542 - 43.5), 100 * 10 / (67.474 - 43.5)
    assert summary["relative_mce"] == pytest.approx((gaussian + fog) / 2)
    assert "mce" not in corruption_summary(errors)  # CIFAR-C: no reference
    assert "relative_mce" not in corruption_summary(errors, ALEXNET)
    other = corruption_summary({("smudge", 1): 10.0, ("ink", 1): 20.0, ("ink", 2): 40.0})
    assert other["mean_err1"] == pytest.approx((10 + 30) / 2)  # no benchmark name: every corruption


def test_the_printed_table_has_a_row_per_corruption_and_a_column_per_severity():
    table = corruption_table({("fog", 1): 10.0, ("fog", 2): 20.0, ("snow", 1): 5.5, ("snow", 2): 6.5})
    assert table.splitlines() == [
        "corruption      s1      s2    mean",
        "fog          10.00   20.00   15.00",
        "snow          5.50    6.50    6.00",
    ]


def _test(root, *extra):
    return ["test", *TINY_MODEL, *CPU, *EAGER, "--data", "bam_lightning.data.CIFAR100CDataModule",
            "--data.root", str(root), "--data.download", "false", "--data.num_workers", "0",
            "--trainer.default_root_dir", str(root / "runs"), *extra]  # fmt: skip


@pytest.fixture
def published(tmp_path):
    write_cifar_c(tmp_path, corruptions=("fog", "snow"))
    return tmp_path


def test_a_corruption_the_folder_lacks_is_named_with_the_nearest(published, capsys):
    line = one_line_error(_test(published, "--data.corruptions", "[snow, fogg]"), capsys)
    assert line == (
        f"bam: error: CIFAR-100-C has no {published}/CIFAR-100-C/fogg.npy (did you mean 'fog'?): it holds fog, snow;"
        " pass --data.corruptions with those to test"
    )
    line = one_line_error(_test(published), capsys)  # the default: all 19 published ones
    assert f"has no {published}/CIFAR-100-C/gaussian_noise.npy: it holds fog, snow" in line


def test_a_wrong_shape_or_dtype_and_labels_of_another_count_are_one_line_each(published, capsys):
    folder = published / "CIFAR-100-C"
    np.save(folder / "fog.npy", np.zeros((20, 32, 32), np.uint8))
    line = one_line_error(_test(published, "--data.corruptions", "[fog]"), capsys)
    assert "fog.npy holds uint8 of shape (20, 32, 32), not uint8 images of 20 x 32 x 32 x 3" in line
    np.save(folder / "fog.npy", np.zeros((20, 32, 32, 3), np.float32))
    assert "holds float32" in one_line_error(_test(published, "--data.corruptions", "[fog]"), capsys)
    np.save(folder / "labels.npy", np.zeros(15, np.int64))
    line = one_line_error(_test(published, "--data.corruptions", "[snow]"), capsys)
    assert "snow.npy holds 20 images and labels.npy 15 labels" in line


def test_a_severity_outside_1_to_5_a_missing_folder_and_a_fit_are_refused(published, capsys):
    line = one_line_error(_test(published, "--data.severities", "[0, 3]"), capsys)
    assert line == "bam: error: --data.severities [0, 3]: 0 is no severity; they are 1 to 5"
    line = one_line_error(_test(published / "nowhere"), capsys)
    assert "CIFAR-100-C not found: no" in line and "--data.download true" in line
    fit = ["fit", *_test(published)[1:]]
    assert "CIFAR-100-C holds test images only: run bam test" in one_line_error(fit, capsys)
