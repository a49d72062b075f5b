"""Faster R-CNN in the C4 design of the ResNet paper, the baseline of the BAM paper's COCO rows (Table 4a).

One feature map, no FPN: the trunk (stem, layer1..layer3, BAM after each of them when asked)
ends at stride 16 with 1024 channels; the RPN and RoIAlign work on that map, and layer4 runs
once per RoI as the box head, followed by a spatial mean (2048 features). The numbers are
the C4 settings of ruotianluo/pytorch-faster-rcnn's ResNet-101 (the public code closest to the
paper's 29.1 mAP): anchors of 64-512 px at ratios 0.5/1/2, 12000 -> 2000 proposals in
training and 6000 -> 300 in testing, 256 RoIs per image, NMS 0.3 at test; the stem and layer1
frozen, and every batch norm frozen (eval mode, fixed statistics: one or two images per GPU
give no usable batch statistics). RoIAlign of 14x14 and layer4's stride 2 give layer4 the 7x7
RoI map it was trained on (the Detectron C4 head); the image's shorter side is 600 px.
"""

from collections import OrderedDict
from typing import Any

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.resnet import ResNet
from torchvision.ops import MultiScaleRoIAlign

from ...errors import InputError
from ...nn import BATCH_NORMS, attention_blocks
from .registry import register_detector

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FasterRCNNC4(FasterRCNN):
    """torchvision's FasterRCNN whose batch norms stay in eval mode whatever ``train()`` asks, when ``frozen_norms``."""

    frozen_norms = True

    def train(self, mode: bool = True) -> "FasterRCNNC4":
        super().train(mode)
        for module in self.modules():
            if self.frozen_norms and isinstance(module, BATCH_NORMS):
                module.eval()
        return self


def _freeze(modules: list[nn.Module]) -> None:
    """No gradient for these modules' own layers; attention placed inside them stays trainable (it is new)."""
    for module in modules:
        trainable = {id(p) for _, block in attention_blocks(module) for p in block.parameters()}
        for param in module.parameters():
            param.requires_grad_(id(param) in trainable)


@register_detector(attention_in="backbone")
def faster_rcnn_c4(
    classifier: nn.Module,
    num_classes: int,
    attention: str | None = None,
    attention_kwargs: dict[str, Any] | None = None,
    min_size: int = 600,
    max_size: int = 1000,
    freeze: bool = True,
    rois_per_image: int = 256,
    test_proposals: int = 300,
) -> FasterRCNNC4:
    """The C4 detector from a torchvision-layout ResNet classifier (attention already at its bottlenecks).

    ``freeze`` is the recipe's (stem, layer1 and every batch norm fixed), for a classifier with
    ImageNet weights; false trains everything, as a network starting from random weights must
    (frozen initial statistics would not normalise anything). ``min_size``/``max_size``: the
    shorter/longer image side the detector resizes to. Each RoI runs layer4, so ``rois_per_image``
    (sampled in training) and ``test_proposals`` (scored in testing) set most of the cost: small
    values make a CPU run feasible (the offline tests), at a cost in accuracy.
    """
    if not isinstance(classifier, ResNet):
        raise InputError(f"faster_rcnn_c4 cuts a ResNet (resnet50, resnet101, ...), not {type(classifier).__name__}")
    if min(rois_per_image, test_proposals) < 1 or not 32 <= min_size <= max_size:
        raise InputError(
            "faster_rcnn_c4 needs rois_per_image and test_proposals of 1 or more and 32 <= min_size <= max_size,"
            f" got {rois_per_image}, {test_proposals}, {min_size} and {max_size}"
        )
    stem = ["conv1", "bn1", "relu", "maxpool"]
    trunk = nn.Sequential(OrderedDict((name, getattr(classifier, name)) for name in [*stem, "layer1", "layer2", "layer3"]))
    trunk.out_channels = classifier.layer4[0].conv1.in_channels  # what layer3 hands on: 1024 in ResNet-50/101
    if freeze:
        _freeze([classifier.conv1, classifier.bn1, classifier.layer1])
    head = nn.Sequential(OrderedDict(layer4=classifier.layer4, pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten()))
    head_channels = classifier.fc.in_features
    model = FasterRCNNC4(
        trunk,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        rpn_anchor_generator=AnchorGenerator(sizes=((64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        rpn_pre_nms_top_n_train=12000,
        rpn_post_nms_top_n_train=2000,
        rpn_pre_nms_top_n_test=6000,
        rpn_post_nms_top_n_test=test_proposals,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=0),
        box_head=head,
        box_predictor=FastRCNNPredictor(head_channels, num_classes),
        box_batch_size_per_image=rois_per_image,
        box_nms_thresh=0.3,
    )
    model.frozen_norms = freeze
    return model
