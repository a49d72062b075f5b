"""Tools behind the ``bam`` subcommands that are not Trainer methods (``commands.TOOLS`` names them).

A tool's command-line mistakes end, like every other user mistake of ``bam``, in one ``bam: error:`` line and status 2:
``parse`` (jsonargparse tools) and ``ToolParser`` (the stdlib argparse left in ``bam sweep``) raise them as ``InputError``;
``--help`` is untouched.
"""

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..cli.config_errors import explain
from ..errors import InputError

if TYPE_CHECKING:
    import jsonargparse

__all__ = ["ToolParser", "parse", "usage_error"]


def usage_error(prog: str, message: str, known: list[str], args: Sequence[str] | None) -> InputError:
    """The error ``message`` of tool ``prog`` for ``args`` as one line, worded by ``config_errors.explain`` as the Trainer
    subcommands' mistakes are (an unknown option gets the nearest of the ``known`` ones)."""
    return InputError(f"{prog}: {explain(message, prog.removeprefix('bam '), known, args or ())}")


class ToolParser(argparse.ArgumentParser):
    """argparse's parser for a ``bam`` tool, whose mistakes raise ``InputError`` instead of printing usage and exiting:
    ``exit_on_error=False`` (Python 3.11) still calls ``error`` for a missing required argument and for unrecognized
    arguments, so ``error`` itself is where to stop it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: list[str] = []  # the long options, for the nearest to a misspelt one (add_argument)
        self.given: Sequence[str] | None = None  # the arguments being parsed (parse_args), for error to look into
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        self.given = args
        return super().parse_args(args, namespace)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options += [option[2:] for option in action.option_strings if option.startswith("--")]
        return action

    def error(self, message: str) -> NoReturn:
        raise usage_error(self.prog, message, self.options, self.given)


def parse(parser: "jsonargparse.ArgumentParser", args: Sequence[str] | None) -> "jsonargparse.Namespace":
    """``parser.parse_args(args)`` for a jsonargparse tool built with ``exit_on_error=False``, its mistakes raised as one-line
    ``InputError`` (its ``error`` is not overridden: jsonargparse builds internal parsers of the class and catches theirs)."""
    try:
        return parser.parse_args(args)
    except argparse.ArgumentError as error:
        raise usage_error(parser.prog, str(error), list(parser.get_defaults(skip_validation=True).keys()), args) from None
