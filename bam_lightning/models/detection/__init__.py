"""Detectors cut from the package's classifiers: one file per family, registered by name."""

from . import faster_rcnn, ssd, stairnet  # noqa: F401  (register the builders)
from .registry import DetectorEntry, build_detector, create_detector, get_detector_entry, list_detectors, register_detector

__all__ = ["DetectorEntry", "build_detector", "create_detector", "get_detector_entry", "list_detectors", "register_detector"]
