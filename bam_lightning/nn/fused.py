"""BAM's refinement ``x * (1 + sigmoid(c ∘ s))`` without keeping full-size intermediates, and compiled.

Written plainly (``bam.py``'s reference form), the broadcast of the (N,C,1,1) channel
vector ``c`` against the (N,1,H,W) spatial map ``s``, the sigmoid, the ``1 +`` and the
product each write an N x C x H x W tensor, and autograd keeps two of them for the
backward pass. ``refine`` is one autograd function that keeps only ``x``, ``c`` and ``s``
(``x`` is kept by the branches' first layers anyway) and recomputes the gate in backward,
where the two branch gradients are reductions of one expression.

Saving less does not make it faster by itself: each operator is still one pass over the
map. ``compiled_training`` runs a whole BAM forward (pooling, both branches, ``refine``)
under ``torch.compile``, which fuses those passes, the gradients flowing back into ``x``
included, into a few loops (C++ on CPU, Triton on CUDA). Only training steps are compiled
(where the time goes); evaluation, meta tensors, a model that is itself being compiled, or
a machine where compiling fails (no C++ compiler) run the same functions eagerly, and so
does everything with ``BAM_LIGHTNING_COMPILE=0`` in the environment: for tiny networks
and short runs, where compiling (seconds per map shape) costs more than it saves.
"""

import os
import warnings
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

# Recompute rather than keep what the compiled graph would otherwise save (its own copy of
# the map in another memory layout): keeps the memory saving of ``refine`` under compile.
ACTIVATION_MEMORY_BUDGET = 0.1

COMPILE = os.environ.get("BAM_LIGHTNING_COMPILE", "1") != "0"

_compiled: dict[Callable, Callable] = {}
_compile_failed = False


class _Refine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, s: Tensor, prod: bool) -> Tensor:
        ctx.save_for_backward(x, c, s)
        ctx.prod = prod
        return x * (1 + torch.sigmoid(c * s if prod else c + s))

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        x, c, s = ctx.saved_tensors
        m = torch.sigmoid(c * s if ctx.prod else c + s)
        # d out / d a = x * m * (1 - m), a being the sigmoid's argument; c and s get its reductions.
        ga = g * x * m * (1 - m)
        gc = ga * s if ctx.prod else ga
        gs = ga * c if ctx.prod else ga
        return g * (1 + m), gc.sum_to_size(c.shape), gs.sum_to_size(s.shape), None


def refine(x: Tensor, channel: Tensor | None, spatial: Tensor | None, prod: bool = False) -> Tensor:
    """``x * (1 + sigmoid(channel + spatial))`` (or ``channel * spatial`` with ``prod``), saving only the inputs.

    ``channel`` is (N,C,1,1) and ``spatial`` (N,1,H,W); either may be None (a one-branch
    ablation), in which case the gate is the sigmoid of the other alone.
    """
    if channel is None or spatial is None:
        given = channel if spatial is None else spatial
        if given is None:
            raise ValueError("refine needs at least one of channel and spatial")
        return _Refine.apply(x, given, given.new_zeros(1, 1, 1, 1), False)
    return _Refine.apply(x, channel, spatial, prod)


def _memory_budget() -> object:
    config = torch._functorch.config
    if not hasattr(config, "activation_memory_budget"):  # torch before 2.4: the partitioner's default
        return nullcontext()
    return config.patch(activation_memory_budget=ACTIVATION_MEMORY_BUDGET)


def compiled_training(forward: Callable[[nn.Module, Tensor], Tensor], module: nn.Module, x: Tensor) -> Tensor:
    """``forward(module, x)``, compiled when it is a training step on a CPU or CUDA tensor.

    One compiled function per ``forward``, shared by every module it is called with (their
    parameters are inputs of the graph, so equal shapes reuse one compilation).
    """
    global _compile_failed
    training = torch.is_grad_enabled() and x.requires_grad
    eager = not COMPILE or _compile_failed or x.device.type not in ("cpu", "cuda") or torch.compiler.is_compiling()
    if eager or not training:
        return forward(module, x)
    if forward not in _compiled:
        _compiled[forward] = torch.compile(forward)
    try:
        with _memory_budget():
            return _compiled[forward](module, x)
    except torch._dynamo.exc.BackendCompilerFailed as error:
        _compile_failed = True
        cause = getattr(error, "inner_exception", None) or error  # the compiler's own words, not dynamo's wrapper
        reason = next((line for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
        warnings.warn(f"BAM runs uncompiled (slower): torch.compile failed ({reason})", RuntimeWarning, stacklevel=3)
        return forward(module, x)
