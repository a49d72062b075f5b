"""Reading checkpoints safely, and saying in one line why one does not fit a model.

Checkpoints are read with ``weights_only=True``: tensors, numbers and strings, never code.
Before a run loads one, its keys and shapes are compared with the model the config
builds, so a checkpoint of another architecture, attention or class count is refused by
name instead of deep inside ``load_state_dict``.
"""

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import InputError

_SHOWN = 5


def _listing(keys: set[str]) -> str:
    shown = ", ".join(sorted(keys)[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def state_mismatch(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> str | None:
    """What keeps ``given`` from loading into a model whose state is ``expected``, or None."""
    missing, unexpected = expected.keys() - given.keys(), given.keys() - expected.keys()
    wrong_shape = {k for k in expected.keys() & given.keys() if expected[k].shape != given[k].shape}
    problems = [
        f"{label} {_listing(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape))
        if keys
    ]
    return "; ".join(problems) or None


def unreadable(path: str | Path, error: Exception) -> InputError:
    """One line for a file ``torch.load(weights_only=True)`` will not read: code it refuses to run, or no checkpoint.

    Torch words both alike ("Weights only load failed"); only a reference to an importable
    global ("Unsupported global") is code. Garbage bytes fail otherwise, even as a KeyError.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    code = next((line for line in lines if "Unsupported global" in line), None)
    if code is not None:
        return InputError(f"{path} is refused: it holds more than tensors and numbers ({code})")
    reason = f"{type(error).__name__}: {lines[0].split('. ')[0]}"
    return InputError(f"{path} is not a readable checkpoint ({reason}); it may be truncated")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read without running any code it may carry."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint file at {path}: give the path of a .ckpt (or --ckpt_path last)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError) as error:
        raise unreadable(path, error) from None
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def check_fits(path: str | Path, model: nn.Module) -> None:
    """Refuse, by name, a Lightning checkpoint whose weights do not fit ``model``."""
    checkpoint = read_checkpoint(path)
    trained = checkpoint.get("hyper_parameters", {})
    problem = state_mismatch(model.state_dict(), checkpoint.get("state_dict", {}))
    if problem:
        keys = ("backbone", "attention", "num_classes", "placement")
        was = ", ".join(f"{k}={trained[k]}" for k in keys if k in trained)
        raise InputError(f"{path} does not fit this model (it was trained with {was or 'unknown settings'}): {problem}")
