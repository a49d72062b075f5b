import math
from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from bam_lightning.tasks.voc07 import VOC07MeanAP


def pred(boxes: list, scores: list, labels: list) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def truth(boxes: list, labels: list, difficult: list | None = None) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "iscrowd": torch.tensor(difficult or [False] * len(labels)),
    }


def score(preds: list[dict], target: list[dict], **kwargs) -> dict:
    metric = VOC07MeanAP(**kwargs)
    metric.update(preds, target)
    return metric.compute()


# Image A holds G1 = [0,0,10,10] and G2 = [2,0,12,10]; image B holds G3 = [20,20,30,30]: 3 positives, all class 1.
# Detections, best first:
#   d1 0.9 A [0,0,10,10]: IoU 1 with G1 (0.67 with G2)                          -> TP, G1 taken
#   d2 0.8 A [0.5,0,10.5,10]: IoU 95/105 = 0.90 with G1, 85/115 = 0.74 with G2 -> FP: its best, G1, is taken,
#       and the devkit does not fall back to G2 (which would make it a TP, and the AP 1)
#   d3 0.7 B [20,20,30,31]: IoU 100/110 = 0.91 with G3                         -> TP
#   d4 0.6 B [40,40,50,50]: no overlap                                           -> FP
# TP, FP, TP, FP: precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3.
HAND_PREDS = [
    pred([[0, 0, 10, 10], [0.5, 0, 10.5, 10]], [0.9, 0.8], [1, 1]),
    pred([[40, 40, 50, 50], [20, 20, 30, 31]], [0.6, 0.7], [1, 1]),
]
HAND_TARGET = [truth([[0, 0, 10, 10], [2, 0, 12, 10]], [1, 1]), truth([[20, 20, 30, 30]], [1])]


def test_hand_worked_11_point_ap():
    # t = 0, 0.1, 0.2, 0.3: best precision at recall >= t is 1; t = 0.4, 0.5, 0.6: 2/3 (recall 2/3); t >= 0.7: 0.
    result = score(HAND_PREDS, HAND_TARGET)
    assert result["map_50"].item() == pytest.approx((4 * 1 + 3 * 2 / 3) / 11)
    assert torch.atleast_1d(result["classes"]).tolist() == [1] and torch.atleast_1d(result["map_per_class"]).tolist() == [
        result["map_50"].item()
    ]


def test_hand_worked_all_point_ap():
    # Envelope: 1 up to recall 1/3, 2/3 up to recall 2/3: area 1/3 * 1 + 1/3 * 2/3 = 5/9.
    assert score(HAND_PREDS, HAND_TARGET, use_07_metric=False)["map_50"].item() == pytest.approx(5 / 9)


def test_detections_are_ranked_over_all_images_by_score():
    # Dropping d4, the FP at 0.6, changes nothing: it ranks after every TP. Raising it above everything puts an FP first:
    # FP, TP, FP, TP: precision 0, 1/2, 1/3, 1/2 at recall 0, 1/3, 1/3, 2/3 -> (4 * 1/2 + 3 * 1/2) / 11.
    without_d4 = [HAND_PREDS[0], pred([[20, 20, 30, 31]], [0.7], [1])]
    assert score(without_d4, HAND_TARGET)["map_50"].item() == pytest.approx(6 / 11)
    d4_first = [HAND_PREDS[0], pred([[40, 40, 50, 50], [20, 20, 30, 31]], [0.95], [1, 1])]
    d4_first[1]["scores"] = torch.tensor([0.95, 0.7])
    assert score(d4_first, HAND_TARGET)["map_50"].item() == pytest.approx(3.5 / 11)


def test_difficult_objects_are_neither_found_nor_missed():
    # G1 [0,0,10,10] counts, G2 [20,0,30,10] is difficult: 1 positive. d1 0.9 hits G2 -> ignored; d2 0.8 hits
    # nothing -> FP; d3 0.7 hits G1 -> TP. FP, TP: precision 0, 1/2 at recall 0, 1 -> 1/2 at all 11 points.
    # (d1 as an FP would give 1/3; G2 as a positive found by d1 would give (6 * 1 + 5 * 2/3) / 11.)
    preds = [pred([[20, 0, 30, 10], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8, 0.7], [1, 1, 1])]
    target = [truth([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1], [False, True])]
    assert score(preds, target)["map_50"].item() == pytest.approx(0.5)
    assert score(preds, target, use_07_metric=False)["map_50"].item() == pytest.approx(0.5)


def test_a_class_with_only_difficult_objects_is_left_out_of_the_mean():
    preds = [pred([[0, 0, 10, 10], [20, 0, 30, 10]], [0.9, 0.2], [1, 2])]
    target = [truth([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 2], [False, True])]
    result = score(preds, target)
    assert torch.atleast_1d(result["classes"]).tolist() == [1] and result["map_50"].item() == pytest.approx(1.0)


