"""Learning-rate schedules a YAML config can name that torch has only as compositions of its own schedulers."""

from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


class WarmupCosine(SequentialLR):
    """A linear warmup then a cosine decay, the schedule of timm's and most of today's ImageNet recipes.

    torch's own ``LinearLR`` for ``warmup`` steps (from ``start_factor`` x the optimizer's lr up to it)
    and then ``CosineAnnealingLR`` down to ``min_lr`` over the rest of ``total``, chained by
    ``SequentialLR``. It steps every ``model.scheduler_interval`` (``step``: the detectors' default;
    ``epoch``: the classifiers'), and ``total`` and ``warmup`` count those. ``total`` None is the
    run's own length, set when the fit starts (``TaskModule.on_train_start``, through ``fit_to``);
    a given ``total`` must cover the run: past it a cosine climbs again.
    """

    def __init__(
        self, optimizer: Optimizer, total: int | None = None, warmup: int = 0, start_factor: float = 0.01, min_lr: float = 0.0
    ) -> None:
        if warmup < 0:
            raise ValueError(f"warmup {warmup}: give 0 or more")
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor {start_factor}: give a share of the learning rate in (0, 1]")
        if min_lr < 0:
            raise ValueError(f"min_lr {min_lr}: give 0 or a positive learning rate")
        self.total, self.warmup = None, warmup
        self.cosine = CosineAnnealingLR(optimizer, T_max=1, eta_min=min_lr)  # its period: fit_to
        if warmup == 0:
            super().__init__(optimizer, [self.cosine], milestones=[])
        else:
            super().__init__(optimizer, [LinearLR(optimizer, start_factor, 1.0, total_iters=warmup), self.cosine], [warmup])
        if total is not None:
            self.fit_to(total)

    def fit_to(self, total: int) -> None:
        """Make the schedule ``total`` steps (or epochs) long, the warmup's included."""
        if total < 1:
            raise ValueError(f"total {total}: give the steps (or epochs) of the whole run, 1 or more")
        if self.warmup >= total:
            raise ValueError(f"warmup {self.warmup} with total {total}: the warmup must be shorter than the run")
        self.total = total
        self.cosine.T_max = total - self.warmup

    def state_dict(self) -> dict[str, Any]:
        """SequentialLR's, without the reference to the cosine (whose state is saved with the chained schedulers')."""
        return {key: value for key, value in super().state_dict().items() if key != "cosine"}
