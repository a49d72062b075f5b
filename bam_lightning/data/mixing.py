"""MixUp and CutMix of a training batch: torchvision's ``transforms.v2``, drawn from the seed, the step and the rank."""

import os

import torch
from torch import Tensor
from torchvision.transforms import v2


class BatchMixing:
    """MixUp (Zhang et al. 2018) with ``mixup_alpha``, CutMix (Yun et al. 2019) with ``cutmix_alpha``; 0 turns one off.

    With both on, each batch gets one of them at random, as timm's and torchvision's recipes do.
    The draws (the mixing weight, the box, the choice) come from a generator seeded by the run's
    seed, the global step and the process rank, not from the global one: a resumed run and every
    DDP rank draw what the run that never stopped drew, and the rest of the run's randomness is
    left as it was.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> None:
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"mixup_alpha {mixup_alpha}, cutmix_alpha {cutmix_alpha}: give 0 (off) or more")
        mixes = [v2.MixUp(alpha=mixup_alpha, num_classes=num_classes)] if mixup_alpha else []
        mixes += [v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes)] if cutmix_alpha else []
        self.mix = v2.RandomChoice(mixes) if len(mixes) > 1 else (mixes[0] if mixes else None)

    @property
    def active(self) -> bool:
        return self.mix is not None

    def __call__(self, images: Tensor, targets: Tensor, step: int, rank: int) -> tuple[Tensor, Tensor]:
        """The mixed images and their soft targets (each row sums to 1)."""
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # what seed_everything set (Lightning's own variable)
        with torch.random.fork_rng(devices=[]):  # the draws are on the CPU, whatever the images' device
            torch.manual_seed(hash((seed, step, rank)) % 2**63)
            return self.mix(images, targets)
