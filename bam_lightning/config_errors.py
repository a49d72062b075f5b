"""One line for a mistake in a config or on the command line, where jsonargparse prints a screenful.

On a bad key or value jsonargparse prints the whole usage of the subcommand and an error that, for a
``class_path``, spans ten lines of Union subtypes. ``explain`` finds the mistake itself in what the
user gave (the ``--config`` files and the arguments), checked against the parser's options and the
classes' signatures: an unknown key or init_args option with the nearest valid name, a class_path
that does not import, a value outside its type. Anything else is jsonargparse's own first line.
"""

import importlib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from typing import Any

import yaml

from .commands import COMMANDS
from .errors import nearest

SCALARS = (type(None), bool, int, float, str)


def _read(config: str, command: str | None) -> dict:
    """A ``--config`` file's settings; a file that is no YAML mapping raises ValueError with the line to print."""
    try:
        with open(config) as file:
            content = yaml.safe_load(file)
    except OSError as error:
        raise ValueError(f"--config {config}: {error.strerror}: give a config file that exists") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{config} is not a valid YAML config ({' '.join(str(error).split())}): fix its syntax") from None
    if not isinstance(content, dict):
        kind = "empty" if content is None else "not a mapping of options"
        raise ValueError(f"{config} is {kind}, not a config: give options as in bam {command or 'fit'} --print_config")
    return content


def _from_args(args: Sequence[str]) -> dict:
    """``--a.b value`` and ``--a.b=value`` in ``args`` as nested settings, each value read as YAML as jsonargparse does."""
    given: dict = {}
    for i, arg in enumerate(args):
        flag, eq, value = arg[2:].partition("=")
        if arg.startswith("--") and not eq:
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else "null"
        if arg.startswith("--"):
            *groups, last = flag.rstrip("+").split(".")
            _merge(given, reduce(lambda inner, group: {group: inner}, reversed(groups), {last: _yaml(value)}))
    return given


def _yaml(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _merge(into: dict, settings: Mapping) -> dict:
    """``settings`` over ``into``, as later configs and arguments override earlier ones (a class name, then options)."""
    for key, value in settings.items():
        old = into.get(key)
        both = isinstance(value, Mapping) and isinstance(old, Mapping | str)
        into[key] = _merge({"class_path": old} if isinstance(old, str) else dict(old), value) if both else value
    return into


def _group(key: str, options: Iterable[str]) -> bool:
    return any(option.startswith(f"{key}.") for option in options)


def _unknown(given: Mapping, options: Iterable[str], prefix: str = "") -> str | None:
    """The first key of ``given`` that is no option, no group of options, not inside an option (a dict, init_args)."""
    for name, value in given.items():
        key = f"{prefix}{name}"
        if _group(key, options):
            if isinstance(value, Mapping) and (found := _unknown(value, options, f"{key}.")):
                return found
        elif key not in options and not any(key.startswith(f"{o}.") and not _group(o, options) for o in options):
            return key
    return None


def _members(typehint: Any) -> list:
    """The types a Union (or Optional) is made of; any other type alone."""
    if typing.get_origin(typehint) in (typing.Union, types.UnionType):
        return [member for arg in typing.get_args(typehint) for member in _members(arg)]
    return [typehint]


def _value_error(key: str, value: Any, typehint: Any) -> str | None:
    """Why ``value`` is no ``typehint`` made of Literals and scalars, or None (a type this does not judge, or a fit)."""
    members = _members(typehint)
    choices = [c for member in members if typing.get_origin(member) is typing.Literal for c in typing.get_args(member)]
    others = [member for member in members if typing.get_origin(member) is not typing.Literal]
    if typehint is None or value in choices or any(member not in SCALARS or _is(value, member) for member in others):
        return None
    names = [str(choice) for choice in choices] + ["null" if member is type(None) else member.__name__ for member in others]
    if choices:
        return f"{key}: {value!r} is not one of {', '.join(names)}{nearest(str(value), map(str, choices))}"
    return f"{key}: {value!r} is not a valid {' or '.join(names)}"


def _is(value: Any, scalar: type) -> bool:
    if scalar in (type(None), bool):
        return value is None if scalar is type(None) else isinstance(value, bool)
    if scalar is str:
        return isinstance(value, str | int | float)
    try:  # a number given as a string ("1e-3") counts, as jsonargparse converts it
        return not isinstance(value, bool) and (scalar is float and float(value) is not None or int(value) == float(value))
    except (TypeError, ValueError):
        return False


def _class_error(key: str, spec: Mapping) -> str | None:
    """Why the class option ``spec`` fails: a class_path that does not import, an init_args option it lacks or refuses."""
    path = spec.get("class_path")
    if not isinstance(path, str) or "." not in path:  # a bare name is one of the type's subclasses: jsonargparse's to find
        return None
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        near = nearest(path, _classes(module))
        return f"{key}: cannot import class_path {path!r} ({error}){near}: check its spelling, a full import path"
    given = {
        **{k: v for k, v in spec.items() if k not in ("class_path", "init_args", "dict_kwargs")},
        **spec.get("init_args", {}),
    }
    try:
        parameters, hints = inspect.signature(found).parameters, typing.get_type_hints(found.__init__)
    except (TypeError, ValueError, NameError):
        return None
    if not any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters.values()):
        for option in given:
            if option not in parameters:
                return f"{key}: {path} takes no option {option!r}{nearest(option, parameters)}: fix or remove it under init_args"
    return next(
        (error for option, value in given.items() if (error := _value_error(f"{key}.{option}", value, hints.get(option)))), None
    )


