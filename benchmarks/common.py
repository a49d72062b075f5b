"""Timing and memory measurement shared by the benchmarks.

Times are medians over repeats taken round-robin (A B C A B C ...; ``bam_lightning.models.complexity.median_times``,
which ``bam summary --measure`` uses too), so a slow spell of a shared machine hits every variant alike; ratios
are only ever taken within one run.
Activation memory (``bam_lightning.models.activation_bytes``) is exact and the same on
every device; on CUDA the peak of allocated memory during forward+backward is reported too.
"""

import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as L
import torch
from lightning.pytorch.cli import LightningCLI

from bam_lightning.cli import build_cli
from bam_lightning.models.complexity import synchronize


def overheads(seconds: float, base_seconds: float, macs: int, base_macs: int) -> dict[str, str]:
    """BAM's relative time and MAC overheads over the network without it, and how many times its MAC share it costs in time."""
    time_overhead = seconds / base_seconds - 1
    mac_overhead = macs / base_macs - 1
    return {
        "time +%": f"{time_overhead * 100:.2f}",
        "MACs +%": f"{mac_overhead * 100:.2f}",
        "time/MACs overhead": f"{time_overhead / mac_overhead:.1f}",
    }


def peak_cuda_bytes(step: Callable[[], object], device: torch.device) -> int | None:
    """Peak allocated memory above the starting point during ``step``; None off CUDA."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """A Markdown table: what the docs quote and a terminal shows readably."""
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join(lines)


class Phases(L.Callback):
    """Wall times of a fit: its first ``warmup`` steps (compiling), the steps after them, and the validation after them."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.times: dict[str, float] = {}

    def _now(self, module: L.LightningModule, name: str) -> None:
        synchronize(module.device)
        self.times[name] = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._now(module, "start")

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self._now(module, "warm")

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        self._now(module, "trained")

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._now(module, "validating")

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._now(module, "validated")


def synthetic_fit(
    device: torch.device,
    configs: list[Path],
    batch: int,
    train_size: int,
    max_steps: int,
    warmup: int,
    root: str,
    extra: list[str],
) -> tuple[LightningCLI, dict[str, float]]:
    """``bam fit`` of ``configs`` in this process, as the command runs it, on ``SyntheticDataModule`` (so reading
    images hides nothing), timed by ``Phases``; ``extra``: more options, given last."""
    args = [
        "fit", *(arg for config in configs for arg in ("--config", str(config))),
        "--data", "bam_lightning.data.SyntheticDataModule", "--data.batch_size", str(batch), "--data.num_workers", "0",
        "--data.train_size", str(train_size), "--trainer.max_steps", str(max_steps),
        "--trainer.accelerator", device.type, "--trainer.devices", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", root,
        "--trainer.callbacks+=benchmarks.common.Phases", f"--trainer.callbacks.warmup={warmup}", *extra,
    ]  # fmt: skip
    cli = build_cli(args)
    return cli, next(c for c in cli.trainer.callbacks if isinstance(c, Phases)).times
