"""BAM as the paper's public code builds it, so that code's checkpoints load unchanged.

It differs from the paper: the branches are combined as a product,
``x * (1 + sigmoid(Mc(x) * Ms(x)))``, neither branch ends in batch norm, and every
linear/conv layer has a bias. Submodule names (``channel_att.gate_c.gate_c_fc_0``, ...)
are the public code's, and so is the parameter count.

Two of its failures are not reproduced: the channel pool is a true global mean (the
public ``avg_pool2d(x, H)`` breaks on non-square maps) and the batch norms accept a
training batch of one sample. Neither changes a result where the public code runs.
"""

from collections import OrderedDict

from torch import Tensor, nn

from .bam import check_dilation, gate, hidden_channels
from .fused import refine
from .norm import BatchNorm1d, BatchNorm2d


class OfficialChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.gate_c = nn.Sequential(
            OrderedDict(
                gate_c_fc_0=nn.Linear(channels, hidden),
                gate_c_bn_1=BatchNorm1d(hidden),
                gate_c_relu_1=nn.ReLU(inplace=True),
                gate_c_fc_final=nn.Linear(hidden, channels),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.gate_c(x.mean(dim=(2, 3)))[:, :, None, None]


class OfficialSpatialGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4, num_dilated: int = 2) -> None:
        super().__init__()
        check_dilation(dilation, num_dilated)
        self.dilation = dilation if num_dilated else None  # as SpatialGate's
        hidden = hidden_channels(channels, reduction)
        layers = OrderedDict(
            gate_s_conv_reduce0=nn.Conv2d(channels, hidden, 1),
            gate_s_bn_reduce0=BatchNorm2d(hidden),
            gate_s_relu_reduce0=nn.ReLU(inplace=True),
        )
        for i in range(num_dilated):
            layers[f"gate_s_conv_di_{i}"] = nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation)
            layers[f"gate_s_bn_di_{i}"] = BatchNorm2d(hidden)
            layers[f"gate_s_relu_di_{i}"] = nn.ReLU(inplace=True)
        layers["gate_s_conv_final"] = nn.Conv2d(hidden, 1, 1)
        self.gate_s = nn.Sequential(layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.gate_s(x)


class OfficialBAM(nn.Module):
    """The public code's BAM: ``x * (1 + sigmoid(Mc(x) * Ms(x)))``, its layer names and count.

    ``fused`` as in ``BAM``: the same refinement without full-size intermediates.
    """

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4, num_dilated: int = 2, fused: bool = True) -> None:
        super().__init__()
        self.fused = fused
        self.channel_att = OfficialChannelGate(channels, reduction)
        self.spatial_att = OfficialSpatialGate(channels, reduction, dilation, num_dilated)

    def attention(self, x: Tensor) -> Tensor:
        """The attention map ``sigmoid(Mc * Ms)``, broadcastable to ``x``."""
        return gate(self.channel_att(x), self.spatial_att(x), combine="prod")

    def refined(self, x: Tensor) -> Tensor:
        return refine(x, self.channel_att(x), self.spatial_att(x), prod=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.fused:
            return self.refined(x)
        return x * (1 + self.attention(x))
