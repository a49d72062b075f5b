"""ObjectDetector inside a Trainer: ImageNet weights on a fresh fit, never over a resumed run's own."""

from functools import partial

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader

from bam_lightning.models import create_model
from bam_lightning.tasks.detection import ObjectDetector

SMALL = {"backbone": "mobilenet_v1", "backbone_kwargs": {"width_mult": 0.25}, "detector": "ssd300", "num_classes": 2}


def batches(count: int = 1) -> DataLoader:
    """``count`` batches of one image with one box, as the detection DataModules batch them."""
    image = torch.rand(3, 64, 64)
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
    return DataLoader([((image,), (target,))] * count, batch_size=None)


def fit(model: ObjectDetector, root, ckpt_path=None) -> None:
    trainer = L.Trainer(max_steps=1, default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, batches(), ckpt_path=ckpt_path)
    trainer.save_checkpoint(root / "after.ckpt")


def first_weight(model: ObjectDetector) -> torch.Tensor:
    return model.model.backbone.body.features[0][0].weight  # the stem's conv, inside the attention wrapper


def test_imagenet_weights_load_when_a_fit_starts_fresh_and_not_when_it_resumes(tmp_path):
    torch.manual_seed(3)
    imagenet = create_model("mobilenet_v1", 1000, attention=None, width_mult=0.25)
    torch.save({"state_dict": {f"model.{k}": v for k, v in imagenet.state_dict().items()}}, tmp_path / "imagenet.ckpt")
    frozen = partial(torch.optim.SGD, lr=0.0)  # the step leaves the weights as they were loaded

    fresh = ObjectDetector(**SMALL, backbone_weights=str(tmp_path / "imagenet.ckpt"), optimizer=frozen)
    assert not torch.equal(first_weight(fresh), imagenet.features[0][0].weight)
    fit(fresh, tmp_path / "fresh")
    assert torch.equal(first_weight(fresh), imagenet.features[0][0].weight)

    torch.manual_seed(4)
    own = ObjectDetector(**SMALL, optimizer=frozen)  # a run of its own, from other weights
    fit(own, tmp_path / "own")
    resumed = ObjectDetector(**SMALL, backbone_weights=str(tmp_path / "imagenet.ckpt"), optimizer=frozen)
    trainer = L.Trainer(
        max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    trainer.fit(resumed, batches(2), ckpt_path=tmp_path / "own" / "after.ckpt")
    assert torch.equal(first_weight(resumed), first_weight(own))
