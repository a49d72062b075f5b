"""timm's attention blocks by name (``timm/<name>``), at BAM's places, as the outside baselines."""

import sys

import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.nn import attention_blocks, create_attn, create_attns
from bam_lightning.nn.timm_attention import TIMM_ATTENTION, TimmAttention

from helpers.cli_args import cifar_args
from helpers.command import bam, refusal
from helpers.datasets import write_cifar100


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


def test_an_option_the_block_ignores_at_every_width_is_refused_and_says_what_it_does_instead():
    # timm's ECA computes its kernel from the channel count whenever it has one: kernel_size=7 would be saved, not used.
    with pytest.raises(InputError, match=r"timm/eca: attention_kwargs kernel_size=7 changes nothing at 16, 32 channels "
                       r"\(it sizes its kernel from the channel count, .*: set gamma or beta\): remove it"):  # fmt: skip
        tiny("timm/eca", kernel_size=7)
    with pytest.raises(InputError, match=r"rd_ratio=0.5 changes nothing at 16 channels \(timm's EcaModule builds the same"):
        create_attn("timm/eca", 16, rd_ratio=0.5)  # the ratio of an MLP ECA does not have without use_mlp
    assert tiny("timm/eca", gamma=1).get_submodule("layer2.attn.block.conv").kernel_size == (7,)  # what acts is kept


def test_an_option_that_acts_at_one_width_only_is_kept():
    # SE's hidden width rounds to 8: rd_ratio 0.5 gives 8 at 16 channels, as the default does, but 16 at 32 channels.
    with pytest.raises(InputError, match=r"rd_ratio=0.5 changes nothing at 16 channels"):
        create_attn("timm/se", 16, rd_ratio=0.5)
    assert tiny("timm/se", rd_ratio=0.5).get_submodule("layer1.attn.block.fc1").out_channels == 8
    # A block that starts as the identity (its last norm at zero) still has options that act: use_scale scales its product.
    create_attn("timm/nl", 16, use_scale=False)


def test_the_check_leaves_the_models_random_numbers_as_they_were():
    torch.manual_seed(0)
    create_attns("timm/eca", [16, 32], gamma=1)
    checked = torch.get_rng_state()
    torch.manual_seed(0)
    [TimmAttention(width, "eca", gamma=1) for width in (16, 32)]
    assert torch.equal(checked, torch.get_rng_state())


def test_options_the_block_fails_on_are_one_line():
    with pytest.raises(InputError, match=r"timm/cbam with \{'spatial_kernel_size': 6\}: timm's block fails on a 16-channel "
                       r"map: RuntimeError: The size of tensor a"):  # fmt: skip
        create_attn("timm/cbam", 16, spatial_kernel_size=6)


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
    runs = len(list(tmp_path.glob("**/config.yaml")))
    eca = cifar_args(tmp_path, "--model.attention", "timm/eca", "--model.attention_kwargs", "{kernel_size: 7}")
    line = refusal(bam("fit", *eca, cwd=tmp_path, check=False))
    assert "attention timm/eca: attention_kwargs kernel_size=7 changes nothing at" in line, line
    assert len(list(tmp_path.glob("**/config.yaml"))) == runs, "the refused run saved a config as if it had run"
