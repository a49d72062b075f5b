"""Builders by name: one ``Registry`` for each kind of network, and the classifiers' own.

Each family file registers plain builder functions, one per variant, with what the package
needs to know about them (its entry). A classifier builder returns the bare backbone;
``create_model`` then puts the chosen attention at its bottlenecks with ``insert_attention``,
at the input size the model is registered for. One mechanism places attention in every
network, ours and torchvision's alike, and one names them: the detectors' registry is a
``Registry`` too, so listing by pattern and the unknown-name error are the same for both.
"""

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from torch import nn

from ..errors import InputError, check_options, nearest
from .hub import SOURCES, is_source, load_weights, read_config
from .insert import DEFAULT_ATTENTION, Attention, Placement, insert_attention
from .timm_models import PREFIX as TIMM_PREFIX
from .timm_models import timm_builder

Builder = Callable[..., nn.Module]
Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Entries of one ``kind`` (model, detector) under their builders' function names.

    A name is a config value, so the lookup is checked: an unknown one is an ``InputError`` that
    names the nearest registered name and lists them all (and ``others``, names served elsewhere).
    """

    def __init__(self, kind: str, entry: Callable[..., Entry], others: str = "") -> None:
        self.kind, self.entry, self.others = kind, entry, others
        self._entries: dict[str, Entry] = {}

    def register(self, **metadata: Any) -> Callable[[Builder], Builder]:
        """A decorator keying ``entry(builder, **metadata)`` by the builder's name: a config names a network as its
        family file spells the function."""

        def register(builder: Builder) -> Builder:
            name = builder.__name__
            if name in self._entries:  # two families' builders of one name: the later would hide the earlier
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = self.entry(builder, **metadata)
            return builder

        return register

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        return sorted(fnmatch.filter(self._entries, pattern))

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names()) + (f", or {self.others}" if self.others else "")
            raise InputError(f"unknown {self.kind} {name!r}{nearest(name, self._entries)}: choose one of {choices}") from None


@dataclass(frozen=True)
class ModelEntry:
    builder: Builder
    input_size: int
    placement: Placement = "bottleneck"


MODELS = Registry("model", ModelEntry, others="timm/<name>")


def register_model(input_size: int, placement: Placement = "bottleneck") -> Callable[[Builder], Builder]:
    """Register a builder under its function name for inputs of ``input_size`` pixels.

    ``placement`` is where this family's paper row puts attention (see ``find_bottlenecks``).
    """
    return MODELS.register(input_size=input_size, placement=placement)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted (timm's: ``timm.list_models``)."""
    return MODELS.names(pattern)


def get_model_entry(name: str) -> ModelEntry:
    """A registered builder, or timm's for a ``timm/<name>`` (``timm_models``), with its input size."""
    if name.startswith(TIMM_PREFIX):
        return ModelEntry(*timm_builder(name))
    return MODELS.get(name)


def create_model(
    name: str | nn.Module,
    num_classes: int,
    attention: Attention | None = DEFAULT_ATTENTION,
    attention_kwargs: Mapping[str, Any] | None = None,
    placement: Placement | None = None,
    input_size: int | None = None,
    pretrained: str | bool | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``name`` for ``num_classes`` with ``attention`` at each bottleneck.

    ``kwargs`` go to the backbone's builder (e.g. ``width_mult`` of MobileNet);
    ``attention_kwargs`` to every attention module (e.g. ``{"reduction": 8}``);
    ``placement`` overrides the family's (``every_block`` is the paper's BAM-C).
    A module given instead of a name is used as it is (``num_classes`` does not apply): its
    bottlenecks are found at ``input_size`` (default 224), with ``placement`` ``bottleneck``
    unless given. A registered name is traced at the size it is registered for.
    ``pretrained`` (``local-dir:DIR`` or ``hf-hub:owner/name``, see ``hub``) loads a folder's weights
    into the network built: they must fit it, but for the classifier where ``num_classes`` differs. True or false
    is the backbone builder's own option (``backbone_kwargs: {pretrained: true}``: timm's ImageNet weights).
    """
    if isinstance(pretrained, bool):
        kwargs["pretrained"], pretrained = pretrained, None
    if pretrained is not None and not is_source(pretrained):
        raise InputError(f"pretrained {pretrained!r} names no weights: give {' or '.join(s + '...' for s in SOURCES)}")
    if isinstance(name, nn.Module):
        if kwargs:
            raise InputError(f"backbone_kwargs {sorted(kwargs)} apply to a backbone given by name, not to a module")
        where = placement or "bottleneck"
        model = insert_attention(name, attention, input_size or 224, placement=where, attention_kwargs=attention_kwargs)
    else:
        entry = get_model_entry(name)
        check_options(name, entry.builder, kwargs, fixed=1, flag="backbone_kwargs")
        model = entry.builder(num_classes=num_classes, **kwargs)
        where = placement or entry.placement
        model = insert_attention(model, attention, entry.input_size, placement=where, attention_kwargs=attention_kwargs)
    if pretrained is not None:
        load_weights(model, pretrained, read_config(pretrained)["num_classes"])
    return model
