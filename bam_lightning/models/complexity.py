"""Parameter and multiply-accumulate counts, as the paper reports them.

The paper's "GFLOPs" column counts multiply-accumulates of a one-image forward pass, so
``count_macs`` halves what ``torch.utils.flop_counter`` reports (it counts a MAC as two
FLOPs). Element-wise work (BAM's sigmoid and products) is not counted, as in the paper.
"""

import torch
from torch import nn
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
