"""Training order as a function of (seed, epoch) alone.

``RandomSampler`` draws each epoch's order from the global RNG, whose state a checkpoint
does not hold: a run resumed at epoch k would see another order than the run that never
stopped. Lightning calls ``set_epoch`` on the sampler before every epoch (as it does for
``DistributedSampler``, which it substitutes under DDP), so the order can be rebuilt.
"""

import os
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(size)`` seeded by ``seed + epoch``; ``seed`` defaults to the run's global seed."""

    def __init__(self, size: int, seed: int | None = None) -> None:
        self.size = size
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size
