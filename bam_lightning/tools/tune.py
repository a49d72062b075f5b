"""``bam tune``: a hyperparameter search with Optuna, each trial a ``bam fit`` started by ``bam sweep``'s launchers.

    bam tune --config BASE.yaml [--config DELTA.yaml] --space SPACE.yaml --trials N [--parallel K] --out DIR
             [--launcher local | --launcher slurm --slurm.partition P ...] [--storage postgresql+psycopg://...]
             [--study NAME] [--metric val/err1 --mode min] [--pruner median|halving|none] [--seed S] [--args "..."]
             [--status] [--dry_run]

Ask and tell, in this driver: it asks Optuna (TPE, with the constant liar for trials running side by side) for a
trial's values, once, writes them as a config delta (``OUT/trial<N>/values.yaml``) and starts ``bam fit --config BASE
--config values.yaml`` in ``OUT/trial<N>/`` (a local process or a SLURM job: ``sweep_job.FitJob``). Every DDP process
of a trial, and every requeued or resumed attempt of it, trains those values. The driver reads each running trial's
per-epoch metric from its TensorBoard events, reports it to Optuna, and stops a trial Optuna's pruner prunes by SIGTERM
(``last.ckpt`` kept; ``scancel --signal=TERM`` under SLURM); a trial that ends is told its last epoch's metric.

``--trials N`` is the study's total. Run again, the driver continues the study: finished trials are kept, a trial still
running (its local process alive, its SLURM job queued) is followed, not started twice, one stopped (preempted, the
driver stopped) is resumed from its ``last.ckpt``, and a failed trial is retried once with its values.
"""

import contextlib
import io
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentParser

from ..cli.given import read_config
from ..errors import InputError, check_output_folder, check_seed, nearest
from . import parse, tool_parser
from . import slurm as slurm_options
from .compare import scalars
from .sweep import SUBMITIT, args_joined, slurm_params, start_run
from .sweep_job import FitJob
from .sweep_runs import OWNED, Run, batch_size, check_args, read_state, where, write_state
from .tune_space import corners, distributions, read_space, write_delta
from .tune_study import ATTR, PLOTS, finish, open_study, settings, storage, table

VALUES = "values.yaml"  # a trial's sampled values, in its run folder: the config delta its bam fit reads
POLL_S = 2.0  # how often the driver reads the running trials' metrics and states
RESUMES = 3  # a trial whose run stops more often than this, in one driver, is failed: something kills it (memory?)
TUNE_OWNED = OWNED | {
    "--seed_everything": "bam tune sets every trial's seed: give it with --seed",
    "--trainer.default_root_dir": "bam tune sets each trial's folder, OUT/trial<N>: give OUT with --out",
    "--ckpt_path": "bam tune sets what each trial resumes from: its own last.ckpt",
}


def build_parser() -> ArgumentParser:
    parser = tool_parser("bam tune", "A hyperparameter search with Optuna; each trial a bam fit, locally or on SLURM.")
    parser.add_argument("--config", type=str, action="append", metavar="CONFIG", help="bam fit's configs, in order")
    parser.add_argument("--space", type=str | None, help="SPACE.yaml: dotted bam fit keys -> {type: float|int|categorical, ...}")
    parser.add_argument("--trials", type=int, default=10, help="the study's total; run again with more, it adds the difference")
    parser.add_argument("--parallel", type=int, default=1, help="trials running at once")
    parser.add_argument("--out", type=str, default="runs/tune", help="trials run in OUT/trial<N>/; best.yaml and plots in OUT")
    parser.add_argument("--storage", type=str | None, help="an RDB URL (postgresql+psycopg://...); default: OUT/study.journal")
    parser.add_argument("--study", type=str, default="bam-tune", help="the study's name in the storage")
    parser.add_argument("--metric", type=str, default="val/err1", help="what each trial is scored by, its last epoch's value")
    parser.add_argument("--mode", type=Literal["min", "max"], default="min")
    parser.add_argument("--pruner", type=Literal["median", "halving", "none"], default="median", help="Optuna's pruner")
    parser.add_argument("--prune_after", type=int, default=5, help="median: finished trials before it prunes")
    parser.add_argument("--prune_warmup", type=int, default=0, help="median: epochs each trial runs before it may be pruned")
    parser.add_argument("--seed", type=int, default=0, help="every trial's seed_everything, and the sampler's")
    parser.add_argument("--args", type=str, default="", help='more bam fit options for every trial: "--trainer.max_epochs 5"')
    parser.add_argument("--launcher", type=Literal["local", "slurm"], default="local")
    for key, (kind, default, text) in slurm_options.OPTIONS.items():
        parser.add_argument(f"--slurm.{key}", type=kind if default is not None else kind | None, default=default, help=text)
    parser.add_argument("--status", action="store_true", help="print the study's trials; start nothing")
    parser.add_argument("--dry_run", action="store_true", help="print what would be started; start nothing")
    return parser


