"""SSD300 (Liu et al. 2016), the baseline of the paper's VOC 2007 rows (Table 4b), on torchvision's SSD.

The classifier is cut into the six maps SSD predicts from; torchvision's SSD class, its
default boxes, heads, losses and post-processing are used as they are. Two backbones:

- VGG-16: torchvision's own SSD300 extractor (conv4_3 with L2 norm, the dilated fc6/fc7 as
  convs, four extras). fc6/fc7 start fresh, as in torchvision's ssd300_vgg16 (the original
  SSD sub-samples the ImageNet fc weights instead). 3x3 predictors: 26,515,936 parameters for
  VOC, the printed 26.5 M.
- MobileNet v1: MobileNet-SSD (chuanqi305/MobileNet-SSD): conv11 (19x19x512) and conv13
  (10x10x1024), then extras 256->512, 128->256, 128->256, 64->128 (1x1 then 3x3 stride 2), and
  1x1 predictors. The extras are plain biased convs without BN, as ``add_extras`` builds them in
  the SSD code StairNet's co-author worked in (amdegroot/ssd.pytorch, kept in
  SoonminHwang/ssd.pytorch; that the MobileNet rows used it is inferred): 5,813,536 parameters,
  the printed 5.81 M. Caffe MobileNet-SSD's batch-normed extras give 5,815,264 (5.82 M), and 3x3
  predictors 8.9 M.

Default boxes are SSD300's as StairNet has them: 6, 6, 6, 6, 4, 4 per location, sized for each
backbone's grids (``VGG_SCALES``, ``MOBILENET_SCALES``); VGG's steps are torchvision's,
MobileNet's boxes tile its own grids. Images are resized to 300x300 and normalised with the
ImageNet mean and std (the SSD's defaults) inside the model.

Trained from scratch, the paper's plain layout learns slowly (docs/detection.md, "Does it learn?"):
``head="separable"`` and ``extras_norm="batch"`` give it SSDlite's predictors and normed extras.

``attention`` puts one module (``bam_lightning.nn.create_attns``) on every map that feeds a
prediction head: the paper's "BAM right before every classifier".
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, get_args

from torch import Tensor, nn
from torchvision.models import VGG
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.ssd import SSD, SSDFeatureExtractorVGG, SSDHead
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.ops.misc import Conv2dNormActivation

from ...errors import InputError
from ...nn import BatchNorm2d, create_attns
from ..init import kaiming_init_
from ..mobilenet import MobileNetV1
from .registry import register_detector

IMAGE_SIZE = 300
ASPECT_RATIOS = [[2, 3]] * 4 + [[2]] * 2
# Default box sizes (shares of 300 px) of each map, the last closing the sixth map's extra square box.
# VGG: SSD300's for VOC (30-264 px, as weiliu89's Caffe SSD and amdegroot/ssd.pytorch set them; torchvision's
# [0.07, 0.15, ...] are its COCO ones). MobileNet: MobileNet-SSD's (60-285 px, SSD's s_min 0.2 and s_max 0.95),
# fitted to a first map of stride 16: VGG's 30 px boxes on its 16 px grid are matched by few objects (docs/detection.md).
VGG_SCALES = [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
MOBILENET_SCALES = [0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0]
VGG_STEPS = [8, 16, 32, 64, 100, 300]
# MobileNet-SSD's extras: (1x1 width, 3x3 stride-2 width) after conv13.
MOBILENET_EXTRAS = [(256, 512), (128, 256), (128, 256), (64, 128)]
# The predictors: "conv", one conv per map (3x3 on VGG, MobileNet-SSD's 1x1), the paper's rows; "separable",
# SSDlite's (a 3x3 depthwise conv + BN + ReLU6, then a 1x1 conv).
Head = Literal["conv", "separable"]
ExtrasNorm = Literal["none", "batch"]


@dataclass(frozen=True)
class SSDMaps:
    """A classifier cut for SSD: ``extractor`` maps an image batch to an OrderedDict of six maps.

    ``sizes`` are the maps' sides for a 300x300 input (StairNet's upsampling needs them);
    ``scales`` size the default boxes and ``steps`` tile them (None: on each map's own grid);
    ``head_kernel`` is the predictors' kernel size.
    """

    extractor: nn.Module
    channels: list[int]
    sizes: list[int]
    scales: list[float]
    steps: list[int] | None
    head_kernel: int


class MobileNetSSDFeatures(nn.Module):
    """MobileNet v1 as MobileNet-SSD cuts it, laid out like torchvision's VGG extractor (``features``, ``extra``)."""

    def __init__(self, backbone: MobileNetV1, extras_norm: ExtrasNorm = "none") -> None:
        super().__init__()
        self.features = backbone.features[:12]  # the stem and eleven separable blocks: conv11, stride 16
        extras: list[nn.Module] = [backbone.features[12:]]  # conv12, conv13: stride 32
        channels = backbone.fc.in_features
        norm = BatchNorm2d if extras_norm == "batch" else None  # the package's: it takes the 1x1 map of one image
        for hidden, out in MOBILENET_EXTRAS:
            extras.append(
                nn.Sequential(
                    Conv2dNormActivation(channels, hidden, 1, norm_layer=norm),
                    Conv2dNormActivation(hidden, out, 3, stride=2, norm_layer=norm),
                )
            )
            channels = out
        self.extra = nn.ModuleList(extras)
        kaiming_init_(self.extra[1:])

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.features(x)
        output = [x]
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(output))


