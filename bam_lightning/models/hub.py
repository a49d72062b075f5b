"""Weights that travel: the Hugging Face Hub folder timm reads, written and read without timm.

A folder holds ``config.json`` (timm's layout: ``architecture``, ``num_classes``, ``num_features``,
``pretrained_cfg`` with the preprocessing, ``label_names``, and ``model_args``, the options that
rebuild the network exactly: attention, its options, placement, the backbone's options),
``model.safetensors`` (the network's state dict: tensors only, never code) and a ``README.md``
model card. ``timm.models.save_for_hf`` writes the same layout; so ``huggingface-cli upload`` or
``huggingface_hub.upload_folder`` publishes such a folder as it is.

A folder is named by a source string, timm's own spelling: ``local-dir:/path`` or
``hf-hub:owner/name`` (``@revision`` optional), which ``huggingface_hub`` fetches into its cache,
or finds there with ``HF_HUB_OFFLINE=1``. An architecture is ``<our model name>_bam``
(``resnet50_bam``): the names ``pretrained.register_with_timm`` gives timm.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoints import state_mismatch
from ..errors import InputError, one_line

SOURCES = ("local-dir:", "hf-hub:")
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
SUFFIX = "_bam"  # an architecture is one of our model names and this: timm knows no BAM, so no name of its own is hidden


def is_source(name: str | None) -> bool:
    """Whether ``name`` names a folder of weights (``local-dir:``, ``hf-hub:``) rather than a checkpoint file."""
    return isinstance(name, str) and name.startswith(SOURCES)


def source_file(source: str, filename: str, cache_dir: str | Path | None = None) -> Path:
    """The local path of ``filename`` of the folder ``source`` names; from the Hub, through huggingface_hub's cache."""
    kind, _, where = source.partition(":")
    if not where:
        raise InputError(f"{source} names no folder: give local-dir:/path/to/folder or hf-hub:owner/name")
    if kind == "local-dir":
        if not Path(where).is_dir():
            raise InputError(f"{source}: no folder at {where}: give a folder written by bam export --format hf")
        path = Path(where) / filename
        if not path.is_file():
            raise InputError(f"{source}: {where} has no {filename}: give a folder written by bam export --format hf")
        return path
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
    from huggingface_hub.utils import logging

    repo, _, revision = where.partition("@")
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # not a line per retry of an unreachable Hub: the one error below says it
    try:
        return Path(hf_hub_download(repo, filename, revision=revision or None, cache_dir=cache_dir))
    except LocalEntryNotFoundError:
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        raise InputError(
            f"{source}: {filename} is not in the Hugging Face cache and cannot be downloaded{offline}: connect once, or"
            f" copy the folder here and give local-dir:PATH"
        ) from None
    except (HfHubHTTPError, HFValidationError, OSError) as error:
        raise InputError(f"{source}: cannot get {filename} ({one_line(error)[:200]})") from None
    finally:
        logging.set_verbosity(verbosity)


def read_config(source: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The folder's ``config.json``, checked for what rebuilding the network reads."""
    path = source_file(source, CONFIG, cache_dir)
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{source}: {CONFIG} is not readable JSON ({one_line(error)})") from None
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise InputError(f"{source}: {CONFIG} names no architecture: give a folder written by bam export --format hf")
    if not isinstance(config.get("num_classes"), int) or not all(
        isinstance(config.get(key, {}), dict) for key in ("model_args", "pretrained_cfg")
    ):
        raise InputError(f"{source}: {CONFIG} needs num_classes (a number), model_args and pretrained_cfg (mappings)")
    return config


def read_weights(source: str, cache_dir: str | Path | None = None) -> dict[str, Tensor]:
    """The folder's ``model.safetensors``: tensors only, nothing unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = source_file(source, WEIGHTS, cache_dir)
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError) as error:
        raise InputError(f"{source}: {WEIGHTS} is not a readable safetensors file ({one_line(error)[:200]})") from None


def load_weights(model: nn.Module, source: str, trained_classes: int, cache_dir: str | Path | None = None) -> nn.Module:
    """Load the folder's weights into ``model``, which must be the network they were saved from.

    Only the classifier may differ, where ``model`` has another class count than the
    ``trained_classes`` of the folder (fine-tuning on new data): the tensors whose first size is
    that count and does not fit keep ``model``'s fresh initialisation.
    """
    state, own = read_weights(source, cache_dir), model.state_dict()
    new_head = {
        key
        for key, value in state.items()
        if key in own and value.shape != own[key].shape and value.shape[:1] == (trained_classes,) and own[key].ndim
    }
    state = {key: value for key, value in state.items() if key not in new_head}
    problem = state_mismatch({key: value for key, value in own.items() if key not in new_head}, state)
    if problem:
        raise InputError(f"{source}: {WEIGHTS} does not fit the network its {CONFIG} builds: {problem}")
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
    return model


def write_folder(out: Path, state_dict: Mapping[str, Tensor], config: Mapping[str, Any], card: str) -> None:
    """The three files into ``out``, which must not exist yet, whole or not at all.

    They are written into a hidden folder beside ``out`` (the same filesystem) that is renamed
    to ``out`` at the end: a failure or a kill leaves no folder that looks finished.
    """
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        # safetensors refuses tensors that share memory or are views: each gets its own contiguous copy
        save_file({key: value.detach().contiguous().clone() for key, value in state_dict.items()}, temp / WEIGHTS)
        (temp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (temp / CARD).write_text(card)
        temp.chmod(0o777 & ~_umask())  # mkdtemp's folder is private (0700); a folder to publish gets the usual mode
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
