"""What both tasks' LightningModules do the same way: weight-decay groups, and stopping before a diverged update."""

import warnings
from collections.abc import Callable
from itertools import chain
from typing import Any

import lightning.pytorch as L
import torch
from torch import Tensor, nn

from .checkpoints import newest_checkpoint
from .compiling import Compile, compile_model
from .errors import InputError, TrainingDiverged


def parameter_groups(model: nn.Module, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """One group, or two where biases and norm scales (all 1-d parameters) get no weight decay."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params}]
    return [
        {"params": [p for p in params if p.ndim > 1]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def optimization(
    model: nn.Module,
    optimizer: Callable[[Any], torch.optim.Optimizer],
    scheduler: Callable[[torch.optim.Optimizer], Any] | None,
    decay_norm_and_bias: bool,
    interval: str,
    monitor: str | None = None,
) -> Any:
    """``configure_optimizers``' answer: the optimizer on ``model``'s groups and its scheduler stepped every ``interval``.

    torch checks the optimizer's values (a negative learning rate, momentum or weight decay)
    when it is built, before the first step: that is a config mistake, said in one line.
    """
    try:
        built = optimizer(parameter_groups(model, decay_norm_and_bias))
    except ValueError as error:
        raise InputError(f"model.optimizer: {error}: fix its init_args in the config or on the command line") from None
    if scheduler is None:
        return built
    try:
        stepped = scheduler(built)
    except ValueError as error:  # torch checks some periods when the scheduler is built (T_0, total_steps)
        raise InputError(f"model.lr_scheduler: {error}: fix its init_args in the config or on the command line") from None
    check_first_steps(stepped, built)
    schedule = {"scheduler": stepped, "interval": interval, **({"monitor": monitor} if monitor else {})}
    return {"optimizer": built, "lr_scheduler": schedule}


def check_first_steps(scheduler: Any, optimizer: torch.optim.Optimizer) -> None:
    """Step ``scheduler`` twice and put it and the learning rates back: a period of 0 (``T_max``, ``step_size``) fails here.

    torch divides by such a period only when the schedule first moves, at the end of the first
    epoch (or step): hours into a run, as a ZeroDivisionError traceback. ReduceLROnPlateau steps
    on a metric and has no period.
    """
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        return
    state, lrs = scheduler.state_dict(), [group["lr"] for group in optimizer.param_groups]
    try:
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": this step is a rehearsal
            warnings.simplefilter("ignore")
            scheduler.step()
            scheduler.step()
    except ZeroDivisionError as error:
        name = type(scheduler).__name__
        raise InputError(
            f"model.lr_scheduler: {name} fails at its first step ({error}): a period in its init_args is 0;"
            " give it 1 or more (T_max: the epochs, or steps, of the run)"
        ) from None
    finally:
        scheduler.load_state_dict(state)
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr


def _last_good(module: L.LightningModule) -> str:
    saved = newest_checkpoint(module.trainer)
    return f"resume from the last good checkpoint {saved}" if saved else "no checkpoint was saved before it"


def stop_if_diverged(module: L.LightningModule, loss: Tensor) -> None:
    """Raise before a non-finite loss updates the weights, naming the last checkpoint to resume from."""
    if torch.isfinite(loss):
        return
    raise TrainingDiverged(
        f"loss became {loss.item()} at step {module.global_step} (epoch {module.current_epoch}), before that step's update:"
        f" lower the learning rate or check the data; {_last_good(module)}"
    )


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


def compile_for_the_run(module: L.LightningModule, model: nn.Module, what: Compile) -> None:
    """``compile_model`` in ``configure_model``: before the strategy moves the network, so for the device it will use."""
    try:
        device = module.trainer.strategy.root_device
    except RuntimeError:  # no trainer: load_from_checkpoint sets the model up too
        device = module.device
    compile_model(model, what, device)
