"""BAM's refinement ``x * (1 + sigmoid(c ∘ s))`` without keeping full-size intermediates.

Written plainly (``bam.py``'s reference form), the gate, its sigmoid and the product each write
an N x C x H x W tensor and autograd keeps two of them. ``refine`` keeps only ``x`` and the branch
outputs ``c`` (N,C,1,1) and ``s`` (N,1,H,W), recomputes the gate in backward, and writes as few
full-size tensors as it can (the sigmoid in place, one ``addcmul``, ``sigmoid_backward`` in place).
Its speed and memory: docs/performance.md.
"""

import torch
from torch import Tensor


class _Refine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, s: Tensor, prod: bool) -> Tensor:
        ctx.save_for_backward(x, c, s)
        ctx.prod = prod
        return torch.addcmul(x, x, _gate(c, s, prod))

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        x, c, s = ctx.saved_tensors
        m = _gate(c, s, ctx.prod)
        gx = torch.addcmul(g, g, m)
        # d out / d a = g * x * m * (1 - m), a being the sigmoid's argument; c and s get its reductions.
        ga = g * x
        torch.ops.aten.sigmoid_backward.grad_input(ga, m, grad_input=ga)
        gc = ga * s if ctx.prod else ga
        gs = ga * c if ctx.prod else ga
        return gx, gc.sum_to_size(c.shape), gs.sum_to_size(s.shape), None


def _gate(c: Tensor, s: Tensor, prod: bool) -> Tensor:
    """``sigmoid(c * s)`` or ``sigmoid(c + s)`` broadcast to full size, in one new tensor (the sigmoid in place)."""
    return (c * s if prod else c + s).sigmoid_()


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
