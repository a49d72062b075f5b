import pytest
import torch

from bam_lightning import create_model
from bam_lightning.models.attention_maps import capture_attention, overlay, rescale
from bam_lightning.nn import BAM, BAMS, OfficialBAM, attention_blocks

TINY = {"depth": 10, "widen_factor": 1}  # WRN-10-1: BAM after layer1 (16 ch, 16x16) and layer2 (32 ch, 8x8) at 16 px


def bam_inputs(model, images):
    """What each BAM received, recorded independently of capture_attention."""
    seen = {}
    handles = [
        m.register_forward_pre_hook(lambda m, a, n=n: seen.setdefault(n, a[0].clone())) for n, m in attention_blocks(model, BAMS)
    ]
    with torch.no_grad():
        model.eval()(images)
    for handle in handles:
        handle.remove()
    return seen


@pytest.mark.parametrize("attention,cls", [("bam", BAM), ("bam_official", OfficialBAM)])
def test_one_map_per_bam_shaped_like_its_input(attention, cls):
    model = create_model("wrn", 4, attention, **TINY)
    images = torch.randn(3, 3, 16, 16)
    maps = capture_attention(model.train(), images)
    assert model.training
    assert [m.name for m in maps] == ["layer1.attn", "layer2.attn"]
    assert all(isinstance(module, cls) for _, module in attention_blocks(model, BAMS))
    inputs = bam_inputs(model, images)
    for m in maps:
        n, c, h, w = inputs[m.name].shape
        assert m.spatial.shape == (n, h, w) and m.channel.shape == (n, c)
        for summary in (m.spatial, m.channel):
            assert ((summary > 0) & (summary < 1)).all()
    bam = model.get_submodule("layer2.attn")
    attention_map = bam.attention(inputs["layer2.attn"])
    torch.testing.assert_close(maps[1].spatial, attention_map.mean(dim=1))
    torch.testing.assert_close(maps[1].channel, attention_map.mean(dim=(2, 3)))


def test_eval_model_stays_in_eval_and_no_hook_is_left():
    model = create_model("wrn", 4, "bam", **TINY).eval()
    capture_attention(model, torch.randn(2, 3, 16, 16))
    assert not model.training
    assert all(not module._forward_pre_hooks for _, module in attention_blocks(model, BAMS))


def test_a_bam_with_one_branch_still_gives_both_summaries():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), BAM(8, reduction=2, use_spatial=False))
    (m,) = capture_attention(model, torch.randn(2, 3, 10, 10))
    assert m.name == "1" and m.spatial.shape == (2, 8, 8) and m.channel.shape == (2, 8)


def test_a_model_without_bam_gives_no_map():
    assert capture_attention(create_model("wrn", 4, "se", **TINY), torch.randn(1, 3, 16, 16)) == []


def test_overlay_upsamples_and_blends_within_the_image_range():
    images = torch.rand(2, 3, 20, 24)
    maps = rescale(torch.randn(2, 5, 6))
    assert maps.amin(dim=(1, 2)).tolist() == [0, 0] and maps.amax(dim=(1, 2)).tolist() == [1, 1]
    blended = overlay(images, maps, alpha=0.5)
    assert blended.shape == images.shape and 0 <= blended.min() and blended.max() <= 1
    torch.testing.assert_close(overlay(images, maps, alpha=0.0), images)