def ssd_maps(classifier: nn.Module, extras_norm: ExtrasNorm = "none") -> SSDMaps:
    """Cut ``classifier`` (torchvision's VGG or our MobileNetV1, ImageNet weights kept) into SSD300's six maps.

    ``extras_norm: batch`` puts a batch norm after every conv of MobileNet's extras, as SSDlite and
    Caffe's MobileNet-SSD have them (1,728 parameters more, the count the paper prints no longer).
    """
    if extras_norm not in get_args(ExtrasNorm):
        raise InputError(f"extras_norm must be {' or '.join(get_args(ExtrasNorm))}, got {extras_norm!r}")
    if isinstance(classifier, VGG):
        if extras_norm != "none":
            raise InputError("extras_norm applies to mobilenet_v1's extras: VGG's are torchvision's SSD300 extras, unnormed")
        extractor = SSDFeatureExtractorVGG(classifier.features, highres=False)
        return SSDMaps(extractor, [512, 1024, 512, 256, 256, 256], [38, 19, 10, 5, 3, 1], VGG_SCALES, VGG_STEPS, 3)
    if isinstance(classifier, MobileNetV1):
        channels = [classifier.features[11][1].out_channels, classifier.fc.in_features] + [out for _, out in MOBILENET_EXTRAS]
        return SSDMaps(MobileNetSSDFeatures(classifier, extras_norm), channels, [19, 10, 5, 3, 2, 1], MOBILENET_SCALES, None, 1)
    raise InputError(f"SSD and StairNet are built on vgg16 or mobilenet_v1, not {type(classifier).__name__}: choose one of them")


class AttendedMaps(nn.Module):
    """``body``'s maps, each through its own attention module on the way to the heads."""

    def __init__(self, body: nn.Module, attention: nn.ModuleList) -> None:
        super().__init__()
        self.body = body
        self.attention = attention

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        maps = self.body(x)
        return OrderedDict((key, attend(value)) for (key, value), attend in zip(maps.items(), self.attention, strict=True))


def ssd_head(channels: list[int], anchors: list[int], num_classes: int, kernel_size: int, head_type: Head = "conv") -> nn.Module:
    """torchvision's SSDHead (MobileNet-SSD's 1x1 predictors replace its 3x3 ones), or SSDlite's separable one."""
    if head_type == "separable":
        return SSDLiteHead(channels, anchors, num_classes, BatchNorm2d)
    if head_type != "conv":
        raise InputError(f"head must be {' or '.join(get_args(Head))}, got {head_type!r}")
    head = SSDHead(channels, anchors, num_classes)
    if kernel_size != 3:
        for scoring in (head.classification_head, head.regression_head):
            scoring.module_list = nn.ModuleList(
                nn.Conv2d(conv.in_channels, conv.out_channels, kernel_size) for conv in scoring.module_list
            )
            for conv in scoring.module_list:
                nn.init.xavier_uniform_(conv.weight)
                nn.init.zeros_(conv.bias)
    return head


def build_ssd(
    body: nn.Module,
    channels: list[int],
    maps: SSDMaps,
    num_classes: int,
    attention: str | None,
    attention_kwargs: dict[str, Any] | None,
    head: Head = "conv",
) -> SSD:
    """torchvision's SSD300 on ``body`` (whose maps have ``channels``), attention on each map when asked."""
    attns = create_attns(attention, channels, **(attention_kwargs or {}))
    if attns:
        body = AttendedMaps(body, nn.ModuleList(attns))
    anchor_generator = DefaultBoxGenerator(ASPECT_RATIOS, scales=maps.scales, steps=maps.steps)
    predictors = ssd_head(channels, anchor_generator.num_anchors_per_location(), num_classes, maps.head_kernel, head)
    return SSD(body, anchor_generator, (IMAGE_SIZE, IMAGE_SIZE), num_classes, head=predictors)


@register_detector(attention_in="heads")
def ssd300(
    classifier: nn.Module,
    num_classes: int,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    head: Head = "conv",
    extras_norm: ExtrasNorm = "none",
) -> SSD:
    """SSD300 on ``classifier`` for ``num_classes`` (background included); ``head``: see ``Head``, ``extras_norm``:
    see ``ssd_maps`` (the defaults are the paper's rows; the others train faster from scratch)."""
    maps = ssd_maps(classifier, extras_norm)
    return build_ssd(maps.extractor, maps.channels, maps, num_classes, attention, attention_kwargs, head)
