"""Inputs that used to run as nonsense or end in a traceback: each is refused, or warned about, in one line.

A train folder of one class (torchmetrics' traceback about num_classes), a reduction above the
channel count (clamped to one hidden channel in silence), an image smaller than the network's
downsampling (a padded run on one-pixel maps) and a dilation past the map BAM sees (its dilated
convs read zero padding; a warning, since the block still works).
"""

from pathlib import Path

import pytest
import torch
from torch import nn

from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.models.probe import total_stride

from helpers.classifier import tiny_classifier
from helpers.cli_args import CPU
from helpers.command import bam
from helpers.datasets import write_image_folder

CONFIGS = Path(__file__).parents[2] / "configs"
DEMO = ["--config", str(CONFIGS / "demo_digits.yaml")]  # WRN-10-1 + BAM after layer1 (32x32) and layer2 (16x16) at 32 px


@pytest.mark.parametrize(
    "name, stride",
    [("wrn", 4), ("cifar_resnet18", 8), ("resnet18", 32), ("mobilenet_v1", 32), ("squeezenet1_1", 16)],
)
def test_total_stride_is_read_off_the_smallest_map(name, stride):
    with torch.device("meta"):  # total_stride probes on the meta device anyway: no weights needed
        model = create_model(name, 10, attention="se")  # SE's 1x1 convs on the pooled descriptor do not count
    assert total_stride(model) == stride


def test_a_network_the_meta_device_cannot_run_is_not_measured():
    class NeedsValues(nn.Module):
        def forward(self, x):
            return nn.functional.max_pool2d(x, 2) if x.sum().item() > 0 else x

    assert total_stride(NeedsValues()) == 1


@pytest.mark.parametrize("size", [1, 2, 3])
def test_an_image_smaller_than_the_downsampling_is_refused(size):
    """The probe at that size passes thanks to padding: only the stride shows the maps shrink to one pixel."""
    with pytest.raises(InputError) as caught:
        tiny_classifier().check_image_size(size)
    assert str(caught.value) == (
        f"wrn cannot take {size}x{size} images: it downsamples them 4x, so it needs at least 4x4: change --data.image_size"
    )


def test_a_dilation_past_the_map_is_one_warning_line_for_all_blocks(capsys):
    tiny_classifier().check_image_size(32)  # maps 32 and 16 for dilation 4: silent
    assert capsys.readouterr().err == ""
    tiny_classifier().check_image_size(4)  # maps 4 and 2
    err = capsys.readouterr().err
    assert err == (
        "bam: warning: BAM's dilated convs read only zero padding off-centre where the dilation is not below the map's"
        " side: layer1.attn (4x4 map, dilation 4), layer2.attn (2x2 map, dilation 4):"
        " give model.attention_kwargs {dilation: N} with N below 2, or a larger --data.image_size\n"
    )
    tiny_classifier(attention_kwargs={"num_dilated": 0}).check_image_size(4)  # no dilated conv: nothing to warn about
    assert capsys.readouterr().err == ""


def one_class(tmp_path: Path) -> list[str]:
    write_image_folder(tmp_path / "imagenet", classes=1, per_class=2)
    return [
        "--config", str(CONFIGS / "imagenet" / "resnet18_bam.yaml"), "--data.root", str(tmp_path / "imagenet"),
        "--data.image_size", "32", "--data.resize_size", "32", "--data.num_workers", "0", "--data.pin_memory", "false",
    ]  # fmt: skip


REFUSED = {
    "one class": (one_class, ["holds one class folder ('n00000000')", "/imagenet/train", "--data.root"]),
    "reduction": (
        lambda tmp_path: [*DEMO, "--model.attention_kwargs", "{reduction: 64}"],
        ["reduction 64", "16 channels", "at most 16"],
    ),
    "image size": (
        lambda tmp_path: [*DEMO, "--data.image_size", "2"],
        ["wrn cannot take 2x2 images", "downsamples them 4x", "at least 4x4", "--data.image_size"],
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_command_refuses_in_one_line_before_any_training(tmp_path, case):
    args, words = REFUSED[case]
    runs = tmp_path / "runs"
    result = bam("fit", *args(tmp_path), *CPU, "--trainer.default_root_dir", str(runs), cwd=tmp_path, check=False)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2, result.stderr[-2000:]
    assert last.startswith("bam: error: ") and all(word in last for word in words), last
    assert "Traceback" not in result.stderr
    assert not runs.exists()  # no run folder: nothing trained, no checkpoint


def test_the_command_warns_once_about_a_dilation_past_the_map(tmp_path):
    args = [*DEMO, *CPU, "--model.attention_kwargs", "{dilation: 16}", "--trainer.fast_dev_run", "true"]
    result = bam("fit", *args, "--trainer.default_root_dir", str(tmp_path / "runs"), cwd=tmp_path)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("bam: warning:")]
    assert len(warnings) == 1, result.stderr[-2000:]
    assert "layer2.attn (16x16 map, dilation 16)" in warnings[0] and "layer1.attn" not in warnings[0]
    assert "{dilation: N} with N below 16, or a larger --data.image_size" in warnings[0]
