"""A multi-process run that loses a process: one line that names the checkpoint to resume from.

Who watches the processes depends on who started them, and ``bam`` adds no watcher of its own:

- ``torchrun`` (and SLURM's ``srun``) start every process themselves. torchrun's agent polls
  them every 0.1 s; when one dies it stops the others and prints which rank failed, its
  pid and its exit code or signal (``ChildFailedError``), then exits non-zero. This is the
  launch to use where a lost process must be reported reliably (docs/training.md, "One GPU, many
  GPUs, many nodes").
- ``bam fit --trainer.devices N --trainer.strategy ddp`` alone: Lightning's launcher starts
  ranks 1..N-1 from rank 0 and looks at them every 5 s; finding one dead, it logs its pid
  and exit code and SIGKILLs the others and rank 0 itself (status 137).

Either way rank 0, waiting in a collective (the gradient all-reduce) for the lost process,
fails within milliseconds with an error of ``torch.distributed``; ``failure_message`` turns
it into one line for ``cli.main``, naming the checkpoint to resume from. Checkpoints are
written atomically (``checkpoints.AtomicCheckpointIO``), so a kill never leaves one half written.
"""

import os
import re
from pathlib import Path

import lightning.pytorch as pl
import torch

from ..checkpoints import newest_checkpoint
from ..errors import first_line

EXIT_STATUS = 1
# gloo raises a plain RuntimeError when the other end of a connection has gone; NCCL a DistError.
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "gloo/transport")


def resume_advice(where: pl.Trainer | Path | None) -> str:
    found = newest_checkpoint(where) if where is not None else None
    if found is None:
        return "no checkpoint was saved yet: run the same command again"
    return f"run the same command with --ckpt_path last to resume from {found}"


def failure_message(error: BaseException, where: pl.Trainer | Path | None) -> str | None:
    """One line for an error that comes from losing a process of the run, else None (a bug keeps its traceback).

    ``where``: the run's trainer (or its folder), for the checkpoint to resume from.
    """
    if isinstance(error, torch.multiprocessing.ProcessExitedException):  # strategy=ddp_spawn
        how = f"was killed by {error.signal_name}" if error.signal_name else f"exited with status {error.exit_code}"
        who = f"training process rank {error.error_index} (pid {error.error_pid})"
        return f"{who} {how}, so the run stopped; {resume_advice(where)}"
    text = str(error)
    if not (isinstance(error, torch.distributed.DistError) or any(pattern in text for pattern in LOST_PEER)):
        return None
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    first = first_line(error)
    # gloo: "[.../gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:34697: Connection reset by peer. This is ..."
    first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]
    return (
        f"process rank {rank} lost its connection to the rest of the run ({first[:200]}): another process was"
        f" killed or crashed (look for its message); {resume_advice(where)}"
    )
