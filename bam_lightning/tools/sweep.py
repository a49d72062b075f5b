"""``bam sweep``: every config times every seed, one ``bam fit`` each, on this machine or as one SLURM job array.

    bam sweep --configs A.yaml B.yaml+delta.yaml --seeds 0 1 2 --out runs/sweep [--args "..."]
              [--launcher local --local.parallel N | --launcher slurm --slurm.partition P ...] [--dry_run]
    bam sweep --status runs/sweep

Runs go to ``OUT/<row>/seed<k>/`` (``sweep_runs``). The sweep is idempotent: run again, it skips
the runs that are done and those still queued or running, resumes the unfinished ones from their
``last.ckpt`` and starts the missing ones, all read from the runs' folders; ``--dry_run`` prints that
plan (and the ``#SBATCH`` lines) and submits nothing. Every mistake in the input is refused in one
line before anything is submitted. The local launcher waits for its runs and ends with ``bam
compare``'s table; SLURM's array is submitted and left to run (``--status`` follows it).
"""

import contextlib
import io
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentParser

from ..errors import InputError, check_output_folder, check_seed, one_line
from . import parse, tool_parser
from . import slurm as slurm_options
from .summary import format_table
from .sweep_job import FitJob
from .sweep_runs import ENDED, STATE, Run, batch_size, plan, read_configs, read_state, row_name, where, write_state

SUBMITIT = ".submitit"  # submitit's job files (pickles, logs) under OUT
ACTIONS = {"done": "skip", "running": "skip", "pending": "skip", "missing": "start", "stopped": "resume", "failed": "resume"}


def build_parser() -> ArgumentParser:
    parser = tool_parser("bam sweep", "Configs times seeds, one bam fit each: locally or as a SLURM job array.")
    parser.add_argument("--configs", type=str, nargs="+", metavar="CONFIG[+DELTA]", help="a row each; a Table 3 config+its delta")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="each row runs once per seed")
    parser.add_argument("--out", type=str, default="runs/sweep", help="runs go to OUT/<row>/seed<k>/")
    parser.add_argument("--args", type=str, default="", help='more bam fit options for every run: "--trainer.max_epochs 5"')
    parser.add_argument("--launcher", type=Literal["local", "slurm"], default="local")
    parser.add_argument("--local.parallel", type=int, default=1, help="runs at once")
    for key, (kind, default, text) in slurm_options.OPTIONS.items():
        parser.add_argument(f"--slurm.{key}", type=kind if default is not None else kind | None, default=default, help=text)
    parser.add_argument("--dry_run", action="store_true", help="print the plan and the sbatch options; submit nothing")
    parser.add_argument("--status", type=str | None, metavar="OUT", help="print where each run of the sweep under OUT stands")
    return parser


def slurm_params(options: Any) -> dict[str, Any]:
    """The ``--slurm.*`` values by key, each checked."""
    values = {key: options[f"slurm.{key}"] for key in slurm_options.OPTIONS}
    values["sbatch"] = values["sbatch"] or []
    for key in ("partition", "account", "qos", "mem"):
        if values[key] is not None and not values[key].strip():
            raise InputError(f"--slurm.{key} {values[key]!r}: give a value, or leave the option out for the cluster's")
    for key in ("nodes", "time", "array_parallelism", "cpus_per_task"):
        if values[key] is not None and values[key] < 1:
            raise InputError(f"--slurm.{key} {values[key]}: give 1 or more")
    for key in ("gpus_per_node", "signal_delay"):
        if values[key] < 0:
            raise InputError(f"--slurm.{key} {values[key]}: give 0 or more")
    if values["signal_delay"] >= values["time"] * 60:
        raise InputError(f"--slurm.signal_delay {values['signal_delay']} s is not shorter than --slurm.time {values['time']} min")
    return values


