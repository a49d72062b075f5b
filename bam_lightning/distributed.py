"""A multi-process run that loses a process: one line that names it, a bounded exit, a checkpoint to resume from.

What Lightning 2.6 and torch do by themselves when one process of a ``strategy=ddp`` run dies:

- the first process (rank 0) starts the others as subprocesses and watches them from a thread
  that wakes every 5 s (``_ChildProcessObserver`` in
  ``lightning/fabric/strategies/launchers/subprocess_script.py``); when one has died it
  SIGKILLs the others *and rank 0 itself*: status 137, no message but a log line, possibly in
  the middle of a checkpoint save;
- rank 0, waiting in a collective (gradient all-reduce) for the dead process, gets a plain
  ``RuntimeError`` from gloo ("Read error ...: Connection reset by peer") within
  milliseconds, which ends as a traceback wherever the watcher's SIGKILL has not come first.

The ``bam`` command runs its own watcher instead (``watch``): it polls the subprocesses every
0.2 s, kills the survivors (they would wait in collectives until the 30-minute timeout) and
lets rank 0 fail as it does, which ``cli.main`` reports as one line from ``failure_message``:
which rank died, how, and the checkpoint to resume from. Should rank 0 itself hang, the
watcher prints that line and ends it after ``GRACE_S`` seconds. Checkpoints are written
atomically (``checkpoints.AtomicCheckpointIO``), so none is left half written.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.distributed import _set_num_threads_if_needed
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

POLL_S = 0.2
GRACE_S = 10.0
EXIT_STATUS = 1
# What gloo says when the other end of a connection has gone (torch raises a plain RuntimeError).
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "gloo/transport")

_lock = threading.Lock()
_reported = False
_trainer: pl.Trainer | None = None
_watch: ProcessWatch | None = None


def newest_checkpoint(trainer: pl.Trainer | None) -> Path | None:
    """The checkpoint ``--ckpt_path last`` would resume from: the newest the trainer's callbacks wrote, else the
    newest ``last.ckpt`` under its ``default_root_dir`` (under ddp_spawn the callbacks ran in other processes)."""
    if trainer is None:
        return None
    callbacks = trainer.checkpoint_callbacks
    saved = [Path(p) for cb in callbacks for p in (cb.last_model_path, cb.best_model_path) if p and Path(p).is_file()]
    saved = saved or [path for path in Path(trainer.default_root_dir).rglob("last.ckpt") if path.is_file()]
    return max(saved, key=lambda path: path.stat().st_mtime, default=None)


def _resume_advice() -> str:
    found = newest_checkpoint(_trainer)
    if found is None:
        return "no checkpoint was saved yet: run the same command again"
    return f"run the same command with --ckpt_path last to resume from {found}"


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode} (its own message is above)"


class ProcessWatch(threading.Thread):
    """Watches rank 0's subprocesses (ranks 1..N-1); on the first that dies, stops the others."""

    def __init__(self, procs: list[subprocess.Popen], poll_s: float = POLL_S, grace_s: float = GRACE_S) -> None:
        super().__init__(daemon=True, name="bam-process-watch")
        self.procs = procs
        self.poll_s = poll_s
        self.grace_s = grace_s

    def dead(self) -> tuple[int, subprocess.Popen] | None:
        """(rank, process) of the first subprocess that ended with a non-zero status, or None."""
        for rank, proc in enumerate(self.procs, start=1):
            if proc.poll() not in (None, 0):
                return rank, proc
        return None

    def wait_for_death(self, timeout: float) -> tuple[int, subprocess.Popen] | None:
        deadline = time.monotonic() + timeout
        while (found := self.dead()) is None and time.monotonic() < deadline:
            time.sleep(self.poll_s / 4)
        return found

    def message(self) -> str | None:
        found = self.dead()
        if found is None:
            return None
        rank, proc = found
        size = len(self.procs) + 1
        how = _how(proc.returncode)
        return f"training process rank {rank} (pid {proc.pid}) {how}, so the {size}-process run stopped; {_resume_advice()}"

    def run(self) -> None:
        while self.dead() is None:
            if all(proc.poll() == 0 for proc in self.procs):
                return
            time.sleep(self.poll_s)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # SIGTERM does not end a process that waits in a collective
        # Rank 0 normally fails in its next collective within milliseconds and exits through
        # cli.main; only if it has not ended by now does this thread report and end it.
        time.sleep(self.grace_s)
        report(self.message() or "a training process died")
        os._exit(EXIT_STATUS)


class WatchedLauncher(_SubprocessScriptLauncher):
    """Lightning's launcher for ``strategy=ddp``, with ``ProcessWatch`` instead of its observer."""

    def launch(self, function: Any, *args: Any, trainer: pl.Trainer | None = None, **kwargs: Any) -> Any:
        global _watch
        # Lightning 2.6's launch, but for the watcher it starts.
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            _watch = ProcessWatch(self.procs)
            _watch.start()
        _set_num_threads_if_needed(num_processes=self.num_processes)
        return function(*args, **kwargs)


def watch(trainer: pl.Trainer) -> None:
    """Before a run: remember the trainer (for the checkpoint to name) and watch the processes rank 0 starts."""
    global _trainer, _watch, _reported
    _trainer, _watch, _reported = trainer, None, False  # a fresh run (also in-process, in tests and notebooks)
    launcher = trainer.strategy.launcher
    if type(launcher) is _SubprocessScriptLauncher:
        launcher.__class__ = WatchedLauncher


def report(message: str) -> bool:
    """Print ``bam: error: message`` once per process; False where it was printed already."""
    global _reported
    with _lock:
        if _reported:
            return False
        _reported = True
    print(f"bam: error: {message}", file=sys.stderr, flush=True)
    return True


def failure_message(error: BaseException) -> str | None:
    """One line for an error that comes from losing a process of the run, else None (a bug keeps its traceback)."""
    if isinstance(error, torch.multiprocessing.ProcessExitedException):  # strategy=ddp_spawn
        how = f"was killed by {error.signal_name}" if error.signal_name else _how(error.exit_code)
        return f"training process rank {error.error_index} (pid {error.error_pid}) {how}, so the run stopped; {_resume_advice()}"
    text = str(error)
    lost = isinstance(error, torch.distributed.DistError) or any(pattern in text for pattern in LOST_PEER)
    if _watch is not None and _watch.wait_for_death(timeout=2.0 if lost else 0.0):
        return _watch.message()
    if not lost:
        return None
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    # gloo: "[.../gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:34697: Connection reset by peer. This is ..."
    first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]
    return (
        f"process rank {rank} lost its connection to the rest of the run ({first[:200]}): another process was"
        f" killed or crashed (look for its message); {_resume_advice()}"
    )
