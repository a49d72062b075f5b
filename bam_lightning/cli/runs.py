"""What a run needs settled before the Trainer starts it: the checkpoint ``last``/``best`` mean, predict's outputs."""

import sys

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from ..checkpoints import best_checkpoint, newest_checkpoint
from ..data.predict import find_images
from ..engine.detections import DetectionsCSV
from ..engine.predictions import PredictionsCSV
from ..errors import InputError
from ..tasks.detection import ObjectDetector


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
