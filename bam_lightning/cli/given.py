"""What a ``bam`` command line gives: each ``--config`` file's settings and the ``--a.b value`` arguments, as mappings.

Read from the user's own words, before or beside jsonargparse: the task a config is for
(``cli.task``), where a mistake is (``config_errors``), and the files of a ``bam sweep`` row (``read_config``).
"""

from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

import yaml

from ..errors import InputError, one_line


def read_config(path: str, command: str | None = None, named: str | None = None) -> dict:
    """A config file's settings; one that cannot be read or is no YAML mapping raises InputError naming it ``named``."""
    named = named or f"--config {path}"
    try:
        with open(path) as file:
            content = yaml.safe_load(file)
    except OSError as error:
        raise InputError(f"{named}: {error.strerror}: give a config file that exists") from None
    except yaml.YAMLError as error:
        raise InputError(f"{named} is not valid YAML ({one_line(error)}): fix its syntax") from None
    if not isinstance(content, dict):
        kind = "empty" if content is None else "not a mapping of options"
        raise InputError(f"{named} is {kind}, not a config: give options as in bam {command or 'fit'} --print_config")
    return content


def _class_name(value: Any) -> str | None:
    path = value.get("class_path") if isinstance(value, Mapping) else value
    return path.rpartition(".")[2] if isinstance(path, str) else None


def merge(into: dict, settings: Mapping) -> dict:
    """``settings`` over ``into``, as jsonargparse applies later configs and arguments (options over a class name too)."""
    for key, value in settings.items():
        old = into.get(key)
        before, after = _class_name(old), _class_name(value)
        if before is not None and after is not None and before != after:
            old = None  # another class: jsonargparse drops the options the new one does not take
        if isinstance(value, Mapping) and isinstance(old, Mapping | str):
            value = merge({"class_path": old} if isinstance(old, str) else dict(old), value)
        into[key] = value
    return into


def sources(args: Sequence[str], command: str | None = None, strict: bool = True) -> dict[str, dict]:
    """Each ``--config`` file's settings (``in PATH``), then the arguments' (``on the command line``), values read as YAML.

    ``strict=False`` takes a file that cannot be read as empty, where LightningCLI will say why.
    """
    found: dict[str, dict] = {}
    line: dict = {}
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        flag = "--config" if flag == "-c" else flag
        if not flag.startswith("--"):
            continue
        if not eq:
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else "null"
        if flag == "--config":
            try:
                found[f"in {value}"] = read_config(value, command)
            except ValueError:
                if strict:
                    raise
            continue
        *groups, last = flag[2:].rstrip("+").split(".")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        merge(line, reduce(lambda inner, group: {group: inner}, reversed(groups), {last: parsed}))
    return {**found, "on the command line": line}


def combined(found: Mapping[str, dict]) -> dict:
    """``sources``' settings in one, the later over the earlier (the command line over the configs)."""
    return reduce(merge, found.values(), {})


def merged(args: Sequence[str], command: str | None = None, strict: bool = True) -> dict:
    """All that ``args`` give, the later over the earlier (the command line over the configs)."""
    return combined(sources(args, command, strict))


def at(settings: Any, key: str) -> Any:
    """The value at dotted ``key`` in nested ``settings``, or None."""
    for part in key.split("."):
        settings = settings.get(part) if isinstance(settings, Mapping) else None
    return settings
