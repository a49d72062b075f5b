"""A checkpoint's hyperparameters against the ``--model.*`` options a user typed: LightningCLI puts the former in place
of the model's options, so a ``--model.*`` the checkpoint contradicts would be dropped without a word (``bam test
--model.backbone resnet50`` evaluating a WRN). A config's values are the checkpoint's to replace (a run's config often
differs from it in an override or two); the module's ``RUN_OPTIONS`` (compiling, memory order) stay the user's.
"""

from typing import Any

import yaml
from jsonargparse import Namespace

from ..errors import InputError
from .given import sources


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with numbers of a subclass (jsonargparse's ``ClosedUnitInterval``, ``PositiveInt``: the types
    of ``--model.label_smoothing``, ``--model.mixup_alpha``) written as numbers: the safe one refuses any subclass."""


_Dumper.add_multi_representer(float, _Dumper.represent_float)
_Dumper.add_multi_representer(int, _Dumper.represent_int)


def as_typed(value: Any) -> str:
    """A value as a user writes it in a config or on the command line: ``null``, ``true``, ``{reduction: 8}``."""
    return yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()


def reconcile(given: Namespace, loaded: Namespace, args: list[str], run_options: tuple[str, ...], ckpt_path: str) -> None:
    """Keep in ``loaded`` (the model's options after the checkpoint's) the run options of ``given`` that ``args`` set;
    refuse any other ``--model.*`` of ``args`` whose value in ``given`` the checkpoint changed."""
    typed = sources(args, strict=False)["on the command line"].get("model")
    for key in typed if isinstance(typed, dict) else ():
        if key in run_options:
            loaded[key] = given[key]
        elif key in loaded and key in given and loaded[key] != given[key]:
            raise InputError(
                f"--model.{key} {as_typed(given[key])} contradicts the checkpoint {ckpt_path},"
                f" trained with {key}={as_typed(loaded[key])}: the checkpoint decides the network; drop --model.{key}"
                " or give a checkpoint trained with it"
            )
