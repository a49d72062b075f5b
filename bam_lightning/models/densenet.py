"""DenseNet-BC for 32x32 inputs (Huang et al. 2017), on torchvision's DenseNet.

torchvision's network with the CIFAR stem: a 3x3 stride-1 conv of 2k channels and no
norm, ReLU or max-pool after it. DenseNet-100-BC (k=12) has 16 bottleneck layers per
block and the paper's 0.80 M parameters for 100 classes. The paper puts BAM "back and
forth of the transition block": before and after each transition, registered here as
the default placement; it gives the paper's 0.84 M.
"""

from torch import nn
from torchvision.models import DenseNet

from ..errors import InputError
from .registry import register_model


def cifar_densenet_bc(num_classes: int, depth: int, growth_rate: int) -> DenseNet:
    if (depth - 4) % 6:
        raise InputError(f"DenseNet-BC depth must be 6n + 4 (40, 100, 190, ...), got {depth}")
    layers = (depth - 4) // 6
    model = DenseNet(growth_rate, (layers,) * 3, num_init_features=2 * growth_rate, num_classes=num_classes)
    model.features.conv0 = nn.Conv2d(3, 2 * growth_rate, 3, padding=1, bias=False)
    for name in ("norm0", "relu0", "pool0"):
        delattr(model.features, name)
    return model


@register_model(input_size=32, placement="around_downsampling")
def densenet100_bc(num_classes: int = 100, growth_rate: int = 12) -> DenseNet:
    return cifar_densenet_bc(num_classes, 100, growth_rate)
