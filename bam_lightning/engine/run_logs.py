"""What a run shows in TensorBoard besides its scalars: paired curves, one comparable HPARAMS row, tests beside it.

Lightning's default TensorBoard logger writes an ``hp_metric`` of -1 and an HPARAMS session
of the module's raw hyperparameters (``_instantiator``, full class paths) with no real metric,
and ``bam test`` or a resumed ``bam fit`` would start an unrelated ``version_N+1``. Here instead:

- ``RunLogger``: Lightning's logger without ``hp_metric``; ``use_run_logger`` puts it wherever
  the config leaves ``trainer.logger`` at its default. A fit resumed from a run's ``last.ckpt``
  goes on in that run's folder (``continued_version``): one run, one folder, one best checkpoint.
- ``RunSummary`` writes, when a fit starts, a custom-scalars layout (TensorBoard's
  CUSTOM SCALARS tab: train and validation of one quantity in one chart) and one HPARAMS
  session of the values that tell runs apart (``run_values``), whose metric columns are the
  module's ``HPARAM_METRICS``: TensorBoard fills them with the last value of those scalars
  in the run's folder, so a ``bam test`` logged into that folder (``run_of_checkpoint``)
  adds its column to the same row.
- ``SaveConfig``: LightningCLI's ``config.yaml``, for a fit; ``bam test`` (``validate``, ``predict``)
  writes ``config_test.yaml`` (``config_validate.yaml``, ``config_predict.yaml``): beside the run's own
  where it evaluates a run's checkpoint, and never a ``config.yaml`` that ``bam compare`` would take for a run.
"""

import os
import re
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard.summary import hparams

from ..checkpoints import newest_checkpoint

LAYOUT = {
    "classification": {
        "loss": ["Multiline", ["train/loss", "val/loss"]],
        "top-1 error %": ["Multiline", ["train/err1", "val/err1"]],
        "top-5 error %": ["Multiline", ["val/err5", "test/err5"]],
        "learning rate": ["Multiline", ["lr-.*"]],
    },
    "detection": {
        "training loss": ["Multiline", ["train/.*loss.*"]],
        "mAP": ["Multiline", ["val/map_50", "val/map", "test/map_50", "test/map"]],
        "learning rate": ["Multiline", ["lr-.*"]],
    },
}


RUNS = "lightning_logs"  # the folder of a default_root_dir's runs, as Lightning names it


class RunLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger without the ``hp_metric`` placeholder (``RunSummary`` writes the HPARAMS session)."""

    def __init__(self, save_dir: str, name: str = RUNS, version: int | str | None = None) -> None:
        super().__init__(save_dir, name=name, version=version, default_hp_metric=False)


def run_of_checkpoint(ckpt_path: str | None) -> Path | None:
    """The run folder (``lightning_logs/version_N``) that wrote ``ckpt_path``, or None for a checkpoint kept elsewhere."""
    if ckpt_path is None:
        return None
    run = Path(ckpt_path).parent.parent
    written_by_a_run = Path(ckpt_path).parent.name == "checkpoints" and (run / "config.yaml").is_file()
    return run if written_by_a_run else None


def read_events(run: str | Path) -> EventAccumulator | None:
    """The TensorBoard events of the run folder ``run``, every scalar kept (no reservoir sampling); None where they
    cannot be opened (no such folder, a file not ours to read)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    try:
        events.Reload()
    except OSError:
        return None
    return events


def last_scalar(run: str | Path, tag: str) -> float | None:
    """The value of ``tag`` last written to the event files of the run folder ``run`` (the newest test), or None."""
    events = read_events(run)
    if events is None or tag not in events.Tags()["scalars"]:
        return None
    return max(events.Scalars(tag), key=lambda e: e.wall_time).value


def continued_version(trainer: L.Trainer, ckpt_path: str | None) -> str | None:
    """The version folder a fit from ``ckpt_path`` goes on in: the run's under this fit's default_root_dir that holds it
    as its ``last.ckpt``, or None for a new run.

    Lightning restores a ModelCheckpoint's record of the best models only where its folder is unchanged:
    in a new ``version_N+1`` the resumed run would forget them and call its own first epoch the best.
    A fit from any other checkpoint (another run's, an earlier one of this run) starts a run of its own,
    and leaves the run it came from as it was.
    """
    run = run_of_checkpoint(ckpt_path)
    if run is None or Path(trainer.default_root_dir, RUNS).resolve() != run.parent.resolve():
        return None
    last = newest_checkpoint(run)
    return run.name if last is not None and last.resolve() == Path(ckpt_path).resolve() else None


