"""timm's attention blocks by name (``timm/<name>``), at BAM's places, as the outside baselines."""

import sys

import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.nn import attention_blocks, create_attn
from bam_lightning.nn.timm_attention import TIMM_ATTENTION, TimmAttention

from command import bam, refusal
from datasets import write_cifar100
from test_cli import cifar_args


def tiny(attention: str | None, **kwargs) -> torch.nn.Module:
    return create_model("wrn", 10, attention, attention_kwargs=kwargs or None, depth=10, widen_factor=1)


@pytest.mark.parametrize("name", TIMM_ATTENTION)
def test_each_block_sits_at_the_bottlenecks_and_keeps_the_maps_shape(name):
    model = tiny(f"timm/{name}")
    blocks = attention_blocks(model)
    assert [type(block) for _, block in blocks] == [TimmAttention, TimmAttention]  # after layer1 and layer2
    x = torch.randn(2, 32, 16, 16)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10) and create_attn(f"timm/{name}", 32)(x).shape == x.shape


def test_attention_kwargs_reach_timms_block_and_a_wrong_one_is_named():
    assert tiny("timm/se", rd_ratio=0.5).get_submodule("layer2.attn.block.fc1").out_channels == 16  # 32 channels x 0.5
    with pytest.raises(InputError, match=r"attention timm/eca has no option 'kernel' \(did you mean 'kernel_size'\?\)"):
        tiny("timm/eca", kernel=5)


def test_ge_is_the_parameter_free_form_and_timms_broken_mlp_form_is_one_line():
    assert sum(p.numel() for p in create_attn("timm/ge", 32).parameters()) == 0  # GE-θ⁻: a global gather, no MLP
    with pytest.raises(InputError, match=r"attention timm/ge with \{'use_mlp': True\}: timm's block fails to build"):
        create_attn("timm/ge", 32, use_mlp=True)


def test_without_timm_one_line_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm.layers", None)
    with pytest.raises(InputError, match=r"attention timm/eca needs timm: pip install 'bam_lightning\[timm\]'"):
        create_attn("timm/eca", 32)


def test_bam_fit_trains_with_one_and_refuses_an_unknown_name(tmp_path):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    bam("fit", *cifar_args(tmp_path, "--model.attention", "timm/eca", "--trainer.max_epochs", "1"), cwd=tmp_path)
    line = refusal(bam("fit", *cifar_args(tmp_path, "--model.attention", "timm/ecaa"), cwd=tmp_path, check=False))
    assert "model.attention" in line and "timm/ecaa" in line and "timm/eca" in line, line
    ge = cifar_args(tmp_path, "--model.attention", "timm/ge", "--model.attention_kwargs", "{use_mlp: true}")
    line = refusal(bam("fit", *ge, cwd=tmp_path, check=False))
    assert "attention timm/ge with {'use_mlp': True}: timm's block fails to build" in line, line