def _classes(module: str) -> list[str]:
    try:
        return [f"{module}.{name}" for name, value in vars(importlib.import_module(module)).items() if inspect.isclass(value)]
    except ImportError:
        return []


def _takes_class(typehint: Any) -> bool:
    """Whether a string given for ``typehint`` is a class_path: a class or callable option that takes no plain string or path."""
    members = _members(typehint)
    classes = [m for m in members if inspect.isclass(m) and m not in SCALARS and not issubclass(m, os.PathLike)]
    return str not in members and bool(classes or any(typing.get_origin(m) is Callable for m in members))


def _wrong(given: Mapping, options: Mapping[str, Any], prefix: str = "") -> str | None:
    """The first value in ``given`` that its option's type or class refuses (``_class_error``, ``_value_error``), or None."""
    for name, value in given.items():
        key = f"{prefix}{name}"
        if key not in options or _group(key, options):
            found = _wrong(value, options, f"{key}.") if isinstance(value, Mapping) else None
        elif isinstance(value, Mapping) and "class_path" in value or isinstance(value, str) and _takes_class(options[key]):
            found = _class_error(key, value if isinstance(value, Mapping) else {"class_path": value})
        else:
            found = _value_error(key, value, options[key])
        if found:
            return found
    return None


def explain(
    message: str,
    command: str | None = None,
    known_keys: Iterable[str] = (),
    configs: Iterable[str] = (),
    args: Sequence[str] | None = None,
    parser: Any = None,
) -> str:
    """jsonargparse's (or argparse's) error ``message`` for ``bam command`` as one line that says what to do.

    ``known_keys`` are the command's options, ``configs`` the ``--config`` files and ``args`` the command
    line given; ``parser`` (the command's) gives each option's type. Without ``args`` nothing on the
    command line is checked; with ``command`` None, ``args`` must name a command.
    """
    hint = f"bam {command} --help lists the options" if command else "bam --help lists the commands"
    if command is None and args is not None:
        word = next((arg for arg in args if not arg.startswith("-")), None)
        if word is None:
            return f"give a command: {', '.join(COMMANDS)} ({hint})"
        return f"unknown command {word!r}{nearest(word, COMMANDS)}: the commands are {', '.join(COMMANDS)}"
    # jsonargparse's actions keep their type as _typehint; without it (argparse, or a rename) values are not judged here.
    actions = [action for action in getattr(parser, "_actions", ()) if not action.dest.endswith(".help")]
    options = {action.dest: getattr(action, "_typehint", None) for action in actions} or dict.fromkeys(known_keys)
    try:
        sources = {f"in {config}": _read(config, command) for config in configs}
    except ValueError as error:
        return f"{error} ({hint})"
    sources["on the command line"] = _from_args(args or ())
    for where, given in sources.items():
        if key := _unknown(given, options):
            return f"unknown option {key!r}{nearest(key, known_keys or options)}: fix or remove it {where} ({hint})"
    if found := _wrong(reduce(_merge, sources.values(), {}), options):
        return f"{found} ({hint})"
    lines = [line.strip() for line in message.splitlines() if line.strip()] or ["invalid arguments"]
    keyed = re.match(r'Parser key "([^"]+)":\s*(.*)', lines[0])  # the key, where jsonargparse names one
    first = f"{keyed[1]}: {keyed[2] or (lines[1:] or [''])[0]}" if keyed else lines[0]
    return f"{first} ({hint})"
