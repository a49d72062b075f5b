"""Trainer values that Lightning takes but misreads or divides by, and what the command line wrote for them.

Lightning types most Trainer options as any int or float, and jsonargparse turns its ``int |
float`` options into floats. The ``bam`` command (``cli.BamCLI.instantiate_trainer``) keeps a
whole number of batches a count and refuses, in one line, values that would end in a
ZeroDivisionError at the first epoch or run as no one means.
"""

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.trainer.states import TrainerFn

from .errors import InputError
from .given import at, merged

# Trainer options Lightning reads as a count of batches when whole (int) and as a fraction when a float.
COUNT_OR_FRACTION = (
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches",
    "val_check_interval",
)  # fmt: skip


def check_trainer_values(trainer: Any) -> None:
    """Refuse Trainer values that Lightning takes but divides by (a traceback at the first epoch) or runs as no one means.

    Lightning types these as any int or float: ``check_val_every_n_epoch 0`` and
    ``accumulate_grad_batches 0`` end in a ZeroDivisionError, a negative ``gradient_clip_val``
    reverses every gradient (torch scales them by norm/limit), and ``min_epochs`` above
    ``max_epochs`` is cut short without a word.
    """
    for key in ("check_val_every_n_epoch", "accumulate_grad_batches"):
        if trainer.get(key) is not None and trainer[key] < 1:
            raise InputError(f"trainer.{key} {trainer[key]}: give 1 or more")
    if trainer.get("val_check_interval") is not None and trainer["val_check_interval"] <= 0:
        raise InputError(
            f"trainer.val_check_interval {trainer['val_check_interval']}: give a fraction of the epoch above 0, or a number"
            " of batches"
        )
    if trainer.get("gradient_clip_val") is not None and trainer["gradient_clip_val"] < 0:
        raise InputError(
            f"trainer.gradient_clip_val {trainer['gradient_clip_val']}: a negative limit would reverse every gradient;"
            " give 0 or more (0 or null: no clipping)"
        )
    low, high = trainer.get("min_epochs"), trainer.get("max_epochs")
    if low is not None and high is not None and high >= 0 and low > high:
        raise InputError(
            f"trainer.min_epochs {low} is above trainer.max_epochs {high}, where the run would stop: lower min_epochs"
            " or raise max_epochs"
        )


def keep_whole_counts(trainer: Any, args: list[str]) -> None:
    """A count of batches written as a whole number (``limit_train_batches: 1``) stays one, as Lightning reads it.

    jsonargparse turns Lightning's ``int | float`` options into floats: ``1`` becomes ``1.0``,
    which Lightning reads as 100 % of the batches, so a one-batch trial ran the whole epoch.
    What the user wrote (the command line over the configs; YAML tells ``1`` from ``1.0``) decides.
    """
    written = merged(args, strict=False)
    for key in COUNT_OR_FRACTION:
        value, wrote = trainer.get(key), at(written, f"trainer.{key}")
        if isinstance(value, float) and value.is_integer() and isinstance(wrote, int) and not isinstance(wrote, bool):
            trainer[key] = int(value)


class SaveConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml``, with a whole number of batches written as the count the run used.

    jsonargparse writes the ``1`` that ``keep_whole_counts`` kept as ``1.0``: run again from the
    saved file, the one-batch trial would take the whole epoch. A test or validation logged into
    the run it evaluates writes ``config_test.yaml`` (``config_validate.yaml``) beside the run's own.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # trainer.log_dir broadcasts: every process asks for it, as LightningCLI's own setup does, rank zero rewrites.
        log_dir = trainer.log_dir if self.save_to_log_dir and not self.already_saved else None
        if stage != "fit" and log_dir is not None and (Path(log_dir) / self.config_filename).is_file():
            # bam test logging into the run it evaluates (cli._use_run_logger): the run's own config stays.
            self.config_filename = f"config_{TrainerFn(stage).value}.yaml"
        super().setup(trainer, pl_module, stage)
        path = Path(log_dir or "") / self.config_filename
        if log_dir is None or not trainer.is_global_zero or not path.is_file():  # a remote log_dir stays as written
            return
        text = path.read_text()
        for key in COUNT_OR_FRACTION:
            value = getattr(trainer, key, None)
            if isinstance(value, int) and not isinstance(value, bool):
                text = re.sub(rf"^(\s*{key}:) {value}\.0$", rf"\g<1> {value}", text, flags=re.MULTILINE)
        path.write_text(text)
