"""ImageClassifier: the LightningModule that owns the loss, the metrics and the optimisation.

The network comes from ``create_model`` by name (``backbone: wrn28_8``) with its attention
choice, or is any ``nn.Module`` given by ``class_path``. Accuracies are logged in percent
and the error the paper reports beside them (``val/err1 = 100 - val/acc1``).
Hyperparameters saved in checkpoints are plain values only, so a checkpoint loads with
``torch.load(..., weights_only=True)``.
"""

from functools import partial
from typing import Any, Literal

import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from ..data.corruptions import CorruptionDataModule, corruption_summary, corruption_table
from ..data.mixing import BatchMixing
from ..engine.compiling import Compile
from ..engine.corruption_errors import GroupErrors
from ..engine.run_logs import last_scalar
from ..errors import InputError, first_line, warn
from ..models import DEFAULT_ATTENTION, Attention, Placement, create_model
from ..models.probe import input_sizes, probing, total_stride
from ..nn import attention_blocks
from ..nn.bam import Dilated, SpatialGate, dilation_past_the_map
from ..nn.bam_official import OfficialSpatialGate
from .base import TaskModule


def dilation_warning(past: dict[str, Dilated]) -> str:
    """The one warning line for BAM blocks whose dilation reaches past their map (``nn.bam.dilation_past_the_map``)."""
    side = min(min(size) for _, size in past.values())
    fix = f"{{dilation: N}} with N below {side}" if side > 1 else "{num_dilated: 0}"
    listed = ", ".join(f"{name} ({h}x{w} map, dilation {d})" for name, (d, (h, w)) in past.items())
    return (
        f"BAM's dilated convs read only zero padding off-centre where the dilation is not below the map's side: {listed}:"
        f" give model.attention_kwargs {fix}, or a larger --data.image_size"
    )


