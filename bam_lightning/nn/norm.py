"""Batch norms that survive a training batch holding a single value per channel.

BAM's channel branch normalises the pooled (N, C) vector, so a training batch of one
image gives one value per channel and ``nn.BatchNorm1d`` raises (the public code fails
there). With one value the batch statistics are undefined, so these layers normalise
with the running statistics instead and leave them untouched. State-dict keys are those
of ``nn.BatchNorm1d``/``nn.BatchNorm2d``, so checkpoints stay interchangeable.
"""

from torch import Tensor, nn
from torch.nn import functional as F

#: The batch norms whose statistics training updates (Faster R-CNN freezes them; SyncBatchNorm is a BatchNorm of its own).
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class _SingleValueSafe:
    """Mixed in before a torch batch norm class: its ``forward`` for a batch of one value per channel."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.numel() == x.size(1):
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)  # type: ignore[misc]


class BatchNorm1d(_SingleValueSafe, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that falls back to running statistics on a one-sample batch."""


class BatchNorm2d(_SingleValueSafe, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that falls back to running statistics on a 1x1 map of one sample."""