@dataclass
class Plan:
    """What every trial's ``bam fit`` takes: the configs (absolute), ``--args``, the seed and the DDP options."""

    configs: list[str]
    args: list[str]
    seed: int
    ddp: list[str]
    out: Path

    def run(self, number: int) -> Run:
        folder = self.out.resolve() / f"trial{number}"
        command = ["fit", *(a for file in self.configs for a in ("--config", file)), "--config", str(folder / VALUES)]
        command += [*self.args, "--seed_everything", str(self.seed), "--trainer.default_root_dir", str(folder), *self.ddp]
        return Run(f"trial{number}", self.seed, folder, [*command, "--ckpt_path", "last"])


def _plan(options: Any, slurm: dict[str, Any] | None) -> Plan:
    configs = list(options.config or [])
    if not configs:
        raise InputError("bam tune: give --config BASE.yaml [--config DELTA.yaml] and --space SPACE.yaml (or --status)")
    settings = [read_config(file, named=f"--config {file}") for file in configs]
    try:
        args = shlex.split(options.args)
    except ValueError as error:
        raise InputError(f"--args {options.args!r}: {error}: quote as a shell does") from None
    ddp = slurm_options.ddp_args(slurm, batch_size(settings), "tune") if slurm is not None else []
    check_args(args, {"tune": ddp}, TUNE_OWNED)
    check_seed(options.seed, "--seed")
    return Plan([str(Path(file).resolve()) for file in configs], args, options.seed, ddp, Path(options.out))


def _check_numbers(options: Any) -> None:
    for key, least in (("trials", 1), ("parallel", 1), ("prune_after", 0), ("prune_warmup", 0)):
        if options[key] < least:
            raise InputError(f"--{key} {options[key]}: give {least} or more")


def check_metric(plan: Plan, metric: str) -> None:
    """Refuse a ``--metric`` the task does not log once an epoch (its ``HPARAM_METRICS`` of validation)."""
    from ..cli import task_of

    model_class, _ = task_of(["fit", *(a for file in plan.configs for a in ("--config", file)), *plan.args])
    logged = [name for name in model_class.HPARAM_METRICS if name.startswith("val/")]
    if metric not in logged:
        every = f"not a metric {model_class.__name__} logs every epoch{nearest(metric, logged)}"
        raise InputError(f"--metric {metric}: {every}: give one of {', '.join(logged)}")


def check_trial_config(plan: Plan, space: dict[str, Any], where: str) -> None:
    """Ask ``bam fit``'s own parser, with its classes built (nothing run, nothing written), to take the configs, ``--args``
    and the space's values at either end: an unknown key gets its nearest option, a value its check, as in a config."""
    from ..cli import build_cli

    with tempfile.TemporaryDirectory() as folder:
        for values in corners(space):
            delta = Path(folder) / VALUES
            write_delta(delta, values, "bam tune: the space's ends, checked")
            args = [*(a for file in plan.configs for a in ("--config", file)), "--config", str(delta), *plan.args]
            args += ["--trainer.default_root_dir", str(Path(folder) / "run"), "--trainer.logger", "false"]
            try:
                with _quiet():
                    build_cli(args, run=False)
            except InputError as error:
                raise InputError(f"{where}: a trial's bam fit would refuse it: {error}") from None


