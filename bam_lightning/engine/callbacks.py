"""Callbacks the ``bam`` command runs: ``AttentionMapLogger``, watching what BAM learns while it trains (on in every
classification run, set with ``--attention_maps.*``); ``ThroughputLogger``, the images/s every fit and test logs
(``--throughput.*``); and ``LastCheckpoint``, the ``last.ckpt`` it always writes.

In YAML::

    attention_maps: {every_n_epochs: 5, num_images: 8}
    throughput: {window_size: 5, enable: true}
"""

from typing import Any

import lightning.pytorch as L
import torch
from jsonargparse.typing import PositiveInt
from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from ..data.base import input_statistics
from ..errors import InputError
from ..models.attention_maps import capture_attention, overlay, rescale
from ..models.complexity import count_macs
from ..nn import BAMS, attention_blocks


def _tensorboard(trainer: L.Trainer) -> TensorBoardLogger | None:
    return next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)


def _displayable(images: Tensor, datamodule: object) -> Tensor:
    """Normalised inputs back in [0, 1]: de-normalised where the statistics are known, else stretched per image."""
    stats = input_statistics(datamodule)
    if stats is None:
        return rescale(images)
    mean, std = (torch.tensor(v, dtype=images.dtype)[:, None, None] for v in stats)
    return (images * std + mean).clamp(0, 1)


class AttentionMapLogger(L.Callback):
    """Logs each BAM's spatial attention over the first validation images, and its channel attention, to TensorBoard.

    Every ``every_n_epochs`` epochs (counted by the trainer's epoch, so resumed runs keep
    the rhythm), on the first validation batch, rank zero writes ``attention/maps``: one
    row per image, the input then each BAM's spatial map over it (red = most attended,
    each map stretched to its own range, since trained maps often span little of (0, 1)),
    and the histograms ``attention/channel/<bam>`` of the raw channel attention. Without a
    TensorBoard logger or without BAM it says so once and logs nothing.

    Args:
        every_n_epochs: log after every this many training epochs.
        num_images: first images of the validation batch to show.
    """

    def __init__(self, every_n_epochs: PositiveInt = 5, num_images: PositiveInt = 8) -> None:
        super().__init__()
        if every_n_epochs < 1 or num_images < 1:
            raise InputError(
                f"AttentionMapLogger: every_n_epochs and num_images must be positive, got {every_n_epochs}, {num_images}"
            )
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # A callback list shared with the baseline configs must not stop their runs: say why nothing comes, once.
        if not attention_blocks(pl_module, BAMS):
            rank_zero_info("AttentionMapLogger: the model has no BAM, attention maps are not logged")
        elif _tensorboard(trainer) is None:
            rank_zero_info("AttentionMapLogger: no TensorBoard logger, attention maps are not logged")

    @rank_zero_only
    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if trainer.sanity_checking or not due or batch_idx != 0 or dataloader_idx != 0:
            return
        logger = _tensorboard(trainer)
        network = getattr(pl_module, "model", pl_module)  # names as the network has them: layer1.attn
        if logger is None or not attention_blocks(network, BAMS):
            return
        writer: SummaryWriter = logger.experiment
        images = batch[0][: self.num_images]
        maps = capture_attention(network, images)
        shown = _displayable(images.float().cpu(), trainer.datamodule)
        panels = [shown] + [overlay(shown, rescale(m.spatial)) for m in maps]
        grid = make_grid(torch.stack(panels, dim=1).flatten(0, 1), nrow=len(panels), padding=1)
        writer.add_image("attention/maps", grid, trainer.global_step)
        for m in maps:
            writer.add_histogram(f"attention/channel/{m.name}", m.channel, trainer.global_step)


def batch_size(batch: Any) -> int:
    """Images in a batch of either task: ``(images, targets)``, the images a tensor (classification) or a tuple (detection)."""
    return len(batch[0])


TRAINING_STEP_PASSES = 3  # a training step's FLOPs: the forward's, and twice them for the backward (inputs and weights)


