"""ImageNet ResNets: torchvision's networks as they are, plus the paper's wide ResNet-18.

``wide_resnet18`` is ResNet-18 with every stage ``widen_factor`` times wider and the
64-channel stem kept; that gives the paper's 25.88 M (widen 1.5) and 45.62 M (widen 2.0)
parameters. torchvision's ``wide_resnet50_2`` is a different network (wider bottlenecks).
"""

from torch import nn
from torchvision.models import resnet as tv
from torchvision.models.resnet import BasicBlock, ResNet, conv1x1

from .init import kaiming_init_
from .registry import register_model


@register_model(input_size=224)
def resnet18(num_classes: int = 1000) -> ResNet:
    return tv.resnet18(num_classes=num_classes)


@register_model(input_size=224)
def resnet34(num_classes: int = 1000) -> ResNet:
    return tv.resnet34(num_classes=num_classes)


@register_model(input_size=224)
def resnet50(num_classes: int = 1000) -> ResNet:
    return tv.resnet50(num_classes=num_classes)


@register_model(input_size=224)
def resnet101(num_classes: int = 1000) -> ResNet:
    return tv.resnet101(num_classes=num_classes)


@register_model(input_size=224)
def resnet152(num_classes: int = 1000) -> ResNet:
    return tv.resnet152(num_classes=num_classes)


@register_model(input_size=224)
def resnext50_32x4d(num_classes: int = 1000) -> ResNet:
    return tv.resnext50_32x4d(num_classes=num_classes)


@register_model(input_size=224)
def wide_resnet18(num_classes: int = 1000, widen_factor: float = 1.5) -> ResNet:
    """ResNet-18 whose four stages are ``widen_factor`` times wider (the paper uses 1.5 and 2.0)."""
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes)
    inplanes = 64
    for i in range(4):
        planes, stride = int(64 * 2**i * widen_factor), 1 if i == 0 else 2
        shortcut = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))  # as torchvision's _make_layer
        setattr(model, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride, shortcut), BasicBlock(planes, planes)))
        inplanes = planes
    model.fc = nn.Linear(inplanes, num_classes)
    kaiming_init_(model)
    return model
