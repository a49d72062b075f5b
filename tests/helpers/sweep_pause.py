"""A callback for the SLURM sweep test: one run waits mid-epoch, once, until the scheduler's SIGTERM arrives.

The tiny runs take a second an epoch: to preempt one inside an epoch, its batch ``step`` waits
(after writing ``paused`` in its folder for the test to see) until Lightning has received SIGTERM,
then the run goes on as Lightning does with a SIGTERM: it stops after the batch, with last.ckpt.
The requeued job finds ``paused`` and runs straight through.
"""

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as L


class PauseOnce(L.Callback):
    """In the run whose folder ends in ``run``, after ``step`` steps: write ``paused``, wait for SIGTERM (``wait_s`` at most)."""

    def __init__(self, step: int, run: str, wait_s: float = 120) -> None:
        self.step, self.run, self.wait_s = step, run, wait_s

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        marker = Path(trainer.default_root_dir) / "paused"
        if trainer.global_step != self.step or not trainer.default_root_dir.endswith(self.run) or marker.exists():
            return
        marker.write_text(str(self.step))
        deadline = time.monotonic() + self.wait_s
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)
