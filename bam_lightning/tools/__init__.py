"""Tools behind the ``bam`` subcommands that are not Trainer methods (``cli.commands.TOOLS`` names them).

Each parses with jsonargparse, as the Trainer subcommands do, and its command-line mistakes end, like every other user
mistake of ``bam``, in one ``bam: error:`` line and status 2 (``parse``); ``--help`` is untouched.
"""

import argparse
from collections.abc import Sequence

from jsonargparse import ArgumentParser, Namespace

from ..cli.config_errors import explain
from ..errors import InputError

__all__ = ["parse", "tool_parser"]


def tool_parser(prog: str, description: str) -> ArgumentParser:
    """A tool's parser, whose mistakes raise (``exit_on_error=False``) for ``parse`` to word in one line."""
    return ArgumentParser(prog=prog, description=description, exit_on_error=False)


def parse(parser: ArgumentParser, args: Sequence[str] | None) -> Namespace:
    """``parser.parse_args(args)`` for a tool's parser built with ``exit_on_error=False``, its mistakes worded in one line
    by ``config_errors.explain`` as the Trainer subcommands' are (an unknown option gets the nearest of the known ones).
    Its ``error`` is not overridden: jsonargparse builds internal parsers of the class and catches theirs."""
    try:
        return parser.parse_args(args)
    except argparse.ArgumentError as error:
        known = list(parser.get_defaults(skip_validation=True).keys())
        command = parser.prog.removeprefix("bam ")
        given = _own_configs_left_out(args or (), known)
        raise InputError(f"{parser.prog}: {explain(str(error), command, known, given)}") from None


def _own_configs_left_out(args: Sequence[str], known: list[str]) -> list[str]:
    """``args`` without the ``--config`` values of a tool whose own option that is (``bam tune``'s: ``bam fit``'s
    configs): ``explain`` would read them as configs of the tool's options."""
    if "config" not in known:
        return list(args)
    kept, given = [], iter(args)
    for arg in given:
        if arg == "--config":
            next(given, None)
        elif not arg.startswith("--config="):
            kept.append(arg)
    return kept