def use_run_logger(trainer: L.Trainer, subcommand: str, config: Any) -> None:
    """Where ``trainer.logger`` is left at its default: ``RunLogger``, and for a fit the run's TensorBoard summary;
    ``bam test``/``validate`` of a run's checkpoint log into that run's folder, so its HPARAMS row shows the test too,
    and a fit resumed from a run's last.ckpt goes on in that run's folder (``continued_version``)."""
    if config["trainer"].get("logger") not in (None, True) or type(trainer.logger) is not TensorBoardLogger:
        return
    ckpt_path = config.get("ckpt_path")
    run = run_of_checkpoint(ckpt_path) if subcommand in ("test", "validate") else None
    if run is None:
        # Else as Lightning versions its default logger: by the SLURM job's id, where there is one. The folder of a fit
        # is named after default_root_dir as in the run it continues: so its checkpoints' dirpath is the same string.
        version = continued_version(trainer, ckpt_path) if subcommand == "fit" else None
        if version is not None:  # its own checkpoints are there: Lightning's "is not empty" warns of nothing then
            folder = Path(trainer.default_root_dir, RUNS, version)
            warnings.filterwarnings("ignore", rf"Checkpoint directory {re.escape(str(folder))}\S* exists and is not empty")
        trainer.logger = RunLogger(trainer.default_root_dir, version=SLURMEnvironment.job_id() if version is None else version)
    else:
        trainer.logger = RunLogger(str(run.parent.parent), name=run.parent.name, version=run.name)
    if subcommand == "fit":
        trainer.callbacks.append(RunSummary())


def _scalar(value: Any) -> bool | int | float | str:
    """A value as HPARAMS takes it: numbers and text as they are, null as ``none`` (a baseline's attention), the rest as text."""
    if value is None:
        return "none"
    return value if isinstance(value, bool | int | float | str) else str(value)


def run_values(trainer: L.Trainer, module: L.LightningModule) -> dict[str, bool | int | float | str]:
    """What tells runs apart, as HPARAMS columns: data, network, attention and its options, optimisation, scale, seed."""
    hp = module.hparams
    data = trainer.datamodule
    values: dict[str, Any] = {"data": type(data).__name__ if data is not None else "none"}
    values |= {key: hp[key] for key in ("backbone", "detector", "attention") if key in hp}
    if "placement" in hp:
        values["placement"] = hp["placement"] or "the backbone's own"
    values |= {f"attention.{key}": value for key, value in sorted((hp.get("attention_kwargs") or {}).items())}
    values |= {f"backbone.{key}": value for key, value in sorted((hp.get("backbone_kwargs") or {}).items())}
    if trainer.optimizers:
        optimizer = trainer.optimizers[0]
        values["optimizer"] = type(optimizer).__name__
        values |= {key: optimizer.defaults[key] for key in ("lr", "momentum", "weight_decay") if key in optimizer.defaults}
    schedulers = trainer.lr_scheduler_configs
    values["schedule"] = type(schedulers[0].scheduler).__name__ if schedulers else "none"
    batch = getattr(data, "batch_size", None)
    if batch is not None:
        values["batch per device"] = batch
        values["batch"] = batch * trainer.world_size * trainer.accumulate_grad_batches
    values |= {"epochs": trainer.max_epochs, "precision": trainer.precision, "seed": _seed()}
    return {key: _scalar(value) for key, value in values.items()}


def _seed() -> int | str:
    return int(os.environ["PL_GLOBAL_SEED"]) if "PL_GLOBAL_SEED" in os.environ else "none"


class RunSummary(L.Callback):
    """Writes the custom-scalars layout and the run's HPARAMS session once, when the fit starts (see the module's docstring)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = trainer.logger
        if not trainer.is_global_zero or not isinstance(logger, TensorBoardLogger):
            return
        writer = logger.experiment
        writer.add_custom_scalars({"curves, train beside validation": LAYOUT[pl_module.TASK]})
        experiment, start, end = hparams(run_values(trainer, pl_module), dict.fromkeys(pl_module.HPARAM_METRICS, 0.0))
        for summary in (experiment, start, end):  # the metrics' values come from their scalars in this folder
            writer.file_writer.add_summary(summary)


class SaveConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` for a fit alone: every other command writes ``config_<command>.yaml``, so that
    a run's own config stays, and only a fit's folder looks like a run to ``bam compare`` (a config and events)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            self.config_filename = f"config_{TrainerFn(stage).value}.yaml"
        super().setup(trainer, pl_module, stage)
