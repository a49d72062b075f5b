"""Detector training steps with and without BAM, at each recipe's image size: BAM's time overhead beside its MAC overhead.

Faster R-CNN C4 (COCO, 80 classes and background) on ResNet-101 and ResNet-50 steps on one
600x800 image, the recipe's batch, with its frozen stem, layer1 and norms and 256 RoIs per image;
SSD300 and StairNet300 (VOC, 20 classes and background) on VGG-16 and MobileNet v1 on batches
of 300x300 images (StairNet+BAM is the paper's row, SSD+BAM a comparison). A step is the
detector's own losses on random images with three random boxes each, backward and an SGD update,
in train mode; the detectors with and without BAM alternate step by step (``median_times``).

Random weights would make the work of a step depend on them, which a trained detector's does
not; two settings keep it fixed, and with it the same for both detectors of a pair (so they need
not share weights, as the classification suite's do):

- learning rate 0: the update's arithmetic all runs, but the weights stay, so no step can
  diverge (the frozen norms of Faster R-CNN do not normalise a random trunk);
- Faster R-CNN's RPN predictors are zeroed, so the proposals are the anchors themselves: NMS
  leaves enough of them for the recipe's RoIs per image. Random RPN outputs leave far fewer,
  and how many depends on the weights, while layer4 runs once per RoI and is most of the cost.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from bam_lightning.models import count_macs
from bam_lightning.models.complexity import median_times, sgd_step
from bam_lightning.models.detection import create_detector
from bam_lightning.models.probe import probing

from .common import overheads

VARIANTS = {"none": None, "bam": "bam"}
BOXES_PER_IMAGE = 3


@dataclass(frozen=True)
class Case:
    """One detector as its recipe trains it: ``classes`` without the background, ``image`` as (height, width)."""

    detector: str
    backbone: str
    classes: int
    image: tuple[int, int]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def heavy(self) -> bool:
        """Tens of seconds a step on a 2-core CPU: the ResNet and VGG detectors, not the MobileNet ones (about one)."""
        return self.backbone != "mobilenet_v1"

    def batch(self, device: torch.device) -> int:
        if self.detector == "faster_rcnn_c4":
            return 1  # the recipe's one image per GPU step
        return 32 if device.type == "cuda" else 8


FASTER_RCNN = {"freeze": True, "rois_per_image": 256}  # the COCO recipe's (the builder's defaults, spelt out)
CASES = [Case("faster_rcnn_c4", backbone, 80, (600, 800), FASTER_RCNN) for backbone in ("resnet101", "resnet50")]
CASES += [Case(d, b, 20, (300, 300)) for b in ("vgg16", "mobilenet_v1") for d in ("ssd300", "stairnet300")]


def schedule(case: Case, device: torch.device, steps: int | None) -> tuple[int, int]:
    """Warm-up and timed steps per detector: few on a CPU, where the heavy ones take tens of seconds a step."""
    if device.type == "cuda":
        warmup, timed = 5, 20
    else:
        warmup, timed = (1, 3) if case.heavy else (2, 5)
    return warmup, steps or timed


def random_targets(batch: int, image: tuple[int, int], classes: int, device: torch.device) -> list[dict[str, Tensor]]:
    """A few boxes per image, 1/16 to 1/2 of each side, with labels 1..classes: what the losses match anchors and RoIs to."""
    size = torch.tensor(image[::-1], dtype=torch.float32)  # (width, height), as boxes are x1, y1, x2, y2
    extent = size * (1 / 16 + 7 / 16 * torch.rand(batch, BOXES_PER_IMAGE, 2))
    corner = (size - extent) * torch.rand(batch, BOXES_PER_IMAGE, 2)
    labels = torch.randint(1, classes + 1, (batch, BOXES_PER_IMAGE))
    return [
        {"boxes": torch.cat([c, c + e], dim=1).to(device), "labels": y.to(device)}
        for c, e, y in zip(corner, extent, labels, strict=True)
    ]


def build(case: Case, attention: str | None, device: torch.device) -> nn.Module:
    """The detector in train mode, Faster R-CNN's RPN predicting the anchors unchanged (see the module's docstring)."""
    model = create_detector(case.detector, case.backbone, case.classes, attention=attention, **case.options)
    if case.detector == "faster_rcnn_c4":
        for layer in (model.rpn.head.cls_logits, model.rpn.head.bbox_pred):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model.to(device).train()


def counted(fn: Callable[..., Any], *inputs: Any) -> tuple[int, Any]:
    """MACs of ``fn(*inputs)`` (FLOPs / 2, as ``count_macs`` counts them) and its output."""
    counter = FlopCounterMode(display=False)
    with counter:
        output = fn(*inputs)
    return counter.get_total_flops() // 2, output


def faster_rcnn_macs(model: nn.Module, image: tuple[int, int]) -> tuple[int, str]:
    """MACs of one eval-mode image by parts, and what they are: a whole forward would count as many RoIs as NMS kept.

    The trunk (BAM included) on the image as the detector resizes and pads it, the RPN head on
    the trunk's map, and layer4 with the box predictors once per test proposal (RoI).
    """
    param = next(model.parameters())
    with probing(model):
        images, _ = model.transform([torch.zeros(3, *image, device=param.device)])
        trunk, feature = counted(model.backbone, images.tensors)
        rpn, _ = counted(model.rpn.head, [feature])
        heads = model.roi_heads
        roi = feature.new_zeros(1, feature.shape[1], *heads.box_roi_pool.output_size)
        per_roi, _ = counted(lambda r: heads.box_predictor(heads.box_head(r)), roi)
        rois = model.rpn.post_nms_top_n()
    height, width = images.tensors.shape[-2:]
    return trunk + rpn + rois * per_roi, f"trunk at {height}x{width} + RPN head + {rois} RoIs x (layer4 + predictors)"


def macs(model: nn.Module, case: Case) -> tuple[int, str]:
    """MACs of one eval-mode forward on one image, and what was counted."""
    if case.detector == "faster_rcnn_c4":
        return faster_rcnn_macs(model, case.image)
    height, width = case.image
    return count_macs(model, case.image), f"whole forward at {height}x{width}"


def measure(case: Case, device: torch.device, steps: int | None) -> dict[str, object]:
    """Images per second of training steps with and without BAM, interleaved, and BAM's time and MAC overheads."""
    batch, (warmup, timed) = case.batch(device), schedule(case, device, steps)
    images = list(torch.rand(batch, 3, *case.image, device=device))
    targets = random_targets(batch, case.image, case.classes, device)
    step_fns, counts = {}, {}
    for variant, attention in VARIANTS.items():
        model = build(case, attention, device)
        counts[variant], counted_what = macs(model, case)
        step_fns[variant] = sgd_step(model, lambda model=model: sum(model(images, targets).values()), lr=0.0)
    seconds = median_times(step_fns, device, timed, warmup)
    height, width = case.image
    return {
        "detector": case.detector,
        "backbone": case.backbone,
        "image": f"{height}x{width}",
        "batch": batch,
        "warm-up": warmup,
        "steps": timed,
        "img/s": f"{batch / seconds['none']:.3g}",  # three digits: a CPU does 0.02 to 10 img/s
        "img/s BAM": f"{batch / seconds['bam']:.3g}",
        **overheads(seconds["bam"], seconds["none"], counts["bam"], counts["none"]),
        "GMACs/img": f"{counts['none'] / 1e9:.2f}",
        "GMACs/img BAM": f"{counts['bam'] / 1e9:.2f}",
        "MACs counted": counted_what,
    }


def run(device: torch.device, steps: int | None = None) -> list[dict[str, object]]:
    """One row per detector; ``steps`` replaces the timed steps of ``schedule``."""
    torch.manual_seed(0)
    rows = []
    for case in CASES:
        rows.append(measure(case, device, steps))
        print(rows[-1], flush=True)
    return rows


COLUMNS = ["detector", "backbone", "image", "batch", "warm-up", "steps", "img/s", "img/s BAM"]
COLUMNS += ["time +%", "MACs +%", "time/MACs overhead", "GMACs/img", "MACs counted"]