@contextlib.contextmanager
def _quiet() -> Any:
    """What building a trainer prints (devices found, the seed set), not shown: the check is silent where it passes."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def metric_values(folder: Path, metric: str) -> list[float]:
    """The run's ``metric``, once an epoch, in order, from its TensorBoard events (every attempt's, one run folder)."""
    found: dict[int, float] = {}
    for events in sorted({file.parent for file in (folder / "lightning_logs").glob("*/events.out.tfevents.*")}):
        found |= {step: value for step, (_, value) in scalars(events).get(metric, {}).items()}
    return [found[step] for step in sorted(found)]


@dataclass
class Active:
    """A trial whose run this driver follows: its Optuna trial, its run and the local job (None under SLURM or adopted)."""

    trial: Any
    run: Run
    job: Any = None
    pruned: bool = False
    reported: set[int] = field(default_factory=set)
    resumed: int = 0  # by this driver, after its run stopped


class Driver:
    """Asks, starts, follows, prunes and tells: the study's trials up to ``--trials``, ``parallel`` at once."""

    def __init__(self, study: Any, store: Any, space: dict[str, Any], plan: Plan, options: Any, slurm: dict | None) -> None:
        self.study, self.store, self.space, self.plan, self.slurm = study, store, space, plan, slurm
        self.metric, self.total, self.parallel = options.metric, options.trials, options.parallel
        self.active: list[Active] = []
        self.executor: Any = None
        if slurm is not None:
            params = slurm_options.parameters(slurm, f"bam-tune-{study.study_name}")
            self.executor = slurm_options.executor(plan.out / SUBMITIT, params)
        else:
            import submitit

            self.executor = submitit.LocalExecutor(folder=plan.out / SUBMITIT / "%j")
            self.executor.update_parameters(timeout_min=60 * 24 * 365)

    def counted(self) -> int:
        """The study's trials that count towards ``--trials``: all but the retries of failed ones."""
        return sum("retry_of" not in trial.user_attrs for trial in self.study.get_trials(deepcopy=False))

    def _trial(self, number: int) -> Any:
        import optuna

        study_id = self.store.get_study_id_from_name(self.study.study_name)
        return optuna.trial.Trial(self.study, self.store.get_trial_id_from_study_id_trial_number(study_id, number))

    def retry_failed(self) -> None:
        """A failed trial (not itself a retry) enqueued again with its values, once."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {trial.user_attrs["retry_of"] for trial in trials if "retry_of" in trial.user_attrs}
        for trial in trials:
            if trial.state.name == "FAIL" and "retry_of" not in trial.user_attrs and trial.number not in retried:
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                print(f"bam tune: trial {trial.number} failed ({trial.user_attrs.get('why', 'no reason kept')}): retried once")

    def adopt(self) -> None:
        """The study's running trials, from an earlier driver: followed where their run lives, resumed where it stopped."""
        queue = self._queue()
        for frozen in self.study.get_trials(deepcopy=False, states=(self._state("RUNNING"),)):
            run = self.plan.run(frozen.number)
            active = Active(self._trial(frozen.number), run, reported=set(frozen.intermediate_values))
            state, _ = where(read_state(run.folder), queue)
            if not (run.folder / VALUES).is_file():  # asked, never written: its values are the study's
                write_delta(run.folder / VALUES, frozen.params, f"bam tune: trial {frozen.number}")
            if state in ("running", "pending"):
                print(f"bam tune: trial {frozen.number} {state}: followed")
            elif state != "done" and state != "failed":
                print(f"bam tune: trial {frozen.number} {state}: resumed")
                self._launch(active)
            self.active.append(active)

    def _state(self, name: str) -> Any:
        import optuna

        return optuna.trial.TrialState[name]

    def _queue(self) -> dict[str, str]:
        return slurm_options.queued() if self.slurm is not None else {}

    def ask(self) -> None:
        trial = self.study.ask(distributions(self.space))
        run = self.plan.run(trial.number)
        trial.set_user_attr("run", str(run.folder))
        write_delta(run.folder / VALUES, trial.params, f"bam tune: trial {trial.number} of study {self.study.study_name}")
        shown = ", ".join(f"{key}={value}" for key, value in trial.params.items())
        print(f"bam tune: trial {trial.number} started: {shown}", flush=True)
        active = Active(trial, run)
        self._launch(active)
        self.active.append(active)

    def _launch(self, active: Active) -> None:
        if self.slurm is None:
            started: list[tuple[Run, Any, float]] = []
            start_run(self.executor, active.run, started)
            active.job = started[0][1]
        else:
            job = self.executor.submit(FitJob(active.run, "slurm"))
            if read_state(active.run.folder).get("job") != job.job_id:  # the job may have started and written its own
                write_state(active.run.folder, state="submitted", launcher="slurm", job=job.job_id)

    def follow(self) -> None:
        """Each active trial's new epochs reported (pruned where Optuna says); the trials whose run ended told."""
        queue = self._queue()
        for active in list(self.active):
            if not active.pruned:
                self._report(active)
            if active.job is not None and not active.job.done():
                continue
            state, why = where(read_state(active.run.folder), queue)
            if state in ("running", "pending"):
                continue
            self.active.remove(active)
            number = active.trial.number
            if active.pruned:
                print(f"bam tune: trial {number} pruned", flush=True)
            elif state == "done":
                values = self._report(active)  # its last epochs too, logged since the top of this loop
                if values:
                    self.study.tell(active.trial, values[-1])
                    print(f"bam tune: trial {number} done: {self.metric} {values[-1]:.4g}", flush=True)
                else:
                    self._fail(active, f"it logged no {self.metric}")
            elif state == "failed":
                self._fail(active, why)
            elif active.resumed >= RESUMES:
                self._fail(active, f"stopped {RESUMES + 1} times, the last: {why}")
            else:  # stopped (preempted and not requeued, a SIGTERM from outside): resumed
                print(f"bam tune: trial {number} {state} ({why}): resumed", flush=True)
                active.resumed += 1
                self._launch(active)
                self.active.append(active)

    def _fail(self, active: Active, why: str) -> None:
        active.trial.set_user_attr("why", why)
        self.study.tell(active.trial, state=self._state("FAIL"))
        print(f"bam tune: trial {active.trial.number} failed: {why}", flush=True)

    def _report(self, active: Active) -> list[float]:
        """The run's epochs not reported yet, reported (pruned where Optuna says); every epoch's value, as read."""
        values = metric_values(active.run.folder, self.metric)
        for step, value in enumerate(values):
            if step in active.reported:
                continue
            active.trial.report(value, step)
            active.reported.add(step)
            if active.trial.should_prune():
                self._prune(active, step, value)
                break
        return values

    def _prune(self, active: Active, step: int, value: float) -> None:
        """Stopped by SIGTERM as a preempted run is (the batch finished, last.ckpt kept), and told pruned now."""
        state = read_state(active.run.folder)
        if self.slurm is not None:
            subprocess.run(["scancel", "--signal=TERM", str(state["job"])], capture_output=True)
        elif isinstance(state.get("pid"), int):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state["pid"], signal.SIGTERM)
        active.pruned = True
        self.study.tell(active.trial, state=self._state("PRUNED"))
        print(f"bam tune: trial {active.trial.number} pruned after epoch {step + 1} ({self.metric} {value:.4g})", flush=True)

    def drive(self) -> None:
        try:
            while True:
                while len(self.active) < self.parallel and (self._waiting() or self.counted() < self.total):
                    self.ask()
                if not self.active:
                    return
                time.sleep(POLL_S)
                self.follow()
        except KeyboardInterrupt:  # the local runs got the Ctrl-C too: each stops after its batch
            print("bam: Ctrl-C: waiting for the trials to stop after their batch", file=sys.stderr)
            while any(active.job is not None and not active.job.done() for active in self.active):
                time.sleep(0.2)
            for active in self.active:  # submitit's job objects let go now, not at the interpreter's teardown (a traceback)
                active.job = None
            raise

    def _waiting(self) -> bool:
        return bool(self.study.get_trials(deepcopy=False, states=(self._state("WAITING"),)))


