"""MobileNet v1 (Howard et al. 2017), which torchvision does not ship.

A 3x3 stride-2 stem and 13 depthwise-separable blocks, each a ``nn.Sequential`` of
torchvision's ``Conv2dNormActivation`` layers, so BAM is appended to the block that ends
each resolution (64, 128, 256 and 512 channels). ``width_mult`` is the paper's alpha.
"""

from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from .init import kaiming_init_
from .registry import register_model

# (output channels, stride) of the 13 depthwise-separable blocks.
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def _separable(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        Conv2dNormActivation(in_channels, in_channels, 3, stride, groups=in_channels),
        Conv2dNormActivation(in_channels, out_channels, 1),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0) -> None:
        super().__init__()
        channels = int(32 * width_mult)
        layers: list[nn.Module] = [Conv2dNormActivation(3, channels, 3, 2)]
        for out, stride in _BLOCKS:
            layers.append(_separable(channels, int(out * width_mult), stride))
            channels = int(out * width_mult)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        kaiming_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))


@register_model(input_size=224)
def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV1:
    return MobileNetV1(num_classes, width_mult)
