"""Stopping a run whose numbers are no longer finite, before they reach the weights or a checkpoint.

Each guard raises ``TrainingDiverged`` (one line from the ``bam`` command) naming the last good
checkpoint to resume from:

- ``guard_step``: a non-finite training loss never updates the weights. With a fused optimizer
  (SGD, Adam or AdamW with ``fused: true``) the update is skipped on the device, through the
  optimizer's ``found_inf`` as torch's GradScaler uses it, and ``check_skipped_steps`` reads the
  flag only every ``log_every_n_steps`` steps and at the epoch's end, where Lightning's logging
  waits for the device anyway: no host-device sync per step. Otherwise (other optimizers, float16
  mixed precision, whose GradScaler owns ``found_inf``, and the very first step, which torch's
  fused SGD cannot skip without leaving its new momentum unset) the loss is read on the host
  every step, one sync.
- ``stop_if_epoch_diverged``: weights or buffers (BatchNorm's running statistics) that hold NaN
  or inf, or a non-finite validation loss, end the fit at the epoch's end, before its checkpoints.
"""

from itertools import chain

import lightning.pytorch as L
import torch
from torch import Tensor

from .checkpoints import newest_checkpoint
from .errors import TrainingDiverged


def _last_good(module: L.LightningModule) -> str:
    saved = newest_checkpoint(module.trainer)
    return f"resume from the last good checkpoint {saved}" if saved else "no checkpoint was saved before it"


def _diverged(module: L.LightningModule, loss: float, step: int) -> TrainingDiverged:
    return TrainingDiverged(
        f"loss became {loss} at step {step} (epoch {module.current_epoch}), before that step's update:"
        f" lower the learning rate or check the data; {_last_good(module)}"
    )


def _skips_on_device(module: L.LightningModule) -> torch.optim.Optimizer | None:
    """The module's optimizer where it can skip an update on the device (fused, already stepped, no GradScaler)."""
    if not module.automatic_optimization or getattr(module.trainer.precision_plugin, "scaler", None) is not None:
        return None
    optimizer = module.optimizers(use_pl_optimizer=False)
    fused = getattr(optimizer, "_step_supports_amp_scaling", False) and optimizer.defaults.get("fused")
    return optimizer if fused and optimizer.state else None


def guard_step(module: L.LightningModule, loss: Tensor) -> None:
    """Keep a non-finite ``loss`` from updating the weights; called in ``training_step``, before the optimizer's update."""
    optimizer = _skips_on_device(module)
    if optimizer is None:
        if not torch.isfinite(loss):
            raise _diverged(module, loss.item(), module.global_step)
        return
    bad = ~torch.isfinite(loss.detach())
    optimizer.found_inf = bad.to(torch.float32)  # read by the fused step, which then leaves weights and state alone
    first = getattr(module, "_first_non_finite", None)
    if first is None:
        first = (torch.full((), -1, device=loss.device), torch.zeros((), device=loss.device))
    new = bad & (first[0] < 0)  # the first non-finite step and its loss, kept on the device
    module._first_non_finite = (torch.where(new, module.global_step, first[0]), torch.where(new, loss.detach(), first[1]))


def check_skipped_steps(module: L.LightningModule, epoch_end: bool = False) -> None:
    """Raise if ``guard_step`` skipped an update: every ``log_every_n_steps`` steps, and at the epoch's end."""
    first = getattr(module, "_first_non_finite", None)
    if first is None or not (epoch_end or module.global_step % module.trainer.log_every_n_steps == 0):
        return
    step = int(first[0])
    if step >= 0:
        module._first_non_finite = None  # a later fit of this module starts clean
        raise _diverged(module, first[1].item(), step)


def stop_if_epoch_diverged(module: L.LightningModule, finite_loss: Tensor | None = None) -> None:
    """Raise when a parameter or buffer holds NaN or inf, or when ``finite_loss`` (every validation loss finite) is false.

    A huge learning rate can overflow BatchNorm's running statistics while the training loss
    stays finite: validation then gives NaN, and the epoch's ``last.ckpt`` and "best" checkpoint
    would keep the broken weights of a run that ends with status 0. The modules call this before
    validation and at the epoch's end, hooks that Lightning runs before the checkpoint callbacks:
    no checkpoint of such an epoch is written. One host sync; every process raises together.
    """
    named = [(n, t) for n, t in chain(module.named_parameters(), module.named_buffers()) if t.is_floating_point()]
    broken = ~torch.stack([torch.isfinite(t).all() for _, t in named])
    bad_loss = torch.zeros((), dtype=torch.bool, device=broken.device) if finite_loss is None else ~finite_loss
    flags = module.trainer.strategy.reduce(torch.stack([broken.any(), bad_loss.to(broken.device)]).float(), reduce_op="max")
    weights, loss = flags.tolist()
    if not (weights or loss):
        return
    where = next((name for (name, _), bad in zip(named, broken.tolist(), strict=True) if bad), "a parameter of another process")
    what = f"the weights hold NaN or inf ({where})" if weights else "the validation loss became NaN or inf"
    raise TrainingDiverged(
        f"{what} in epoch {module.current_epoch}, step {module.global_step}: lower the learning rate or check the data;"
        f" no checkpoint of this epoch was kept; {_last_good(module)}"
    )
