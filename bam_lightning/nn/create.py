"""One factory that turns an attention name from a model argument or YAML into a module.

Backbones and ``insert_attention`` take a name, not a class, so every place that can hold
attention accepts the same choices, and a new block becomes available everywhere by
adding one line here.
"""

from collections.abc import Sequence
from typing import Any, Literal, get_args

from torch import nn

from ..errors import InputError, check_options, nearest
from .bam import BAM
from .bam_official import OfficialBAM
from .cbam import CBAM
from .se import SqueezeExcite
from .timm_attention import TIMM_ATTENTION, TimmAttention, check_acts

ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "bam": BAM,
    "bam_official": OfficialBAM,
    "se": SqueezeExcite,
    "cbam": CBAM,
}
AttentionName = Literal[(*ATTENTION_LAYERS, *(f"timm/{name}" for name in TIMM_ATTENTION))]  # type: ignore[valid-type]
BAMS = (BAM, OfficialBAM)  # the blocks with an attention map M(F) (``attention_maps``)


def attention_blocks(model: nn.Module, kinds: tuple[type[nn.Module], ...] | None = None) -> list[tuple[str, nn.Module]]:
    """Every module of ``kinds`` in ``model`` (by default every block ``create_attn`` builds) with its path, outermost first."""
    kinds = (*ATTENTION_LAYERS.values(), TimmAttention) if kinds is None else kinds
    return [(name, module) for name, module in model.named_modules() if isinstance(module, kinds)]


def get_attn(name: str | None) -> type[nn.Module] | None:
    """The class registered under ``name``; ``None`` (or ``"none"``) means no attention."""
    if name is None or name == "none":
        return None
    if name.startswith("timm/") and name.removeprefix("timm/") in TIMM_ATTENTION:
        return TimmAttention
    try:
        return ATTENTION_LAYERS[name]
    except KeyError:
        choices = ", ".join([*sorted(ATTENTION_LAYERS), "timm/<name>"])
        near = nearest(name, get_args(AttentionName))
        raise InputError(
            f"unknown attention {name!r}{near}: choose one of {choices} ({', '.join(TIMM_ATTENTION)}), or none"
        ) from None


def create_attn(name: str | None, channels: int, **kwargs: Any) -> nn.Module | None:
    """An attention module for a ``channels``-wide feature map, or ``None`` for no attention."""
    blocks = create_attns(name, [channels], **kwargs)
    return blocks[0] if blocks else None


def create_attns(name: str | None, widths: Sequence[int], **kwargs: Any) -> list[nn.Module]:
    """One attention module per feature-map width (none for no attention): a network's blocks, built together so that
    an option timm's block ignores at every width is refused, and one that acts at some width is not (``check_acts``)."""
    cls = get_attn(name)
    if cls is None:
        return []
    if cls is TimmAttention:
        short = name.removeprefix("timm/")
        blocks = [TimmAttention(width, short, **kwargs) for width in widths]
        check_acts(short, widths, kwargs)
        return blocks
    check_options(f"attention {name}", cls, kwargs, fixed=1, flag="attention_kwargs")
    return [cls(width, **kwargs) for width in widths]
