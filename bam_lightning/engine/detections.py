"""What ``bam predict`` writes with a detector: ``detections.csv`` and, on a COCO file's images, ``detections.json``.

Every detection the detector returns is written: the score threshold, the non-maximum
suppression and the number kept per image are the detector's own (by default torchvision's Faster
R-CNN keeps scores of 0.05 or more, at most 100 per image; SSD and StairNet 0.01, at most 200), the
settings of COCO's and VOC's evaluation, which rank every detection. A higher bar is one filter
of the CSV's ``score`` column away, while detections cut here could not be had back.

Boxes are in the image's own pixels, in the continuous coordinates the detectors use (the image
spans x 0 to its width): the detector resizes an image itself and maps its boxes back.
"""

import csv
import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as L

from ..data.coco import COCOImageFiles
from ..data.predict import ImageFiles
from .predictions import PredictionWriter, Row

DECIMALS = 2  # of a box corner in pixels: a hundredth of a pixel is far below any detector's precision


class DetectionsCSV(PredictionWriter):
    """Writes ``<log_dir>/detections.csv``: ``file, label, score, x0, y0, x1, y1``, a row per detection, in file order
    and, within a file, in the detector's order (best first); and, where the images are a COCO file's
    (``COCOImageFiles``), ``<log_dir>/detections.json``: COCO's results format, a list of ``{image_id, category_id,
    bbox: [x, y, width, height], score}`` with the file's own ids, which pycocotools' ``COCO.loadRes`` reads."""

    def rows(self, output: dict[str, Any]) -> list[Row]:
        columns = (output["index"], output["readable"], output["detections"])
        return [
            (int(i), bool(ok), found["boxes"].tolist(), found["labels"].tolist(), found["scores"].tolist())
            for i, ok, found in zip(*columns, strict=True)
        ]

    def write(self, folder: Path, rows: list[Row], dataset: ImageFiles, module: L.LightningModule) -> None:
        names = module.class_names
        path = folder / "detections.csv"
        count = 0
        with path.open("w", newline="") as file:
            out = csv.writer(file)
            out.writerow(["file", "label", "score", "x0", "y0", "x1", "y1"])
            for index, _, boxes, labels, scores in rows:
                for box, label, score in zip(boxes, labels, scores, strict=True):
                    out.writerow([dataset.name(index), names[label - 1], f"{score:.6f}", *(f"{v:.{DECIMALS}f}" for v in box)])
                    count += 1
        print(f"bam: wrote {count} detection(s) on {len(rows)} image(s) to {path}", file=sys.stderr)
        if isinstance(dataset, COCOImageFiles):
            results = folder / "detections.json"
            results.write_text(json.dumps(coco_results(rows, dataset)))
            print(f"bam: wrote them in COCO's results format to {results}", file=sys.stderr)


def coco_results(rows: list[Row], dataset: COCOImageFiles) -> list[dict[str, Any]]:
    """The rows' detections as COCO results: the file's image and category ids, ``[x, y, width, height]`` boxes."""
    return [
        {
            "image_id": dataset.image_ids[index],
            "category_id": dataset.category_ids[label - 1],
            "bbox": [round(x0, DECIMALS), round(y0, DECIMALS), round(x1 - x0, DECIMALS), round(y1 - y0, DECIMALS)],
            "score": round(score, 6),
        }
        for index, _, boxes, labels, scores in rows
        for (x0, y0, x1, y1), label, score in zip(boxes, labels, scores, strict=True)
    ]
