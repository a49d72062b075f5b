"""Detectors by name: each detector file registers a builder that cuts a classification network into a detector.

Detection starts from an ImageNet classifier of the package's own registry, so every
backbone, attention choice and ablation switch of classification carries over. Where the
attention goes is the detector family's (``attention_in``): in the backbone's bottlenecks, as
in classification (Faster R-CNN's trunk), or on every map that feeds a prediction head (the
paper's StairNet rows: "right before every classifier").
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ...errors import InputError, check_options
from ..insert import Attention, Placement
from ..registry import Builder, Registry, create_model
from ..weights import load_backbone_weights

AttentionIn = Literal["backbone", "heads"]


@dataclass(frozen=True)
class DetectorEntry:
    builder: Builder
    attention_in: AttentionIn


DETECTORS = Registry("detector", DetectorEntry)


def register_detector(attention_in: AttentionIn) -> Callable[[Builder], Builder]:
    """Register ``builder(classifier, num_classes, attention, attention_kwargs, **options)`` under its function name."""
    return DETECTORS.register(attention_in=attention_in)


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detector names matching a shell-style ``pattern``, sorted."""
    return DETECTORS.names(pattern)


def get_detector_entry(name: str) -> DetectorEntry:
    return DETECTORS.get(name)


def build_detector(
    detector: str,
    backbone: str,
    num_classes: int,
    attention: Attention | None = None,
    attention_kwargs: Mapping[str, Any] | None = None,
    placement: Placement | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[nn.Module, nn.Module]:
    """``detector`` cut from the registered classifier ``backbone``, for ``num_classes`` object classes plus background.

    Returns the detector and the ImageNet classifier (1000 classes) it was cut from. They share
    their modules, so weights loaded into the classifier later (``load_backbone_weights``) are the
    detector's: a run can load ImageNet weights when it starts fresh and skip them when it resumes.
    Attention goes where the detector family puts it (``attention_in``); ``placement`` applies
    to attention in the backbone only; ``options`` go to the detector's builder.
    """
    entry = get_detector_entry(detector)
    check_options(detector, entry.builder, options, fixed=4, flag="detector_kwargs")
    in_backbone = entry.attention_in == "backbone"
    if placement is not None and not in_backbone:
        raise InputError(f"{detector} puts attention before its prediction heads: placement {placement!r} does not apply")
    if in_backbone:
        classifier = create_model(backbone, 1000, attention, attention_kwargs, placement, **(backbone_kwargs or {}))
        return entry.builder(classifier, num_classes + 1, **options), classifier
    classifier = create_model(backbone, 1000, None, **(backbone_kwargs or {}))
    return entry.builder(classifier, num_classes + 1, attention, dict(attention_kwargs or {}), **options), classifier


def create_detector(
    detector: str, backbone: str, num_classes: int, backbone_weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """``build_detector``'s detector, its backbone holding ``backbone_weights`` if given (see ``models.weights``)."""
    model, classifier = build_detector(detector, backbone, num_classes, **kwargs)
    if backbone_weights:
        load_backbone_weights(classifier, backbone, backbone_weights)
    return model
