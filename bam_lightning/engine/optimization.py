"""What both tasks' LightningModules do the same way: weight-decay groups, the optimizer and its schedule, compiling."""

import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from ..errors import InputError
from .compiling import Compile, compile_model


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


def compile_for_the_run(module: L.LightningModule, model: nn.Module, what: Compile) -> None:
    """``compile_model`` in ``configure_model``: before the strategy moves the network, so for the device it will use."""
    try:
        device = module.trainer.strategy.root_device
    except RuntimeError:  # no trainer: load_from_checkpoint sets the model up too
        device = module.device
    compile_model(model, what, device)
