"""Squeeze-and-Excitation (Hu et al., CVPR 2018): the channel-only baseline BAM is compared with."""

import torch
from torch import Tensor, nn

from .bam import hidden_channels


class SqueezeExcite(nn.Module):
    """``x * sigmoid(MLP(avgpool(x)))`` with a C -> C/r -> C bottleneck MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)
