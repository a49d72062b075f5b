"""The detection-quality benchmark's plumbing, shrunk: torchvision's SSDlite and one of our rows train, score, summarise."""

import math

from benchmarks.detection_quality import run

FIGURES = ("mAP@.5", "mAP", "agnostic mAP@.5", "agnostic mAP")


def test_a_shrunk_run_scores_every_row_in_percent_and_summarises_the_seeds():
    rows = run(["ssdlite", "stairnet_mobilenet_x0.5_scratch_bam"], seeds=[0, 1], epochs=1, lr=0.01, train_images=4, val_images=2)
    assert [row["row"] for row in rows] == ["ssdlite", "stairnet_mobilenet_x0.5_scratch_bam"]
    for row in rows:
        assert row["seeds"] == 2 and row["params"] > 1_000_000
        for figure in FIGURES:
            mean, sd = (float(v) for v in row[figure].split(" ± "))
            assert 0 <= mean <= 100 and sd >= 0 and not math.isnan(mean)
