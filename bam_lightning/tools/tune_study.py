"""The Optuna study of a ``bam tune``: where it is stored, opened checked against the space it was made with, and what it
yields (the table of its trials, ``best.yaml``, Optuna's plots).

Storage: by default a journal file in ``--out`` (``study.journal``: one machine, whose file system locks); for trials
on many nodes an RDB URL, ``postgresql+psycopg://user@host/db``, answered within ``CONNECT_S`` seconds or refused.
SQLite and journal files on a network file system lose or lock writes (Optuna issues 820, 5138): docs/research.md.
"""

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputError, one_line
from .summary import format_table
from .tune_space import write_delta

JOURNAL = "study.journal"
CONNECT_S = 5  # a database server that does not answer within this is refused, not waited for
ATTR = "bam_tune"  # the study's user attribute holding the space, metric and mode it was made with
STATES = {"COMPLETE": "done", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}
PLOTS = ("optimization_history.png", "param_importances.png")


def storage(url: str | None, out: Path, create: bool = True) -> Any:
    """The study's storage: the journal file in ``out`` (None where ``create`` is false and there is none yet), or the
    database at ``url``, reached now: one that cannot be is refused in one line."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its lines of each trial created: the driver prints its own
    if url is None:
        path = out / JOURNAL
        if not create and not path.is_file():
            return None
        out.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    connect = {"connect_args": {"connect_timeout": CONNECT_S}} if url.startswith("postgresql") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=connect)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise InputError(f"--storage {url}: cannot reach it: {one_line(error)[:400]}: check the URL and the server") from None


def settings(space: dict[str, Any], metric: str, mode: str) -> dict[str, Any]:
    """What a study is made with, as its user attribute holds it (JSON: a tuple is a list there)."""
    return json.loads(json.dumps({"space": space, "metric": metric, "mode": mode}))


def open_study(store: Any, name: str, made: dict[str, Any], sampler: Any, pruner: Any, create: bool = True) -> Any:
    """The study ``name`` in ``store``, made with ``made`` (``settings``) where it is new (None where ``create`` is false):
    one made with another space, metric or mode is refused, never mixed."""
    import optuna

    if store is None:
        return None
    try:
        study = optuna.load_study(study_name=name, storage=store, sampler=sampler, pruner=pruner)
    except KeyError:
        if not create:
            return None
        direction = "minimize" if made["mode"] == "min" else "maximize"
        study = optuna.create_study(study_name=name, storage=store, sampler=sampler, pruner=pruner, direction=direction)
        study.set_user_attr(ATTR, made)
        return study
    found = study.user_attrs.get(ATTR)
    if found != made:
        differs = [key for key in made if found is None or found.get(key) != made[key]] if isinstance(found, dict) else []
        what = f"another {' and '.join(differs)}" if differs else "no bam tune settings"
        raise InputError(
            f"--study {name}: it exists in the storage with {what}: give another --study name for this search, or the "
            "same --space, --metric and --mode to continue it"
        )
    return study


def trial_rows(study: Any, out: Path) -> tuple[list[str], list[list[str | None]]]:
    """The table of a study's trials: their values, metric, state and run folder."""
    keys = list(study.user_attrs[ATTR]["space"])
    header = ["trial", *keys, study.user_attrs[ATTR]["metric"], "state", "run"]
    cells = []
    for trial in study.get_trials(deepcopy=False):
        reported = trial.intermediate_values  # a trial not finished: its last epoch's
        value = trial.value if trial.value is not None else (reported[max(reported)] if reported else None)
        retry = trial.user_attrs.get("retry_of")
        state = STATES.get(trial.state.name, trial.state.name.lower()) + (f" (retry of {retry})" if retry is not None else "")
        folder = trial.user_attrs.get("run")
        cells.append(
            [
                str(trial.number),
                *(_shown(trial.params[key]) if key in trial.params else None for key in keys),
                f"{value:.4g}" if value is not None else None,
                state,
                str(Path(folder).relative_to(out.resolve())) if folder and Path(folder).is_relative_to(out.resolve()) else folder,
            ]
        )
    return header, cells


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(study: Any, out: Path, fmt: str = "table") -> str:
    header, cells = trial_rows(study, out)
    text = format_table(header, cells, fmt)
    return text if fmt != "table" else "\n".join("  " + line for line in text.splitlines())


def finish(study: Any, out: Path) -> list[Path]:
    """``best.yaml`` (the best finished trial's values, a config delta ``bam fit --config BASE --config best.yaml`` takes)
    and Optuna's plots, in ``out``; the files written (none before a trial has finished)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return []
    best = study.best_trial
    metric = study.user_attrs[ATTR]["metric"]
    said = f"bam tune: trial {best.number} of study {study.study_name}, {metric} {best.value:.6g}"
    write_delta(out / "best.yaml", best.params, said)
    written = [out / "best.yaml"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are marked experimental
        drawn = [plots.plot_optimization_history(study, target_name=metric)]
        if len(done) > 1:
            drawn.append(plots.plot_param_importances(study, target_name=metric))
    for axes, name in zip(drawn, PLOTS, strict=False):
        figure = axes.figure
        figure.set_size_inches(7, 4)
        figure.tight_layout()
        figure.savefig(out / name, dpi=100, bbox_inches="tight")  # the history plot's legend sits outside its axes
        plt.close(figure)
        written.append(out / name)
    return written
