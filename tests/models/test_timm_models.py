"""timm's models as backbones (``timm/<name>``): BAM at their bottlenecks, one line where there is none."""

import sys

import pytest
import timm
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import count_parameters, create_model, get_model_entry, list_models
from bam_lightning.nn import BAM

from helpers.cli_args import cifar_args
from helpers.command import bam, one_line_error, refusal
from helpers.datasets import write_cifar100
from helpers.scalars import scalars

# after every stage whose output the next one downsamples, the stem and the last stage excluded.
EXPECTED = {
    "convnext_tiny": [96, 192, 384],
    "regnety_016": [48, 120, 336],
    "efficientnet_b0": [16, 24, 40, 112],  # its fourth and fifth stages share a map size: one BAM after the fifth
    "resnet50d": [256, 512, 1024],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_timm_model_gets_bam_at_each_bottleneck(name):
    model = create_model(f"timm/{name}", num_classes=7)
    plain = timm.create_model(name, num_classes=7)
    bams = [m for m in model.modules() if isinstance(m, BAM)]
    assert [b.channel.mlp[0].in_features for b in bams] == EXPECTED[name]
    assert set(EXPECTED[name]) <= {info["num_chs"] for info in plain.feature_info}
    assert count_parameters(model) == count_parameters(plain) + sum(count_parameters(b) for b in bams)
    assert get_model_entry(f"timm/{name}").input_size == 224
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_timm_names_are_not_listed_as_ours():
    assert not any(name.startswith("timm/") for name in list_models())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("vit_tiny_patch16_224", "no bottleneck found in VisionTransformer at input size 224"),
        ("swin_tiny_patch4_window7_224", "(its maps are channels-last, N x H x W x C)"),
        ("resnet10", "timm has no model 'resnet10' (did you mean timm/resnet10t"),
    ],
)
def test_a_timm_model_without_a_bottleneck_or_of_no_such_name_is_one_line(name, message):
    with pytest.raises(InputError) as error:
        create_model(f"timm/{name}", num_classes=7)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_timm_model_without_a_bottleneck_still_trains_without_attention():
    model = create_model("timm/vit_tiny_patch16_224", num_classes=7, attention=None)
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 7)


def test_without_timm_the_error_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # what an environment without it gives: ImportError
    message = one_line_error(["summary", "--model", "timm/resnet10t"], capsys)
    assert 'needs timm: pip install "bam_lightning[timm]"' in message


def test_timm_options_pass_through_and_a_wrong_one_is_one_line(capsys):
    assert create_model("timm/resnet10t", 3, drop_rate=0.5).drop_rate == 0.5
    message = one_line_error(["summary", "--model", "timm/resnet10t", "--backbone_kwargs", "{depthh: 3}"], capsys)
    assert "timm/resnet10t: backbone_kwargs {'depthh': 3} not taken" in message


@pytest.mark.long
def test_fit_and_test_a_timm_backbone_on_cifar_files(tmp_path):
    """The real command end to end: ResNet-10-T from timm with BAM, on CIFAR-100 in its pickled format."""
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    args = cifar_args(tmp_path, "--model.backbone", "timm/resnet10t", "--model.backbone_kwargs", "{}")
    bam("fit", *args, "--trainer.max_epochs", "1", cwd=tmp_path)
    run = next((tmp_path / "runs" / "lightning_logs").glob("version_*"))
    assert {"train/loss", "val/acc1"} <= set(scalars(run))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["backbone"] == "timm/resnet10t"
    assert sum(key.endswith(".spatial.body.0.weight") for key in checkpoint["state_dict"]) == 3
    result = bam("test", *args, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), cwd=tmp_path)
    assert "test/acc1" in result.stdout
    summary = bam("summary", "--model", "timm/resnet10t", "--format", "csv", cwd=tmp_path).stdout.splitlines()
    row = dict(zip(summary[0].split(","), summary[1].split(","), strict=True))
    plain, with_bam = timm.create_model("resnet10t"), create_model("timm/resnet10t", 1000)
    assert float(row["params (M)"]) == pytest.approx(count_parameters(plain) / 1e6, abs=5e-4)
    assert float(row["+att params (M)"]) == pytest.approx(count_parameters(with_bam) / 1e6, abs=5e-4)
    for wrong, message in [("timm/resnet10", "did you mean timm/resnet10t"), ("timm/vit_tiny_patch16_224", "no bottleneck")]:
        result = bam("fit", *args, "--model.backbone", wrong, cwd=tmp_path, check=False)
        assert message in refusal(result)
