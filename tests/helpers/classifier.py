"""A tiny classifier, WRN-10-1, and data it learns within a few steps, built in the test's own process."""

from functools import partial
from pathlib import Path

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from bam_lightning.tasks.classification import ImageClassifier

TINY = {"depth": 10, "widen_factor": 1}  # WRN-10-1: 3 stages of one block, 16/32/64 channels


def loader(n=32, num_classes=4, size=16, seed=0):
    """``n`` images of ``size`` px in batches of 8: noise around a level set by the class, learnt within a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.randn(n, 3, size, size, generator=g) * 0.1 + y[:, None, None, None].float()
    return DataLoader(TensorDataset(x, y), batch_size=8)


def tiny_classifier(**kwargs):
    """An ImageClassifier of WRN-10-1 for 4 classes, SGD at 0.05; ``kwargs`` override any of that."""
    defaults = dict(backbone="wrn", num_classes=4, backbone_kwargs=TINY, optimizer=partial(torch.optim.SGD, lr=0.05))
    return ImageClassifier(**{**defaults, **kwargs})


def fit_checkpoint(path: Path, attention: str | None) -> Path:
    """A checkpoint at ``path`` of WRN-10-1 for 4 classes with ``attention``, trained one step on 32 px noise."""
    model = ImageClassifier(
        "wrn",
        4,
        attention=attention,
        backbone_kwargs={"depth": 10, "widen_factor": 1},
        optimizer=partial(torch.optim.SGD, lr=0.01),
    )
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(8, 3, 32, 32), torch.arange(8) % 4), batch_size=8))
    trainer.save_checkpoint(path)
    return path
