"""ImageNet weights reach the detector through its classifier: ours, the public BAM code's, torchvision's cache."""

import re

import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import create_model
from bam_lightning.models.detection import build_detector, create_detector
from bam_lightning.models.weights import load_backbone_weights


def trained_resnet18(attention: str | None) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return create_model("resnet18", 1000, attention=attention).state_dict()


def assert_trunk_holds(detector: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    trunk = detector.backbone.state_dict()
    assert torch.equal(trunk["layer2.0.conv1.weight"], state["layer2.0.conv1.weight"])
    assert torch.equal(detector.roi_heads.box_head.layer4[0].conv1.weight, state["layer4.0.conv1.weight"])


def test_our_imagenet_checkpoint_or_its_run_folder(tmp_path):
    state = trained_resnet18("bam")
    run = tmp_path / "run" / "version_0" / "checkpoints"
    run.mkdir(parents=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "hyper_parameters": {}}, run / "last.ckpt")
    for weights in (str(run / "last.ckpt"), str(tmp_path / "run")):
        detector = create_detector("faster_rcnn_c4", "resnet18", 3, attention="bam", backbone_weights=weights)
        assert_trunk_holds(detector, state)
        assert torch.equal(detector.backbone.layer1.attn.spatial.body[0].weight, state["layer1.attn.spatial.body.0.weight"])
    with pytest.raises(InputError, match=r"do not fit resnet18 with this attention: unexpected keys layer1\.attn"):
        create_detector("faster_rcnn_c4", "resnet18", 3, attention=None, backbone_weights=str(run / "last.ckpt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no last.ckpt under"):
        create_detector("faster_rcnn_c4", "resnet18", 3, backbone_weights=str(tmp_path / "empty"))


def test_the_public_codes_checkpoint_with_bam_official(tmp_path):
    state = trained_resnet18("bam_official")
    official = {"module." + re.sub(r"^layer(\d)\.attn\.", r"bam\1.", k): v for k, v in state.items()}  # its key layout
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": official}, tmp_path / "bam.pth.tar")
    detector = create_detector(
        "faster_rcnn_c4", "resnet18", 3, attention="bam_official", backbone_weights=f"official:{tmp_path / 'bam.pth.tar'}"
    )
    assert_trunk_holds(detector, state)
    with pytest.raises(InputError, match="no checkpoint file at"):
        create_detector("faster_rcnn_c4", "resnet18", 3, backbone_weights=f"official:{tmp_path / 'none.pth'}")


def test_torchvision_weights_from_its_cache_leave_new_attention_as_initialised(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = trained_resnet18(None)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")  # where torchvision looks first
    detector, classifier = build_detector("faster_rcnn_c4", "resnet18", 3, attention="bam")
    fresh = classifier.layer1.attn.channel.mlp[0].weight.clone()
    load_backbone_weights(classifier, "resnet18", "torchvision:IMAGENET1K_V1")
    assert_trunk_holds(detector, state)  # loaded into the classifier, so into the detector that shares its modules
    assert torch.equal(detector.backbone.layer1.attn.channel.mlp[0].weight, fresh)
    with pytest.raises(InputError, match="torchvision has no weights 'V9' for resnet18: choose one of IMAGENET1K_V1"):
        load_backbone_weights(classifier, "resnet18", "torchvision:V9")
    with pytest.raises(InputError, match="torchvision has no pretrained mobilenet_v1"):
        load_backbone_weights(create_model("mobilenet_v1", 1000, None), "mobilenet_v1", "torchvision:IMAGENET1K_V1")
