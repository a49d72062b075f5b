"""The runs of a ``bam sweep`` and where each stands, read from its folder alone: rerunning a sweep needs no other memory.

A row is one ``--configs`` entry (a Table 3 config and its ablation delta joined by ``+``), named
after its last file; each row runs once per seed in ``OUT/<row>/seed<k>/``, the run's
``trainer.default_root_dir``. Beside the run's ``lightning_logs/`` are ``fit.log`` (what ``bam fit``
printed, every attempt appended) and ``sweep.json``, the state its job wrote last: ``submitted``,
``running``, ``stopped`` (SIGTERM: preempted, time limit, cancelled; ``last.ckpt`` written),
``done`` or ``failed`` (with the log's last line). A ``submitted``, ``running`` or ``stopped`` run
whose job is no longer queued nor alive is unfinished: the next sweep resumes it (``--ckpt_path last``).
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cli.given import read_config
from ..errors import InputError

STATE = "sweep.json"
LOG = "fit.log"
STATES = ("submitted", "running", "stopped", "done", "failed")  # what a sweep.json may hold
ENDED = ("done", "failed", "missing")  # no job of the run can be queued or alive
OWNED = {  # the options the sweep gives every run, and what to give instead
    "--seed_everything": "the sweep sets each run's seed: give the seeds with --seeds",
    "--trainer.default_root_dir": "the sweep sets each run's folder, OUT/<row>/seed<k>: give OUT with --out",
    "--ckpt_path": "the sweep sets what each run resumes from: its own last.ckpt",
    **dict.fromkeys(("--help", "-h", "--print_config"), "each run would print it and end, done, untrained: run bam fit alone"),
}


@dataclass(frozen=True)
class Run:
    """One config and seed of a sweep: its folder and the ``bam`` arguments (``fit ...``) that train it and resume it."""

    row: str
    seed: int
    folder: Path
    command: list[str] = field(compare=False)

    @property
    def name(self) -> str:
        return f"{self.row}/seed{self.seed}"


def row_name(config: str) -> str:
    """``a.yaml+delta.yaml`` is row ``delta``, as ``make sweep`` named it."""
    return Path(config.split("+")[-1]).stem


def batch_size(settings: list[dict[str, Any]]) -> int | None:
    """The batch size a row's configs set (the last one that sets it), or None."""
    found = None
    for config in settings:
        data = config.get("data") or {}
        if isinstance(data, dict):
            found = (data.get("init_args") or {}).get("batch_size", data.get("batch_size", found))
    return found


def row_files(config: str) -> list[str]:
    """The files of one ``--configs`` entry, ``a.yaml+delta.yaml``, in order."""
    return config.split("+")


def read_configs(config: str) -> list[dict[str, Any]]:
    """The settings of each file of one ``--configs`` entry, refused in one line naming the row where one does not parse.

    The row's name is its runs' folder under OUT, which ``--status`` finds by listing OUT: an empty one would put them
    in OUT itself, a hidden one (``.x``) where the listing does not look.
    """
    files, row = row_files(config), row_name(config)
    if not all(files):
        raise InputError(f"--configs {config!r}: an empty file name in it ('+' at an end or twice): give a.yaml or a.yaml+b.yaml")
    if not row or row.startswith("."):
        raise InputError(
            f"--configs {config!r}: its row would be named {row!r} (after its last file), not a folder --status can list: "
            "name its last file as the row (not empty, not starting with '.')"
        )
    return [read_config(file, named=f"--configs row {row!r}: {file}") for file in files]


def check_args(args: list[str], rows: dict[str, list[str]], owned: dict[str, str] = OWNED) -> None:
    """Refuse in ``--args`` an option the sweep sets itself for each run (``rows[row]``: a row's DDP options), which the
    sweep's own, given after it, would silently override; ``owned``: the options a tool sets, and what to give instead."""
    ddp = "the sweep sets it for a row on several GPUs: give --slurm.nodes, --slurm.gpus_per_node (the config's batch divided)"
    owned = owned | {option: ddp for options in rows.values() for option in options if option.startswith("--")}
    for arg in args:
        key = arg.split("=", 1)[0].replace(".init_args.", ".")
        if key in owned:
            raise InputError(f"--args {arg!r}: {owned[key]}")


def plan(configs: list[str], seeds: list[int], out: Path, args: list[str], rows: dict[str, list[str]]) -> list[Run]:
    """Every config times every seed, in order. Each run's ``bam fit`` takes its row's files, then ``args`` (the user's:
    a ``--config`` in them comes after the row's), then the sweep's own options, ``rows[row]`` among them: those win."""
    check_args(args, rows)
    for config in configs:
        read_configs(config)
    names = [row_name(config) for config in configs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"--configs: rows named {', '.join(twice)} twice: each row is named after its last file")
    runs = []
    for config, row in zip(configs, names, strict=True):
        files = [str(Path(file).resolve()) for file in row_files(config)]
        for seed in seeds:
            folder = out.resolve() / row / f"seed{seed}"
            command = ["fit", *(a for f in files for a in ("--config", f)), *args]
            command += ["--seed_everything", str(seed), "--trainer.default_root_dir", str(folder), *rows.get(row, [])]
            runs.append(Run(row, seed, folder, [*command, "--ckpt_path", "last"]))
    return runs


def read_state(folder: Path) -> dict[str, Any]:
    """The run's ``sweep.json``, or ``{"state": "missing"}`` where no job has started it. A file that is no state (cut
    short by a full disk, edited by hand) says nothing of the run's job, which may still train: refused, never guessed."""
    path = folder / STATE
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"state": "missing"}
    except OSError as error:  # a folder, a file one may not read
        found = f"cannot be read ({error.strerror})"
    except ValueError as error:  # empty, cut short, not text
        found = f"not JSON ({error})"
    else:
        if isinstance(state, dict) and state.get("state") in STATES:
            return state
        found = f"no state of {', '.join(STATES)}"
    raise InputError(
        f"{path}: {found}: if no job of this run still runs (squeue, ps), delete the file: the next bam sweep resumes the "
        "run from its last.ckpt"
    )


def write_state(folder: Path, **state: Any) -> None:
    """Replace the run's ``sweep.json`` whole (written beside, then renamed): a reader never sees half of it."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{STATE}.{os.getpid()}"
    partial.write_text(json.dumps(state, sort_keys=True))
    partial.replace(folder / STATE)


def last_line(folder: Path) -> str:
    """The last non-empty line ``bam fit`` printed in the run's log: why it failed."""
    try:
        lines = [line.strip() for line in (folder / LOG).read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return f"no {LOG}"
    return lines[-1] if lines else f"{LOG} is empty"


def where(state: dict[str, Any], queued: dict[str, str]) -> tuple[str, str]:
    """What a run is doing now, and why: done, running, pending, failed, stopped or missing.

    ``queued`` maps the SLURM jobs in the queue to pending or running. A local job is running while
    its process lives. Anything else that has not ended (done or failed) is stopped: no job will
    continue it, the next ``bam sweep`` resumes it.
    """
    name = state["state"]
    if name in ENDED:
        return name, state.get("why", "")
    job = str(state.get("job", ""))
    if state.get("launcher") == "slurm" and job in queued:
        return queued[job], f"SLURM job {job}"
    if state.get("launcher") == "local" and _alive(state.get("pid")):
        return "running", f"pid {state['pid']}"
    return "stopped", state.get("why") or f"its job ({job or 'none'}) ended without a word: resumed by the next bam sweep"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
