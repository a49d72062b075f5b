"""Parameter and multiply-accumulate counts, as the paper reports them, activation memory, and measured speed.

The paper's "GFLOPs" column counts multiply-accumulates of a one-image forward pass, so
``count_macs`` halves what ``torch.utils.flop_counter`` reports (it counts a MAC as two
FLOPs). Element-wise work (BAM's sigmoid and products) is not counted, as in the paper: what
it costs shows in measured time (``images_per_second``), not in MACs.
"""

import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, warmed up first (compilation, allocator, caches).

    Taken round-robin (A B C A B C ...), so that a slow spell of a shared machine hits every function alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def sgd_step(model: nn.Module, loss: Callable[[], Tensor], lr: float = 0.01) -> Callable[[], None]:
    """A training step: ``loss()``, backward and an SGD update with momentum (its own optimizer)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    return step


def images_per_second(
    models: dict[str, nn.Module], batch: int, size: int, num_classes: int, device: torch.device, warmup: int, repeats: int
) -> dict[str, tuple[float, float]]:
    """Images/s of each model's inference forward (eval mode, no grad) and of its training step, by name.

    A step is forward, cross-entropy, backward and an SGD update on one batch of random images, in
    train mode. Every forward and step is timed round-robin with the others (``median_times``), so
    models measured together are compared under the same load. The models are moved to ``device``
    and left in train mode; pass compiled ones (``nn.Module.compile``) to time compiled code, the
    warm-up calls compiling them.
    """
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(num_classes, (batch,), device=device)
    fns: dict[str, Callable[[], object]] = {}
    for name, model in models.items():
        model.to(device)

        def forward(model: nn.Module = model) -> None:
            model.eval()
            with torch.no_grad():
                model(x)

        def loss(model: nn.Module = model) -> Tensor:
            model.train()
            return F.cross_entropy(model(x), y)

        fns[f"{name} forward"], fns[f"{name} step"] = forward, sgd_step(model, loss)
    seconds = median_times(fns, device, repeats, warmup)
    return {name: (batch / seconds[f"{name} forward"], batch / seconds[f"{name} step"]) for name in models}
