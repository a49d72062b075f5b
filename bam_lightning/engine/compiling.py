"""What ``torch.compile`` compiles in a training run: nothing, the attention blocks, or the whole network.

Attention blocks are pure modules: none compiles itself (as in timm and torchvision). The
LightningModule decides, when the trainer sets it up (``ImageClassifier.configure_model``):

- ``attention``: each attention block (BAM's pooling, branches and refinement become a few
  fused loops, its gradients included); the backbone's convolutions, already single
  library calls, stay eager. Compiled with dynamic shapes: one graph per map width for
  training and one for evaluation, whatever the batch size (a ResNet's three BAMs make six,
  within dynamo's limit of eight recompilations of one function; static shapes would
  compile each again for the last, smaller batch of an epoch and overrun it).
- ``network``: the whole network; more to gain and minutes of compiling.

Checkpoint keys do not change: ``nn.Module.compile`` compiles in place.
"""

from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import InputError, first_line
from ..nn import attention_blocks

Compile = Literal["attention", "network"] | bool  # false, attention or network (true is refused: say which)


def _probe(x: Tensor) -> Tensor:
    return x + 1


def check_compiler(device: torch.device) -> None:
    """Refuse in one line, before the first step, a machine where ``torch.compile`` cannot build code.

    Without a C++ compiler (CPU) or Triton (CUDA) compiling fails only at the first training
    step, with a screenful from the compiler; a one-element function shows it at once.
    """
    try:
        torch.compile(_probe)(torch.zeros(1, device=device))
    except Exception as error:  # the compiler's failure comes as many kinds of error
        reason = first_line(error)
        raise InputError(f"torch.compile does not work here ({reason[:200]}): set --model.compile false") from None


def check_choice(what: Compile) -> None:
    """``true`` would leave the choice to us: refuse it where the config is read, not at the first step."""
    if what is True:
        raise InputError("model.compile true does not say what to compile: give attention or network (or false)")


def compile_model(model: nn.Module, what: Compile, device: torch.device) -> None:
    """Compile ``what`` of ``model`` in place for ``device`` (see the module's docstring); ``False`` leaves it eager."""
    check_choice(what)
    blocks = [] if what != "attention" else [block for _, block in attention_blocks(model)]
    if what == "network" or blocks:
        check_compiler(device)
    if what == "network":
        model.compile()
    for block in blocks:
        block.compile(dynamic=True)
