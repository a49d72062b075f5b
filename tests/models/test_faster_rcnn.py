"""The C4 Faster R-CNN: BAM in the shared trunk only, the recipe's frozen layers, and a working forward pass."""

import pytest
import torch
from torch import nn

from bam_lightning.errors import InputError
from bam_lightning.models.detection import create_detector, list_detectors
from bam_lightning.nn import BAM

TINY = {"min_size": 64, "max_size": 96, "rois_per_image": 16, "test_proposals": 20}


def test_resnet101_c4_has_bam_after_layer1_to_layer3_in_the_trunk_and_none_in_the_head():
    with torch.device("meta"):
        model = create_detector("faster_rcnn_c4", "resnet101", 80, attention="bam")
    bams = [name for name, m in model.named_modules() if isinstance(m, BAM)]
    assert bams == ["backbone.layer1.attn", "backbone.layer2.attn", "backbone.layer3.attn"]
    assert model.backbone.out_channels == 1024
    assert list(model.backbone._modules)[-1] == "layer3"  # stride 16: the RPN's and RoIAlign's map
    assert len(model.roi_heads.box_head.layer4) == 3  # layer4 runs per RoI
    assert model.roi_heads.box_predictor.cls_score.out_features == 81  # 80 classes and the background
    assert model.transform.min_size == (600,) and model.transform.max_size == 1000


def test_the_recipe_freezes_stem_layer1_and_every_batch_norm_but_not_new_attention():
    model = create_detector("faster_rcnn_c4", "resnet18", 3, attention="bam", **TINY)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert "backbone.conv1.weight" in frozen and "backbone.layer1.0.conv1.weight" in frozen
    assert not any(name.startswith(("backbone.layer1.attn", "backbone.layer2", "roi_heads")) for name in frozen)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert model.rpn.training  # the rest trains


def test_without_freezing_everything_trains():
    model = create_detector("faster_rcnn_c4", "resnet18", 3, attention=None, freeze=False, **TINY).train()
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def test_training_losses_and_eval_boxes_in_the_images_own_coordinates():
    torch.manual_seed(0)
    model = create_detector("faster_rcnn_c4", "resnet18", 3, attention="bam", freeze=False, **TINY)
    images = [torch.rand(3, 70, 90), torch.rand(3, 64, 48)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 50.0, 60.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # an image without objects
    ]
    losses = model.train()(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.layer1.attn.channel.mlp[0].weight.grad is not None  # BAM learns through the detector
    with torch.no_grad():
        detections = model.eval()(images)
    for image, found in zip(images, detections, strict=True):
        assert found["boxes"].shape[1] == 4
        assert (found["boxes"][:, 2] <= image.shape[2]).all() and (found["boxes"][:, 3] <= image.shape[1]).all()


def test_only_resnets_and_known_names_are_accepted():
    with pytest.raises(InputError, match="faster_rcnn_c4 cuts a ResNet .*not MobileNetV1"):
        create_detector("faster_rcnn_c4", "mobilenet_v1", 3, attention=None)
    with pytest.raises(InputError, match="unknown detector 'yolo': choose one of " + ", ".join(list_detectors())):
        create_detector("yolo", "resnet18", 3)
    with pytest.raises(InputError, match=r"unknown detector 'ssd30' \(did you mean 'ssd300'\?\): choose one of faster_rcnn_c4,"):
        create_detector("ssd30", "vgg16", 3)
    assert list_detectors("s*") == ["ssd300", "stairnet300"]
    with pytest.raises(InputError, match="placement 'every_block' does not apply"):
        create_detector("ssd300", "vgg16", 3, placement="every_block")