def _sampler_and_pruner(options: Any, store: Any) -> tuple[Any, Any]:
    """TPE with the constant liar, seeded anew for each driver (the seed plus the trials there are: a rerun does not draw
    its first trials' values again); the pruner chosen."""
    import optuna

    known = 0
    if store is not None:
        with contextlib.suppress(KeyError):
            known = len(store.get_all_trials(store.get_study_id_from_name(options.study), deepcopy=False))
    sampler = optuna.samplers.TPESampler(seed=options.seed + known, constant_liar=True)
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=options.prune_after, n_warmup_steps=options.prune_warmup),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[options.pruner]()
    return sampler, pruner


def status(options: Any) -> None:
    out = Path(options.out)
    store = storage(options.storage, out, create=False)
    study = None
    if store is not None:
        import optuna

        with contextlib.suppress(KeyError):
            study = optuna.load_study(study_name=options.study, storage=store)
    if study is None or ATTR not in study.user_attrs:
        where = options.storage or str(out / "study.journal")
        raise InputError(f"--status: no bam tune study {options.study!r} in {where}: give the --out, --storage, --study of one")
    _print_study(study, out)


def _print_study(study: Any, out: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    summary = ", ".join(f"{n} {name.lower()}" for name, n in counts.items())
    print(f"bam tune: study {study.study_name}: {len(trials)} trials ({summary})")
    print(table(study, out))


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args_joined(sys.argv[1:] if args is None else args))
    if options.status:
        return status(options)
    out = Path(options.out)
    _check_numbers(options)
    if options.space is None:
        raise InputError("bam tune: give --space SPACE.yaml: dotted bam fit keys and their distributions")
    space = read_space(options.space)
    slurm = slurm_params(options) if options.launcher == "slurm" else None
    plan = _plan(options, slurm)
    check_output_folder(out, "--out")
    check_metric(plan, options.metric)
    check_trial_config(plan, space, f"--space {options.space}")
    if slurm is not None:
        slurm_options.check_sbatch()
    made = settings(space, options.metric, options.mode)
    store = storage(options.storage, out, create=not options.dry_run)
    sampler, pruner = _sampler_and_pruner(options, store)
    study = open_study(store, options.study, made, sampler, pruner, create=not options.dry_run)
    if options.dry_run:
        return _dry_run(study, plan, options, slurm)
    driver = Driver(study, store, space, plan, options, slurm)
    driver.retry_failed()
    driver.adopt()
    driver.drive()
    _print_study(study, out)
    written = finish(study, out)
    if written:
        best = study.best_trial
        print(f"bam tune: best trial {best.number}, {options.metric} {best.value:.4g}: {out / 'best.yaml'}")
        print(f"  bam fit {' '.join(f'--config {file}' for file in plan.configs)} --config {out / 'best.yaml'}")
        print(f"  plots: {', '.join(str(out / name) for name in PLOTS if (out / name).is_file())}")


def _dry_run(study: Any, plan: Plan, options: Any, slurm: dict | None) -> None:
    counted = 0 if study is None else sum("retry_of" not in trial.user_attrs for trial in study.get_trials(deepcopy=False))
    if study is not None:
        _print_study(study, Path(options.out))
    new = max(options.trials - counted, 0)
    print(f"bam tune: {counted} trials in study {options.study}; {new} more would be started, {options.parallel} at once")
    if new:
        first = plan.run(counted)
        print(f"  trial{counted}: bam {shlex.join(first.command)}")
    if slurm is not None and new:
        params = slurm_options.parameters(slurm, f"bam-tune-{options.study}")
        lines = slurm_options.sbatch_lines(params, plan.out.resolve() / SUBMITIT, 1)
        print("\n".join(f"    {line}" for line in lines if "--array" not in line))
    print("bam tune: dry run: nothing started")


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["tune", *sys.argv[1:]])