def test_a_class_without_detections_scores_zero_and_counts_in_the_mean():
    preds = [pred([[0, 0, 10, 10]], [0.9], [1])]
    target = [truth([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 2])]
    for use_07_metric in (True, False):
        result = score(preds, target, use_07_metric=use_07_metric)
        assert torch.atleast_1d(result["classes"]).tolist() == [1, 2] and torch.atleast_1d(result["map_per_class"]).tolist() == [
            1.0,
            0.0,
        ]
        assert result["map_50"].item() == pytest.approx(0.5)


def test_detections_of_a_class_without_objects_change_nothing_and_no_objects_give_minus_one():
    target = [truth([[0, 0, 10, 10]], [1])]
    extra = [pred([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.95], [1, 3])]
    result = score(extra, target)
    assert torch.atleast_1d(result["classes"]).tolist() == [1] and result["map_50"].item() == pytest.approx(1.0)
    assert score(extra, [truth([], [])])["map_50"].item() == -1.0


def test_iou_threshold_is_inclusive_at_one_half_without_the_devkits_extra_pixel():
    # [0,0,10,10] against [0,0,20,10]: IoU exactly 100/200 = 0.5 -> TP. With the devkit's +1 on these numbers it would
    # be 121/231 = 0.52; against [0,0,21,10] plain IoU is 100/210 = 0.48 -> FP (+1 would give 121/242 = 0.5, a TP).
    target = [truth([[0, 0, 10, 10]], [1])]
    assert score([pred([[0, 0, 20, 10]], [0.9], [1])], target)["map_50"].item() == pytest.approx(1.0)
    assert score([pred([[0, 0, 21, 10]], [0.9], [1])], target)["map_50"].item() == 0.0


def test_perfect_detections_score_one_in_either_interpolation():
    target = [truth([[0, 0, 10, 10], [5, 5, 30, 40]], [1, 2]), truth([[3, 4, 50, 60]], [1])]
    preds = [pred(t["boxes"].tolist(), [0.9] * len(t["labels"]), t["labels"].tolist()) for t in target]
    for use_07_metric in (True, False):
        result = score(preds, target, use_07_metric=use_07_metric)
        assert torch.atleast_1d(result["map_per_class"]).tolist() == [1.0, 1.0] and result["map_50"].item() == 1.0


