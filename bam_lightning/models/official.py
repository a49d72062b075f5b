"""Load checkpoints written by the BAM paper's public training script.

That script saves ``{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}`` with the
network wrapped in ``DataParallel`` (every key starts with ``module.``). Its ResNet uses
torchvision's names plus ``bam1..bam3`` at the root; ours places the same modules with
``insert_attention``, so the only renaming is ``bamK`` -> the K-th attention module.
"""

import re
from pathlib import Path

from torch import Tensor, nn

from ..checkpoints import read_checkpoint, state_mismatch
from ..errors import InputError
from ..nn import OfficialBAM, attention_blocks
from .registry import create_model


def official_to_ours(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename an official state dict's keys to ``model``'s (built with ``attention="bam_official"``)."""
    bams = [name for name, _ in attention_blocks(model, (OfficialBAM,))]
    renamed = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        match = re.match(r"bam(\d+)\.", key)
        if match and 1 <= int(match.group(1)) <= len(bams):
            key = bams[int(match.group(1)) - 1] + key[match.end() - 1 :]
        renamed[key] = value
    return renamed


def from_official_checkpoint(path: str | Path, arch: str = "resnet50", num_classes: int = 1000) -> nn.Module:
    """The network of an official BAM checkpoint, in eval mode, with our model's layout.

    ``arch`` is one of our model names (``resnet50``, ``cifar_resnet50``, ...). The file is
    read with ``weights_only=True``: it holds tensors and numbers, never code.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model = create_model(arch, num_classes, attention="bam_official")
    state_dict = official_to_ours(state_dict, model)
    problem = state_mismatch(model.state_dict(), state_dict)
    if problem:
        raise InputError(f"{path} does not fit {arch} + bam_official with {num_classes} classes: {problem}")
    model.load_state_dict(state_dict)
    return model.eval()
