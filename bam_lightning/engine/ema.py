"""The exponential moving average of the weights (``--ema.decay``): Lightning's own ``EMAWeightAveraging``.

With it on, validation runs on the averaged weights and every checkpoint's ``state_dict`` holds
them, so ``bam test``, ``bam predict``, ``bam export`` and ``bam attention`` of a checkpoint use the
EMA model; the weights being trained are kept beside them (``current_model_state``, with the
average's own state in ``averaging_state``), so ``--ckpt_path last`` resumes both to the bit.
"""

import sys
from typing import Any

from lightning.pytorch.callbacks import EMAWeightAveraging

from ..checkpoints import ReadCheckpoint
from ..errors import InputError


def ema_callbacks(command: str, decay: float | None, checkpoint: ReadCheckpoint | None) -> list[EMAWeightAveraging]:
    """The callback for a fit's ``--ema.decay``, or none; for any command, say when ``checkpoint``'s weights are an EMA.

    Only a fit averages: the other commands use what the checkpoint holds (a run's config.yaml has its decay, checked
    by every command alike: a decay no fit takes is a mistake wherever it is given).
    """
    if decay is not None and not 0 < decay < 1:
        raise InputError(f"--ema.decay {decay}: give a decay between 0 and 1, e.g. 0.9999 (about the last 10,000 steps)")
    if command == "fit" and decay is not None:
        print(f"bam: EMA of the weights (decay {decay}): validation and checkpoints use the average", file=sys.stderr)
        return [EMAWeightAveraging(decay=decay)]
    if checkpoint is not None and holds_ema(checkpoint.content):
        if command == "fit":
            raise InputError(
                f"--ckpt_path {checkpoint.path} was trained with the EMA of its weights: give its --ema.decay again to resume it"
                " (without it the average would go on training as the network)"
            )
        print(f"bam: {checkpoint.path} holds the EMA of the weights: {command} uses the average", file=sys.stderr)
    return []


def holds_ema(checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpoint was written with the EMA on: its ``state_dict`` is the average, the trained weights beside it."""
    return "current_model_state" in checkpoint
