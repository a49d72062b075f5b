"""One look inside a network: an eval-mode forward without autograd that leaves no trace.

Finding bottlenecks, counting MACs and capturing attention maps all run the model once
with hooks or a counter attached; each must leave the model's mode and hooks as they were.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


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