def random_scene(generator: torch.Generator, images: int = 12, classes: int = 3) -> tuple[list[dict], list[dict]]:
    """Objects of a few classes; detections are jittered copies (some mislabelled, some twice) and random boxes."""

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    preds, target = [], []
    for _ in range(images):
        n = int(torch.randint(0, 5, (), generator=generator))
        xy = uniform(n, 2) * 80
        boxes = torch.cat([xy, xy + 8 + uniform(n, 2) * 30], dim=1)
        labels = torch.randint(1, classes + 1, (n,), generator=generator)
        target.append({"boxes": boxes, "labels": labels, "iscrowd": uniform(n) < 0.15})
        kept = uniform(n) < 0.8
        copies = torch.cat([boxes[kept], boxes[kept][: n // 2]])
        copy_labels = torch.cat([labels[kept], labels[kept][: n // 2]])
        copy_labels = torch.where(uniform(len(copy_labels)) < 0.1, copy_labels % classes + 1, copy_labels)
        m = int(torch.randint(0, 4, (), generator=generator))
        xy = uniform(m, 2) * 80
        boxes = torch.cat([copies + (uniform(len(copies), 4) - 0.5) * 8, torch.cat([xy, xy + 10 + uniform(m, 2) * 20], dim=1)])
        labels = torch.cat([copy_labels, torch.randint(1, classes + 1, (m,), generator=generator)])
        scores = (uniform(len(labels)) * 10).round() / 10  # coarse: ties in score happen
        preds.append({"boxes": boxes, "scores": scores, "labels": labels})
    return preds, target


def devkit_ap(preds: list[dict], target: list[dict], label: int, use_07_metric: bool) -> float:
    """VOCevaldet.m's loop, transcribed one detection at a time, with the devkit's +1 pixel on inclusive boxes.

    Boxes here are continuous, so each is written out as the devkit reads it: (x1 + 1, y1 + 1, x2, y2).
    """
    gts = [[(b + torch.tensor([1, 1, 0, 0])).tolist() for b in t["boxes"][t["labels"] == label]] for t in target]
    difficult = [t["iscrowd"][t["labels"] == label].tolist() for t in target]
    taken = [[False] * len(g) for g in gts]
    dets = [
        (float(s), i, (b + torch.tensor([1, 1, 0, 0])).tolist())
        for i, p in enumerate(preds)
        for b, s, c in zip(p["boxes"], p["scores"], p["labels"], strict=True)
        if c == label
    ]
    dets.sort(key=lambda d: -d[0])  # stable, as Matlab's sort
    tp, fp = [], []
    for _, i, bb in dets:
        ovmax, jmax = -math.inf, None
        for j, g in enumerate(gts[i]):
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + 1
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + 1
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - iw * ih
                if iw * ih / ua > ovmax:
                    ovmax, jmax = iw * ih / ua, j
        if ovmax >= 0.5 and difficult[i][jmax]:
            tp.append(0), fp.append(0)
        elif ovmax >= 0.5 and not taken[i][jmax]:
            taken[i][jmax] = True
            tp.append(1), fp.append(0)
        else:
            tp.append(0), fp.append(1)
    positives = sum(not d for ds in difficult for d in ds)
    ctp, cfp = torch.tensor(tp, dtype=torch.float64).cumsum(0), torch.tensor(fp, dtype=torch.float64).cumsum(0)
    rec, prec = (ctp / positives).tolist(), (ctp / (ctp + cfp)).nan_to_num(0).tolist()
    if use_07_metric:
        return sum(max([p for r, p in zip(rec, prec, strict=True) if r >= t / 10], default=0) for t in range(11)) / 11
    mrec, mpre = [0, *rec, 1], [0, *prec, 0]
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    return sum((mrec[k + 1] - mrec[k]) * mpre[k + 1] for k in range(len(mrec) - 1))


@pytest.mark.parametrize("use_07_metric", [True, False])
def test_agrees_with_the_devkits_loop_on_random_scenes(use_07_metric):
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        preds, target = random_scene(generator)
        result = score(preds, target, use_07_metric=use_07_metric)
        expected = [devkit_ap(preds, target, c, use_07_metric) for c in torch.atleast_1d(result["classes"]).tolist()]
        assert torch.atleast_1d(result["map_per_class"]).tolist() == pytest.approx(expected, abs=1e-6)
        assert result["map_50"].item() == pytest.approx(sum(expected) / len(expected), abs=1e-6)


def test_updates_accumulate_and_bounding_boxes_are_accepted():
    preds, target = random_scene(torch.Generator().manual_seed(2))
    whole = score(preds, target)
    metric = VOC07MeanAP()
    for start in range(0, len(preds), 5):
        boxed = [{**t, "boxes": tv_tensors.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=(120, 120))} for t in target]
        metric.update(preds[start : start + 5], boxed[start : start + 5])
    parts = metric.compute()
    assert torch.equal(parts["map_per_class"], whole["map_per_class"]) and torch.equal(parts["map_50"], whole["map_50"])
    with pytest.raises(ValueError, match="one of each per image"):
        metric.update(preds[:2], target[:1])


def test_close_to_but_not_torchmetrics_coco_map_50():
    """The same matches, sampled differently: COCO reads precision at 101 recall points, VOC 2007 at 11, VOC 2010 at all."""
    pytest.importorskip("pycocotools")
    from torchmetrics.detection import MeanAveragePrecision

    # A scene where the 11 points land 0.015 above COCO (across seeds the gap runs from 0 to 0.015, both ways).
    preds, target = random_scene(torch.Generator().manual_seed(6), images=40)
    target = [{**t, "iscrowd": torch.zeros_like(t["iscrowd"])} for t in target]  # COCO's crowds are not VOC's difficult
    coco = MeanAveragePrecision(iou_thresholds=[0.5])
    coco.update(preds, target)
    coco_map = coco.compute()["map_50"].item()
    voc07, voc10 = (score(preds, target, use_07_metric=flag)["map_50"].item() for flag in (True, False))
    assert abs(voc10 - coco_map) < 0.005
    assert 0.005 < abs(voc07 - coco_map) < 0.03


def ddp_worker(rank: int, init_file: str, preds: list[dict], target: list[dict], out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    metric = VOC07MeanAP()
    cut = 5  # uneven shares: the gathers pad and trim
    metric.update(preds[:cut] if rank == 0 else preds[cut:], target[:cut] if rank == 0 else target[cut:])
    torch.save(metric.compute(), f"{out}{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ranks_sync_to_the_single_process_result(tmp_path: Path):
    preds, target = random_scene(torch.Generator().manual_seed(4))
    # fork, not spawn: children that start fresh spend seconds importing torch again.
    args = (str(tmp_path / "init"), preds, target, str(tmp_path / "rank"))
    torch.multiprocessing.start_processes(ddp_worker, args, nprocs=2, start_method="fork")
    whole = score(preds, target)
    for rank in range(2):
        synced = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(synced["classes"], whole["classes"])
        assert torch.allclose(synced["map_per_class"], whole["map_per_class"]) and synced["map_50"] == whole["map_50"]
