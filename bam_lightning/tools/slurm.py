"""``bam sweep --launcher slurm``: its ``--slurm.*`` options, the submitit executor they make, and the queue's state.

One sweep is one SLURM job array (submitit's ``executor.batch()``). Each job asks for submitit's
time-limit signal ``--slurm.signal_delay`` seconds before its time limit (its ``signal_delay_s``:
``#SBATCH --signal=USR2@<s>``; sweep_job.py says who answers it) and is requeueable (``--requeue``,
which submitit does not ask for: SLURM requeues a preempted job itself). A row on several GPUs is
the DDP recipe of docs/training.md: one task per GPU (``--ntasks-per-node``),
``--trainer.num_nodes``/``devices``/``strategy ddp``, and the config's batch divided among the
processes, so that the global batch stays the config's.
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import InputError

# --slurm.<key>: (type, default, help). The submitit parameter of the same name, but for sbatch and signal_delay.
OPTIONS: dict[str, tuple[Any, Any, str]] = {
    "partition": (str, None, "the partition (sbatch --partition)"),
    "nodes": (int, 1, "nodes per run; above 1 (or gpus_per_node above 1) the run is DDP over all their GPUs"),
    "gpus_per_node": (int, 0, "GPUs per node, one task (process) each"),
    "cpus_per_task": (int, None, "CPU cores per task (data loading workers)"),
    "time": (int, 60, "time limit per job, minutes; a run longer than that is requeued and resumes"),
    "account": (str, None, "the account to charge (sbatch --account)"),
    "qos": (str, None, "the quality of service (sbatch --qos)"),
    "mem": (str, None, "memory per node in SLURM's units, e.g. 32G (sbatch --mem)"),
    "array_parallelism": (int, 256, "runs of the array at most running at once"),
    "signal_delay": (int, 120, "seconds before the time limit at which SLURM signals the job to stop and requeue"),
    "sbatch": (list[str], [], "more #SBATCH options: '[constraint=a100, exclusive]', or one a time: --slurm.sbatch+ KEY=VALUE"),
}
ALIVE = {
    "PENDING": "pending", "REQUEUED": "pending", "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending",
    "SUSPENDED": "pending", "RUNNING": "running", "CONFIGURING": "running", "COMPLETING": "running",
    "SIGNALING": "running", "STAGE_OUT": "running", "RESIZING": "running",
}  # fmt: skip
REQUEUES = 10**6  # submitit's max_num_timeout: its default, 3 requeues at a time limit, would end a long run


def check_sbatch() -> None:
    """Refuse ``--launcher slurm`` where SLURM's commands are not on PATH, before anything is planned."""
    missing = [name for name in ("sbatch", "srun", "squeue", "scontrol") if shutil.which(name) is None]
    if missing:
        raise InputError(
            f"--launcher slurm: {', '.join(missing)} not found on PATH: run bam sweep where SLURM's commands are "
            "(a login node), or use --launcher local"
        )


def extra_lines(lines: list[str]) -> dict[str, Any]:
    """``--slurm.sbatch`` values as options: ``constraint=a100`` (or ``--constraint=a100``); a flag alone: ``exclusive``."""
    extra: dict[str, Any] = {}
    for line in lines:
        key, eq, value = line.removeprefix("#SBATCH").strip().lstrip("-").partition("=")
        if not key or " " in key:
            raise InputError(f"--slurm.sbatch {line!r}: give one sbatch option, as KEY=VALUE or --KEY=VALUE")
        extra[key.replace("-", "_")] = value if eq else True
    return extra


def world_size(options: dict[str, Any]) -> int:
    """How many processes train one run: the GPUs of all its nodes (1 on CPU)."""
    return options["nodes"] * max(options["gpus_per_node"], 1)


def ddp_args(options: dict[str, Any], batch: int | None, row: str) -> list[str]:
    """The DDP recipe (docs/training.md) for a row on ``world_size`` processes, keeping the config's (global) batch ``batch``."""
    world = world_size(options)
    if world == 1:
        return []
    if batch is None or batch % world:
        nodes = f" ({options['nodes']} nodes)" if options["nodes"] > 1 else ""
        has = "sets no batch size" if batch is None else f"has batch size {batch}, not a multiple of it"
        raise InputError(f"--configs row {row!r} on {world} GPUs{nodes}: its config {has}: set data.batch_size")
    ddp = ["--trainer.num_nodes", str(options["nodes"]), "--trainer.devices", str(max(options["gpus_per_node"], 1))]
    return [*ddp, "--trainer.strategy", "ddp", "--data.batch_size", str(batch // world)]


def parameters(options: dict[str, Any], name: str) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters for ``options`` (the ``--slurm.*`` values)."""
    gpus = options["gpus_per_node"]
    params = {
        "job_name": name,
        "nodes": options["nodes"],
        "ntasks_per_node": max(gpus, 1),
        "time": options["time"],
        "signal_delay_s": options["signal_delay"],
        "array_parallelism": options["array_parallelism"],
        "stderr_to_stdout": True,
    }
    params |= {key: options[key] for key in ("partition", "cpus_per_task", "account", "qos", "mem") if options[key] is not None}
    if gpus:
        params["gpus_per_node"] = gpus
    params["additional_parameters"] = {"requeue": True} | extra_lines(options["sbatch"])
    return params


def executor(folder: Path, params: dict[str, Any]) -> Any:
    """A submitit SlurmExecutor writing its job files under ``folder``."""
    import submitit

    slurm = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=REQUEUES)
    slurm.update_parameters(**params)
    return slurm


def sbatch_lines(params: dict[str, Any], folder: Path, count: int) -> list[str]:
    """The ``#SBATCH`` lines of the array submitit would submit (its own rendering: what ``--dry_run`` shows)."""
    from submitit.slurm.slurm import _make_sbatch_string

    script = _make_sbatch_string(command="true", folder=folder / "%j", map_count=count, **params)
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


class SlurmFailed(InputError):
    """A SLURM command that failed (a controller down, a partition that does not exist): its own words, in one line."""


def queued() -> dict[str, str]:
    """SLURM's jobs still queued, by id (array tasks as ``<array job>_<task>``): ``pending`` or ``running``. A query
    SLURM cannot answer raises ``SlurmFailed``, never reads as an empty queue."""
    if shutil.which("squeue") is None:
        raise SlurmFailed("squeue not found on PATH: run bam sweep where SLURM's commands are (a login node)")
    listing = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True)
    if listing.returncode != 0:
        words = " ".join(listing.stderr.split()) or f"exit status {listing.returncode}"
        raise SlurmFailed(
            f"squeue failed: {words}: whether the sweep's SLURM jobs still run is unknown: try again once squeue answers"
        )
    jobs = (line.split("|") for line in listing.stdout.splitlines() if "|" in line)
    return {job: ALIVE[state] for job, state in jobs if state in ALIVE}
