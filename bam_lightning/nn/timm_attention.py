"""timm's attention blocks by name (``timm/<name>``): the outside baselines BAM is compared with (the ``timm`` extra)."""

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, check_options, first_line

# The names timm.layers.get_attn builds for a 4-D map that keep its shape, each at its defaults on any width
# (ge at DEFAULTS'). Left out: bat (needs its block size) and the conv replacements (sk, splat, lambda, bottleneck,
# halo), which change a map's shape.
TIMM_ATTENTION = ("se", "ese", "eca", "ecam", "ceca", "gc", "gca", "ge", "cbam", "lcbam", "coord", "scoord", "ela", "strip", "nl")
# timm 1.0's GatherExcite fails with its MLP (ConvMlp is handed act_layer twice), so timm/ge is Hu et al.'s
# parameter-free GE-θ⁻ (global gather, no MLP) unless attention_kwargs ask for more.
DEFAULTS = {"ge": {"use_mlp": False}}
# What a block does instead of an option it ignores, where timm's reason is not plain from its signature.
INSTEAD = {
    (name, "kernel_size"): "it sizes its kernel from the channel count, (log2(channels) + beta) / gamma: set gamma or beta"
    for name in ("eca", "ecam", "ceca")
}


def timm_block(name: str) -> Any:
    """timm's class (or partial) for attention ``name``."""
    try:
        from timm.layers import get_attn
    except ImportError:
        raise InputError(f"attention timm/{name} needs timm: pip install 'bam_lightning[timm]'") from None
    return get_attn(name)


class TimmAttention(nn.Module):
    """timm's block ``name`` inside a class of ours, so that scans for the blocks we inserted find it (and not the
    SE or CBAM modules a timm backbone has of its own)."""

    def __init__(self, channels: int, name: str, **kwargs: Any) -> None:
        super().__init__()
        block = timm_block(name)
        check_options(f"attention timm/{name}", block, kwargs, fixed=1, flag="attention_kwargs")
        options = DEFAULTS.get(name, {}) | kwargs
        try:
            self.block = block(channels, **options)
        except TypeError as error:  # timm's own failure for options it takes (ge's use_mlp in timm 1.0)
            raise InputError(f"attention timm/{name} with {options}: timm's block fails to build: {error}") from None

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


def check_acts(name: str, widths: Sequence[int], kwargs: dict[str, Any]) -> None:
    """Refuse an option of ``kwargs`` that timm's block ``name`` ignores at every width in ``widths``.

    timm's blocks take options they then override (ECA computes its kernel size from the channels
    whenever it is given them; an MLP's ratio without the MLP), so an accepted option could be
    saved in a run's config without having acted. An option acts if the block built without it
    differs at some width where the network places it (a ratio can round to the same width at 64
    channels and not at 256): in its layout, its settings, its initial weights (same seed) or its
    output on one input with random weights (a block may start as the identity, as timm's
    non-local one does). Built on a forked RNG: the model's own initialisation stays as it was.
    """
    block, defaults = timm_block(name), DEFAULTS.get(name, {})
    signature = inspect.signature(block).parameters
    unset = inspect.Parameter.empty
    changed = [key for key, value in kwargs.items() if value != defaults.get(key, getattr(signature.get(key), "default", unset))]
    if not changed:
        return
    with torch.random.fork_rng(devices=[]):
        given = {width: _fingerprint(name, block, width, defaults | kwargs) for width in widths}
        for key in changed:
            rest = {k: v for k, v in (defaults | kwargs).items() if k != key}
            if all(_fingerprint(name, block, width, rest) == given[width] for width in widths):
                kind = getattr(block, "func", block).__name__
                instead = INSTEAD.get((name, key), f"timm's {kind} builds the same block without it")
                at = ", ".join(map(str, sorted(set(widths))))
                raise InputError(
                    f"attention timm/{name}: attention_kwargs {key}={kwargs[key]!r} changes nothing at {at} channels "
                    f"({instead}): remove it"
                )


def _fingerprint(name: str, block: Any, channels: int, options: dict[str, Any]) -> tuple[Any, ...]:
    """``block`` built with ``options`` from seed 1: its layout, settings and weights, and its output with random weights."""
    torch.manual_seed(1)
    x = torch.randn(2, channels, 8, 8)
    try:
        module = block(channels, **options)
        settings = [(path, _settings(m)) for path, m in module.named_modules()]
        weights = [t.tolist() for t in module.state_dict().values()]
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.normal_()
            output = module.eval()(x).tolist()
    except (AssertionError, RuntimeError, TypeError, ValueError) as error:
        raise InputError(
            f"attention timm/{name} with {options}: timm's block fails on a {channels}-channel map: "
            f"{type(error).__name__}{f': {first_line(error)}' if str(error).strip() else ''}"
        ) from None
    return repr(module), settings, weights, output


def _settings(module: nn.Module) -> dict[str, Any]:
    """A module's plain attributes (a scale, a flag), which its repr may not show."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, bool | int | float | str | tuple)}
