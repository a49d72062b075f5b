"""One line for a mistake in a config or on the command line, found in what the user gave, not in jsonargparse's words
(a screenful, worded anew from release to release): an unknown key (with the nearest), a class_path that does not
import, an init_args option its class lacks, a value its Literal or scalar type refuses; else ``<key>: <its first line>``.
"""

import ast
import importlib
import inspect
import re
import types
import typing
from argparse import ArgumentError
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonargparse import ArgumentParser

from ..errors import nearest
from .commands import COMMANDS
from .given import at, combined, sources

NOT_OPTIONS = ("class_path", "init_args", "dict_kwargs")  # the keys of a class given by class_path


def _is_class(spec: Any) -> bool:
    return isinstance(spec, Mapping) and "class_path" in spec


def _options(settings: Mapping, keys: set[str], merged: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each option in ``settings`` as (key, value): a key of ``keys``, a class given by class_path, or an unknown key."""
    for name, value in settings.items():
        key = f"{prefix}{name}"
        group = any(k.startswith(f"{key}.") for k in keys)
        if group and isinstance(value, Mapping) and not _is_class(at(merged, key)):
            yield from _options(value, keys, merged, f"{key}.")
        else:
            yield key, value


def _members(hint: Any) -> list:
    """The types a Union (or Optional) is made of; any other type alone."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [member for arg in typing.get_args(hint) for member in _members(arg)]
    return [hint]


def _scalar(member: Any) -> bool:
    return member is type(None) or inspect.isclass(member) and issubclass(member, bool | int | float | str)


def _fits(value: Any, hint: Any) -> bool:
    """Whether jsonargparse takes ``value`` for an option typed ``hint``: judged by jsonargparse itself, not by us."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--value", type=hint)
    try:
        parser.parse_object({"value": value})
    except ArgumentError:
        return False
    return True


def _value_mistake(key: str, value: Any, hint: Any) -> str | None:
    """Why ``value`` is no ``hint`` made of Literals and scalars, or None (a fit, or a type not worded here)."""
    members = _members(hint)
    choices = [c for member in members if typing.get_origin(member) is typing.Literal for c in typing.get_args(member)]
    others = [member for member in members if typing.get_origin(member) is not typing.Literal]
    if hint is None or not all(map(_scalar, others)) or _fits(value, hint):
        return None
    return _not_a(key, value, choices, ["null" if member is type(None) else member.__name__ for member in others])


def _not_a(key: str, value: Any, choices: Sequence[Any], names: Sequence[str]) -> str:
    """``value`` refused for ``key``, as one line: not one of its ``choices`` (the nearest named) and types, or not of
    its types ``names``: for a config's value and a tool's alike."""
    if choices:
        near = nearest(str(value), map(str, choices))
        return f"{key}: {value!r} is not one of {', '.join(map(str, [*choices, *names]))}{near}"
    return f"{key}: {value!r} is not a valid {' or '.join(names)}"


def _hints(owner: Callable | None) -> dict[str, Any]:
    """``owner``'s options and their types, ``**kwargs`` followed up the class's bases as jsonargparse follows them (a
    datamodule's loader options are declared once, in ``data.base.SplitLoaders``); {} where they cannot all be read."""
    if owner is None:
        return {}
    functions = [c.__init__ for c in owner.__mro__ if "__init__" in vars(c)] if inspect.isclass(owner) else [owner]
    hints: dict[str, Any] = {}
    for function in functions:
        try:
            types_, parameters = typing.get_type_hints(function), inspect.signature(function).parameters.values()
        except (TypeError, NameError, ValueError):  # annotations that do not resolve, no signature: not judged here
            return {}
        named = [p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
        hints = {p.name: types_.get(p.name) for p in named} | hints  # a subclass's own declaration wins
        if all(p.kind is not p.VAR_KEYWORD for p in parameters):
            return hints
    return {}  # **kwargs that go on to no base: any option may be taken


def _classes(module: str) -> list[str]:
    try:
        return [f"{module}.{name}" for name, value in vars(importlib.import_module(module)).items() if inspect.isclass(value)]
    except ImportError:
        return []


def _class_mistake(key: str, spec: Mapping, named: Callable | None) -> str | None:
    """Why the class ``spec`` fails: a class_path that does not import, an option its class lacks or refuses. A bare name
    is one of the option's subclasses, which only jsonargparse lists: ``named`` is the class it names, if known."""
    path = spec["class_path"]
    if not isinstance(path, str) or "." not in path and named is None:
        return None
    module, _, name = path.rpartition(".")
    try:
        found = named if "." not in path else getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        return f"{key}: cannot import class_path {path!r} ({error}){nearest(path, _classes(module))}: check its spelling"
    options = dict(spec.get("init_args") or {}) | {k: v for k, v in spec.items() if k not in NOT_OPTIONS}
    hints = _hints(found)
    option = next((option for option in options if option not in hints), None)
    if hints and option is not None:
        return f"{key}: {path} takes no option {option!r}{nearest(option, hints)}: fix or remove it under init_args"
    return next((m for o, value in options.items() if (m := _value_mistake(f"{key}.{o}", value, hints.get(o)))), None)


def _takes_class(hint: Any) -> bool:
    """Whether a string given for ``hint`` names a class: the option takes a class or callable, and no string."""
    members = _members(hint)
    classes = [m for m in members if inspect.isclass(m) and not _scalar(m) or typing.get_origin(m) is Callable]
    return bool(classes) and not any(inspect.isclass(m) and issubclass(m, str) for m in members)


def _mistake(sources: Mapping[str, dict], merged: Mapping, keys: set[str], owners: Mapping[str, Callable]) -> str | None:
    """The first unknown key in one of ``sources``, else the first value of ``merged`` (all of them in one) its type or
    class refuses, or None."""
    for where, settings in sources.items():
        for key, _ in _options(settings, keys, merged):
            if key not in keys and not _is_class(at(merged, key)):
                return f"unknown option {key!r}{nearest(key, keys)}: fix or remove it {where}"
    hints = {group: _hints(owner) for group, owner in owners.items()}
    for key, value in _options(merged, keys, merged):
        group, _, name = key.rpartition(".")
        hint = hints.get(group, {}).get(name)
        if isinstance(value, str) and _takes_class(hint):
            value = {"class_path": value}
        found = _class_mistake(key, value, owners.get(key)) if _is_class(value) else _value_mistake(key, value, hint)
        if found:
            return found
    return None


def explain(
    message: str,
    command: str | None = None,
    keys: Iterable[str] = (),
    args: Sequence[str] | None = None,
    owners: Mapping[str, Callable] | None = None,
) -> str:
    """jsonargparse's error ``message`` for ``bam command ARGS`` as one line that says what to do. ``keys``: the command's
    options and groups; ``owners``: the classes whose signatures type them, by group (``{"trainer": Trainer}``)."""
    hint = f"bam {command} --help lists the options" if command else "bam --help lists the commands"
    if command is None and args is not None:
        word = next((arg for arg in args if not arg.startswith("-")), None)
        if word is None:
            return f"give a command: {', '.join(COMMANDS)} ({hint})"
        if word not in COMMANDS:
            return f"unknown command {word!r}{nearest(word, COMMANDS)}: the commands are {', '.join(COMMANDS)}"
    try:
        settings = sources(args or (), command)
        everything = combined(settings)
        found = _mistake(settings, everything, set(keys), owners or {})
    except ValueError as error:
        everything, found = {}, str(error)
    if found:
        return f"{found} ({hint})"
    lines = [line.strip() for line in message.splitlines() if line.strip()] or ["invalid arguments"]
    keyed = re.match(r'Parser key "([^"]+)"(?: element \d+)?:\s*(.*)', lines[0])  # the key, where jsonargparse names one
    if not keyed:
        return f"{lines[0]} ({hint})"
    value = None if " element " in lines[0] else at(everything, keyed[1])  # an item of a list: the report names it
    worded = _refused(keyed[1], value, "\n".join(lines))
    if worded:
        return f"{worded} ({hint})"
    given_value = f" {value!r}" if isinstance(value, bool | int | float | str) else ""
    return f"{keyed[1]}{given_value}: {keyed[2] or (lines[1:] or [''])[0]} ({hint})"


def _refused(key: str, value: Any, report: str) -> str | None:
    """jsonargparse's report that ``value`` fits no type of ``key`` worded as ``_value_mistake`` words a config's, where it
    names the types (``Expected a <class 'int'>``, a Union's ``Subtypes: [...]``) or the choices (``typing.Literal[...]``);
    a tool parsed by jsonargparse has no signature to ask, so its report is read instead."""
    got = re.search(r"Got value: (.*)", report)
    if not isinstance(value, bool | int | float | str):  # an item of a list: the one refused
        if got is None:
            return None
        value = got[1]
    literal = re.search(r"typing\.Literal\[(.*?)\]\. Got value", report)
    if literal:
        return _not_a(key, value, [str(choice) for choice in ast.literal_eval(f"[{literal[1]}]")], [])
    subtypes = re.search(r"Subtypes: \[(.*)\]", report)
    expected = subtypes[1] if subtypes else (re.search(r"Expected a (<class '[\w.]+'>)", report) or [None, ""])[1]
    names = ["null" if name == "NoneType" else name for name in re.findall(r"<class '(?:\w+\.)*(\w+)'>", expected)]
    if names == ["list"]:  # jsonargparse's two ways to give a list option
        return f"{key}: {value!r} is not a list: give --{key} '[{value}, ...]', or --{key}+ {value} once for each item"
    return _not_a(key, value, [], names) if names else None
