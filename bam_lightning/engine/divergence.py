"""``DivergenceGuard``: a fit whose numbers are no longer finite stops before they reach the weights or a checkpoint.

It raises ``TrainingDiverged`` (one line from the ``bam`` command) naming the last good checkpoint:

- a non-finite training loss, before that step's update. A fused optimizer (SGD, Adam or AdamW
  with ``fused: true``) skips the update on the device through ``found_inf``, as torch's
  GradScaler does, and the flag is read only at logging steps and before validation and the
  epoch's end, where Lightning waits for the device anyway. Otherwise (other optimizers,
  float16's GradScaler, which owns ``found_inf``, and the first step, which fused SGD cannot
  skip without leaving its momentum unset) the loss is read on the host every step.
- weights or buffers (BatchNorm's running statistics) holding NaN or inf, or a non-finite loss
  returned by ``validation_step``: a huge learning rate can break those while the training
  loss stays finite. Checked before validation and at the end of validation and of the epoch,
  before the checkpoint callbacks, which Lightning runs last: no checkpoint of such an epoch is kept.
"""

from itertools import chain
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from ..checkpoints import newest_checkpoint
from ..errors import TrainingDiverged


def _last_good(trainer: L.Trainer) -> str:
    saved = newest_checkpoint(trainer)
    return f"resume from the last good checkpoint {saved}" if saved else "no checkpoint was saved before it"


def _loss_diverged(trainer: L.Trainer, loss: float, step: int) -> TrainingDiverged:
    return TrainingDiverged(
        f"loss became {loss} at step {step} (epoch {trainer.current_epoch}), before that step's update:"
        f" lower the learning rate or check the data; {_last_good(trainer)}"
    )


def skips_on_device(trainer: L.Trainer, module: L.LightningModule) -> torch.optim.Optimizer | None:
    """The run's optimizer where it can skip an update on the device: fused, already stepped, no GradScaler."""
    if not module.automatic_optimization or getattr(trainer.precision_plugin, "scaler", None) is not None:
        return None
    optimizer = trainer.optimizers[0] if len(trainer.optimizers) == 1 else None
    # torch's flag for a step that reads ``found_inf`` (GradScaler's protocol; tests/engine/test_divergence.py)
    fused = getattr(optimizer, "_step_supports_amp_scaling", False) and optimizer.defaults.get("fused")
    return optimizer if fused and optimizer.state else None


def stop_if_diverged(trainer: L.Trainer, module: L.LightningModule, finite_loss: Tensor | None = None) -> None:
    """Raise when a parameter or buffer holds NaN or inf, or ``finite_loss`` is false; one host sync, every process together."""
    named = [(n, t) for n, t in chain(module.named_parameters(), module.named_buffers()) if t.is_floating_point()]
    broken = ~torch.stack([torch.isfinite(t).all() for _, t in named])
    bad_loss = torch.zeros((), dtype=torch.bool) if finite_loss is None else ~finite_loss
    flags = trainer.strategy.reduce(torch.stack([broken.any(), bad_loss.to(broken.device)]).float(), reduce_op="max")
    weights, loss = flags.tolist()
    if not (weights or loss):
        return
    where = next((name for (name, _), bad in zip(named, broken.tolist(), strict=True) if bad), "a parameter of another process")
    what = f"the weights hold NaN or inf ({where})" if weights else "the validation loss became NaN or inf"
    raise TrainingDiverged(
        f"{what} in epoch {trainer.current_epoch}, step {trainer.global_step}: lower the learning rate or check the data;"
        f" no checkpoint of this epoch was kept; {_last_good(trainer)}"
    )


class DivergenceGuard(L.Callback):
    """Stops a fit whose loss, weights or validation loss are no longer finite (see the module's docstring).

    The task modules add it through ``configure_callbacks``: a fresh one, with no state, for every run.
    """

    def __init__(self) -> None:
        self.skipped: tuple[Tensor, Tensor] | None = None  # the first skipped update's step and loss, on the device
        self.val_finite: Tensor | None = None  # every validation loss of the epoch so far finite, on the device

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        optimizer = skips_on_device(trainer, pl_module)
        if optimizer is None:
            if not torch.isfinite(loss):
                raise _loss_diverged(trainer, loss.item(), trainer.global_step)
            return
        bad = ~torch.isfinite(loss.detach())
        optimizer.found_inf = bad.to(torch.float32)  # read by the fused step: weights and state left alone
        step, value = self.skipped or (torch.full((), -1, device=loss.device), torch.zeros((), device=loss.device))
        new = bad & (step < 0)
        self.skipped = (torch.where(new, trainer.global_step, step), torch.where(new, loss.detach(), value))

    def check_skipped(self, trainer: L.Trainer) -> None:
        """Raise if an update was skipped (one host sync)."""
        if self.skipped is not None and int(self.skipped[0]) >= 0:
            raise _loss_diverged(trainer, self.skipped[1].item(), int(self.skipped[0]))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self.check_skipped(trainer)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_finite = None
        if trainer.state.fn == TrainerFn.FITTING:  # before this epoch's checkpoints, and before NaN boxes reach the metrics
            self.check_skipped(trainer)
            stop_if_diverged(trainer, pl_module)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any) -> None:
        if isinstance(outputs, Tensor):  # validation_step's loss; kept on the device, no sync per step
            finite = torch.isfinite(outputs.detach())
            self.val_finite = finite if self.val_finite is None else self.val_finite & finite

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self.val_finite is not None:
            stop_if_diverged(trainer, pl_module, self.val_finite)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_skipped(trainer)
        stop_if_diverged(trainer, pl_module)  # also without validation
