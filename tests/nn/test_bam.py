import pytest
import torch
from torch import nn

from bam_lightning.errors import InputError
from bam_lightning.nn import BAM, CBAM, OfficialBAM, SqueezeExcite
from bam_lightning.nn.bam import SpatialGate, dilation_past_the_map
from bam_lightning.nn.bam_official import OfficialSpatialGate
from bam_lightning.paper.reference import load_reference


def branch_outputs(bam, x):
    return bam.channel(x), bam.spatial(x)


@pytest.mark.parametrize("shape", [(2, 64, 8, 8), (3, 64, 7, 13), (2, 32, 1, 1), (2, 8, 5, 3)])
@pytest.mark.parametrize("cls", [BAM, OfficialBAM])
def test_shape_kept_on_square_non_square_and_tiny_maps(cls, shape):
    bam = cls(shape[1], reduction=min(16, shape[1]))  # 8 channels take r = 8 at most
    for training in (True, False):
        bam.train(training)
        out = bam(torch.randn(shape))
        assert out.shape == shape
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", [BAM, OfficialBAM])
def test_training_batch_of_one_uses_running_statistics(cls):
    bam = cls(64).train()
    norms = [m for m in bam.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    before = [m.running_mean.clone() for m in norms]
    out = bam(torch.randn(1, 64, 6, 9))
    assert out.shape == (1, 64, 6, 9) and torch.isfinite(out).all()
    # The channel MLP's norms saw one value per channel: they must not have learnt from it.
    mlp_norms = [i for i, m in enumerate(norms) if isinstance(m, nn.BatchNorm1d)]
    assert mlp_norms
    for i in mlp_norms:
        torch.testing.assert_close(norms[i].running_mean, before[i], rtol=0, atol=0)


@pytest.mark.parametrize("combine,op", [("sum", torch.add), ("prod", torch.mul), ("max", torch.maximum)])
def test_refinement_is_the_papers_equation(combine, op):
    bam = BAM(64, combine=combine).eval()
    x = torch.randn(2, 64, 9, 9)
    channel, spatial = branch_outputs(bam, x)
    assert channel.shape == (2, 64, 1, 1) and spatial.shape == (2, 1, 9, 9)
    expected = x + x * torch.sigmoid(op(channel, spatial))
    torch.testing.assert_close(bam(x), expected)


def test_official_refinement_is_one_plus_sigmoid_of_the_product():
    bam = OfficialBAM(64).eval()
    x = torch.randn(2, 64, 9, 9)
    channel, spatial = bam.channel_att(x), bam.spatial_att(x)
    torch.testing.assert_close(bam(x), (1 + torch.sigmoid(channel * spatial)) * x)


@pytest.mark.parametrize("cls", [BAM, OfficialBAM])
def test_attention_map_is_what_forward_applies(cls):
    bam = cls(32).eval()
    x = torch.randn(2, 32, 7, 5)
    m = bam.attention(x)
    assert m.shape == (2, 32, 7, 5) and ((m > 0) & (m < 1)).all()
    torch.testing.assert_close(bam(x), x * (1 + m))


def test_output_lies_between_input_and_twice_input():
    """M(F) is a sigmoid, so F' = F (1 + M) sits strictly between F and 2F for F > 0."""
    bam = BAM(32).eval()
    x = torch.rand(2, 32, 8, 8) + 0.1
    out = bam(x)
    assert (out > x).all() and (out < 2 * x).all()


def test_zero_branches_scale_the_map_by_exactly_one_and_a_half():
    bam = BAM(32).eval()
    for final_norm in (bam.channel.mlp[-1], bam.spatial.body[-1]):
        nn.init.zeros_(final_norm.weight)
        nn.init.zeros_(final_norm.bias)
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(bam(x), 1.5 * x)


@pytest.mark.parametrize("cls", [BAM, OfficialBAM])
def test_gradient_reaches_every_parameter_of_both_branches(cls):
    bam = cls(64).train()
    x = torch.randn(4, 64, 8, 8, requires_grad=True)
    (bam(x) * torch.randn(4, 64, 8, 8)).sum().backward()
    for name, p in bam.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_single_branch_ablations():
    x = torch.randn(2, 32, 8, 8)
    channel_only = BAM(32, use_spatial=False).eval()
    assert channel_only.spatial is None
    torch.testing.assert_close(channel_only(x), x * (1 + torch.sigmoid(channel_only.channel(x))))
    spatial_only = BAM(32, use_channel=False).eval()
    assert spatial_only.channel is None
    torch.testing.assert_close(spatial_only(x), x * (1 + torch.sigmoid(spatial_only.spatial(x))))
    with pytest.raises(ValueError, match="at least one branch"):
        BAM(32, use_channel=False, use_spatial=False)
    with pytest.raises(ValueError, match="combine must be one of 'sum', 'prod', 'max', got 'mean'"):
        BAM(32, combine="mean")


def test_reduction_dilation_and_depth_are_configurable():
    bam = BAM(64, reduction=8, dilation=2, num_dilated=3)
    convs = [m for m in bam.spatial.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 8, 8, 1]
    assert [c.dilation for c in convs[1:-1]] == [(2, 2)] * 3
    assert [c.padding for c in convs[1:-1]] == [(2, 2)] * 3
    assert bam.channel.mlp[0].out_features == 8
    assert BAM(8, reduction=8).channel.mlp[0].out_features == 1  # r up to the channel count: one hidden channel


def test_paper_bam_parameter_count():
    """C=256, r=16: MLP 256*16 + 16*256, BN 2*16 + 2*256; spatial 256*16 + 2*16*16*9 + 16, BN 3*2*16 + 2."""
    expected = (256 * 16 + 16 * 256 + 2 * 16 + 2 * 256) + (256 * 16 + 2 * 16 * 16 * 9 + 16 + 3 * 2 * 16 + 2)
    assert sum(p.numel() for p in BAM(256).parameters()) == expected


def test_official_bam_has_the_public_codes_keys_and_shapes():
    reference = load_reference("official_resnet50_bam_state_dict")["state_dict_shapes"]
    for index, channels in ((1, 256), (2, 512), (3, 1024)):
        prefix = f"bam{index}."
        expected = {k[len(prefix) :]: tuple(v) for k, v in reference.items() if k.startswith(prefix)}
        ours = {k: tuple(v.shape) for k, v in OfficialBAM(channels).state_dict().items()}
        assert ours == expected


@pytest.mark.parametrize("cls", [BAM, OfficialBAM, SqueezeExcite, CBAM])
def test_a_reduction_above_the_channel_count_is_refused_naming_the_largest_allowed(cls):
    """Not clamped to one hidden channel in silence: that would be another block than the one asked for."""
    with pytest.raises(InputError) as caught:
        cls(16, reduction=64)
    assert str(caught.value) == (
        "reduction 64 is larger than the 16 channels of the map an attention block attends to, so its hidden layer"
        " would have under one channel: it can be at most 16"
    )
    with pytest.raises(InputError, match="reduction 17 is larger than the 16 channels"):
        cls(16, reduction=17)
    cls(16, reduction=16)  # the largest allowed: one hidden channel


@pytest.mark.parametrize("cls", [SpatialGate, OfficialSpatialGate])
def test_spatial_gates_keep_their_dilation_for_the_map_size_check(cls):
    assert cls(32, dilation=6).dilation == 6
    assert cls(32, dilation=6, num_dilated=0).dilation is None  # no dilated conv: nothing to reach past the map


def test_a_dilation_past_the_map_is_found_for_every_block_it_reaches_past():
    assert dilation_past_the_map({"layer1.attn": (4, (16, 16)), "layer2.attn": (4, (8, 5))}) == {}
    past = dilation_past_the_map({"layer1.attn": (4, (8, 8)), "layer2.attn": (4, (4, 6)), "layer3.attn": (4, (2, 2))})
    assert past == {"layer2.attn": (4, (4, 6)), "layer3.attn": (4, (2, 2))}  # 4 < 8: layer1's convs still reach inside
