"""What ``bam predict`` writes beside the run's logs: ``predictions.csv`` (a classifier's top-5 of each image).

LightningCLI's predict keeps the model's outputs in memory and prints nothing of them. A
``PredictionWriter`` gathers one row per image from every process (the predict sampler gives
each image to one process), puts them back in the files' sorted order and writes from the first
process, rows of readable images only; ``PredictionsCSV`` here and ``detections.DetectionsCSV``
say what a row holds and how it is written.
"""

import csv
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from ..data.predict import ImageFiles

Row = tuple[Any, ...]  # (index, readable, what the model made of the image...)


class PredictionWriter(BasePredictionWriter, ABC):
    """One file (or a few) from the rows of every process, in ``ImageFiles`` order, once each."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    @abstractmethod
    def rows(self, output: dict[str, Any]) -> list[Row]:
        """``(index, readable, ...)`` for each image of one ``predict_step`` output."""

    @abstractmethod
    def write(self, folder: Path, rows: list[Row], dataset: ImageFiles, module: L.LightningModule) -> None:
        """Write the rows of the readable images, in file order, into ``folder`` (the run's log folder)."""

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: list[Any], batch_indices: list[Any]
    ) -> None:
        rows = [row for output in predictions for row in self.rows(output)]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[list[Row] | None] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part or []]
        folder = trainer.log_dir  # asked on every process: it broadcasts
        if not trainer.is_global_zero:
            return
        path = Path(folder or trainer.default_root_dir)
        path.mkdir(parents=True, exist_ok=True)
        ordered = sorted(dict((row[0], row) for row in rows).values(), key=lambda row: row[0])  # each index once
        self.write(path, [row for row in ordered if row[1]], trainer.datamodule.predict_set, pl_module)


class PredictionsCSV(PredictionWriter):
    """Writes ``<log_dir>/predictions.csv``: ``file, class_1, prob_1, ..., class_5, prob_5``, the class names the
    checkpoint carries."""

    def rows(self, output: dict[str, Any]) -> list[Row]:
        columns = (output["index"], output["readable"], output["probs"], output["classes"])
        return [(int(i), bool(ok), p.tolist(), c.tolist()) for i, ok, p, c in zip(*columns, strict=True)]

    def write(self, folder: Path, rows: list[Row], dataset: ImageFiles, module: L.LightningModule) -> None:
        names = module.hparams.get("class_names") or [str(c) for c in range(module.hparams.num_classes)]
        path = folder / "predictions.csv"
        top = len(rows[0][2]) if rows else 0
        with path.open("w", newline="") as file:
            out = csv.writer(file)
            out.writerow(["file", *(f"{what}_{k}" for k in range(1, top + 1) for what in ("class", "prob"))])
            for index, _, probs, classes in rows:
                pairs = zip(classes, probs, strict=True)
                out.writerow([dataset.name(index), *(v for c, p in pairs for v in (names[c], f"{p:.6f}"))])
        print(f"bam: wrote the top-{top} classes of {len(rows)} images to {path}", file=sys.stderr)
