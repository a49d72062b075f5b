"""ImageNet weights for a classification backbone, before a detector is cut from it.

Detection starts from an ImageNet classifier. ``backbone_weights`` says which, in one string:

- a path to one of this package's checkpoints (a ``bam fit`` of ``ImageClassifier`` on ImageNet),
  or that run's folder (its newest ``last.ckpt``, the finished run): the network must match the
  backbone built here, attention included;
- ``official:<path>``: the BAM paper's public ResNet checkpoint (attention ``bam_official``);
- ``torchvision:<weights>``: torchvision's pretrained weights by enum name (``IMAGENET1K_V1``),
  downloaded into torch's cache on first use. Attention is new there, so its modules are the
  only keys allowed to be missing (they keep their fresh initialisation).
"""

from pathlib import Path
from urllib.error import URLError

import torch
from torch import Tensor, nn
from torchvision.models import get_model_weights

from ..checkpoints import newest_checkpoint, read_checkpoint, state_mismatch
from ..errors import InputError
from ..nn import attention_blocks
from .official import official_to_ours


def _attention_keys(model: nn.Module) -> set[str]:
    prefixes = [f"{name}." for name, _ in attention_blocks(model)]
    return {key for key in model.state_dict() if any(key.startswith(prefix) for prefix in prefixes)}


def _ours(path: str) -> dict[str, Tensor]:
    if Path(path).is_dir():
        found = newest_checkpoint(path)
        if found is None:
            raise InputError(f"no last.ckpt under {path}: give the ImageNet run's folder or a .ckpt file as backbone_weights")
        path = str(found)
    state = read_checkpoint(path).get("state_dict", {})
    return {key.removeprefix("model."): value for key, value in state.items() if key.startswith("model.")}


def _torchvision(backbone: str, name: str) -> dict[str, Tensor]:
    try:
        choices = get_model_weights(backbone)
    except (ValueError, KeyError):
        raise InputError(f"torchvision has no pretrained {backbone}: give one of this package's ImageNet checkpoints") from None
    if name not in choices.__members__:
        raise InputError(f"torchvision has no weights {name!r} for {backbone}: choose one of {', '.join(choices.__members__)}")
    weights = choices[name]
    try:
        return weights.get_state_dict(progress=False)
    except (URLError, OSError) as error:
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise InputError(
            f"cannot download torchvision's {backbone} {name} weights ({getattr(error, 'reason', error)}): on a machine"
            f" without network, copy {weights.url} into {cache}/ (where torchvision looks first)"
        ) from None


def load_backbone_weights(model: nn.Module, backbone: str, weights: str) -> nn.Module:
    """Load ``weights`` (see the module docstring) into ``model``, the classifier named ``backbone``."""
    kind, _, where = weights.partition(":") if weights.startswith(("official:", "torchvision:")) else ("", "", weights)
    own = model.state_dict()
    if kind == "torchvision":
        state, may_miss = _torchvision(backbone, where), _attention_keys(model)
    elif kind == "official":
        if not Path(where).is_file():
            raise InputError(f"no checkpoint file at {where}: give the public BAM checkpoint's path after official:")
        checkpoint = read_checkpoint(where)
        state, may_miss = official_to_ours(checkpoint.get("state_dict", checkpoint), model), set()
    else:
        state, may_miss = _ours(where), set()
    expected = {key: value for key, value in own.items() if key in state or key not in may_miss}
    problem = state_mismatch(expected, state)
    if problem:
        raise InputError(f"backbone_weights {weights} do not fit {backbone} with this attention: {problem}")
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return model
