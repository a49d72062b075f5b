"""BAM's refinement ``x * (1 + sigmoid(c ∘ s))`` without keeping full-size intermediates.

Written plainly (``bam.py``'s reference form), the broadcast of the (N,C,1,1) channel
vector ``c`` against the (N,1,H,W) spatial map ``s``, the sigmoid, the ``1 +`` and the
product each write an N x C x H x W tensor, and autograd keeps two of them for the
backward pass. ``refine`` is one autograd function that keeps only ``x``, ``c`` and ``s``
(``x`` is kept by the branches' first layers anyway) and recomputes the gate in backward,
where the two branch gradients are reductions of one expression.

Both halves are compiled with ``torch.compile`` on first use, so each is one loop over the
map (C++ on CPU, Triton on CUDA) instead of one pass per operator: the speed comes from
the fusion, the memory from what is saved. Where compiling is impossible (no C++ compiler,
an unsupported device, inside a model that is itself being compiled) the same two functions
run eagerly: same math, same saved tensors, only slower.
"""

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

_compiled: dict[str, Callable] = {}
_compile_failed = False


def _refine_forward(x: Tensor, c: Tensor, s: Tensor, prod: bool) -> Tensor:
    return x * (1 + torch.sigmoid(c * s if prod else c + s))


def _refine_backward(g: Tensor, x: Tensor, c: Tensor, s: Tensor, prod: bool) -> tuple[Tensor, Tensor, Tensor]:
    m = torch.sigmoid(c * s if prod else c + s)
    # d out / d a = x * m * (1 - m), a being the sigmoid's argument; c and s get its reductions.
    ga = g * x * m * (1 - m)
    gc = ga * s if prod else ga
    gs = ga * c if prod else ga
    return g * (1 + m), gc.sum_to_size(c.shape), gs.sum_to_size(s.shape)


_KERNELS = {"forward": _refine_forward, "backward": _refine_backward}


def _run(name: str, *args: Tensor | bool) -> Tensor | tuple[Tensor, ...]:
    """Kernel ``name`` compiled for real devices; eager inside an outer compile, on meta tensors or after a failure."""
    global _compile_failed
    kernel = _KERNELS[name]
    device = args[0].device.type
    if _compile_failed or device not in ("cpu", "cuda") or torch.compiler.is_compiling():
        return kernel(*args)
    if name not in _compiled:
        _compiled[name] = torch.compile(kernel, dynamic=True)
    try:
        return _compiled[name](*args)
    except Exception as error:  # noqa: BLE001 - any compiler failure: the eager kernel is the same math
        _compile_failed = True
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        warnings.warn(f"fused BAM runs eagerly (slower): torch.compile failed ({reason})", RuntimeWarning, stacklevel=3)
        return kernel(*args)


class _Refine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, s: Tensor, prod: bool) -> Tensor:
        ctx.save_for_backward(x, c, s)
        ctx.prod = prod
        return _run("forward", x, c, s, prod)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        x, c, s = ctx.saved_tensors
        return *_run("backward", g, x, c, s, ctx.prod), None


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
