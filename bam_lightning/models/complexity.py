"""Parameter and multiply-accumulate counts, as the paper reports them, and activation memory.

The paper's "GFLOPs" column counts multiply-accumulates of a one-image forward pass, so
``count_macs`` halves what ``torch.utils.flop_counter`` reports (it counts a MAC as two
FLOPs). Element-wise work (BAM's sigmoid and products) is not counted, as in the paper.
"""

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .probe import probing


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_size: int | tuple[int, int], in_chans: int = 3) -> int:
    """Multiply-accumulates of one eval-mode forward pass on a single image."""
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    param = next(model.parameters())
    x = torch.zeros(1, in_chans, *size, device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    with probing(model), counter:
        model(x)
    return counter.get_total_flops() // 2


def activation_bytes(forward: Callable[[], object], exclude: Iterable[Tensor] = ()) -> int:
    """Bytes autograd keeps for the backward pass of ``forward()``: every distinct storage it saves, minus ``exclude``.

    What a training step holds between forward and backward beyond the weights; exact, and
    the same on every device (unlike a peak, which also counts short-lived temporaries).
    Pass the input and the parameters as ``exclude`` to count only what the layers add.
    """
    kept: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    for t in exclude:
        kept.pop(t.untyped_storage().data_ptr(), None)
    return sum(kept.values())
