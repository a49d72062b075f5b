"""``TaskModule``: what ImageClassifier and ObjectDetector do alike: compiling, the optimizer and its schedule, the guard."""

from typing import Any, Literal

import lightning.pytorch as L
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from ..engine.compiling import Compile, check_choice
from ..engine.divergence import DivergenceGuard
from ..engine.optimization import compile_for_the_run, optimization
from ..engine.schedules import WarmupCosine
from ..errors import InputError


class TaskModule(L.LightningModule):
    """A LightningModule around ``self.model`` whose hyperparameters hold ``compile`` and ``decay_norm_and_bias``.

    ``optimizer`` and ``lr_scheduler`` are the callables LightningCLI builds from ``class_path``/``init_args``;
    the scheduler steps every ``scheduler_interval``, on ``monitor`` where it needs a metric (ReduceLROnPlateau).
    """

    model: nn.Module

    def __init__(
        self,
        optimizer: OptimizerCallable,
        lr_scheduler: LRSchedulerCallable | None,
        compile: Compile,
        scheduler_interval: Literal["step", "epoch"],
        monitor: str | None = None,
    ) -> None:
        super().__init__()
        check_choice(compile)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.scheduler_interval = scheduler_interval
        self.monitor = monitor

    def configure_model(self) -> None:
        # Here, not in __init__: the checks before a run (image size, model summary) stay eager.
        compile_for_the_run(self, self.model, self.hparams.compile)

    def configure_callbacks(self) -> list[L.Callback]:
        return [DivergenceGuard()]

    def on_train_start(self) -> None:
        """``WarmupCosine`` as long as the run, or refused where its given total is shorter (past it a cosine climbs again)."""
        scheduler = self.lr_schedulers()
        if not isinstance(scheduler, WarmupCosine):
            return
        run = self.trainer.estimated_stepping_batches if self.scheduler_interval == "step" else self.trainer.max_epochs
        if run is None or not 0 < run < float("inf"):  # max_epochs -1: a run of no known length
            if scheduler.total is None:
                raise InputError("model.lr_scheduler: WarmupCosine without a total needs a run of known length: give its total")
            return
        steps = "steps" if self.scheduler_interval == "step" else "epochs"
        if scheduler.total is None:
            try:
                scheduler.fit_to(int(run))
            except ValueError as error:
                raise InputError(f"model.lr_scheduler: {error} ({int(run)} {steps})") from None
        elif scheduler.total < run:
            raise InputError(
                f"model.lr_scheduler: WarmupCosine's total {scheduler.total} is shorter than the run's {int(run)} {steps}:"
                f" give total {int(run)} (it counts {steps}: model.scheduler_interval {self.scheduler_interval})"
            )

    def configure_optimizers(self) -> Any:
        decay = self.hparams.decay_norm_and_bias
        return optimization(self.model, self.optimizer, self.lr_scheduler, decay, self.scheduler_interval, self.monitor)
