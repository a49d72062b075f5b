"""What both tasks' LightningModules do the same way: weight-decay groups, and stopping before a diverged update."""

from collections.abc import Callable
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
    schedule = {"scheduler": scheduler(built), "interval": interval, **({"monitor": monitor} if monitor else {})}
    return {"optimizer": built, "lr_scheduler": schedule}


def stop_if_diverged(module: L.LightningModule, loss: Tensor) -> None:
    """Raise before a non-finite loss updates the weights, naming the last checkpoint to resume from."""
    if torch.isfinite(loss):
        return
    saved = newest_checkpoint(module.trainer)
    where = f"resume from the last good checkpoint {saved}" if saved else "no checkpoint was saved before it"
    raise TrainingDiverged(
        f"loss became {loss.item()} at step {module.global_step} (epoch {module.current_epoch}), before that step's update:"
        f" lower the learning rate or check the data; {where}"
    )


def compile_for_the_run(module: L.LightningModule, model: nn.Module, what: Compile) -> None:
    """``compile_model`` in ``configure_model``: before the strategy moves the network, so for the device it will use."""
    try:
        device = module.trainer.strategy.root_device
    except RuntimeError:  # no trainer: load_from_checkpoint sets the model up too
        device = module.device
    compile_model(model, what, device)
