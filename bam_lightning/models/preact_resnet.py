"""Pre-activation residual networks for 32x32 inputs: WideResNet and PreResNet.

Both follow He et al. 2016 ("Identity mappings"): BN-ReLU before every conv, a plain sum
at the end of each block, and one BN-ReLU after the last stage. WideResNet-d-k
(Zagoruyko & Komodakis 2016) stacks (d-4)/6 wide basic blocks per stage at widths
16k, 32k, 64k. PreResNet-d stacks (d-2)/6 bottlenecks (4x expansion) per stage at 64,
128, 256 channels: the common CIFAR code counts depth as 6n+2 for bottlenecks too, and
that network has the paper's 1.726 M parameters (a true 110-layer bottleneck net has 1.17 M).
Stages are ``layer1..3`` (``nn.Sequential``), so BAM lands after layer1 and layer2.
"""

from torch import Tensor, nn

from ..errors import InputError
from .init import kaiming_init_
from .registry import register_model


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Conv2d | None:
    """A 1x1 conv on the pre-activated input where the block changes shape; identity otherwise."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class PreActBasicBlock(nn.Module):
    """Two 3x3 convs (dropout between, as WideResNet allows)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        o = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(o)
        out = self.conv1(o)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """1x1 reduce to a quarter, 3x3, 1x1 expand."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        width = out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        o = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(o)
        out = self.conv1(o)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.dropout(self.relu(self.bn3(out))))
        return out + shortcut


class PreActResNet(nn.Module):
    """``conv3x3 -> layer1..3 -> BN-ReLU -> global pool -> fc``; stage i outputs ``widths[i]``."""

    def __init__(
        self,
        block: type[PreActBasicBlock | PreActBottleneck],
        depth_per_stage: int,
        widths: list[int],
        num_classes: int = 100,
        stem_width: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_width, 3, padding=1, bias=False)
        in_channels = stem_width
        for i, width in enumerate(widths):
            blocks = [
                block(in_channels if j == 0 else width, width, stride=2 if i > 0 and j == 0 else 1, dropout=dropout)
                for j in range(depth_per_stage)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            in_channels = width
        self.num_stages = len(widths)
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(self.relu(self.bn(x))).flatten(1))


@register_model(input_size=32)
def wrn(num_classes: int = 100, depth: int = 28, widen_factor: int = 10, dropout: float = 0.0) -> PreActResNet:
    """WideResNet-depth-widen_factor; depth must be 6n + 4."""
    if (depth - 4) % 6:
        raise InputError(f"WideResNet depth must be 6n + 4 (16, 22, 28, 40, ...), got {depth}")
    widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
    return PreActResNet(PreActBasicBlock, (depth - 4) // 6, widths, num_classes, dropout=dropout)


@register_model(input_size=32)
def wrn16_8(num_classes: int = 100, dropout: float = 0.0) -> PreActResNet:
    return wrn(num_classes, 16, 8, dropout)


@register_model(input_size=32)
def wrn28_8(num_classes: int = 100, dropout: float = 0.0) -> PreActResNet:
    return wrn(num_classes, 28, 8, dropout)


@register_model(input_size=32)
def wrn28_10(num_classes: int = 100, dropout: float = 0.0) -> PreActResNet:
    return wrn(num_classes, 28, 10, dropout)


@register_model(input_size=32)
def preresnet(num_classes: int = 100, depth: int = 110) -> PreActResNet:
    """PreResNet-depth: (depth - 2) / 6 bottleneck blocks per stage."""
    if (depth - 2) % 6:
        raise InputError(f"PreResNet depth must be 6n + 2 (56, 110, 164, ...), got {depth}")
    return PreActResNet(PreActBottleneck, (depth - 2) // 6, [64, 128, 256], num_classes)


@register_model(input_size=32)
def preresnet110(num_classes: int = 100) -> PreActResNet:
    return preresnet(num_classes, 110)
