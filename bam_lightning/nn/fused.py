"""BAM's refinement ``x * (1 + sigmoid(c ∘ s))`` without keeping full-size intermediates.

Written plainly (``bam.py``'s reference form), the broadcast of the (N,C,1,1) channel
vector ``c`` against the (N,1,H,W) spatial map ``s``, the sigmoid, the ``1 +`` and the
product each write an N x C x H x W tensor, and autograd keeps two of them for the
backward pass. ``refine`` is one autograd function that keeps only ``x``, ``c`` and ``s``
(``x`` is kept by the branches' first layers anyway) and recomputes the gate in backward,
where the two branch gradients are reductions of one expression.

Saving less does not make it faster by itself: each operator is still one pass over the
map. Fusing those passes is ``torch.compile``'s job, and what is compiled is the
LightningModule's choice (``ImageClassifier(compile=...)``), not the block's.
"""

import torch
from torch import Tensor


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