def _runs(options: Any, slurm: dict[str, Any] | None) -> list[Run]:
    """The sweep's runs, every input checked (before anything is submitted)."""
    if not options.configs:
        raise InputError("bam sweep: give --configs A.yaml [B.yaml+delta.yaml ...] (or --status OUT)")
    if not options.seeds:
        raise InputError("--seeds: the seed list is empty: give one seed or more, e.g. --seeds 0 1 2")
    if len(set(options.seeds)) < len(options.seeds):
        raise InputError(f"--seeds {' '.join(map(str, options.seeds))}: a seed given twice: give each seed once")
    for seed in options.seeds:
        check_seed(seed, "--seeds")
    if options.local.parallel < 1:
        raise InputError(f"--local.parallel {options.local.parallel}: give 1 or more")
    try:
        args = shlex.split(options.args)
    except ValueError as error:
        raise InputError(f"--args {options.args!r}: {error}: quote as a shell does") from None
    check_output_folder(Path(options.out), "--out")
    ddp = {}
    if slurm is not None and slurm_options.world_size(slurm) > 1:
        for config in options.configs:
            ddp[row_name(config)] = slurm_options.ddp_args(slurm, batch_size(read_configs(config)), row_name(config))
    return plan(options.configs, options.seeds, Path(options.out), args, ddp)


def _states(runs: list[Run]) -> list[tuple[str, str]]:
    """Where each run stands now, asking SLURM's queue where a run submitted to it has not ended: a queue that cannot be
    read is an error (``SlurmFailed``), never an empty queue, which would take a training run for a stopped one."""
    states = [read_state(run.folder) for run in runs]
    asks = any(state.get("launcher") == "slurm" and state["state"] not in ENDED for state in states)
    queue = slurm_options.queued() if asks else {}
    return [where(state, queue) for state in states]


def _table(runs: list[Run], states: list[tuple[str, str]], actions: list[str] | None = None) -> str:
    header = ["run", "state", *(["action"] if actions else []), "why"]
    cells = [
        [run.name, state, *([actions[i]] if actions else []), why or None]
        for i, (run, (state, why)) in enumerate(zip(runs, states, strict=True))
    ]
    return "\n".join("  " + line for line in format_table(header, cells, "table").splitlines())


def status(out: Path) -> None:
    """``--status OUT``: every run of the sweep under OUT and where it stands."""
    if not out.is_dir():
        raise InputError(f"--status {out}: no such folder: give the --out of a bam sweep")
    found = [folder for folder in out.glob("*/seed*") if folder.name[4:].isdigit() and (folder / STATE).is_file()]
    runs = sorted((Run(folder.parent.name, int(folder.name[4:]), folder, []) for folder in found), key=lambda r: (r.row, r.seed))
    if not runs:
        raise InputError(f"--status {out}: no run of bam sweep under it (OUT/<row>/seed<k>/sweep.json)")
    states = _states(runs)
    counts = {name: sum(state == name for state, _ in states) for name in dict.fromkeys(state for state, _ in states)}
    print(f"bam sweep: {len(runs)} runs under {out}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    print(_table(runs, states))


def _submit_slurm(runs: list[Run], out: Path, params: dict[str, Any]) -> None:
    from submitit.core.utils import FailedJobError

    executor = slurm_options.executor(out / SUBMITIT, params)
    jobs = []
    try:
        with contextlib.redirect_stderr(io.StringIO()), executor.batch():  # submitit prints sbatch's refusal: said below
            for run in runs:
                jobs.append(executor.submit(FitJob(run, "slurm")))
    except FailedJobError as error:  # one sbatch for the whole array: nothing was submitted
        raise slurm_options.SlurmFailed(f"sbatch refused the job array, nothing submitted: {one_line(error)}") from None
    for run, job in zip(runs, jobs, strict=True):
        if read_state(run.folder).get("job") != job.job_id:  # the job may have started already and written its own
            write_state(run.folder, state="submitted", launcher="slurm", job=job.job_id)
    print(f"bam sweep: submitted {len(jobs)} runs as SLURM job array {jobs[0].job_id.split('_')[0]}; bam sweep --status {out}")


def _run_local(runs: list[Run], out: Path, parallel: int) -> None:
    """Every run on this machine, ``parallel`` at once, waiting for them all.

    Ctrl-C in a terminal reaches the runs too (one process group): each stops after its batch with last.ckpt, as ``bam
    fit`` does, while this waits for them; a second Ctrl-C stops everything at once.
    """
    import submitit

    executor = submitit.LocalExecutor(folder=out / SUBMITIT / "%j")
    executor.update_parameters(timeout_min=60 * 24 * 365)  # no time limit on one's own machine
    waiting, started = list(runs), []
    try:
        while waiting or started:
            while waiting and len(started) < parallel:
                start_run(executor, waiting.pop(0), started)
            _report_ended(started)
    except KeyboardInterrupt:
        print("bam: Ctrl-C: waiting for the runs to stop after their batch (press it again to stop at once)", file=sys.stderr)
        while started:
            _report_ended(started)
        raise


def start_run(executor: Any, run: Run, started: list[tuple[Run, Any, float]]) -> None:
    """The run started, and added to ``started``, by submitit's controller process, which would answer a Ctrl-C by
    killing the run: it starts with SIGINT blocked, and so does the run under it, until ``bam fit`` is ready for it
    (``sweep_job._bam``)."""
    kept = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the processes started inherit the mask
    try:
        job = executor.submit(FitJob(run, "local"))
        write_state(run.folder, state="submitted", launcher="local", job=job.job_id, pid=int(job.job_id))
        started.append((run, job, time.monotonic()))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, kept)  # a Ctrl-C meanwhile arrives now, the run in started


