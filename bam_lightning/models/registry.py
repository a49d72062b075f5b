"""Models by name: each family file registers plain builder functions, one per variant.

A builder returns the bare backbone; ``create_model`` then puts the chosen attention at
its bottlenecks with ``insert_attention``, at the input size the model is registered for.
One mechanism places attention in every network, ours and torchvision's alike.
"""

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import InputError, check_options
from .insert import DEFAULT_ATTENTION, Attention, Placement, insert_attention
from .timm_models import PREFIX as TIMM_PREFIX
from .timm_models import timm_builder


@dataclass(frozen=True)
class ModelEntry:
    builder: Callable[..., nn.Module]
    input_size: int
    placement: Placement = "bottleneck"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    input_size: int, placement: Placement = "bottleneck"
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name for inputs of ``input_size`` pixels.

    ``placement`` is where this family's paper row puts attention (see ``find_bottlenecks``).
    """

    def register(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[builder.__name__] = ModelEntry(builder, input_size, placement)
        return builder

    return register


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted (timm's: ``timm.list_models``)."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def get_model_entry(name: str) -> ModelEntry:
    """A registered builder, or timm's for a ``timm/<name>`` (``timm_models``), with its input size."""
    if name.startswith(TIMM_PREFIX):
        return ModelEntry(*timm_builder(name))
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}: choose one of {', '.join(list_models())}, or timm/<name>") from None


def create_model(
    name: str | nn.Module,
    num_classes: int,
    attention: Attention | None = DEFAULT_ATTENTION,
    attention_kwargs: Mapping[str, Any] | None = None,
    placement: Placement | None = None,
    input_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``name`` for ``num_classes`` with ``attention`` at each bottleneck.

    ``kwargs`` go to the backbone's builder (e.g. ``width_mult`` of MobileNet);
    ``attention_kwargs`` to every attention module (e.g. ``{"reduction": 8}``);
    ``placement`` overrides the family's (``every_block`` is the paper's BAM-C).
    A module given instead of a name is used as it is (``num_classes`` does not apply): its
    bottlenecks are found at ``input_size`` (default 224), with ``placement`` ``bottleneck``
    unless given. A registered name is traced at the size it is registered for.
    """
    if isinstance(name, nn.Module):
        if kwargs:
            raise InputError(f"backbone_kwargs {sorted(kwargs)} apply to a backbone given by name, not to a module")
        where = placement or "bottleneck"
        return insert_attention(name, attention, input_size or 224, placement=where, attention_kwargs=attention_kwargs)
    entry = get_model_entry(name)
    check_options(name, entry.builder, kwargs, fixed=1, flag="backbone_kwargs")
    model = entry.builder(num_classes=num_classes, **kwargs)
    where = placement or entry.placement
    return insert_attention(model, attention, entry.input_size, placement=where, attention_kwargs=attention_kwargs)
