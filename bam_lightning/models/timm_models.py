"""Any of timm's models as a backbone: ``backbone: timm/<name>``, attention at its bottlenecks.

The registry hands a ``timm/`` name here instead of looking it up among our builders: timm's
own ``create_model`` builds the network with the data's class count (and any ``backbone_kwargs``,
e.g. ``{drop_path_rate: 0.1}`` or ``{pretrained: true}``), and ``insert_attention`` then finds
its bottlenecks by the same traced forward pass as for our families, at the input size of
timm's configuration for that model. No per-family table: a network timm adds tomorrow gets
BAM the same way. ``list_models()`` stays our registered names; ``timm.list_models("convnext*")``
lists timm's.

timm is an optional extra (``pip install "bam_lightning[timm]"``), imported only when a
``timm/`` name is asked for.
"""

import difflib
import importlib
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

from torch import nn

from ..errors import InputError, one_line

PREFIX = "timm/"


def _timm(name: str) -> ModuleType:
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise InputError(f'backbone {name} needs timm: pip install "bam_lightning[timm]" (or pip install timm)') from None


def timm_builder(name: str) -> tuple[Callable[..., nn.Module], int]:
    """The builder of ``timm/<model>`` (called with ``num_classes`` and the backbone's options) and its input side."""
    timm = _timm(name)
    model = name.removeprefix(PREFIX)
    if not timm.is_model(model):
        close = difflib.get_close_matches(model, timm.list_models(), n=3)
        hint = f" (did you mean {', '.join(PREFIX + c for c in close)}?)" if close else ""
        listing = "python -c \"import timm; print(timm.list_models('name*'))\""
        raise InputError(f"timm has no model {model!r}{hint}: {listing} lists them")
    input_size = timm.models.get_pretrained_cfg_value(model, "input_size") or (3, 224, 224)
    return partial(_build, timm, model), input_size[-1]


def _build(timm: ModuleType, model: str, num_classes: int, **kwargs: Any) -> nn.Module:
    try:
        return timm.create_model(model, num_classes=num_classes, **kwargs)
    except TypeError as error:  # an option the model's class does not take
        raise InputError(f"{PREFIX}{model}: backbone_kwargs {kwargs} not taken ({error})") from None
    except OSError as error:  # pretrained weights that cannot be fetched (no network, no such file on the hub)
        reason = one_line(error)[:200]
        raise InputError(f"{PREFIX}{model}: cannot get its pretrained weights ({reason}): drop pretrained, or connect") from None
