"""Load checkpoints written by the BAM paper's public training script.

That script saves ``{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}`` with the
network wrapped in ``DataParallel`` (every key starts with ``module.``). Its ResNet uses
torchvision's names plus ``bam1..bam3`` at the root; ours places the same modules with
``insert_attention``, so the only renaming is ``bamK`` -> the K-th attention module.
"""

import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..nn import OfficialBAM
from .registry import create_model

_SHOWN = 5


def _listing(keys: set[str]) -> str:
    shown = ", ".join(sorted(keys)[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def official_to_ours(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename an official state dict's keys to ``model``'s (built with ``attention="bam_official"``)."""
    bams = [name for name, module in model.named_modules() if isinstance(module, OfficialBAM)]
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
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise InputError(f"{path} holds no state dict: expected the public script's {{'state_dict': ...}} or a plain state dict")
    model = create_model(arch, num_classes, attention="bam_official")
    state_dict = official_to_ours(state_dict, model)
    expected = model.state_dict()
    missing, unexpected = expected.keys() - state_dict.keys(), state_dict.keys() - expected.keys()
    wrong_shape = {k for k in expected.keys() & state_dict.keys() if expected[k].shape != state_dict[k].shape}
    if missing or unexpected or wrong_shape:
        problems = [
            f"{label} {_listing(keys)}"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape))
            if keys
        ]
        raise InputError(f"{path} does not fit {arch} + bam_official with {num_classes} classes: " + "; ".join(problems))
    model.load_state_dict(state_dict)
    return model.eval()
