"""PASCAL VOC 2007 detection mAP, the number the SSD and StairNet papers report for VOC.

torchmetrics' ``MeanAveragePrecision`` is COCO's metric: at IoU 0.5 it interpolates precision at
101 recall points and matches detections otherwise, so its ``map_50`` sits near, not on, VOC's.
This metric scores as the VOC 2007 devkit's ``VOCevaldet.m`` does, in ``update``'s
``MeanAveragePrecision`` input format (``iscrowd`` marks VOC's "difficult" objects).
"""

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from torchvision.ops import box_iou


class VOC07MeanAP(Metric):
    """VOC mAP at IoU 0.5: the 2007 devkit's 11-point AP, or VOC 2010's all-point AP with ``use_07_metric=False``.

    Scoring follows the devkit step by step, since papers compare to its numbers: per class, the
    detections of all images in descending score (ties keep input order); each goes to the ground
    truth of its image and class it overlaps most, whether or not that one is taken; IoU >= 0.5 on a
    free one is a true positive, on a taken one a false positive (the devkit does not fall back to the
    second best), on a difficult one neither; a lower IoU is a false positive. Difficult objects are
    not positives, so they neither raise recall when found nor lower it when missed. mAP averages
    the classes with at least one non-difficult object; a class that has some but no detections scores 0.

    Boxes are torchvision's absolute ``xyxy`` in continuous coordinates (a box over pixel columns
    0..9 spans x 0 to 10), and IoU is plain area ratio, without the devkit's +1 pixel. The devkit's +1
    measures 1-based inclusive pixel indices (a box over columns 1..10 is ``xmin=1, xmax=10``, 10
    wide); a VOC box read as ``(xmin - 1, ymin - 1, xmax, ymax)``, as torchvision's conventions want,
    already has that width, and plain IoU on it equals the devkit's IoU on the XML numbers exactly.
    The SSD PyTorch ports keep VOC boxes inclusive (all four corners minus 1) and so add the 1; on
    continuous boxes it would widen every box by a pixel and raise the IoU of small ones.

    The 11 recall points are k/10, the doubles nearest 0, 0.1, ..., 1 (``np.arange(0, 1.1, 0.1)``
    in the Python ports puts 0.3, 0.6 and 0.7 a hair above, so a recall of exactly 3/10 misses the
    point 0.3 there).

    States are flat tensors concatenated across processes (``dist_reduce_fx="cat"``), with each
    image's number of boxes kept alongside: every state concatenates in the same rank order, so the
    counts rebuild the image of every box after a DDP sync, without image ids that would have to be
    unique across ranks. Every rank must call ``update`` at least once before ``compute``, as a
    ``DistributedSampler`` (Lightning's under DDP) makes sure.

    Args:
        use_07_metric: True for the 11-point AP of VOC 2007 (the SSD papers' VOC2007 test numbers);
            False for the area under the monotone precision envelope of VOC 2010 and later.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    iou_threshold = 0.5

    def __init__(self, use_07_metric: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_07_metric = use_07_metric
        for name in ("det_boxes", "det_scores", "det_labels", "det_counts", "gt_boxes", "gt_labels", "gt_difficult", "gt_counts"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, preds: list[dict[str, Tensor]], target: list[dict[str, Tensor]]) -> None:
        """Per image: ``preds`` with ``boxes``, ``scores``, ``labels``; ``target`` with ``boxes``, ``labels``, ``iscrowd``."""
        if len(preds) != len(target):
            raise ValueError(f"got {len(preds)} predictions for {len(target)} targets: one of each per image")
        for pred, truth in zip(preds, target, strict=True):
            boxes = _plain(pred["boxes"]).reshape(-1, 4).float()
            self.det_boxes.append(boxes)
            self.det_scores.append(pred["scores"].reshape(-1).float())
            self.det_labels.append(pred["labels"].reshape(-1).long())
            self.det_counts.append(torch.tensor([len(boxes)], device=self.device))
            boxes = _plain(truth["boxes"]).reshape(-1, 4).float()
            difficult = truth.get("iscrowd", torch.zeros(len(boxes), device=boxes.device))
            self.gt_boxes.append(boxes)
            self.gt_labels.append(truth["labels"].reshape(-1).long())
            self.gt_difficult.append(difficult.reshape(-1).long())  # not bool: gathers of bool fail on some backends
            self.gt_counts.append(torch.tensor([len(boxes)], device=self.device))

    def compute(self) -> dict[str, Tensor]:
        """``map_50``: mean AP as a fraction (-1 without any non-difficult object, as torchmetrics does);
        ``map_per_class``: the AP of each label in ``classes``, the labels with a non-difficult object
        (0-d when there is one: torchmetrics squeezes one-element results)."""
        det_boxes, gt_boxes = dim_zero_cat(self.det_boxes).double(), dim_zero_cat(self.gt_boxes).double()
        det_scores, det_labels = dim_zero_cat(self.det_scores), dim_zero_cat(self.det_labels)
        gt_labels, gt_difficult = dim_zero_cat(self.gt_labels), dim_zero_cat(self.gt_difficult).bool()
        best_iou, best_gt = self._best_ground_truth(det_boxes, det_labels, gt_boxes, gt_labels)

        order = torch.sort(det_scores, descending=True, stable=True).indices
        det_labels, target = det_labels[order], best_gt[order]
        hit = best_iou[order] >= self.iou_threshold
        target, rank = target[hit], torch.arange(len(order), device=order.device)[hit]
        # A ground truth goes to the first detection that hits it; later hits are duplicates.
        first = torch.full_like(gt_labels, len(order)).scatter_reduce(0, target, rank, reduce="amin")
        true_positive, counted = hit.clone(), torch.ones_like(hit)
        true_positive[hit] = first[target] == rank
        counted[hit] = ~gt_difficult[target]

        positive = gt_labels[~gt_difficult]
        classes = positive.unique()
        ap = [self._average_precision(true_positive[counted & (det_labels == c)], int((positive == c).sum())) for c in classes]
        ap = torch.stack(ap) if ap else det_boxes.new_zeros(0)
        map_50 = ap.mean() if len(ap) else det_boxes.new_tensor(-1.0)
        return {"map_50": map_50.float(), "map_per_class": ap.float(), "classes": classes}

    def _best_ground_truth(
        self, det_boxes: Tensor, det_labels: Tensor, gt_boxes: Tensor, gt_labels: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per detection, the highest IoU with a ground truth of its class in its image, and that one's index.

        IoU is -1 where the image has none of the class; of equal maxima the first counts, as the devkit's strict > keeps.
        """
        best_iou = det_boxes.new_full((len(det_boxes),), -1.0)
        best_gt = torch.zeros_like(det_labels)
        det_ends = dim_zero_cat(self.det_counts).cumsum(0).tolist()
        gt_ends = dim_zero_cat(self.gt_counts).cumsum(0).tolist()
        for det_start, det_end, gt_start, gt_end in zip([0, *det_ends], det_ends, [0, *gt_ends], gt_ends, strict=False):
            if det_end > det_start and gt_end > gt_start:
                dets, gts = slice(det_start, det_end), slice(gt_start, gt_end)
                iou = box_iou(det_boxes[dets], gt_boxes[gts])
                iou[det_labels[dets, None] != gt_labels[None, gts]] = -1.0
                best_iou[dets], index = iou.max(dim=1)
                best_gt[dets] = index + gt_start
        return best_iou, best_gt

    def _average_precision(self, true_positive: Tensor, positives: int) -> Tensor:
        """AP of one class from the outcomes of its detections, best first."""
        tp = true_positive.double().cumsum(0)
        recall = tp / positives
        precision = tp / torch.arange(1, len(tp) + 1, dtype=torch.float64, device=tp.device)
        if self.use_07_metric:
            # The best precision at recall >= t, 0 where recall never gets there, for t = 0, 0.1, ..., 1.
            points = torch.arange(11, dtype=torch.float64, device=tp.device) / 10
            reached = recall[None, :] >= points[:, None]
            return torch.where(reached, precision[None, :], 0.0).amax(dim=1).mean() if len(tp) else tp.new_tensor(0.0)
        # Area under the envelope: each step up in recall times the best precision at or beyond it.
        envelope = precision.flip(0).cummax(0).values.flip(0)
        return (torch.diff(recall, prepend=recall.new_zeros(1)) * envelope).sum()


def _plain(boxes: Tensor) -> Tensor:
    """A tv_tensors.BoundingBoxes as a plain tensor, so states hold one type."""
    return boxes.as_subclass(Tensor)
