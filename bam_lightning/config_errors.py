"""One line for a mistake in a config or on the command line, where jsonargparse prints a screenful.

On a bad key or value jsonargparse prints the whole usage of the subcommand (some hundred
lines for ``bam fit``) and then an error that, for a ``class_path``, spans ten lines of Union
subtypes. The ``bam`` command parses with ``exit_on_error=False`` and turns that error into
one line: the key, what is wrong with it, the nearest valid name where there is one, and
what to do. ``--help`` and ``--print_config`` are untouched.
"""

import importlib
import inspect
import re
from collections.abc import Iterable

import yaml
from lightning.pytorch.cli import LightningCLI

from .commands import TOOLS
from .errors import nearest

# What ``bam`` runs: the Trainer methods LightningCLI makes subcommands of, then the research tools.
COMMANDS = (*LightningCLI.subcommands(), *TOOLS)


def _class_options(class_path: str) -> list[str]:
    """Keyword arguments of the class at ``class_path`` (already imported by jsonargparse), or []."""
    module, _, name = class_path.rpartition(".")
    try:
        return list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def _module_classes(module: str) -> list[str]:
    try:
        return [f"{module}.{name}" for name, value in vars(importlib.import_module(module)).items() if inspect.isclass(value)]
    except ImportError:
        return []


def _key_error(key: str, lines: list[str], hint: str) -> str:
    """``Parser key "key":`` and the lines below it, as one line.

    jsonargparse words a class_path problem differently for a class (Union of subtypes) and a
    callable such as ``model.optimizer``, so the reasons are searched for in the whole text.
    """
    text = "\n".join(lines)
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    class_path = re.search(r"class_path(?:=| )'([^']+)'", text)
    missing = re.search(r"module '([\w.]+)' has no attribute '(\w+)'", text)
    if missing:
        wanted = f"{missing[1]}.{missing[2]}"
        near = nearest(wanted, _module_classes(missing[1]))
        return f"{key}: cannot import class_path {wanted!r} ({missing[0]}){near}: check its spelling, a full import path"
    no_module = re.search(r"No module named '([\w.]+)'", text)
    if no_module:
        wanted = class_path[1] if class_path else given
        return f"{key}: cannot import class_path {wanted!r} ({no_module[0]}): check its spelling, a full import path"
    inner = re.search(r'Parser key "([^"]+)":\s*\n\s*(.+)', text)  # a value the class_path's own signature refuses
    if inner and class_path:  # before the other subtypes' complaints (lightning.Callback takes no option at all)
        return f"{key}.{inner[1]}: {inner[2].strip()} ({hint})"
    option = re.search(r"Option '([^']+)' is not accepted", text)
    if option and class_path:
        near = nearest(option[1], _class_options(class_path[1]))
        return f"{key}: {class_path[1]} takes no option {option[1]!r}{near}: fix or remove it under init_args ({hint})"
    literal = [line.split(". Got value:") for line in lines if line.lstrip("- ").startswith("Expected a typing.Literal")]
    literals = [v for choices, *_ in literal for v in re.findall(r"'([^']*)'", choices)]
    given = given if given is not None else next((got[0].strip() for _, *got in literal if got), None)
    types = [m[1] for line in lines if (m := re.match(r"- Expected a <class '([^']+)'>", line))]
    if literals:
        allowed = literals + (["null"] if "NoneType" in types else []) + (["false"] if "bool" in types else [])
        return f"{key}: {given!r} is not one of {', '.join(allowed)}{nearest(given or '', literals)} ({hint})"
    if types and given is not None:
        names = " or ".join("null" if t == "NoneType" else t.rpartition(".")[2] for t in types)
        return f"{key}: {given!r} is not a valid {names} ({hint})"
    detail = " ".join(line for line in lines if not line.startswith(("Subtypes:", "Given value type:", "Errors:")))
    return f"{key}: {detail[:300]} ({hint})"


def _bad_yaml(configs: Iterable[str]) -> str | None:
    """The first of the ``--config`` files that is not valid YAML, with the parser's reason, or None."""
    for config in configs:
        try:
            with open(config) as file:
                content = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as error:
            return f"{config} is not a valid YAML config ({' '.join(str(error).split())})"
        if not isinstance(content, dict):
            return f"{config} is {'empty' if content is None else 'not a mapping of options'}, not a config"
    return None


def explain(message: str, command: str | None = None, known_keys: Iterable[str] = (), configs: Iterable[str] = ()) -> str:
    """jsonargparse's error ``message`` for ``bam command`` as one line that says what to do.

    ``known_keys`` are the subcommand's options, to suggest the nearest to an unknown one;
    ``configs`` the ``--config`` files given, to name the one that is not valid YAML.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()] or ["invalid arguments"]
    hint = f"bam {command} --help lists the options" if command else "bam --help lists the commands"
    unknown = re.match(r"Subcommand '[^']+' does not accept option '([^']+)'", lines[0])
    if unknown:
        key = unknown[1]
        where = "fix or remove it in the config or on the command line"
        return f"unknown option {key!r}{nearest(key, known_keys)}: {where} ({hint})"
    keyed = re.match(r'Parser key "([^"]+)":\s*(.*)', lines[0])
    if keyed:
        return _key_error(keyed[1], ([keyed[2]] if keyed[2] else []) + lines[1:], hint)
    if lines[0].startswith("Problems parsing config"):
        return f"{_bad_yaml(configs) or ' '.join(lines)}: fix its syntax"
    if lines[0].startswith("Unexpected config") and _bad_yaml(configs):  # an empty file, or a list
        return f"{_bad_yaml(configs)}: give options as in bam {command or 'fit'} --print_config"
    choice = re.match(r"argument subcommand: invalid choice: '([^']*)'", lines[0])
    if choice:
        return f"unknown command {choice[1]!r}{nearest(choice[1], COMMANDS)}: the commands are {', '.join(COMMANDS)}"
    if lines[0].startswith("unrecognized arguments:"):
        options = [arg[2:].split("=")[0] for arg in lines[0].split()[2:] if arg.startswith("--")]
        if options:
            near = nearest(options[0], known_keys)
            return f"unknown option {options[0]!r}{near}: fix or remove it on the command line ({hint})"
        if command is None:
            return f"{lines[0]}: the commands are {', '.join(COMMANDS)} ({hint})"
    if command is None and "subcommand" in lines[0]:  # 'expected "subcommand" to be one of ...'
        return f"give a command: {', '.join(COMMANDS)} ({hint})"
    return f"{' '.join(lines)} ({hint})"
