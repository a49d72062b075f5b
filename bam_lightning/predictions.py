"""``predictions.csv``: what ``bam predict`` makes of each of the user's images, beside the run's logs.

LightningCLI's predict keeps the model's outputs in memory and prints nothing of them. This
writer gathers the top-5 classes of every image from every process (the predict sampler gives
each image to one process), puts them back in the files' sorted order and writes one file from
the first process: a row per readable image, the class names the checkpoint carries.
"""

import csv
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

from .data.predict import ImageFiles

Row = tuple[int, bool, list[float], list[int]]  # index, readable, top probabilities, top classes


class PredictionsCSV(BasePredictionWriter):
    """Writes ``<log_dir>/predictions.csv``: ``file, class_1, prob_1, ..., class_5, prob_5``."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: list[Any], batch_indices: list[Any]
    ) -> None:
        rows: list[Row] = [
            (int(i), bool(ok), p.tolist(), c.tolist())
            for out in predictions
            for i, ok, p, c in zip(out["index"], out["readable"], out["probs"], out["classes"], strict=True)
        ]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[list[Row] | None] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part or []]
        folder = trainer.log_dir  # asked on every process: it broadcasts
        if not trainer.is_global_zero:
            return
        dataset: ImageFiles = trainer.datamodule.predict_set
        names = pl_module.hparams.get("class_names") or [str(c) for c in range(pl_module.hparams.num_classes)]
        path = Path(folder or trainer.default_root_dir) / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        top = len(rows[0][2]) if rows else 0
        written = 0
        with path.open("w", newline="") as file:
            out = csv.writer(file)
            out.writerow(["file", *(f"{what}_{k}" for k in range(1, top + 1) for what in ("class", "prob"))])
            for index, readable, probs, classes in sorted(dict((row[0], row) for row in rows).values()):
                if readable:
                    pairs = zip(classes, probs, strict=True)
                    out.writerow([dataset.name(index), *(v for c, p in pairs for v in (names[c], f"{p:.6f}"))])
                    written += 1
        print(f"bam: wrote the top-{top} classes of {written} images to {path}", file=sys.stderr)
