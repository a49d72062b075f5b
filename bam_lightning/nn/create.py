"""One factory that turns an attention name from a model argument or YAML into a module.

Backbones and ``insert_attention`` take a name, not a class, so every place that can hold
attention accepts the same choices, and a new block becomes available everywhere by
adding one line here.
"""

from typing import Any, Literal

from torch import nn

from ..errors import InputError, check_options
from .bam import BAM
from .bam_official import OfficialBAM
from .cbam import CBAM
from .se import SqueezeExcite

AttentionName = Literal["bam", "bam_official", "se", "cbam"]

ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "bam": BAM,
    "bam_official": OfficialBAM,
    "se": SqueezeExcite,
    "cbam": CBAM,
}
BAMS = (BAM, OfficialBAM)  # the blocks with an attention map M(F) (``attention_maps``)


def attention_blocks(model: nn.Module, kinds: tuple[type[nn.Module], ...] | None = None) -> list[tuple[str, nn.Module]]:
    """Every module of ``kinds`` in ``model`` (by default every block ``create_attn`` builds) with its path, outermost first."""
    kinds = tuple(ATTENTION_LAYERS.values()) if kinds is None else kinds
    return [(name, module) for name, module in model.named_modules() if isinstance(module, kinds)]


def get_attn(name: str | None) -> type[nn.Module] | None:
    """The class registered under ``name``; ``None`` (or ``"none"``) means no attention."""
    if name is None or name == "none":
        return None
    try:
        return ATTENTION_LAYERS[name]
    except KeyError:
        choices = ", ".join(sorted(ATTENTION_LAYERS))
        raise InputError(f"unknown attention {name!r}: choose one of {choices}, or none") from None


def create_attn(name: str | None, channels: int, **kwargs: Any) -> nn.Module | None:
    """An attention module for a ``channels``-wide feature map, or ``None`` for no attention."""
    cls = get_attn(name)
    if cls is None:
        return None
    check_options(f"attention {name}", cls, kwargs, fixed=1, flag="attention_kwargs")
    return cls(channels, **kwargs)
