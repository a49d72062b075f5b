"""The weight initialisation our own backbones share with torchvision's ResNet."""

from torch import nn


def kaiming_init_(model: nn.Module) -> None:
    """He-normal (fan-out) conv weights, as torchvision and the BAM public code use."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
