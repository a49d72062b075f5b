"""``bam fit`` against the training loop one would write by hand, on the same model, data and optimizer.

``bam fit`` runs in this process exactly as the command does (the main config, its
checkpoint, logging and LR-monitor callbacks) with ``SyntheticDataModule`` in place of
CIFAR-100, so reading images does not hide the framework's cost. The bare loop steps a
copy of the same network with the config's optimizer over a plain DataLoader of the same tensors.
Both are timed from the start of step ``warmup`` (the batch in hand) to the end of the last.
"""

import copy
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from bam_lightning.data import SyntheticDataModule
from bam_lightning.tasks.classification import ImageClassifier

from .common import synchronize, synthetic_fit

CONFIG = Path(__file__).parents[1] / "configs" / "cifar100_wrn.yaml"


def default_setting(device: torch.device) -> tuple[str, int]:
    """Backbone and batch: the config's own on a GPU; WRN-16-8 and 32 images on a CPU, where WRN-28-8 takes 11 s a step."""
    return ("wrn28_8", 128) if device.type == "cuda" else ("wrn16_8", 32)


def bam_fit(
    device: torch.device, backbone: str, batch: int, steps: int, warmup: int, root: str, extra: list[str]
) -> tuple[float, ImageClassifier]:
    options = ["--model.backbone", backbone, "--trainer.limit_val_batches", "0", *extra]
    cli, times = synthetic_fit(device, [CONFIG], batch, batch * (steps + warmup + 1), steps + warmup, warmup, root, options)
    return times["trained"] - times["warm"], cli.model


def bare_loop(device: torch.device, fitted: ImageClassifier, batch: int, steps: int, warmup: int) -> float:
    """The fitted run's network (a copy) and its config's optimizer, stepped by hand."""
    model = copy.deepcopy(fitted.model).to(device)
    optimizer = fitted.optimizer(model.parameters())
    data = SyntheticDataModule(batch_size=batch, train_size=batch * (steps + warmup + 1))
    data.setup("fit")
    loader = DataLoader(data.train_set, batch_size=batch, shuffle=True, pin_memory=device.type == "cuda")
    start = 0.0
    for i, (x, y) in enumerate(loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if i == steps + warmup - 1:
            break
    synchronize(device)
    return time.perf_counter() - start


def run(
    device: torch.device,
    steps: int,
    warmup: int = 3,
    rounds: int = 2,
    setting: tuple[str, int] | None = None,
    extra: list[str] | None = None,
) -> list[dict[str, object]]:
    """The fastest of ``rounds`` alternating runs of each: the least disturbed by whatever else the machine does.

    ``setting``: backbone and batch, the device's default (``default_setting``) without it; ``extra``: more
    ``bam fit`` options (the shrunk ``make gpu-check DEVICE=cpu``: a tiny network, eager).
    """
    backbone, batch = setting or default_setting(device)
    fit_times, bare_times = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as root:
            seconds, fitted = bam_fit(device, backbone, batch, steps, warmup, root, extra or [])
        fit_times.append(seconds)
        bare_times.append(bare_loop(device, fitted, batch, steps, warmup))
    fit_seconds, bare_seconds = min(fit_times), min(bare_times)
    row = {
        "network": f"{backbone} + BAM",
        "batch": batch,
        "steps timed": steps,
        "bam fit img/s": f"{batch * steps / fit_seconds:.1f}",
        "bare loop img/s": f"{batch * steps / bare_seconds:.1f}",
        "bam fit overhead %": f"{(fit_seconds / bare_seconds - 1) * 100:.1f}",
    }
    print(row, flush=True)
    return [row]


COLUMNS = ["network", "batch", "steps timed", "bam fit img/s", "bare loop img/s", "bam fit overhead %"]
