"""Top-1 errors per group of test images (a corruption at a severity), counted across processes."""

import torch
from torch import Tensor
from torchmetrics import Metric


class GroupErrors(Metric):
    """Wrong and total predictions per group, summed over batches and processes; ``compute``: each group's top-1 error
    in percent, by the group's name (a group no image reached is left out).

    Args:
        groups: the name of each group index the batches carry, e.g. ``("fog", 3)``.
    """

    full_state_update = False

    def __init__(self, groups: list[tuple[str, int]]) -> None:
        super().__init__()
        self.groups = groups
        self.add_state("wrong", torch.zeros(len(groups), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(len(groups), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, labels: Tensor, groups: Tensor) -> None:
        wrong = (logits.argmax(dim=-1) != labels).long()
        self.wrong.index_add_(0, groups, wrong)
        self.total.index_add_(0, groups, torch.ones_like(wrong))

    def compute(self) -> dict[tuple[str, int], float]:
        wrong, total = self.wrong.tolist(), self.total.tolist()
        return {group: 100 * w / n for group, w, n in zip(self.groups, wrong, total, strict=True) if n}
