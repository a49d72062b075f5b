"""StairNet (Woo, Hwang & Kweon, WACV 2018, arXiv 1709.05788), the paper's VOC 2007 detector (Table 4b).

SSD300 plus a top-down path over its six maps: each map is projected to ``width`` channels
(1x1 conv + BN); from the coarsest map down, the running top-down map is upsampled by a 3x3
stride-2 transposed conv + BN to the next finer size (1->3->5->10->19->38 for VGG,
1->2->3->5->10->19 for MobileNet), added to that map's projection, and refined (conv + BN +
ReLU) into the map a prediction head sees. The layout is a co-author's public code
(SoonminHwang/ssd.pytorch, models/stairnet.py), with all six levels predicting (that code
leaves out the coarsest one). The top-down path wraps the SSD extractor and returns the refined
maps, so torchvision's SSD class runs it unchanged; BAM, when asked, goes on the refined maps.

- VGG-16: width 256, full 3x3 convs, no biases before a BN: 32,005,600 parameters for VOC
  (the printed 32.0 M); with six BAMs 32,110,924 (ours) or 32,109,766 (the public code's), 32.1 M.
- MobileNet: the printed +0.17 M (5.81 -> 5.98) rules out VGG's path: 256 channels of full 3x3
  convs would add 7.2 M. The path here is width 128 in MobileNet's own factorisation: the
  upsampling is a depthwise 3x3 transposed conv and the refinement after the sum a 1x1 conv, so
  the coarser map's route is a depthwise-separable transposed conv split around the sum. With the
  1x1 predictors on 128 channels that gives 5,984,416 parameters (the printed 5.98 M) and, with
  six BAMs, 6,011,740 (ours) or 6,011,158 (the public code's), 6.0 M. Full 3x3 refinement convs at
  width 128 would give 6.77 M, and a depthwise 3x3 before each 1x1 refinement 5.99 M.
"""

from collections import OrderedDict
from itertools import pairwise
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection.ssd import SSD
from torchvision.ops.misc import Conv2dNormActivation

from ...errors import InputError
from ...nn import BatchNorm2d
from ..init import kaiming_init_
from ..mobilenet import MobileNetV1
from .registry import register_detector
from .ssd import ExtrasNorm, Head, build_ssd, ssd_maps

VGG_WIDTH = 256
MOBILENET_WIDTH = 128


def upsample(width: int, coarse: int, fine: int, groups: int = 1) -> nn.Sequential:
    """3x3 stride-2 transposed conv + BN taking a map of side ``coarse`` to side ``fine``."""
    padding = 1 if fine < 2 * coarse + 1 else 0
    output_padding = fine - (2 * (coarse - 1) - 2 * padding + 3)
    return nn.Sequential(
        nn.ConvTranspose2d(width, width, 3, 2, padding, output_padding, groups=groups, bias=False),
        BatchNorm2d(width),
    )


class TopDown(nn.Module):
    """StairNet's top-down path over ``extractor``'s maps (``channels`` wide, ``sizes`` sided, finest first).

    ``light`` is the MobileNet form: depthwise upsampling and 1x1 refinement convs. The batch
    norms are the package's, which take a one-image training batch on the 1x1 map. Each
    upsampling norm starts at scale 0, as ResNets start their residual branches (Goyal et al.
    2017): the path begins as each map's own projection and learns how much of the coarser maps
    to add, instead of adding their random features to every finer map (docs/detection.md, "Does it learn?").
    """

    def __init__(self, extractor: nn.Module, channels: list[int], sizes: list[int], width: int, light: bool = False) -> None:
        super().__init__()
        self.extractor = extractor
        self.lateral = nn.ModuleList(
            Conv2dNormActivation(c, width, 1, norm_layer=BatchNorm2d, activation_layer=None) for c in channels
        )
        groups = width if light else 1
        self.upsample = nn.ModuleList(upsample(width, coarse, fine, groups) for fine, coarse in pairwise(sizes))
        self.refine = nn.ModuleList(
            Conv2dNormActivation(width, width, 1 if light else 3, norm_layer=BatchNorm2d) for _ in channels
        )
        for new in (self.lateral, self.refine):
            kaiming_init_(new)
        for _, norm in self.upsample:
            nn.init.zeros_(norm.weight)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        maps = list(self.extractor(x).values())
        top = self.lateral[-1](maps[-1])
        refined = [self.refine[-1](top)]
        for level in reversed(range(len(maps) - 1)):
            top = self.upsample[level](top) + self.lateral[level](maps[level])
            refined.insert(0, self.refine[level](top))
        return OrderedDict((str(i), v) for i, v in enumerate(refined))


@register_detector(attention_in="heads")
def stairnet300(
    classifier: nn.Module,
    num_classes: int,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    head: Head = "conv",
    extras_norm: ExtrasNorm = "none",
    width: int | None = None,
) -> SSD:
    """StairNet300 on ``classifier`` (vgg16 or mobilenet_v1) for ``num_classes`` (background included); ``head`` and
    ``extras_norm`` as ``ssd300``'s. ``width``: the top-down path's channels (None: the paper's, 256 on VGG and 128 on
    MobileNet; from scratch, MobileNet's 128 is a bottleneck before the heads and 256 learns faster: docs/detection.md)."""
    maps = ssd_maps(classifier, extras_norm)
    light = isinstance(classifier, MobileNetV1)
    if width is None:
        width = MOBILENET_WIDTH if light else VGG_WIDTH
    if width < 1:
        raise InputError(f"width must be a positive number of channels, got {width}")
    body = TopDown(maps.extractor, maps.channels, maps.sizes, width, light)
    return build_ssd(body, [width] * len(maps.channels), maps, num_classes, attention, attention_kwargs, head)
