"""What one job of a ``bam sweep`` does, in submitit's process on the machine that runs it: ``bam fit``, then its state.

``bam fit`` runs in this process (its imports, seconds of CPU, paid once), its output appended to
the run's ``fit.log``, and ends in the exit status ``bam`` would: 0 is done; 143 is a SIGTERM it
answered by writing ``last.ckpt``: SLURM's preemption or ``scontrol requeue`` (which requeue the
job themselves), ``scancel``, or the ``--signal=TERM@<delay>`` a job asks for before its time
limit, after which the job requeues itself. Anything else (a diverged loss, a bad config) failed
for its own reason and is not requeued: its state keeps the log's last line. A requeued job runs
this again, and ``--ckpt_path last`` resumes. Under SLURM each task of a multi-GPU job runs its
own ``bam fit`` (docs/training.md's DDP recipe: Lightning reads the SLURM variables); task 0 alone
writes the state and requeues.
"""

import os
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import one_line
from . import slurm as slurm_options
from .sweep_runs import LOG, Run, last_line, write_state

SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT  # Ctrl-C: bam fit's own stop, with last.ckpt; nothing requeues it, the next sweep resumes
EARLY_S = 60  # how much earlier than asked SLURM may send --signal


class RunFailed(RuntimeError):
    """``bam fit`` ended with an error of its own: the job ends failed (its message: the log's last line)."""


@dataclass(frozen=True)
class FitJob:
    """The callable submitit pickles: one run, its launcher's name, and for SLURM the seconds of ``--signal=TERM@<s>``."""

    run: Run
    launcher: str
    signal_delay_s: float = 0

    def __call__(self) -> None:
        slurm = self.launcher == "slurm"
        job, lead = _job_id() if slurm else str(os.getpid()), not slurm or os.environ.get("SLURM_PROCID", "0") == "0"
        folder = self.run.folder
        common: dict[str, Any] = {"launcher": self.launcher, "job": job, "host": socket.gethostname(), "pid": os.getpid()}
        common["attempt"] = int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1  # SLURM counts the requeues
        if lead:
            write_state(folder, state="running", **common)
        status = _bam(self.run.command, folder / LOG)
        if not lead:
            return
        if status == 0:
            write_state(folder, state="done", **common)
        elif status == SIGTERM_EXIT:
            write_state(folder, state="stopped", why=self._stopped(job) if slurm else "stopped by SIGTERM", **common)
        elif status == SIGINT_EXIT:
            write_state(folder, state="stopped", why="stopped by Ctrl-C (SIGINT)", **common)
        else:
            why = last_line(folder)
            write_state(folder, state="failed", why=f"exit status {status}: {why}", **common)
            raise RunFailed(why)

    def _stopped(self, job: str) -> str:
        """Why the run got its SIGTERM; near the time limit the job requeues itself (SLURM requeues a preempted one).

        SLURM may send the ``--signal`` up to a minute early (its own docs): within the delay and
        that minute of the end is the time limit's.
        """
        try:
            left = slurm_options.time_left_s(job)
        except slurm_options.SlurmFailed as error:  # not requeued: SLURM requeues a preempted job itself, the next sweep the rest
            return f"stopped by SIGTERM; its time left unknown ({error}), not requeued: the next bam sweep resumes it"
        if left is None or left > self.signal_delay_s + EARLY_S:
            return "stopped by SIGTERM (preempted, requeued or cancelled); last.ckpt written"
        requeued = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if requeued.returncode != 0:
            return f"stopped {left} s before its time limit; scontrol requeue {job} failed: {one_line(requeued.stderr)}"
        return f"stopped {left} s before its time limit; requeued, resumes from last.ckpt"


def _bam(args: list[str], log: Path) -> int:
    """``bam ARGS`` in this process, stdout and stderr (its file descriptors: Lightning's output too) appended to ``log``.

    A local sweep starts this process with SIGINT blocked (``sweep._start``): a Ctrl-C pressed until now waits, and
    arrives here, before ``bam`` runs, as the stop of a run that has not begun."""
    from ..cli import main

    with _output_to(log):
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            main(args)
        except SystemExit as exit:
            return exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except KeyboardInterrupt:
            return SIGINT_EXIT
        except BaseException:  # a bug: its traceback in the log, its last line the failure's reason
            traceback.print_exc()
            return 1
    return 0


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    kept = [os.dup(1), os.dup(2)]
    file = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.dup2(file, 1), os.dup2(file, 2)
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        for fd, saved in zip((1, 2), kept, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(file)


def _job_id() -> str:
    """The SLURM job's id as SLURM's commands take it: ``<array job>_<task>`` in an array."""
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]
