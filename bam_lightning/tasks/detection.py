"""ObjectDetector: the LightningModule of the detection task, beside ImageClassifier.

The network is a torchvision detector (``models/detection``) cut from one of the package's
classifiers, with attention where its family puts it. Training minimises the detector's own
losses; validation and test measure mean average precision as the paper prints it, in
percent: ``map`` (IoU .5:.95), ``map_50``, ``map_75`` and ``map_{small,medium,large}`` from
torchmetrics' COCO evaluation. With ``metric: voc07`` (the VOC configs) ``map_50`` is the
PASCAL VOC 2007 figure instead (11-point interpolation, "difficult" objects left out:
``bam_lightning.tasks.voc07``), the one the SSD and StairNet papers report, and the COCO-style
101-point figure at IoU .5 is ``map_50_coco``.
"""

from typing import Any, Literal

import torch
from jsonargparse.typing import NonNegativeInt
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchmetrics.detection import MeanAveragePrecision
from torchvision.utils import draw_bounding_boxes

from ..engine.compiling import Compile
from ..models import DEFAULT_ATTENTION, Attention, Placement
from ..models.detection import build_detector
from ..models.weights import load_backbone_weights
from .base import TaskModule
from .voc07 import VOC07MeanAP

Batch = tuple[tuple[Tensor, ...], tuple[dict[str, Tensor], ...]]
Metric = Literal["coco", "voc07"]
COCO_FIGURES = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")


def describe(prediction: dict[str, Tensor], names: list[str], min_score: float = 0.3) -> list[str]:
    """``"name score"`` for each detection of ``min_score`` or more (``names[label - 1]``), as drawn and printed."""
    kept = prediction["scores"] >= min_score
    labels, scores = prediction["labels"][kept].tolist(), prediction["scores"][kept].tolist()
    return [f"{names[label - 1]} {score:.2f}" for label, score in zip(labels, scores, strict=True)]


def draw_detections(
    image: Tensor,
    prediction: dict[str, Tensor],
    names: list[str],
    target: dict[str, Tensor] | None = None,
    min_score: float = 0.3,
) -> Tensor:
    """``image`` (float C x H x W in [0, 1]) as uint8 with the true boxes in green and the detections ``describe`` keeps
    in red."""
    pixels = (image.detach().clamp(0, 1) * 255).to(torch.uint8).cpu()
    if target is not None and len(target["boxes"]):
        truth = [names[label - 1] for label in target["labels"].tolist()]
        pixels = draw_bounding_boxes(pixels, target["boxes"].cpu(), truth, colors="lime")
    boxes = prediction["boxes"][prediction["scores"] >= min_score].detach().cpu()
    return draw_bounding_boxes(pixels, boxes, describe(prediction, names, min_score), colors="red") if len(boxes) else pixels