class ThroughputLogger(ThroughputMonitor):
    """Lightning's ``ThroughputMonitor``, with the batch size read from the batch and the FLOPs from our own MAC count.

    It logs Lightning's keys: ``train/device/samples_per_sec`` (images/s of training steps, validation
    excluded), ``validate/...`` and ``test/device/samples_per_sec`` (images/s of inference), ``.../samples_per_sec``
    without ``device/`` beside them where a run has several devices, and ``.../device/flops_per_sec``; the
    model FLOPs utilisation ``.../device/mfu`` where Lightning knows the device's peak (CUDA GPUs). FLOPs are
    two per multiply-accumulate of an eval-mode forward (``count_macs``: convolutions and matrix products, as
    the paper counts them), three times that for a training step (forward and backward); a detector's are
    not counted (its forward depends on the image sizes and proposals): images/s only. Each value is the
    rate over the last ``window_size`` batches, logged every ``trainer.log_every_n_steps`` batches: a loop of
    fewer batches than the window logs none. ``enable: false`` leaves it out of the run.

    Args:
        window_size: batches of Lightning's rolling window (at least 2).
        enable: log throughput at all.
    """

    def __init__(self, window_size: int = 5, enable: bool = True) -> None:
        if window_size < 2:
            raise InputError(f"throughput.window_size must be at least 2 (a rate needs two batches), got {window_size}")
        super().__init__(batch_size_fn=batch_size, window_size=window_size)
        self.enable = enable
        self.forward_flops: int | None = None  # of one image

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Counts before ``configure_model`` compiles the network, one image on the device it is still on."""
        super().setup(trainer, pl_module, stage)
        image_size = getattr(trainer.datamodule, "image_size", None)
        network = getattr(pl_module, "model", None)
        if getattr(pl_module, "TASK", None) == "classification" and image_size is not None and network is not None:
            self.forward_flops = 2 * count_macs(network, image_size)

    def _set_flops(self, pl_module: L.LightningModule, batch: Any, passes: int) -> None:
        """``flops_per_batch``, the attribute ``ThroughputMonitor`` reads after each batch, for this batch."""
        pl_module.flops_per_batch = None if self.forward_flops is None else self.forward_flops * passes * batch_size(batch)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any) -> None:
        self._set_flops(pl_module, batch, TRAINING_STEP_PASSES)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, *args)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any, **kwargs: Any
    ) -> None:
        self._set_flops(pl_module, batch, 1)
        super().on_validation_batch_end(trainer, pl_module, outputs, batch, *args, **kwargs)

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any, **kwargs: Any
    ) -> None:
        self._set_flops(pl_module, batch, 1)
        super().on_test_batch_end(trainer, pl_module, outputs, batch, *args, **kwargs)

    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any, **kwargs: Any
    ) -> None:
        self._set_flops(pl_module, batch, 1)
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, *args, **kwargs)


class LastCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that, with ``save_on_exception``, saves only when the run is stopped by SIGTERM.

    On SIGTERM (what SLURM and most schedulers send before they preempt or cancel a job)
    Lightning finishes the current training batch, raises ``SIGTERMException`` and calls
    ``on_exception``; this writes the checkpoint there, with the loops' position inside the
    epoch, so ``--ckpt_path last`` continues from the next batch. Other exceptions save
    nothing: a diverged loss would overwrite the last good checkpoint with the state that
    diverged, and an error inside a step can leave that step half done. Nor does a stopped
    ``validate`` or ``test``: it holds no training state to go on from. Its file is ``last.ckpt``, rewritten.
    """

    def __init__(
        self, filename: str = "last", enable_version_counter: bool = False, save_on_exception: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(
            filename=filename, enable_version_counter=enable_version_counter, save_on_exception=save_on_exception, **kwargs
        )

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        if trainer.validating and not trainer.sanity_checking:
            validate_again(trainer)
        super().on_exception(trainer, pl_module, exception)


def validate_again(trainer: L.Trainer) -> None:
    """Make a checkpoint saved inside the epoch's validation send the resumed run through it again, from the start.

    Lightning 2.6 goes back to a validation only from a checkpoint written inside a
    validation batch (processed one behind started) and skips the rest of it otherwise; its
    metrics so far are in no checkpoint. Leaving the last batch unfinished makes the resumed
    run validate again. No public API says where a loop is: this is the package's one use of
    Lightning's loop progress counters, guarded by ``tests/engine/test_callbacks.py`` (the counters'
    layout) and ``tests/engine/test_resume.py`` (resume from a SIGTERM during validation, to the bit).
    """
    progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress
    for counts in (progress.total, progress.current):
        counts.processed = counts.completed = max(counts.started - 1, 0)
