import re

import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.nn import ATTENTION_LAYERS, BAM, CBAM, OfficialBAM, SqueezeExcite, create_attn, get_attn


def test_names_map_to_their_blocks():
    assert get_attn("bam") is BAM
    assert get_attn("bam_official") is OfficialBAM
    assert get_attn("se") is SqueezeExcite
    assert get_attn("cbam") is CBAM
    assert get_attn(None) is None and get_attn("none") is None
    assert create_attn(None, 64) is None


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown attention 'bma'.*bam, bam_official, cbam, se"):
        create_attn("bma", 64)
    with pytest.raises(ValueError, match=r"unknown attention 'timm/ecaa' \(did you mean 'timm/eca'\?\): choose one of"):
        create_attn("timm/ecaa", 64)


def test_options_reach_the_block():
    assert create_attn("bam", 64, reduction=8).channel.mlp[0].out_features == 8
    assert create_attn("se", 64, reduction=4).fc1.out_channels == 16
    assert create_attn("cbam", 64, kernel_size=3).spatial.conv.kernel_size == (3, 3)


@pytest.mark.parametrize("name", sorted(ATTENTION_LAYERS))
@pytest.mark.parametrize("shape", [(1, 48, 5, 7), (3, 48, 1, 1)])
def test_every_block_keeps_the_shape_in_training_and_eval(name, shape):
    block = create_attn(name, shape[1])
    x = torch.randn(shape)
    for training in (True, False):
        block.train(training)
        out = block(x)
        assert out.shape == shape and torch.isfinite(out).all()


def test_squeeze_excite_is_a_channel_gate():
    se = SqueezeExcite(64).eval()
    x = torch.randn(2, 64, 6, 6)
    scale = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * scale)
    assert sum(p.numel() for p in se.parameters()) == 64 * 4 + 4 + 4 * 64 + 64


def test_cbam_applies_channel_then_spatial_gate():
    cbam = CBAM(64).eval()
    x = torch.randn(2, 64, 6, 6)
    mlp = cbam.channel.mlp
    after_channel = x * torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))[:, :, None, None]
    pooled = torch.cat([after_channel.amax(1, keepdim=True), after_channel.mean(1, keepdim=True)], 1)
    expected = after_channel * torch.sigmoid(cbam.spatial.bn(cbam.spatial.conv(pooled)))
    torch.testing.assert_close(cbam(x), expected)


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("bam", {"reduction": 0}, "reduction must be 1 or more"),
        ("bam_official", {"dilation": 0}, "dilation must be 1 or more"),
        ("se", {"reduction": -1}, "reduction must be 1 or more"),
        ("cbam", {"kernel_size": 4}, "kernel_size must be odd"),
    ],
)
def test_meaningless_options_are_refused_when_the_block_is_built(name, options, message):
    with pytest.raises(InputError, match=message):
        create_attn(name, 64, **options)


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("bam", {"reductoin": 8}, "attention bam has no option 'reductoin' (did you mean 'reduction'?): its attention"),
        ("se", {"dilation": 4}, "attention se has no option 'dilation': its attention_kwargs are reduction"),
        ("cbam", {"kernel": 7}, "(did you mean 'kernel_size'?)"),
    ],
)
def test_a_misspelt_option_is_named_with_the_nearest_one(name, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        create_attn(name, 64, **options)
