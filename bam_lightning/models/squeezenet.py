"""SqueezeNet 1.1 from torchvision; its max-pools mark the bottlenecks (after fire 4 and 7)."""

from torchvision.models import SqueezeNet
from torchvision.models import squeezenet as tv

from .registry import register_model


@register_model(input_size=224)
def squeezenet1_1(num_classes: int = 1000) -> SqueezeNet:
    return tv.squeezenet1_1(num_classes=num_classes)
