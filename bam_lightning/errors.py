"""Errors a user can fix from the command line or a config.

The ``bam`` command prints their message on one line, without a traceback: the message
itself must say what is wrong and what to do. Anything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """Bad input: a wrong name, size, path or file."""


class DatasetNotFoundError(InputError, FileNotFoundError):
    """A dataset is not where the config says; the message names the path and the fix."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops before the step, naming the last good checkpoint."""
