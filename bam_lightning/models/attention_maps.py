"""What each BAM of a network attends to: its attention map M(F), summarised for display.

M(F) has one value per channel and position, too many to look at. As in the paper's
figures, a BAM is shown by where it attends (``spatial``: M averaged over channels) and
by what (``channel``: M averaged over positions). Maps are read with forward pre-hooks
calling the module's own ``attention``, so they are exactly what the forward multiplies
by, for the paper's BAM and the public code's alike, at any placement.
"""

from dataclasses import dataclass

import torch
from matplotlib import colormaps
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn import BAMS, attention_blocks
from .probe import probing


@dataclass(frozen=True)
class AttentionMap:
    """One BAM's attention on a batch: ``spatial`` (N,H,W) and ``channel`` (N,C), values in (0,1), on the CPU."""

    name: str
    spatial: Tensor
    channel: Tensor


def capture_attention(model: nn.Module, images: Tensor) -> list[AttentionMap]:
    """The maps of every BAM in ``model`` on ``images``, in the order the BAMs ran, from one eval-mode forward.

    Eval mode so that batch norms use their running statistics: the maps are those the
    trained network computes at inference, and capturing them changes no state.
    """
    captured: list[AttentionMap] = []

    def record(name: str):
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            x = args[0]
            # A BAM without one branch returns a map constant along that axis: expand it so every summary has its shape.
            m = module.attention(x).float().expand_as(x)
            captured.append(AttentionMap(name, m.mean(dim=1).cpu(), m.mean(dim=(2, 3)).cpu()))

        return hook

    handles = [module.register_forward_pre_hook(record(name)) for name, module in attention_blocks(model, BAMS)]
    with probing(model, handles):
        model(images)
    return captured


def rescale(batch: Tensor) -> Tensor:
    """Each item of ``batch`` stretched to [0, 1]: maps and images with unknown statistics become displayable."""
    flat = batch.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    shape = (-1,) + (1,) * (batch.dim() - 1)
    return (batch - low.view(shape)) / (high - low).clamp_min(1e-12).view(shape)


def overlay(images: Tensor, maps: Tensor, cmap: str = "jet", alpha: float = 0.5) -> Tensor:
    """``images`` (N,3,H,W) in [0,1] blended with ``maps`` (N,h,w) in [0,1], upsampled bilinearly, in colour ``cmap``."""
    maps = F.interpolate(maps[:, None].float().cpu(), size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    heat = torch.from_numpy(colormaps[cmap](maps.clamp(0, 1).numpy())[..., :3]).permute(0, 3, 1, 2)
    return (1 - alpha) * images.float().cpu() + alpha * heat.float()
