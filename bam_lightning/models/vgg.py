"""VGG-16 from torchvision, the backbone of the paper's SSD and StairNet rows (Table 4b).

Registered as a classifier like every other backbone, so its ImageNet weights load the same
way; the detectors (``models/detection/ssd.py``) then cut it at conv4_3 and pool5.
"""

from torchvision.models import VGG
from torchvision.models import vgg as tv

from .registry import register_model


@register_model(input_size=224)
def vgg16(num_classes: int = 1000) -> VGG:
    return tv.vgg16(num_classes=num_classes)