class ImageClassifier(TaskModule):
    """Classification with cross-entropy; logs ``{train,val,test}/{loss,acc1,acc5,err1,err5}``, and for validation
    and test the calibration: ``ece`` (expected calibration error, 15 equal-width bins, L1, in percent) and ``nll``
    (the mean negative log-likelihood of the labels, in nats, without label smoothing).

    Tested on corruption data (``data.corruptions.CorruptionDataModule``: CIFAR-10-C, CIFAR-100-C, ImageNet-C, the
    digits demo's), it logs ``test/corruption/...`` instead (``corruptions.corruption_summary``: the error of each
    corruption and severity, their means, ``ece`` over all corrupted images, and for ImageNet-C ``mce`` and
    ``relative_mce``) and prints them as a corruption x severity table; nothing under ``test/`` else, so the clean
    test logged into the same run folder stays.

    Args:
        backbone: a name from ``bam_lightning.models.list_models()``, ``timm/<name>`` (any of timm's models), or a module.
        num_classes: linked from the datamodule by the ``bam`` command.
        image_size: linked from the datamodule; where a given module's bottlenecks are found.
        attention: block at every bottleneck (``bam``, ``bam_official``, ``se``, ``cbam``, ``timm/<name>``, null),
            or ``extra_block``: one more block of the stage there instead (the paper's Table 1c).
        attention_kwargs: options of that block, e.g. ``{reduction: 8, dilation: 2}``.
        placement: ``bottleneck`` (the paper's BAM), ``every_block`` (BAM-C, Table 2) or
            ``around_downsampling``; null takes the backbone's own (DenseNet: around its transitions).
        backbone_kwargs: options of the backbone's builder, e.g. ``{width_mult: 0.7}``.
        pretrained: weights to start from, a folder ``bam export --format hf`` wrote: ``local-dir:DIR`` or
            ``hf-hub:owner/name`` (``models.hub``). They must fit the network these options build, but for the
            classifier, which starts fresh where ``num_classes`` differs (fine-tuning on other data). Checkpoints
            hold the weights, so they record none: a run resumed or tested from one does not fetch them again.
        label_smoothing: of the cross-entropy target.
        mixup_alpha: MixUp's Beta(alpha, alpha) on each training batch (0: off; timm's recipes use 0.2-0.8).
        cutmix_alpha: CutMix's likewise (0: off; 1.0 in timm's); with both on, each batch gets one of them.
            The loss takes the soft targets; ``train/acc1`` counts the dominant label (``mixing.BatchMixing``).
        optimizer: ``class_path``/``init_args`` in YAML; called with the parameter groups.
        lr_scheduler: likewise, called with the optimizer (e.g. ``bam_lightning.engine.schedules.WarmupCosine``).
        scheduler_interval: ``epoch`` (the paper's step schedules) or ``step``: when the scheduler steps.
        decay_norm_and_bias: false excludes biases and norm scales from weight decay.
        channels_last: keep the network's weights and inputs in NHWC memory order, which
            cuDNN's tensor-core kernels and oneDNN on CPU run faster (same math, other
            rounding order); best with ``trainer.precision: bf16-mixed`` on GPUs.
        compile: what ``torch.compile`` fuses when the trainer sets the model up: false
            (nothing), ``attention`` (each attention block: BAM's element-wise passes, tens
            of seconds of compiling per map size) or ``network`` (everything, minutes of
            compiling); the checkpoint's keys do not change (``bam_lightning.engine.compiling``).
        class_names: the data's class names, by class index; ``bam fit`` stores those of its
            datamodule here (so its checkpoints carry them) and ``bam predict`` writes them.
    """

    RUN_OPTIONS = ("compile", "channels_last")  # how to run the network, not what it is: given, they beat a checkpoint's
    TASK = "classification"  # the custom-scalars layout of its runs (run_logs.LAYOUT)
    HPARAM_METRICS = (
        "val/err1",
        "val/acc1_best",
        "test/err1",
        "val/ece",
        "val/nll",
        "test/ece",
        "test/nll",
    )  # HPARAMS' metric columns (run_logs.RunSummary)

    def __init__(
        self,
        backbone: str | nn.Module = "wrn28_8",
        num_classes: int = 100,
        image_size: int | None = None,
        attention: Attention | None = DEFAULT_ATTENTION,
        attention_kwargs: dict[str, Any] | None = None,
        placement: Placement | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        pretrained: str | None = None,
        label_smoothing: ClosedUnitInterval = 0.0,
        mixup_alpha: NonNegativeFloat = 0.0,
        cutmix_alpha: NonNegativeFloat = 0.0,
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "epoch",
        decay_norm_and_bias: bool = True,
        channels_last: bool = False,
        compile: Compile = False,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler, compile, scheduler_interval, monitor="val/loss")
        given = isinstance(backbone, nn.Module)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"] + (["backbone"] if given else []))
        self.model = create_model(
            backbone,
            num_classes,
            attention,
            attention_kwargs,
            placement,
            input_size=image_size,
            pretrained=pretrained,
            **(backbone_kwargs or {}),
        )
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        # No validation of the targets: torchmetrics' check (torch.unique) waits for the GPU every batch, and
        # cross_entropy already refuses a label out of range.
        accuracy = partial(MulticlassAccuracy, num_classes, average="micro", validate_args=False)
        self.metrics = nn.ModuleDict(
            {
                "train_acc1": accuracy(top_k=1),
                **{f"{stage}_acc1": accuracy(top_k=1) for stage in ("val", "test")},
                **{f"{stage}_acc5": accuracy(top_k=min(5, num_classes)) for stage in ("val", "test")},
            }
        )
        # On probabilities: given logits, torchmetrics takes values that all fall in [0, 1] for probabilities already.
        ece = partial(MulticlassCalibrationError, num_classes, n_bins=15, norm="l1", validate_args=False)
        self.calibration = nn.ModuleDict(
            {
                **{f"{stage}_ece": ece() for stage in ("val", "test")},
                **{f"{stage}_nll": MeanMetric() for stage in ("val", "test")},
            }
        )
        self.corruption_ece = ece()
        self.corruption_errors: GroupErrors | None = None  # set up for a test on corruption data
        self.mixing = BatchMixing(num_classes, mixup_alpha, cutmix_alpha)
        self.best_acc1 = MaxMetric()
        self.best_acc1.persistent(True)  # "best so far" survives a resume

    def forward(self, x: Tensor) -> Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def setup(self, stage: str) -> None:
        """Keep the data's class names in the hyperparameters, and so in every checkpoint, for ``bam predict``."""
        names = getattr(self.trainer.datamodule, "classes", None)
        if stage == "fit" and names is not None:
            self.hparams.class_names = list(names)

    def check_image_size(self, size: int) -> None:
        """Refuse, in one line, an image size the network cannot take; warn, in one line, where BAM would read padding.

        Before a run, not deep inside it, one probe forward at ``size``: a layer that fails there is
        refused by name. So is a size below the network's total stride, which the probe passes
        thanks to padding but which leaves maps of one pixel from some downsampling on: a run
        on nonsense. BAM blocks whose dilation reaches past the map they see are only warned
        about (``dilation_past_the_map``): the block still works, but its dilated convs read zeros.
        """
        name = self.hparams.get("backbone", type(self.model).__name__)
        gates = {n: m for n, m in attention_blocks(self.model, (SpatialGate, OfficialSpatialGate)) if m.dilation}
        sizes, hooks = input_sizes(gates)
        param = next(self.parameters())
        x = torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype)
        try:
            with probing(self.model, hooks):
                self.model(x)
        except RuntimeError as error:
            reason = first_line(error)
            raise InputError(f"{name} cannot take {size}x{size} images ({reason}): change --data.image_size") from None
        stride = total_stride(self.model)
        if size < stride:
            raise InputError(
                f"{name} cannot take {size}x{size} images: it downsamples them {stride}x,"
                f" so it needs at least {stride}x{stride}: change --data.image_size"
            )
        blocks = {gate.rpartition(".")[0] or gate: (gates[gate].dilation, hw) for gate, hw in sizes.items()}
        past = dilation_past_the_map(blocks)
        if past:
            warn(dilation_warning(past))

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, targets = batch
        labels = targets
        if stage == "train" and self.mixing.active:
            images, targets = self.mixing(images, targets, self.global_step, self.global_rank)
            labels = targets.argmax(dim=1)  # the dominant label, for train/acc1
        logits = self(images)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)
        for name, metric in self.metrics.items():
            if name.startswith(stage):
                metric.update(logits.detach(), labels)
        if stage != "train":
            logits = logits.detach().float()
            self.calibration[f"{stage}_ece"].update(logits.softmax(dim=-1), labels)
            self.calibration[f"{stage}_nll"].update(F.cross_entropy(logits, labels, reduction="none"))
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=images.size(0), sync_dist=stage != "train")
        return loss

    def _log_accuracy(self, stage: str) -> Tensor:
        """Epoch accuracies and ECE in percent, and NLL; ``compute`` already synchronises across processes."""
        values = {}
        for k in ("acc1", "acc5"):
            if f"{stage}_{k}" in self.metrics:
                metric = self.metrics[f"{stage}_{k}"]
                values[k] = metric.compute() * 100
                metric.reset()
        values |= {f"err{k[-1]}": 100 - value for k, value in list(values.items())}  # the errors the paper reports
        if stage != "train":
            for k, scale in (("ece", 100), ("nll", 1)):
                metric = self.calibration[f"{stage}_{k}"]
                values[k] = metric.compute() * scale
                metric.reset()
        # Equal on every process already; sync_dist only tells Lightning so.
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, sync_dist=True)
        return values["acc1"]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "val")  # the loss, for DivergenceGuard

    def test_step(self, batch: tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        if self.corruption_errors is None:
            self._step(batch, "test")
            return
        images, labels, groups = batch
        logits = self(images).float()
        self.corruption_errors.update(logits, labels, groups)
        self.corruption_ece.update(logits.softmax(dim=-1), labels)

    def predict_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The top-5 classes and their probabilities of each image of ``ImageFiles`` (``predictions.PredictionsCSV``)."""
        images, index, readable = batch
        top = self(images).softmax(dim=-1).topk(min(5, self.hparams.num_classes), dim=-1)
        return {"index": index, "readable": readable, "probs": top.values, "classes": top.indices}

    def on_train_epoch_start(self) -> None:
        self.metrics["train_acc1"].reset()  # an end-of-epoch checkpoint brings the finished epoch's counts

    def on_train_epoch_end(self) -> None:
        self._log_accuracy("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hyper_parameters"]["pretrained"] = None  # the weights are in the checkpoint: loading it fetches nothing
        # The epoch's training accuracy so far, summed over processes: a run stopped inside an
        # epoch (SIGTERM) and resumed logs the train/acc1 of the run that never stopped.
        metric = self.metrics["train_acc1"]
        with metric.sync_context():
            checkpoint["train_acc1_state"] = {name: value.clone() for name, value in metric.metric_state.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The names a fit stored, also where the model was built from the config, not from the checkpoint's
        # hyperparameters (LightningCLI reads those only from a file path, not from --ckpt_path last or best).
        names = checkpoint.get("hyper_parameters", {}).get("class_names")
        if names:
            self.hparams.class_names = names
        state = checkpoint.get("train_acc1_state")
        if state and self.global_rank == 0:  # the sum over processes is counted once
            metric = self.metrics["train_acc1"]
            for name, value in state.items():
                setattr(metric, name, value.to(metric.device))

    def on_validation_epoch_end(self) -> None:
        acc1 = self._log_accuracy("val")
        if not self.trainer.sanity_checking:
            self.best_acc1.update(acc1)
            self.log("val/acc1_best", self.best_acc1.compute(), sync_dist=True)

    def on_test_start(self) -> None:
        data = self.trainer.datamodule
        groups = data.corruption_groups if isinstance(data, CorruptionDataModule) else None
        self.corruption_errors = None if groups is None else GroupErrors(groups).to(self.device)

    def on_test_epoch_end(self) -> None:
        if self.corruption_errors is None:
            self._log_accuracy("test")
            return
        errors = self.corruption_errors.compute()
        data = self.trainer.datamodule
        clean_err1 = data.clean_err1
        if data.reference is not None and clean_err1 is None:
            clean_err1 = self._clean_err1()
        values = corruption_summary(errors, data.reference, clean_err1)
        values["ece"] = self.corruption_ece.compute().item() * 100
        self.corruption_ece.reset()
        if self.trainer.is_global_zero:
            print(f"{data.name}: top-1 error (%) per corruption and severity\n{corruption_table(errors)}", flush=True)
        self.log_dict({f"test/corruption/{k}": v for k, v in values.items()}, sync_dist=True)  # equal on every process

    def _clean_err1(self) -> float | None:
        """The clean ``test/err1`` that ``bam test`` logged into this run's folder, for the relative mCE; else None, with
        one warning line."""
        folder = getattr(self.logger, "log_dir", None)
        found = None if folder is None else last_scalar(folder, "test/err1")
        if found is None:
            warn(
                f"no clean test/err1 logged in {folder or 'this run (no logger)'}: relative mCE skipped; run bam test on"
                " the clean data with the same checkpoint first, or pass --data.clean_err1"
            )
        return found
