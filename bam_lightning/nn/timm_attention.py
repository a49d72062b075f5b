"""timm's attention blocks by name (``timm/<name>``): the outside baselines BAM is compared with (the ``timm`` extra)."""

from typing import Any

from torch import Tensor, nn

from ..errors import InputError, check_options

# The names timm.layers.get_attn builds for a 4-D map that keep its shape, each at its defaults on any width
# (ge at DEFAULTS'). Left out: bat (needs its block size) and the conv replacements (sk, splat, lambda, bottleneck,
# halo), which change a map's shape.
TIMM_ATTENTION = ("se", "ese", "eca", "ecam", "ceca", "gc", "gca", "ge", "cbam", "lcbam", "coord", "scoord", "ela", "strip", "nl")
# timm 1.0's GatherExcite fails with its MLP (ConvMlp is handed act_layer twice), so timm/ge is Hu et al.'s
# parameter-free GE-θ⁻ (global gather, no MLP) unless attention_kwargs ask for more.
DEFAULTS = {"ge": {"use_mlp": False}}


class TimmAttention(nn.Module):
    """timm's block ``name`` inside a class of ours, so that scans for the blocks we inserted find it (and not the
    SE or CBAM modules a timm backbone has of its own)."""

    def __init__(self, channels: int, name: str, **kwargs: Any) -> None:
        super().__init__()
        try:
            from timm.layers import get_attn
        except ImportError:
            raise InputError(f"attention timm/{name} needs timm: pip install 'bam_lightning[timm]'") from None
        block = get_attn(name)
        check_options(f"attention timm/{name}", block, kwargs, fixed=1, flag="attention_kwargs")
        kwargs = DEFAULTS.get(name, {}) | kwargs
        try:
            self.block = block(channels, **kwargs)
        except TypeError as error:  # timm's own failure for options it takes (ge's use_mlp in timm 1.0)
            raise InputError(f"attention timm/{name} with {kwargs}: timm's block fails to build: {error}") from None

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)
