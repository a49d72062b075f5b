"""``bam ARGS`` from start to exit status: the tools' dispatch, Ctrl-C, and ``EXITS``, the status and one line
(``bam: <line>`` on stderr) of each way a command can end; a line of None lets the error through (a bug keeps its
traceback, ``--help``'s SystemExit its status)."""

import importlib
import os
import signal
import sys
import threading
import warnings
from argparse import ArgumentError
from collections.abc import Callable
from typing import NamedTuple

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ..errors import InputError, TrainingDiverged, one_line
from . import distributed
from .app import build_cli
from .commands import TOOLS
from .config_errors import explain

# Warnings from inside the libraries that a user can do nothing about, by exact message start and module.
LIBRARY_WARNINGS = [
    # Lightning's own pytree flattening, run on every logged batch, on torch >= 2.10.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
    # bam test/validate/predict of an EMA checkpoint: its state_dict is the average already (a fit without the EMA
    # callback is refused before, in ema.ema_callbacks).
    (
        UserWarning,
        r"Be aware that when using `ckpt_path`, callbacks used to create the checkpoint need to be provided during"
        r" `Trainer` instantiation\. Please add the following callbacks: \['EMAWeightAveraging'\]\.?$",
        r"lightning\.pytorch\.trainer\.call",
    ),
]


class RunState:
    """The command in progress: the trainer of its run once one starts (``start``), and whether Ctrl-C was pressed."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.trainer: Trainer | None = None
        self.interrupted = False

    def stop_like_sigterm(self, signum: int, frame: object) -> None:
        """Ctrl-C during a run stops it as SIGTERM does (Lightning's handler, which stops a DDP run's other processes too):
        after the batch, with last.ckpt to resume from, where Lightning alone would lose the partial epoch and exit 1.
        Before a run starts, and on a second press, it stops at once."""
        again, self.interrupted = self.interrupted, True
        if self.trainer is None or again:
            raise KeyboardInterrupt
        os.write(2, b"bam: Ctrl-C: stopping after this batch (press it again to stop at once)\n")  # print is not reentrant
        os.kill(os.getpid(), signal.SIGTERM)

    def start(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def end_progress_line(self) -> None:
        """A run's progress bar leaves its line open on stdout: close it, so that the run's last words start a line."""
        bar = self.trainer.progress_bar_callback if self.trainer is not None else None
        if bar is not None and bar.is_enabled:
            print(file=sys.stdout, flush=True)


def worker_message(error: BaseException) -> str:
    """The message of an error raised in a DataLoader worker, which DataLoader re-raises with the worker's traceback."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(f"{type(error).__module__}.{type(error).__name__}: ") else last


def stopped(run: RunState, saved: bool) -> str | None:
    """The line for a run that a signal stopped (``saved``: by SIGTERM, last.ckpt written), or None if none did."""
    if not saved and not run.interrupted:
        return None
    resume = "last.ckpt holds it up to its last batch: continue with" if saved else "resume from the last checkpoint saved:"
    how = "Ctrl-C (SIGINT)" if run.interrupted else "SIGTERM"
    if run.argv[:1] == ["sweep"]:  # each run stopped as bam fit does (sweep_job): the sweep resumes them all
        return f"stopped by {how}; the same bam sweep again resumes its runs"
    if run.argv[:1] == ["tune"]:  # its trials' runs too (sweep_job); their trials stay running in the study
        return f"stopped by {how}; the same bam tune again resumes its trials"
    return f"stopped by {how}; {resume} --ckpt_path last" if run.argv[:1] == ["fit"] else f"stopped by {how}"


def lost_process(error: BaseException, run: RunState) -> str | None:
    message = distributed.failure_message(error, run.trainer)
    return None if message is None else f"error: {message}"


class Exit(NamedTuple):
    errors: type[BaseException] | tuple[type[BaseException], ...]
    status: int  # STOPPED: 128 + the number of the signal that stopped the run, as a shell reports it
    line: Callable[[BaseException, RunState], str | None]


STOPPED = -1
EXITS = [
    # A user's mistake (a name, a missing dataset, a diverged loss): one line, status 2.
    Exit((InputError, TrainingDiverged), 2, lambda error, run: f"error: {worker_message(error)}"),
    # Lightning's refusal of a Trainer value (max_epochs -5, accelerator gpu, ...).
    Exit(
        MisconfigurationException, 2, lambda error, run: f"error: trainer: {one_line(error)} (bam fit --help lists the options)"
    ),
    # LightningCLI re-parsing a checkpoint's hyperparameters (BamCLI.parse_arguments has read the file itself before).
    Exit(ArgumentError, 2, lambda error, run: f"error: {explain(str(error))}"),
    # Lightning's SIGTERM stop is a SystemExit with status 0: a script must not take the stopped run for a finished one.
    Exit(SIGTERMException, STOPPED, lambda error, run: stopped(run, saved=True)),
    Exit((KeyboardInterrupt, SystemExit), STOPPED, lambda error, run: stopped(run, saved=False)),
    # A lost process of a multi-process run: one line, not a traceback per process.
    Exit(Exception, distributed.EXIT_STATUS, lost_process),
]


def quiet_library_warnings() -> None:
    for category, message, module in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message, category, module)


def main(args: list[str] | None = None) -> None:
    """``bam ARGS`` (None: ``sys.argv``, which LightningCLI reads itself, as its DDP launcher expects)."""
    run = RunState(sys.argv[1:] if args is None else args)
    quiet_library_warnings()
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous = signal.signal(signal.SIGINT, run.stop_like_sigterm) if in_main_thread else None
    try:
        if run.argv and run.argv[0] in TOOLS:
            importlib.import_module(TOOLS[run.argv[0]]).main(run.argv[1:])
        else:
            build_cli(args, on_start=run.start)
    except BaseException as error:
        end = next((exit for exit in EXITS if isinstance(error, exit.errors)), None)
        line = end.line(error, run) if end is not None else None
        if line is None:
            raise
        run.end_progress_line()
        print(f"bam: {line}", file=sys.stderr, flush=True)
        stop = signal.SIGINT if run.interrupted else signal.SIGTERM
        raise SystemExit(128 + stop if end.status == STOPPED else end.status) from None
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
