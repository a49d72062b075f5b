"""One look inside a network: an eval-mode forward without autograd that leaves no trace.

Finding bottlenecks, counting MACs and capturing attention maps all run the model once
with hooks or a counter attached; each must leave the model's mode and hooks as they were.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import chain

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.hooks import RemovableHandle

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: Layers that can shrink a map by a fixed factor. Adaptive (global) pools are left out: they fit any size.
WINDOWED = (*CONVS, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)


@contextmanager
def probing(model: nn.Module, hooks: Iterable[RemovableHandle] = ()) -> Iterator[None]:
    """Eval mode and no grad inside; the training flag restored and ``hooks`` removed after."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()


def input_sizes(modules: Mapping[str, nn.Module]) -> tuple[dict[str, tuple[int, int]], list[RemovableHandle]]:
    """The (H, W) of the map each of ``modules`` is given, by name, filled in by the hooks returned during a forward.

    Pass the hooks to ``probing`` so they go when the probe ends.
    """
    sizes: dict[str, tuple[int, int]] = {}

    def hook(name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def record(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            sizes[name] = (args[0].shape[-2], args[0].shape[-1])

        return record

    return sizes, [module.register_forward_pre_hook(hook(name)) for name, module in modules.items()]


def total_stride(model: nn.Module, reference: int = 1024) -> int:
    """How many times ``model`` downsamples an image: ``reference`` over the side of its smallest feature map there.

    The maps are those out of convolutions and fixed-window pools (``WINDOWED``); 1x1 outputs
    are skipped, being the layers that work on a globally pooled descriptor (SE's 1x1 convs), not
    on a map. The forward runs on the meta device, which computes shapes only: a probe at
    1024 px costs no arithmetic and no memory, and rounds a stride that does not divide
    the size (SqueezeNet's 16.25 at 1024) closer than a real probe at 224 could afford. A given
    network that needs values (``.item()``, NumPy) cannot run there: it counts as 1, no refusal.
    """
    sides: list[int] = []

    def record(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        if output.dim() == 4 and min(output.shape[-2:]) > 1:
            sides.append(min(output.shape[-2:]))

    hooks = [module.register_forward_hook(record) for module in model.modules() if isinstance(module, WINDOWED)]
    meta = {name: torch.empty_like(t, device="meta") for name, t in chain(model.named_parameters(), model.named_buffers())}
    try:
        with probing(model, hooks):
            functional_call(model, meta, (torch.empty(1, 3, reference, reference, device="meta"),))
    except (RuntimeError, NotImplementedError, TypeError):
        return 1
    return max(1, round(reference / min(sides))) if sides else 1
