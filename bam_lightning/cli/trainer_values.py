"""Trainer values that Lightning takes, typed as any number, but divides by or runs as no one means."""

from typing import Any

from ..errors import InputError

# key: (the numbers refused, what to give). A 0 of the first two ends in a ZeroDivisionError at the first epoch;
# a negative clip reverses every gradient (torch scales them by norm/limit).
REFUSED = {
    "check_val_every_n_epoch": (lambda value: value < 1, "give 1 or more"),
    "accumulate_grad_batches": (lambda value: value < 1, "give 1 or more"),
    "val_check_interval": (lambda value: value <= 0, "give a fraction of the epoch above 0, or a number of batches"),
    "gradient_clip_val": (lambda value: value < 0, "a negative limit would reverse every gradient; give 0 or more"),
}


def check_trainer_values(trainer: Any) -> None:
    """Refuse, in one line, the values of ``REFUSED``, and a ``min_epochs`` above ``max_epochs`` (cut short without a word)."""
    for key, (refused, fix) in REFUSED.items():
        value = trainer.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and refused(value):
            raise InputError(f"trainer.{key} {value}: {fix}")
    low, high = trainer.get("min_epochs"), trainer.get("max_epochs")
    if low is not None and high is not None and high >= 0 and low > high:
        raise InputError(
            f"trainer.min_epochs {low} is above trainer.max_epochs {high}, where the run would stop: lower min_epochs"
            " or raise max_epochs"
        )
