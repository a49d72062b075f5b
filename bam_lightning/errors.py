"""Errors a user can fix from the command line or a config, and the words that help fix them: ``bam`` prints their
message as one line without a traceback, so it must say what is wrong and what to do; anything else is a bug."""

import difflib
import inspect
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


def one_line(error: BaseException) -> str:
    """An exception's text on one line: the ``bam`` command prints error messages as one line."""
    return " ".join(str(error).split()) or type(error).__name__


def first_line(error: BaseException) -> str:
    """The first line of an error's text that says anything (a library's can open blank), or its type's name."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


class InputError(ValueError):
    """Bad input: a wrong name, size, path or file."""


class DatasetNotFoundError(InputError, FileNotFoundError):
    """A dataset is not where the config says; the message names the path and the fix."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops before the step, naming the last good checkpoint."""


def nearest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``name`` (or the first it abbreviates), or nothing."""
    choices = list(choices)
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.75) or [c for c in choices if name and c.startswith(name)]
    return f" (did you mean {found[0]!r}?)" if found else ""


def unknown_option(function: Callable[..., Any], options: Iterable[str], fixed: int = 0) -> tuple[str, list[str]] | None:
    """The first of ``options`` that ``function`` does not take, and those it takes after its first ``fixed`` (the package's
    to give); None if it takes them all."""
    parameters = list(inspect.signature(function).parameters.values())
    known = [parameter.name for parameter in parameters[fixed:]]
    unknown = next((option for option in options if option not in known), None)
    return None if unknown is None or any(p.kind is p.VAR_KEYWORD for p in parameters) else (unknown, known)


def check_options(owner: str, function: Callable[..., Any], options: Mapping[str, Any], fixed: int, flag: str) -> None:
    """Refuse, naming the nearest, a key of ``options`` that ``function`` does not take, which would end in Python's
    TypeError traceback (a misspelt key in a YAML dict: ``attention_kwargs: {reductoin: 8}``)."""
    found = unknown_option(function, options, fixed)
    if found is not None:
        key, known = found
        takes = f"its {flag} are {', '.join(known)}" if known else f"it takes no {flag}"
        raise InputError(f"{owner} has no option {key!r}{nearest(key, known)}: {takes}")


def check_output_folder(folder: str | Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be written: a file, under a file, or one that takes no file (no write
    permission, a read-only mount, /proc even for root). What is made here to find out is removed again."""
    folder, made, failed = Path(folder), [], "cannot be made"
    try:
        existing = next(path for path in (folder, *folder.parents) if path.exists())  # stat: a folder above may refuse
        if not existing.is_dir():
            where = "is a file" if existing == folder else f"is under {existing}, a file"
            raise InputError(f"{flag} {folder} {where}, not a folder: give a folder")
        made = [path for path in (folder, *folder.parents) if not path.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        failed = "takes no file"
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise InputError(f"{flag} {folder} {failed} ({error.strerror}): give a folder you can write to") from None
    finally:
        for path in made:
            if path.is_dir():
                path.rmdir()


def check_seed(seed: Any, flag: str) -> None:
    """Refuse a seed that Lightning's ``seed_everything`` refuses (numpy's range) before any work: it would end every run
    in its ValueError traceback. True, False and None are LightningCLI's random seed and no seed."""
    from lightning.fabric.utilities.seed import max_seed_value, min_seed_value

    if isinstance(seed, int) and not isinstance(seed, bool) and not min_seed_value <= seed <= max_seed_value:
        raise InputError(f"{flag} {seed}: a seed is a whole number from {min_seed_value} to {max_seed_value}")


def warn(message: str) -> None:
    """Print ``bam: warning: <message>`` as one line on stderr: a run that goes on, but likely not as the user meant."""
    print(f"bam: warning: {message}", file=sys.stderr, flush=True)
