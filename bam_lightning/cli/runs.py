"""What a run needs settled before the Trainer starts it: the checkpoint ``last``/``best`` mean, the logger, predict's outputs."""

import sys
from typing import Any

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from ..checkpoints import best_checkpoint, newest_checkpoint
from ..data.predict import find_images
from ..detections import DetectionsCSV
from ..detector import ObjectDetector
from ..errors import InputError
from ..predictions import PredictionsCSV
from ..run_logs import RunLogger, RunSummary, run_of_checkpoint


def earlier_checkpoint(trainer: Trainer, subcommand: str, which: str) -> str | None:
    """The path ``--ckpt_path last`` or ``best`` means: the newest run's, under the config's default_root_dir. Without one,
    ``fit --ckpt_path last`` starts from scratch (a job script that always resumes has a first run too); anything else is
    refused, not an evaluation of random weights."""
    found = newest_checkpoint(trainer) if which == "last" else best_checkpoint(trainer)
    root = trainer.default_root_dir
    if found is not None:
        print(f"bam: {'resuming from' if subcommand == 'fit' else 'using'} {found}", file=sys.stderr)
        return str(found)
    if subcommand == "fit" and which == "last":
        print(f"bam: no last.ckpt under {root} yet: starting from scratch", file=sys.stderr)
        return None
    kept = "last.ckpt" if which == "last" else "best checkpoint recorded in a last.ckpt"
    raise InputError(f"--ckpt_path {which}: no {kept} under {root}: run bam fit with this config first, or give a .ckpt path")


def use_run_logger(trainer: Trainer, subcommand: str, config: Any) -> None:
    """Where ``trainer.logger`` is left at its default: ``run_logs.RunLogger``, and for a fit the run's TensorBoard summary;
    ``bam test``/``validate`` of a run's checkpoint log into that run's folder, so its HPARAMS row shows the test too."""
    if config["trainer"].get("logger") not in (None, True) or type(trainer.logger) is not TensorBoardLogger:
        return
    run = run_of_checkpoint(config.get("ckpt_path")) if subcommand in ("test", "validate") else None
    if run is None:
        # As Lightning versions its default logger: by the SLURM job's id, where there is one.
        trainer.logger = RunLogger(trainer.default_root_dir, version=SLURMEnvironment.job_id())
    else:
        trainer.logger = RunLogger(str(run.parent.parent), name=run.parent.name, version=run.name)
    if subcommand == "fit":
        trainer.callbacks.append(RunSummary())


def prepare_predictions(trainer: Trainer, model: LightningModule, datamodule: LightningDataModule, ckpt_path: str | None) -> None:
    """``bam predict`` writes what a trained network finds beside the run's logs: a classifier's classes of the images
    under ``--data.predict_dir`` (predictions.csv), a detector's boxes on them or on the evaluation split (detections.*)."""
    if ckpt_path is None:
        raise InputError("bam predict needs the trained network: give --ckpt_path FILE (or last, or best)")
    detector = isinstance(model, ObjectDetector)
    if datamodule.predict_dir is not None:
        find_images(datamodule.predict_dir)  # a wrong folder, refused before the run makes its own
    elif not detector:
        raise InputError("bam predict classifies the images under --data.predict_dir DIR: give that folder")
    trainer.callbacks.append(DetectionsCSV() if detector else PredictionsCSV())
