"""ResNet and ResNeXt for 32x32 inputs, on torchvision's own residual blocks.

The stem is a 3x3 stride-1 conv without max-pool, as in the BAM paper's public code,
whose CIFAR ResNets these match parameter for parameter (names ``conv1``, ``bn1``,
``layer1..4``, ``fc`` too). ResNeXt-29 (Xie et al. 2017) is the same network with three
stages of grouped bottlenecks: torchvision's ``Bottleneck`` with ``groups=8`` and
``width_per_group=64`` is exactly its block.
"""

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .init import kaiming_init_
from .registry import register_model


class CifarResNet(nn.Module):
    """``conv3x3 -> layer1..layerN -> global pool -> fc``; stage i has 64 * 2**i planes."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 100,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        self.groups, self.base_width, self.inplanes = groups, width_per_group, 64
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        for i, blocks in enumerate(layers):
            self.add_module(f"layer{i + 1}", self._make_layer(block, 64 * 2**i, blocks, stride=1 if i == 0 else 2))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        kaiming_init_(self)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, groups=self.groups, base_width=self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, groups=self.groups, base_width=self.base_width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(x).flatten(1))


@register_model(input_size=32)
def cifar_resnet18(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes)


@register_model(input_size=32)
def cifar_resnet34(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(BasicBlock, [3, 4, 6, 3], num_classes)


@register_model(input_size=32)
def cifar_resnet50(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes)


@register_model(input_size=32)
def cifar_resnet101(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(Bottleneck, [3, 4, 23, 3], num_classes)


@register_model(input_size=32)
def resnext29_8x64d(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(Bottleneck, [3, 3, 3], num_classes, groups=8, width_per_group=64)


@register_model(input_size=32)
def resnext29_16x64d(num_classes: int = 100) -> CifarResNet:
    return CifarResNet(Bottleneck, [3, 3, 3], num_classes, groups=16, width_per_group=64)
