"""Learning-rate schedules a YAML config can name that torch has only as compositions of its own schedulers."""

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


class WarmupCosine(SequentialLR):
    """A linear warmup then a cosine decay, the schedule of timm's and most of today's ImageNet recipes.

    torch's own ``LinearLR`` for ``warmup`` steps (from ``start_factor`` x the optimizer's lr up to it)
    and then ``CosineAnnealingLR`` down to ``min_lr`` over the rest of ``total``, chained by
    ``SequentialLR``. It steps every ``model.scheduler_interval`` (``step``: the detectors' default;
    ``epoch``: the classifiers'), and ``total`` and ``warmup`` count those; ``total`` must cover the
    run (``TaskModule.on_train_start``): past it a cosine climbs again.
    """

    def __init__(
        self, optimizer: Optimizer, total: int, warmup: int = 0, start_factor: float = 0.01, min_lr: float = 0.0
    ) -> None:
        if total < 1:
            raise ValueError(f"total {total}: give the steps (or epochs) of the whole run, 1 or more")
        if not 0 <= warmup < total:
            raise ValueError(f"warmup {warmup} with total {total}: the warmup must be 0 or more and shorter than the run")
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor {start_factor}: give a share of the learning rate in (0, 1]")
        if min_lr < 0:
            raise ValueError(f"min_lr {min_lr}: give 0 or a positive learning rate")
        self.total, self.warmup = total, warmup
        cosine = CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=min_lr)
        if warmup == 0:
            super().__init__(optimizer, [cosine], milestones=[])
            return
        super().__init__(optimizer, [LinearLR(optimizer, start_factor, 1.0, total_iters=warmup), cosine], milestones=[warmup])
