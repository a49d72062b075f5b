"""Which task a command line is for: the data it names decide the LightningModule."""

import importlib
from typing import Any

from .. import data
from ..data import DetectionDataModule, ImageDataModule
from ..detector import ObjectDetector
from ..module import ImageClassifier
from ..trainer_values import options, yaml_file


def data_class(value: Any) -> type | None:
    """The class a ``data.class_path`` names (a full path, or a name ``bam_lightning.data`` exports), or None."""
    if not isinstance(value, str):
        return None
    module, _, name = value.rpartition(".")
    try:
        found = getattr(importlib.import_module(module) if module else data, name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def task_of(args: list[str]) -> tuple[type, type]:
    """The LightningModule and DataModule base of the task that the data given in ``args`` (configs or --data) make.

    A name or file that cannot be read here is left to LightningCLI, which reports it in its own words.
    """
    found = None
    for flag, value in options(args):
        if flag in ("-c", "--config"):
            section = yaml_file(value).get("data")
            found = data_class(section.get("class_path") if isinstance(section, dict) else section) or found
        elif flag in ("--data", "--data.class_path"):
            found = data_class(value) or found
    if found is not None and issubclass(found, DetectionDataModule):
        return ObjectDetector, DetectionDataModule
    return ImageClassifier, ImageDataModule