def _report_ended(started: list[tuple[Run, Any, float]]) -> None:
    """A line for each run that ended, taken off ``started``."""
    time.sleep(0.2)
    for entry in [entry for entry in started if entry[1].done()]:
        started.remove(entry)
        run, _, start = entry
        state, why = where(read_state(run.folder), {})
        print(f"bam sweep: {run.name} {state} after {time.monotonic() - start:.0f} s{f': {why}' if why else ''}", flush=True)


def args_joined(args: list[str]) -> list[str]:
    """``--args VALUE`` as ``--args=VALUE``: argparse takes a lone ``--trainer.max_epochs=5`` (no space in it) after
    ``--args`` for an option of its own, where it can only be the value of ``--args``."""
    joined, given = [], iter(args)
    for arg in given:
        value = next(given, None) if arg == "--args" else None
        joined.append(arg if value is None else f"--args={value}")
    return joined


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args_joined(sys.argv[1:] if args is None else args))
    if options.status is not None:
        return status(Path(options.status))
    out = Path(options.out)
    slurm = slurm_params(options) if options.launcher == "slurm" else None
    runs = _runs(options, slurm)
    if slurm is not None:
        slurm_options.check_sbatch()
    states = _states(runs)
    actions = [ACTIONS[state] for state, _ in states]
    todo = [run for run, action in zip(runs, actions, strict=True) if action != "skip"]
    rows = len(dict.fromkeys(run.row for run in runs))
    print(f"bam sweep: {len(runs)} runs ({rows} rows x {len(options.seeds)} seeds) under {out}, launcher {options.launcher}")
    print(_table(runs, states, actions))
    params = slurm_options.parameters(slurm, f"bam-sweep-{out.resolve().name}") if slurm is not None else {}
    if todo and slurm is not None:
        print(f"  one job array of {len(todo)}:")
        print("\n".join(f"    {line}" for line in slurm_options.sbatch_lines(params, out.resolve() / SUBMITIT, len(todo))))
    if options.dry_run:
        print("\n".join(f"  {run.name}: bam {shlex.join(run.command)}" for run in todo))
        print(f"bam sweep: dry run: {len(todo)} runs would be submitted; nothing submitted")
        return
    if todo and slurm is not None:
        return _submit_slurm(todo, out, params)
    if todo:
        _run_local(todo, out, options.local.parallel)
    else:
        print("bam sweep: nothing to submit")
    if slurm is None or all(state == "done" for state, _ in states):  # SLURM's runs still queued: --status follows them
        _finish(runs, out)


def _finish(runs: list[Run], out: Path) -> None:
    """A local sweep's end: the runs that did not finish (exit 1), or ``bam compare``'s table of them all."""
    states = _states(runs)
    unfinished = [(run, state) for run, state in zip(runs, states, strict=True) if state[0] != "done"]
    if unfinished:
        print(_table([run for run, _ in unfinished], [state for _, state in unfinished]), file=sys.stderr)
        raise SystemExit(f"bam sweep: {len(unfinished)} of {len(runs)} runs did not finish (bam sweep --status {out})")
    from .compare import collect, render  # TensorBoard's reader: seconds of imports, for the end of a sweep only

    print(render(collect([run.folder for run in runs]), "val/err1"))


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["sweep", *sys.argv[1:]])
