"""Bottleneck Attention Module in the paper's form (Park et al., BMVC 2018, eq. 1-4).

``F' = F + F * M(F)`` with ``M(F) = sigmoid(Mc(F) + Ms(F))``: a channel branch (global
average pool, one-hidden-layer MLP) and a spatial branch (1x1 reduce, dilated 3x3 convs,
1x1 to one map), each ending in batch norm as the paper writes them. Layers followed by
batch norm carry no bias: the norm's shift makes it redundant.

``combine`` and the branch switches are the ablations of the paper's Table 1b; the
public code's product form with its own layer layout lives in ``bam_official.py``.
``fused`` (the default) applies the gate through ``fused.refine``, which keeps no
full-size intermediates; ``fused=False`` is the readable reference form below. The block
never compiles itself: that is the caller's choice.
"""

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import InputError
from .fused import refine
from .norm import BatchNorm1d, BatchNorm2d

_COMBINE = {"sum": torch.add, "prod": torch.mul, "max": torch.maximum}
Combine = Literal[tuple(_COMBINE)]  # type: ignore[valid-type]
Dilated = tuple[int, tuple[int, int]]  # a block's dilation and the (H, W) of its map


def hidden_channels(channels: int, reduction: int) -> int:
    """Width of both branches' hidden layers, ``channels // reduction``: one or more.

    A reduction above the channel count is refused, not rounded up to one hidden channel:
    that would be another block than the one asked for.
    """
    if reduction < 1:
        raise InputError(f"reduction must be 1 or more, got {reduction}")
    if reduction > channels:
        raise InputError(
            f"reduction {reduction} is larger than the {channels} channels of the map an attention block attends to,"
            f" so its hidden layer would have under one channel: it can be at most {channels}"
        )
    return channels // reduction


def check_dilation(dilation: int, num_dilated: int) -> None:
    """A dilation below one has no meaning for a conv; say so before the first forward does."""
    if dilation < 1 or num_dilated < 0:
        raise InputError(f"dilation must be 1 or more and num_dilated 0 or more, got {dilation} and {num_dilated}")


def dilation_past_the_map(blocks: Mapping[str, Dilated]) -> dict[str, Dilated]:
    """Those of ``blocks``, given as ``{name: (dilation, (H, W))}``, whose dilation reaches past their map.

    A 3x3 conv with dilation d (and padding d) reads its off-centre taps d pixels away: where
    d >= min(H, W) they fall outside the map in that direction, so the spatial branch sees only
    zero padding there and trains on nothing. The map's size comes from the image size, so the
    caller warns before a run; the block itself is not wrong.
    """
    return {name: (d, size) for name, (d, size) in blocks.items() if d >= min(size)}


def gate(channel: Tensor | None, spatial: Tensor | None, combine: Combine = "sum") -> Tensor:
    """``M(F) = sigmoid(a)``, ``a`` merging the (N,C,1,1) and (N,1,H,W) branch outputs."""
    if channel is None or spatial is None:
        a = channel if spatial is None else spatial
    else:
        a = _COMBINE[combine](channel, spatial)
    return torch.sigmoid(a)


class ChannelGate(nn.Module):
    """Mc: what to attend to, from the globally pooled descriptor."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            BatchNorm1d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x.mean(dim=(2, 3)))[:, :, None, None]


class SpatialGate(nn.Module):
    """Ms: where to attend, with dilated convs for a large receptive field at low cost."""

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4, num_dilated: int = 2) -> None:
        super().__init__()
        check_dilation(dilation, num_dilated)
        self.dilation = dilation if num_dilated else None  # for the check of the map size (ImageClassifier.check_image_size)
        hidden = hidden_channels(channels, reduction)
        layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 1, bias=False), BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        for _ in range(num_dilated):
            layers += [
                nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation, bias=False),
                BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Conv2d(hidden, 1, 1, bias=False), BatchNorm2d(1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class BAM(nn.Module):
    """The paper's BAM: ``x * (1 + sigmoid(Mc(x) + Ms(x)))``; defaults r=16, d=4, two dilated convs.

    Args:
        channels: C, the channels of the map it refines.
        reduction: r, both branches' hidden width is C // r (Table 1a).
        dilation: d of the spatial branch's 3x3 convs (Table 1a).
        num_dilated: how many dilated 3x3 convs the spatial branch has.
        combine: how the branches merge before the sigmoid: the paper's sum, or prod or max (Table 1b).
        use_channel: keep the channel branch Mc (Table 1b's branch ablation).
        use_spatial: keep the spatial branch Ms (Table 1b's branch ablation).
        fused: apply the gate through ``fused.refine``, which keeps no full-size intermediates; False computes
            it operator by operator (the reference form, and the only one for ``combine="max"``): the same result
            up to float rounding.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        dilation: int = 4,
        num_dilated: int = 2,
        combine: Combine = "sum",
        use_channel: bool = True,
        use_spatial: bool = True,
        fused: bool = True,
    ) -> None:
        super().__init__()
        if not (use_channel or use_spatial):
            raise InputError("BAM needs at least one branch: use_channel or use_spatial must be true")
        if combine not in _COMBINE:
            raise InputError(f"combine must be one of {', '.join(map(repr, _COMBINE))}, got {combine!r}")
        self.combine = combine
        self.fused = fused and combine != "max"
        self.channel = ChannelGate(channels, reduction) if use_channel else None
        self.spatial = SpatialGate(channels, reduction, dilation, num_dilated) if use_spatial else None

    def branches(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Mc(x) as (N,C,1,1) and Ms(x) as (N,1,H,W); None for a branch switched off."""
        channel = self.channel(x) if self.channel is not None else None
        spatial = self.spatial(x) if self.spatial is not None else None
        return channel, spatial

    def attention(self, x: Tensor) -> Tensor:
        """The attention map M(F), broadcastable to ``x`` (what the attention-map tools show)."""
        return gate(*self.branches(x), self.combine)

    def refined(self, x: Tensor) -> Tensor:
        """The fused form: ``refine`` keeps only x and the two branch outputs for backward."""
        return refine(x, *self.branches(x), prod=self.combine == "prod")

    def forward(self, x: Tensor) -> Tensor:
        if self.fused:
            return self.refined(x)
        return x * (1 + self.attention(x))