class ObjectDetector(TaskModule):
    """Detection with the detector's own losses; logs ``train/loss`` (and each part) and mAPs in percent.

    Args:
        detector: a name from ``bam_lightning.models.detection.list_detectors()``.
        backbone: the classifier it is cut from, a name from ``bam_lightning.models.list_models()``.
        num_classes: object classes without the background; linked from the datamodule.
        class_names: linked from the datamodule; names the classes in the logged images.
        attention: block at every bottleneck of the backbone (Faster R-CNN) or before every
            prediction head (SSD, StairNet); null for none.
        attention_kwargs: options of that block, e.g. ``{reduction: 8}``.
        placement: where attention goes in a backbone (see ``ImageClassifier``).
        backbone_kwargs: options of the backbone's builder, e.g. ``{width_mult: 0.75}``.
        backbone_weights: the ImageNet classifier to start from: a path to one of this package's
            checkpoints, ``official:<path>`` (the paper's public ResNet-50+BAM checkpoint) or
            ``torchvision:<weights>`` (e.g. ``IMAGENET1K_V1``). Loaded when a fit starts from
            scratch, not when it resumes (``bam_lightning.models.weights``).
        detector_kwargs: options of the detector's builder, e.g. ``{min_size: 600}``.
        metric: ``coco`` or ``voc07`` (what ``val/map_50`` means); linked from the datamodule.
        optimizer: ``class_path``/``init_args`` in YAML; called with the parameter groups.
        lr_scheduler: likewise, called with the optimizer.
        scheduler_interval: ``step`` for the iteration-based detection recipes, or ``epoch``.
        decay_norm_and_bias: false excludes biases and norm scales from weight decay.
        log_images: every this many epochs, the first validation images with predicted (red,
            score >= 0.3) and true (green) boxes go to TensorBoard; 0 for never.
        compile: what ``torch.compile`` fuses (``bam_lightning.engine.compiling``).
    """

    RUN_OPTIONS = ("compile", "log_images")  # how to run the network, not what it is: given, they beat a checkpoint's
    TASK = "detection"  # the custom-scalars layout of its runs (run_logs.LAYOUT)
    HPARAM_METRICS = ("val/map_50", "val/map", "test/map_50", "test/map")  # HPARAMS' metric columns (run_logs.RunSummary)

    def __init__(
        self,
        detector: str = "faster_rcnn_c4",
        backbone: str = "resnet101",
        num_classes: int = 80,
        class_names: list[str] | None = None,
        attention: Attention | None = DEFAULT_ATTENTION,
        attention_kwargs: dict[str, Any] | None = None,
        placement: Placement | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_weights: str | None = None,
        detector_kwargs: dict[str, Any] | None = None,
        metric: Metric = "coco",
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
        decay_norm_and_bias: bool = True,
        log_images: NonNegativeInt = 1,
        compile: Compile = False,
    ) -> None:
        super().__init__(optimizer, lr_scheduler, compile, scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model, classifier = build_detector(
            detector,
            backbone,
            num_classes,
            attention,
            attention_kwargs,
            placement,
            backbone_kwargs,
            **(detector_kwargs or {}),
        )
        self._classifier = (classifier,)  # shares the detector's modules; a tuple keeps it out of the state dict
        self.metrics = torch.nn.ModuleDict({stage: MeanAveragePrecision(iou_type="bbox") for stage in ("val", "test")})
        for metric_ in self.metrics.values():  # SSD keeps 200 per image (VOC); COCO's protocol scores the best 100
            metric_.warn_on_many_detections = False
        if metric == "voc07":
            self.voc07 = torch.nn.ModuleDict({stage: VOC07MeanAP() for stage in ("val", "test")})

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Detections (``boxes``, ``labels``, ``scores``) in each image's own coordinates; eval mode."""
        return self.model(images)

    def on_fit_start(self) -> None:
        # After Lightning restored any checkpoint: a resumed run keeps its own weights.
        weights = self.hparams.backbone_weights
        if weights and self.trainer.ckpt_path is None:
            load_backbone_weights(self._classifier[0], self.hparams.backbone, weights)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, targets = batch
        losses = self.model(list(images), list(targets))
        loss = sum(losses.values())
        size = len(images)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{name}": value for name, value in losses.items()}, batch_size=size)
        return loss

    def _evaluate(self, batch: Batch, stage: str) -> list[dict[str, Tensor]]:
        images, targets = batch
        predictions = self.model(list(images))
        self.metrics[stage].update(predictions, list(targets))
        if self.hparams.metric == "voc07":
            self.voc07[stage].update(predictions, list(targets))
        return predictions

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        predictions = self._evaluate(batch, "val")
        every = self.hparams.log_images
        if batch_idx == 0 and every and self.current_epoch % every == 0 and not self.trainer.sanity_checking:
            self._log_images(batch, predictions)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: tuple[tuple[Tensor, ...], tuple[int, ...], tuple[bool, ...]], batch_idx: int) -> dict:
        """Every detection of each image of ``ImageFiles`` (``detections.DetectionsCSV``), on the CPU: the predictions
        of a whole split wait there for the epoch's end."""
        images, index, readable = batch
        found = [{key: value.cpu() for key, value in image.items()} for image in self(list(images))]
        return {"index": index, "readable": readable, "detections": found}

    def _log_epoch(self, stage: str) -> None:
        """The epoch's mAPs in percent; ``compute`` already gathers every process's detections."""
        results = self.metrics[stage].compute()
        self.metrics[stage].reset()
        # COCO's -1 means "no object of that size": left out, not logged as -100 %.
        figures = {name: results[name] * 100 for name in COCO_FIGURES if results[name] >= 0}
        if self.hparams.metric == "voc07":
            voc07 = self.voc07[stage].compute()["map_50"]
            self.voc07[stage].reset()
            if "map_50" in figures:
                figures["map_50_coco"] = figures.pop("map_50")
            if voc07 >= 0:  # -1 as COCO's: no object to find
                figures["map_50"] = voc07 * 100
        self.log_dict({f"{stage}/{name}": value.float() for name, value in figures.items()}, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_images(self, batch: Batch, predictions: list[dict[str, Tensor]], count: int = 4) -> None:
        """Predicted (red) and true (green) boxes on the first validation images, for TensorBoard."""
        if not isinstance(self.logger, TensorBoardLogger) or self.global_rank != 0:
            return
        images, targets = batch
        for i, (image, target, prediction) in enumerate(zip(images[:count], targets, predictions, strict=False)):
            drawn = draw_detections(image, prediction, self.class_names, target)
            self.logger.experiment.add_image(f"val/detections/{i}", drawn, self.current_epoch)

    @property
    def class_names(self) -> list[str]:
        """The data's class names (``class_names[label - 1]``), or the labels as text without them."""
        return self.hparams.class_names or [str(label) for label in range(1, self.hparams.num_classes + 1)]
