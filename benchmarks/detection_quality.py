"""Does a detector learn? Ours beside torchvision's SSDlite320 on the ten-digit canvases, same images and budget.

Every row trains from scratch on ``digit_canvases`` (all ten digits, COCO layout) loaded by our
``COCODataModule`` (flips only), with one plain loop: the same epochs, batch, SGD, weight decay
and OneCycle schedule for all, so the rows differ in their network alone. Each is scored on the
val canvases by torchmetrics' COCO mAP, as ``bam fit`` scores it, and once more class-agnostic
(every label one class): a detector that finds the digits but cannot tell them apart shows a high
agnostic figure beside a low mAP.

    python -m benchmarks.detection_quality --rows ssdlite ssd_mobilenet --seeds 0 1 2
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision
from torchvision.models.detection import ssdlite320_mobilenet_v3_large

from bam_lightning.data import COCODataModule
from bam_lightning.data.digit_canvases import write_coco
from bam_lightning.models.detection import create_detector

CLASSES = 10


@dataclass(frozen=True)
class Row:
    """A detector of ours (``detector`` on ``backbone``) or, with ``detector`` None, torchvision's SSDlite320."""

    detector: str | None
    backbone: str = "mobilenet_v1"
    attention: str | None = None
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    detector_kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        if self.detector is None:
            return ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=CLASSES + 1)
        return create_detector(
            self.detector,
            self.backbone,
            CLASSES,
            attention=self.attention,
            backbone_kwargs=self.backbone_kwargs,
            **self.detector_kwargs,
        )


HALF = {"width_mult": 0.5}
SCRATCH = {"head": "separable", "extras_norm": "batch"}
WIDE = {**SCRATCH, "width": 256}  # StairNet's top-down path as wide as SSD's maps: see docs/detection.md
ROWS: dict[str, Row] = {
    "ssdlite": Row(None),
    "ssd_mobilenet_x0.5": Row("ssd300", backbone_kwargs=HALF),
    "ssd_mobilenet_x0.5_scratch": Row("ssd300", backbone_kwargs=HALF, detector_kwargs=SCRATCH),
    "ssd_mobilenet_x0.5_scratch_bam": Row("ssd300", attention="bam", backbone_kwargs=HALF, detector_kwargs=SCRATCH),
    "stairnet_mobilenet_x0.5": Row("stairnet300", backbone_kwargs=HALF),
    "stairnet_mobilenet_x0.5_bam": Row("stairnet300", attention="bam", backbone_kwargs=HALF),
    "stairnet_mobilenet_x0.5_scratch": Row("stairnet300", backbone_kwargs=HALF, detector_kwargs=SCRATCH),
    "stairnet_mobilenet_x0.5_wide": Row("stairnet300", backbone_kwargs=HALF, detector_kwargs=WIDE),
    "stairnet_mobilenet_x0.5_wide_bam": Row("stairnet300", attention="bam", backbone_kwargs=HALF, detector_kwargs=WIDE),
    "stairnet_mobilenet_x0.5_scratch_bam": Row("stairnet300", attention="bam", backbone_kwargs=HALF, detector_kwargs=SCRATCH),
    "ssd_vgg16": Row("ssd300", "vgg16"),
}


def data(root: Path, train: int, val: int) -> COCODataModule:
    write_coco(root, train, val, size=128, seed=0)
    datamodule = COCODataModule(
        root=str(root),
        train_images="train",
        train_annotations="annotations/instances_train.json",
        val_images="val",
        val_annotations="annotations/instances_val.json",
        recipe="faster_rcnn",
        batch_size=16,
        num_workers=0,
        pin_memory=False,
    )
    datamodule.setup("fit")
    return datamodule


def train(model: nn.Module, datamodule: COCODataModule, epochs: int, lr: float, seed: int) -> float:
    """Seconds of training: SGD 0.9, weight decay 5e-4, OneCycle to ``lr`` (10 % warmup), stepped per step."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        datamodule.train_set, batch_size=16, shuffle=True, collate_fn=datamodule.collate_fn, drop_last=False
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * len(loader), pct_start=0.1)
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        for images, targets in loader:
            losses = model(list(images), [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            schedule.step()
        print(f"  epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def one_class(detections: dict[str, Any]) -> dict[str, Any]:
    """The same boxes, every label 1: scored so, mAP says how well the objects are found, whatever they are."""
    return {**detections, "labels": torch.ones_like(detections["labels"])}


@torch.no_grad()
def evaluate(model: nn.Module, datamodule: COCODataModule) -> dict[str, float]:
    """mAP@.5 and mAP in percent, with labels and class-agnostic."""
    model.eval()
    metrics = {"": MeanAveragePrecision(iou_type="bbox"), "agnostic ": MeanAveragePrecision(iou_type="bbox")}
    for metric in metrics.values():  # as ObjectDetector: SSD keeps 200 per image, SSDlite 300; COCO scores the best 100
        metric.warn_on_many_detections = False
    loader = torch.utils.data.DataLoader(datamodule.val_set, batch_size=16, collate_fn=datamodule.collate_fn)
    for images, targets in loader:
        predictions = model(list(images))
        metrics[""].update(predictions, list(targets))
        metrics["agnostic "].update([one_class(p) for p in predictions], [one_class(t) for t in targets])
    results = {}
    for prefix, metric in metrics.items():
        figures = metric.compute()
        results[f"{prefix}mAP@.5"] = float(figures["map_50"]) * 100
        results[f"{prefix}mAP"] = float(figures["map"]) * 100
    return results


def run(rows: list[str], seeds: list[int], epochs: int, lr: float, train_images: int, val_images: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        datamodule = data(Path(folder), train_images, val_images)
        for name in rows:
            runs = []
            for seed in seeds:
                torch.manual_seed(seed)
                model = ROWS[name].build()
                seconds = train(model, datamodule, epochs, lr, seed)
                figures = evaluate(model, datamodule)
                print(json.dumps({"row": name, "seed": seed, "train s": round(seconds), **figures}), flush=True)
                runs.append(figures)
            summary: dict[str, Any] = {"row": name, "params": sum(p.numel() for p in model.parameters()), "seeds": len(seeds)}
            for key in runs[0]:
                values = [r[key] for r in runs]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                summary[key] = f"{statistics.mean(values):.1f} ± {sd:.1f}"
            results.append(summary)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection_quality", description=__doc__)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--val", type=int, default=100)
    args = parser.parse_args()
    for row in run(args.rows, args.seeds, args.epochs, args.lr, args.train, args.val):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
