"""Which task a command line is for: the data it names decide the LightningModule."""

import importlib
from collections.abc import Mapping
from typing import Any

from .. import data
from ..data import DetectionDataModule, ImageDataModule
from ..tasks.classification import ImageClassifier
from ..tasks.detection import ObjectDetector
from .given import at, merged


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


def given_data_class(args: list[str]) -> type | None:
    """The DataModule class the configs or ``--data`` in ``args`` name, or None."""
    data = at(merged(args, strict=False), "data")
    return data_class(data.get("class_path") if isinstance(data, Mapping) else data)


def task_of(args: list[str]) -> tuple[type, type]:
    """The LightningModule and DataModule base of the task that the data given in ``args`` (configs or --data) make.

    A name or file that cannot be read here is left to LightningCLI, which reports it in its own words.
    """
    found = given_data_class(args)
    if found is not None and issubclass(found, DetectionDataModule):
        return ObjectDetector, DetectionDataModule
    return ImageClassifier, ImageDataModule
