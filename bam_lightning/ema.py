"""The exponential moving average of the weights (``--ema.decay``): Lightning's own ``EMAWeightAveraging``.

With it on, validation runs on the averaged weights and every checkpoint's ``state_dict`` holds
them, so ``bam test``, ``bam predict``, ``bam export`` and ``bam attention`` of a checkpoint use the
EMA model; the weights being trained are kept beside them (``current_model_state``, with the
average's own state in ``averaging_state``), so ``--ckpt_path last`` resumes both to the bit.
"""

from typing import Any

from lightning.pytorch.callbacks import EMAWeightAveraging

from .errors import InputError


def ema_callback(decay: float | None) -> EMAWeightAveraging | None:
    """The callback for ``--ema.decay`` (None: no EMA)."""
    if decay is None:
        return None
    if not 0 < decay < 1:
        raise InputError(f"--ema.decay {decay}: give a decay between 0 and 1, e.g. 0.9999 (about the last 10,000 steps)")
    return EMAWeightAveraging(decay=decay)


def holds_ema(checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpoint was written with the EMA on: its ``state_dict`` is the average, the trained weights beside it."""
    return "current_model_state" in checkpoint
