"""The search space of ``bam tune``: ``SPACE.yaml`` read and checked, a trial's values drawn from it, and those values as
the config delta a ``bam fit`` reads (``values.yaml`` of a trial, ``best.yaml`` of the study).

``SPACE.yaml`` maps dotted ``bam fit`` keys to distributions::

    model.optimizer.init_args.lr: {type: float, low: 0.01, high: 0.3, log: true}
    model.attention_kwargs.reduction: {type: categorical, choices: [4, 8, 16]}
    trainer.max_epochs: {type: int, low: 2, high: 8, step: 2}

Whether each key is an option of ``bam fit`` (and its values fit it) is not decided here but by ``bam fit``'s own
parser, with its bounds (``tune.check_trial_config``): the same words, and nearest names, as a mistake in a config.
"""

import math
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, nearest

KINDS = ("float", "int", "categorical")
FIELDS = {  # what each kind takes, in the order a space file writes them
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}


def _check(key: str, spec: Any, where: str) -> dict[str, Any]:
    """One distribution, refused in one line naming its key where it cannot be sampled; its fields in a fixed order."""
    if not isinstance(spec, dict):
        raise InputError(f"{where}: {key}: give a mapping, e.g. {{type: float, low: 0.01, high: 0.3, log: true}}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise InputError(f"{where}: {key}: type {kind!r} is not one of {', '.join(KINDS)}{nearest(str(kind), KINDS)}")
    extra = [field for field in spec if field not in FIELDS[kind]]
    if extra:
        raise InputError(
            f"{where}: {key}: type {kind} takes no {extra[0]!r}{nearest(str(extra[0]), FIELDS[kind][1:])}: it takes "
            f"{', '.join(FIELDS[kind][1:])}"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise InputError(f"{where}: {key}: choices {choices!r}: give a non-empty list, e.g. choices: [4, 8, 16]")
        if not all(choice is None or isinstance(choice, bool | int | float | str) for choice in choices):
            raise InputError(f"{where}: {key}: choices {choices!r}: each choice is a number, a string, true, false or null")
        return {"type": kind, "choices": choices}
    number = int if kind == "int" else int | float
    for bound in ("low", "high"):
        value = spec.get(bound)
        if not isinstance(value, number) or isinstance(value, bool) or not math.isfinite(value):
            raise InputError(f"{where}: {key}: {bound} {value!r}: give a finite {'integer' if kind == 'int' else 'number'}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if low > high:
        raise InputError(f"{where}: {key}: low {low} is above high {high}: give low <= high")
    if not isinstance(log, bool):
        raise InputError(f"{where}: {key}: log {log!r}: give true or false")
    if log and low <= 0:
        raise InputError(f"{where}: {key}: log: true with low {low}: a log scale needs bounds above 0")
    if log and step is not None:
        raise InputError(f"{where}: {key}: log: true with a step: give one of them")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise InputError(f"{where}: {key}: step {step!r}: give a {'positive integer' if kind == 'int' else 'number above 0'}")
    checked = {"type": kind, "low": low, "high": high, "log": log}
    return checked | ({"step": step} if step is not None else {})


def read_space(path: str) -> dict[str, dict[str, Any]]:
    """``SPACE.yaml``'s distributions by dotted key, each checked, refused in one line naming the file."""
    where = f"--space {path}"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"{where}: no such file: give a YAML file of dotted bam fit keys and their distributions") from None
    except OSError as error:
        raise InputError(f"{where}: cannot be read ({error.strerror})") from None
    try:
        space = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"{where}: not YAML: {' '.join(str(error).split())}") from None
    if not isinstance(space, dict) or not space:
        raise InputError(f"{where}: no distribution in it: map dotted bam fit keys to {{type: float|int|categorical, ...}}")
    for key in space:
        if not isinstance(key, str) or not all(key.split(".")):
            raise InputError(f"{where}: key {key!r}: give a dotted bam fit key, e.g. model.optimizer.init_args.lr")
    return {key: _check(key, spec, where) for key, spec in space.items()}


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Optuna's distribution for each key of a checked space."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made: dict[str, Any] = {}
    for key, spec in space.items():
        if spec["type"] == "categorical":
            made[key] = CategoricalDistribution(spec["choices"])
        else:
            kind = FloatDistribution if spec["type"] == "float" else IntDistribution
            step = spec.get("step", None if spec["type"] == "float" else 1)
            made[key] = kind(spec["low"], spec["high"], log=spec["log"], step=step)
    return made


def corners(space: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The values at either end of every distribution (all lows, or first choices; all highs, or last choices): what
    ``bam fit`` is asked to accept before any trial is launched."""
    return [
        {
            key: spec["choices"][end] if spec["type"] == "categorical" else spec[("low", "high")[end]]
            for key, spec in space.items()
        }
        for end in (0, -1)
    ]


def as_config(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as the nested mapping of a YAML config: ``{"model.optimizer.init_args.lr": 0.1}`` is
    ``{"model": {"optimizer": {"init_args": {"lr": 0.1}}}}``."""
    config: dict[str, Any] = {}
    for key, value in values.items():
        *groups, name = key.split(".")
        node = config
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return config


def write_delta(path: Path, values: dict[str, Any], comment: str) -> None:
    """``values`` as a config delta ``bam fit --config`` reads, written beside and renamed: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"# {comment}\n" + yaml.safe_dump(as_config(values), sort_keys=False))
    partial.replace(path)
