"""What one job of a ``bam sweep`` does, in submitit's process on the machine that runs it: ``bam fit``, then its state.

``bam fit`` runs in this process (its imports, seconds of CPU, paid once), its output appended to
the run's ``fit.log``, and ends in the exit status ``bam`` would: 0 is done; 143 is a SIGTERM it
answered by writing ``last.ckpt`` (Lightning's graceful stop: the batch finished, then our
``LastCheckpoint``). Anything else (a diverged loss, a bad config) failed for its own reason and is
not requeued: its state keeps the log's last line. A requeued job runs this again, and
``--ckpt_path last`` resumes. Under SLURM each task of a multi-GPU job runs its own ``bam fit``
(docs/training.md's DDP recipe: Lightning reads the SLURM variables); task 0 alone writes the state
and requeues.

Requeueing is submitit's (1.5.4, ``submitit/core/job_environment.py``): the job asks for its time-limit
signal (``--signal=USR2@<signal_delay_s>``, ``slurm/slurm.py`` l. 482), and ``FitJob`` is checkpointable
(``checkpoint()``, ``submitit.helpers.Checkpointable``'s protocol), so submitit's handler
(``checkpoint_and_try_requeue``, l. 200-230) re-pickles ``checkpoint()``'s call, runs ``scontrol requeue
<array job>_<task>`` (``SlurmJobEnvironment._requeue``, slurm.py l. 190) and exits. A preemption,
``scontrol requeue`` or ``scancel`` sends SIGTERM instead (SLURM's default, without
``PreemptParameters=send_user_signal``), which submitit leaves alone (``handler.bypass``, l. 155): SLURM
requeues a preempted job itself. The signal tells the time limit from the rest; the job asks ``squeue``
nothing. What submitit lacks, kept here:

- Its handler runs where the signal lands, mid-batch: ``checkpoint()``, then ``sys.exit(-1)`` (l. 251)
  before ``bam fit`` has finished its batch and written ``last.ckpt``; and Lightning's graceful stop
  answers SIGTERM only. So while ``bam fit`` runs, the signal is turned into a SIGTERM to this process
  (``_time_limit_stops``), and raised again, to submitit's handler, once ``bam fit`` has returned.
- Its ``has_timed_out`` (l. 177-182) guesses timeout from preemption by wall time (since its process
  began, ``min(0.8 x limit, limit - 10 min)``). The guess only counts down ``max_num_timeout`` (l. 214),
  which ``slurm.executor`` sets high enough never to end a long run.

Lightning's SLURM auto-requeue (``SLURMEnvironment(auto_requeue=True)``, SIGUSR1 by default,
``pytorch/trainer/connectors/signal_connector.py`` ``_slurm_sigusr_handler_fn``, l. 70-98) does not
fit: it saves ``hpc_ckpt_<n>.ckpt`` from inside the signal handler (l. 78), mid-batch, which ``--ckpt_path
last`` never loads (``checkpoint_connector.py`` l. 181-195: ``last`` is the callbacks' last.ckpt;
``hpc`` only for ``ckpt_path=None``, l. 121), finalizes the loggers (l. 75) and trains on. Under
submitit it would not be installed on submitit's USR2 anyway (it skips a signal with a handler, l. 62).
Nothing sends SIGUSR1 to these jobs, so it stays idle.
"""

import os
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import one_line
from .sweep_runs import LOG, Run, last_line, write_state

SIGTERM_EXIT = 128 + signal.SIGTERM
SIGINT_EXIT = 128 + signal.SIGINT  # Ctrl-C: bam fit's own stop, with last.ckpt; nothing requeues it, the next sweep resumes


class RunFailed(RuntimeError):
    """``bam fit`` ended with an error of its own: the job ends failed (its message: the log's last line)."""


@dataclass(frozen=True)
class FitJob:
    """The callable submitit pickles: one run and its launcher's name."""

    run: Run
    launcher: str

    def __call__(self) -> None:
        import submitit

        env, slurm = submitit.JobEnvironment(), self.launcher == "slurm"
        usr = signal.Signals[f"SIG{env.USR_SIG}"]  # submitit's time-limit signal: USR2 (a local job's never comes)
        job, lead, folder = env.job_id if slurm else str(os.getpid()), env.global_rank == 0, self.run.folder
        common: dict[str, Any] = {"launcher": self.launcher, "job": job, "host": socket.gethostname(), "pid": os.getpid()}
        common["attempt"] = int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1  # SLURM counts the requeues
        if lead:
            write_state(folder, state="running", **common)
        with _time_limit_stops(usr) as time_limit:
            status = _bam(self.run.command, folder / LOG)
        if not lead:
            return
        if status == 0:
            write_state(folder, state="done", **common)
        elif status == SIGTERM_EXIT and time_limit:
            why = f"stopped by its time limit's signal ({usr.name})"
            write_state(folder, state="stopped", why=f"{why}; requeued, resumes from last.ckpt", **common)
            try:  # submitit's handler, now that last.ckpt is written: checkpoint(), scontrol requeue, sys.exit
                signal.raise_signal(usr)
            except Exception as error:  # noqa: BLE001 (scontrol failed, or submitit's countdown ran out)
                write_state(folder, state="stopped", why=f"{why}; not requeued: {one_line(str(error))}", **common)
        elif status == SIGTERM_EXIT:
            why = "stopped by SIGTERM (preempted, requeued or cancelled); last.ckpt written" if slurm else "stopped by SIGTERM"
            write_state(folder, state="stopped", why=why, **common)
        elif status == SIGINT_EXIT:
            write_state(folder, state="stopped", why="stopped by Ctrl-C (SIGINT)", **common)
        else:
            why = last_line(folder)
            write_state(folder, state="failed", why=f"exit status {status}: {why}", **common)
            raise RunFailed(why)

    def checkpoint(self) -> Any:
        """submitit's ``Checkpointable`` protocol: the call a requeued job runs, this same one (``--ckpt_path last``)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


@contextmanager
def _time_limit_stops(usr: signal.Signals) -> Iterator[list[int]]:
    """While ``bam fit`` runs, submitit's time-limit signal ``usr`` stops it as SIGTERM does (the batch finished,
    ``last.ckpt`` written); the list yielded holds the signal once it came. submitit's handler is restored at the end."""
    came: list[int] = []
    submitits = signal.signal(usr, lambda signum, _: came.append(signum) or os.kill(os.getpid(), signal.SIGTERM))
    try:
        yield came
    finally:
        signal.signal(usr, submitits)


def _bam(args: list[str], log: Path) -> int:
    """``bam ARGS`` in this process, stdout and stderr (its file descriptors: Lightning's output too) appended to ``log``.

    A local sweep starts this process with SIGINT blocked (``sweep.start_run``): a Ctrl-C pressed until now waits, and
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
