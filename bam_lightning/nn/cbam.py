"""Convolutional Block Attention Module (Woo et al., ECCV 2018), BAM's sequential sibling.

Channel attention from average- and max-pooled descriptors through one shared MLP, then
spatial attention from a 7x7 conv over the channel-wise mean and max maps; applied one
after the other, each as a plain multiplication (no residual ``1 +`` as in BAM).
"""

import torch
from torch import Tensor, nn

from ..errors import InputError
from .bam import hidden_channels
from .norm import BatchNorm2d


class CBAMChannel(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: Tensor) -> Tensor:
        logits = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class CBAMSpatial(nn.Module):
    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise InputError(f"CBAM's kernel_size must be odd, so the map keeps its size; got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Channel then spatial attention, each a multiplicative gate."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = CBAMChannel(channels, reduction)
        self.spatial = CBAMSpatial(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))
