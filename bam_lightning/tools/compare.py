"""``bam compare``: the runs of one configuration pooled over seeds, and what attention changed.

A run is what ``bam fit`` leaves in ``lightning_logs/version_N/``: TensorBoard events and
the ``config.yaml`` LightningCLI saved. A row is one experiment: runs are pooled only where their
whole saved config is equal but for ``IGNORED`` (the seed, where the run writes, and options that
do not change what is trained), so that the seeds (``seed_everything``) of one experiment become
one row of mean ± std and anything else that differs (placement, detector, epochs, recipe, lr, a
new option) makes another row. Versions of one experiment with the same seed are one run resumed
(``--ckpt_path last`` goes on in the run's own folder; runs
resumed before it did, in ``version_N+1``): their values are merged by step, the one
written last winning. A sweep may still be running: a run that has logged nothing yet counts as
waiting in its row.

``--paper`` is the reproduction report (``report``): each row's final value beside the paper's
printed figure, each attention row's change from its baseline with Welch's 95 % interval and
p-value, written as report.md, report.csv and report.png beside the runs (or in ``--out``).

    bam compare runs/ [more/runs ...] [--metric val/err1] [--format markdown|csv] [--paper [--out DIR]]
"""

import json
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ArgumentParser

from ..cli.task import data_class
from ..engine.run_logs import read_events
from ..errors import InputError, check_output_folder
from ..models import get_model_entry, list_models
from . import parse, tool_parser
from .report import MEASURES, Bar, Spread, Welch, corruptions, half_interval, plot, printed_figure, ttest_ind, welch
from .summary import DATASET_CLASSES, ModelSpec, count_model, format_table, with_options

# Options of a saved config.yaml that may differ between runs pooled in one row (an entry covers its whole section):
# every other option, a new one included, makes a new experiment. Kept, for the global batch they may make: the
# trainer's accelerator, strategy, devices and num_nodes ("auto" does not say how many devices a run had).
IGNORED = (
    "seed_everything",  # what a row pools
    "ckpt_path", "weights_only",  # a run resumed goes on with the same experiment
    "trainer.default_root_dir", "trainer.logger", "trainer.callbacks.*.dirpath",  # where a run writes
    "checkpoint", "last_checkpoint", "trainer.enable_checkpointing",  # which checkpoints it keeps
    "lr_monitor", "attention_maps", "throughput", "trainer.log_every_n_steps", "trainer.enable_progress_bar",  # what it shows
    "trainer.enable_model_summary", "trainer.enable_autolog_hparams", "trainer.profiler", "trainer.model_registry",
    "trainer.num_sanity_val_steps", "trainer.detect_anomaly",  # checks on the way
    "trainer.deterministic", "trainer.benchmark", "model.compile", "model.channels_last",  # kernels of the same function
    "data.init_args.root", "data.init_args.num_workers", "data.init_args.pin_memory",  # where the data lie, how they load
    "data.init_args.persistent_workers", "data.init_args.predict_dir",
)  # fmt: skip
# Options the table's own columns show (dataset, backbone, attention), never repeated in its "differs" column.
SHOWN = ("data.class_path", "data.init_args.image_size", "model.backbone", "model.backbone_kwargs", "model.attention",
         "model.attention_kwargs", "model.placement")  # fmt: skip
ATTENTION = ("model.attention", "model.attention_kwargs", "model.placement")  # all an attention row's baseline lacks
ROW_KEYS = ("dataset", "backbone", "backbone_kwargs", "image_size", "attention", "attention_kwargs", "placement", "differs")


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every folder at or below ``paths`` that holds both TensorBoard events and a ``config.yaml``."""
    paths, runs = [Path(path) for path in paths], set()
    for path in paths:
        if not path.exists():
            raise InputError(f"no such folder {path}")
        runs |= {c.parent.resolve() for c in path.rglob("config.yaml") if any(c.parent.glob("events.out.tfevents.*"))}
    if not runs:
        raise InputError(
            f"no run under {', '.join(map(str, paths))}: a run is a folder with TensorBoard events and the config.yaml "
            "that `bam fit` saves (lightning_logs/version_N)"
        )
    return sorted(runs)


def _leaves(value: Any, key: str = "") -> dict[str, Any]:
    """``{"model.optimizer.init_args.lr": 0.1, ...}``: mappings (and lists of them, by position) as dotted keys.

    Unset options (None) and empty mappings are left out: LightningCLI saves an unset option as
    null, and a config saved before an option existed lacks it.
    """
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        value = dict(enumerate(value))
    if not isinstance(value, dict):
        return {} if value is None else {key: value}
    return {leaf: item for name, child in value.items() for leaf, item in _leaves(child, f"{key}.{name}".lstrip(".")).items()}


def _within(key: str, options: Iterable[str]) -> bool:
    """Whether the dotted ``key`` is one of ``options`` (``fnmatch`` patterns) or inside one of their sections."""
    return any(fnmatchcase(key, option) or fnmatchcase(key, f"{option}.*") for option in options)


def _experiment(config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The row a run belongs to (the names its columns show, and ``experiment``: every option outside ``IGNORED``),
    and its seed (None where the run was not seeded)."""
    model, data = _own_placement(config.get("model") or {}), config.get("data") or {}
    config = config | {"model": model}
    group = {
        "dataset": str(data.get("class_path", "")).rpartition(".")[2].removesuffix("DataModule"),
        "backbone": model.get("backbone"),
        "backbone_kwargs": model.get("backbone_kwargs") or {},
        "image_size": (data.get("init_args") or {}).get("image_size"),  # None: the dataset's fixed size (CIFAR)
        "attention": model.get("attention"),
        "attention_kwargs": model.get("attention_kwargs") or {},
        "placement": model.get("placement"),  # None: the backbone's own (the paper's Table 3)
        "experiment": {key: value for key, value in _leaves(config).items() if not _within(key, IGNORED)},
    }
    seed = config.get("seed_everything")
    return group, None if isinstance(seed, bool) else seed


def _own_placement(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` with a placement that is its backbone's own written as unset (null), as a config that leaves it does:
    ``placement: bottleneck`` on a ResNet is the paper's Table 3 run, not another experiment."""
    placement, backbone = model.get("placement"), model.get("backbone")
    if placement is None or model.get("detector") is not None or backbone not in list_models():
        return model
    return model | {"placement": None} if get_model_entry(backbone).placement == placement else model


def _config(run: Path) -> dict[str, Any] | None:
    """The run's saved config; None, said on stderr, where it is damaged (cut short, not a mapping): never pooled."""
    path = run / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):  # OSError: a folder, or a file not ours to read
        config = None
    sections = ("model", "data", "trainer")  # LightningCLI saves each as a mapping
    if not isinstance(config, dict) or not all(isinstance(config.get(key) or {}, dict) for key in sections):
        print(f"bam compare: skipped the run in {run}: {path} is not a YAML mapping (damaged?)", file=sys.stderr)
        return None
    return config


def _setting(key: str, value: Any) -> str:
    """``optimizer.lr=0.01`` for ``model.optimizer.init_args.lr``, ``optimizer=AdamW`` for its class: short, for a cell."""
    section, _, rest = key.partition(".")
    name = (rest if section in ("model", "trainer", "data") and rest else key).replace("init_args.", "")
    if key.endswith(".class_path"):
        return f"{name.removesuffix('.class_path')}={str(value).rpartition('.')[2]}"
    return f"{name}={value}"


def _label_differences(rows: list[dict[str, Any]]) -> None:
    """Set each row's ``differs``: where it departs from the other rows of its dataset and backbone, or None.

    An option is named in the rows whose value is not the one most of those rows share (in every
    row where no value is shared by most), so that the usual rows stay unlabelled. Where a class
    differs (an optimizer, a schedule), its class says it, not each of its arguments.
    """
    shelves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        shelves[json.dumps([row["dataset"], row["backbone"], row["backbone_kwargs"]], default=str)].append(row)
    for shelf in shelves.values():
        values = [{key: json.dumps(value, default=str) for key, value in row["experiment"].items()} for row in shelf]
        usual: dict[str, str | None] = {}  # None: no value most rows share
        for key in sorted({key for row in values for key in row if not _within(key, SHOWN)}):
            (value, most), *rest = Counter(row.get(key, "null") for row in values).most_common()
            usual[key] = value if not rest or rest[0][1] < most else None
        for row, texts in zip(shelf, values, strict=True):
            differ = [key for key, value in usual.items() if texts.get(key, "null") != value]
            classes = [key.removesuffix("class_path") for key in differ if key.endswith(".class_path")]
            settings = [
                _setting(key, row["experiment"].get(key))
                for key in differ
                if not any(key.startswith(f"{cls}init_args.") for cls in classes)
            ]
            row["differs"] = ", ".join(settings) or None


def scalars(run: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """``tag -> step -> (wall time, value)`` of one run folder, every value kept (no reservoir sampling); nothing where its
    events cannot be opened (a folder, a file not ours to read): the run counts as waiting, as one that logged nothing."""
    events = read_events(run)
    if events is None:
        return {}
    return {tag: {e.step: (e.wall_time, e.value) for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _stats(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def collect(paths: Iterable[str | Path], metric: str = "val/err1") -> list[dict[str, Any]]:
    """One row per group: the runs' final and best values, their mean and std (ddof=1), epochs per run, and every scalar
    each run logged (``scalars``: tag -> values in step order, for ``report.MEASURES``).

    Best is the lowest value for an error or a loss, the highest otherwise; epochs count the
    values logged (one per validation). Runs that have logged no ``metric`` yet are ``waiting``
    in their group's row; a group none of whose runs has logged it has no row, and a line on stderr names its runs.
    """
    groups: dict[str, dict[str, Any]] = {}
    every: dict[tuple[str, Any], dict[str, dict[int, tuple[float, float]]]] = defaultdict(lambda: defaultdict(dict))
    folders: dict[tuple[str, Any], list[str]] = defaultdict(list)
    tags: set[str] = set()
    for run in find_runs(paths):
        config = _config(run)
        if config is None:
            continue
        group, seed = _experiment(config)
        key = json.dumps(group["experiment"], sort_keys=True, default=str)
        groups[key] = group
        identity = (key, str(run) if seed is None else seed)
        folders[identity].append(str(run))
        found = scalars(run)
        tags |= found.keys()
        for tag, points in found.items():
            steps = every[identity][tag]
            for step, (time, value) in points.items():
                if step not in steps or time >= steps[step][0]:
                    steps[step] = (time, value)
    merged = {identity: every[identity][metric] for identity in folders}
    best = min if "err" in metric or "loss" in metric else max
    if not folders:
        raise InputError("bam compare: no run with a readable config.yaml (the damaged ones are named above)")
    if not any(merged.values()):
        raise InputError(f"no {metric!r} logged in {', '.join(sorted(folders[next(iter(folders))]))} nor any other run; "
                         f"logged: {', '.join(sorted(tags))}")  # fmt: skip
    series: dict[str, list[list[float]]] = defaultdict(list)
    logged: dict[str, list[dict[str, list[float]]]] = defaultdict(list)  # every scalar of each run, in step order
    waiting: dict[str, list[str]] = defaultdict(list)  # the folders of the runs that have logged no metric yet
    for identity, steps in merged.items():
        if steps:
            series[identity[0]].append([value for _, (_, value) in sorted(steps.items())])
            logged[identity[0]].append(
                {tag: [value for _, (_, value) in sorted(points.items())] for tag, points in every[identity].items()}
            )
        else:
            waiting[identity[0]] += folders[identity]
    for key in waiting.keys() - series.keys():  # an experiment all of whose runs are waiting: said, never dropped unsaid
        print(f"bam compare: no row yet for {', '.join(sorted(waiting[key]))}: no {metric!r} logged yet", file=sys.stderr)
    rows = []
    for key, runs in series.items():
        finals, bests = [values[-1] for values in runs], [best(values) for values in runs]
        final_mean, final_std = _stats(finals)
        best_mean, best_std = _stats(bests)
        rows.append(
            groups[key]
            | {
                "metric": metric,
                "runs": len(runs),
                "waiting": len(waiting[key]),
                "final": finals,
                "best": bests,
                "final_mean": final_mean,
                "final_std": final_std,
                "best_mean": best_mean,
                "best_std": best_std,
                "epochs": sorted(len(values) for values in runs),
                "scalars": logged[key],
            }
        )
    _label_differences(rows)
    return sorted(rows, key=_order)


def _twin(row: dict[str, Any]) -> str:
    """The experiment but its attention: a baseline is compared only with attention trained exactly as it was."""
    return json.dumps({key: value for key, value in row["experiment"].items() if not _within(key, ATTENTION)}, sort_keys=True,
                      default=str)  # fmt: skip


def baselines(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The baseline twin (the same experiment but for the attention, its options and placement: none) of each attention
    row that has one.

    Keyed by the attention row's position in ``rows``.
    """
    found = {_twin(row): row for row in rows if row["attention"] is None}
    return {i: found[_twin(row)] for i, row in enumerate(rows) if row["attention"] is not None and _twin(row) in found}


def differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attention minus baseline (means of the final and best value) wherever a group has its baseline twin."""
    return [
        {key: rows[i][key] for key in ROW_KEYS}
        | {f"{value}_diff": rows[i][f"{value}_mean"] - baseline[f"{value}_mean"] for value in ("final", "best")}
        for i, baseline in baselines(rows).items()
    ]


def _attention(row: dict[str, Any]) -> str:
    if row["attention"] is None:
        return "none"
    placement = {} if row["placement"] is None else {"placement": row["placement"]}
    return with_options(row["attention"], row["attention_kwargs"] | placement)


def _names(row: dict[str, Any], differs: bool, attention: str | None = None) -> list[str | None]:
    """The cells that name a row: dataset, backbone, attention (or ``attention``), and its ``differs`` where shown."""
    names = [row["dataset"], with_options(row["backbone"], row["backbone_kwargs"]), attention or _attention(row)]
    return [*names, row["differs"]] if differs else names


def _with_differs(header: list[str], rows: list[dict[str, Any]]) -> bool:
    """Whether the table needs the "differs" column (some row differs from another of its backbone by more than attention),
    inserted in ``header`` after the attention."""
    shown = any(row["differs"] for row in rows)
    if shown:
        header.insert(3, "differs")
    return shown


def _order(row: dict[str, Any]) -> tuple[str, str, bool, str, str]:
    """Dataset, backbone, then the baseline before its attention variants."""
    backbone = with_options(row["backbone"], row["backbone_kwargs"])
    return row["dataset"], backbone, row["attention"] is not None, _attention(row), row["differs"] or ""


def _span(epochs: list[int]) -> str:
    return str(epochs[0]) if epochs[0] == epochs[-1] else f"{epochs[0]}–{epochs[-1]}"


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.2f} ± {'—' if std is None else f'{std:.2f}'}"


def render(rows: list[dict[str, Any]], metric: str, fmt: Literal["markdown", "csv"] = "markdown") -> str:
    """The groups, then one "attention − none" line per backbone that has both."""
    header = ["dataset", "backbone", "attention", "runs", f"final {metric}", f"best {metric}", "epochs"]
    differs = _with_differs(header, rows)
    cells: list[list[str | None]] = [
        [
            *_names(row, differs),
            str(row["runs"]),
            _mean_std(row["final_mean"], row["final_std"]),
            _mean_std(row["best_mean"], row["best_std"]),
            _span(row["epochs"]),
        ]
        for row in rows
    ]
    for diff in differences(rows):
        change = f"{_attention(diff)} − none"
        cells.append([*_names(diff, differs, change), None, f"{diff['final_diff']:+.2f}", f"{diff['best_diff']:+.2f}", None])
    return format_table(header, cells, fmt)


def _note(row: dict[str, Any], most: int) -> str | None:
    """What a sweep still running lacks in ``row``: seeds below the fullest row's ``most``, runs with nothing logged yet."""
    notes = []
    if row["runs"] < most:
        notes.append(f"{row['runs']} of {most} seeds")
    if row["waiting"]:
        notes.append(f"{row['waiting']} waiting")
    return "; ".join(notes) or None


def _counts(row: dict[str, Any]) -> tuple[int, int] | None:
    """Parameters and MACs of the row's network (``summary.count_model``, on the meta device), or None where its config
    does not say them: a detector, a backbone that is not registered, data whose class does not say its classes."""
    backbone = row["backbone"]
    if row["experiment"].get("model.detector") is not None or backbone not in list_models():
        return None
    classes = getattr(data_class(row["experiment"].get("data.class_path")), "num_classes", None)
    if not isinstance(classes, int):  # a property of the data's instance (ImageNet's folder): the dataset's usual count
        classes = next((n for prefix, n in DATASET_CLASSES.items() if row["dataset"].startswith(prefix)), None)
    if classes is None:
        return None
    size = row["image_size"] or get_model_entry(backbone).input_size
    spec = ModelSpec(backbone, row["backbone_kwargs"], row["attention"], row["attention_kwargs"], placement=row["placement"])
    return count_model(spec, row["attention"], classes, size)


def paper_report(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """``collect``'s rows beside the paper, with what attention changed and how sure that change is.

    Added: the paper's figure (``paper``, None where it printed none), ours minus it (``vs_paper``),
    for an attention row with a baseline twin the change of the final mean (``change``) and
    Welch's test of it (``welch``, None below two runs a side), a ``note`` (``_note``), half the 95 %
    interval of the final mean (``final_half``), the measured columns (``measures``: a ``Spread`` or None
    by ``MEASURES`` key; ``measure_changes``: by key, the change from the baseline and Welch's test of it, a
    rate's change in percent and None), the error per corruption (``corruptions``) and ``params``, ``macs``.
    """
    test, most = ttest_ind(), max(row["runs"] for row in rows)
    twins = baselines(rows)
    measured = [{m.key: Spread.of([v for s in row["scalars"] if (v := m.of_run(s)) is not None]) for m in MEASURES}
                for row in rows]  # fmt: skip
    records = []
    for i, row in enumerate(rows):
        paper, baseline = printed_figure(row, metric), twins.get(i)
        changes: dict[str, tuple[float, Welch | None]] = {}
        for m in MEASURES:
            ours, theirs = measured[i][m.key], None if baseline is None else measured[rows.index(baseline)][m.key]
            if ours is None or theirs is None:
                continue
            if m.rate:  # a speed: how much faster or slower, in percent
                changes[m.key] = (100 * (ours.mean / theirs.mean - 1), None)
            else:
                changes[m.key] = (ours.mean - theirs.mean, welch(test, ours.values, theirs.values))
        counts = _counts(row)
        records.append(
            row
            | {
                "paper": paper,
                "vs_paper": None if paper is None else row["final_mean"] - paper,
                "change": None if baseline is None else row["final_mean"] - baseline["final_mean"],
                "welch": None if baseline is None else welch(test, row["final"], baseline["final"]),
                "note": _note(row, most),
                "final_half": half_interval(row["final"]),
                "measures": measured[i],
                "measure_changes": changes,
                "corruptions": corruptions(row["scalars"]),
                "params": None if counts is None else counts[0],
                "macs": None if counts is None else counts[1],
            }
        )
    return records


def _number(value: float | None, spec: str) -> str | None:
    """A float at ``spec``; a count (int: parameters, MACs) whole, every digit."""
    return None if value is None else str(value) if isinstance(value, int) else format(value, spec)


def _p(test: Welch) -> str:
    return "< 0.001" if test.p < 0.001 else f"{test.p:.3f}"


def _with_half(spread: Spread | None, spec: str = ".2f") -> str | None:
    """``mean ± half`` of the 95 % interval, "± —" below two runs; None where no run logged it."""
    if spread is None:
        return None
    return f"{format(spread.mean, spec)} ± {'—' if spread.half is None else format(spread.half, spec)}"


def _change(change: tuple[float, Welch | None] | None) -> str | None:
    """A measure's change from the baseline as a cell: ``-0.52 [-1.10, +0.06] p 0.081``, or the change alone below two
    runs a side."""
    if change is None:
        return None
    value, test = change
    return f"{value:+.2f}" + ("" if test is None else f" [{test.low:+.2f}, {test.high:+.2f}] p {_p(test)}")


def _rate(record: dict[str, Any], key: str) -> str | None:
    """A throughput cell: ``1234 ± 56``, and its change from the baseline in percent where there is one."""
    cell = _with_half(record["measures"][key], ".0f")
    change = record["measure_changes"].get(key)
    return cell if cell is None or change is None else f"{cell} ({change[0]:+.1f} %)"


def render_paper(records: list[dict[str, Any]], metric: str, fmt: Literal["markdown", "csv"] = "markdown") -> str:
    """``paper_report``'s rows as a table; "—" where there is nothing (no printed figure, no baseline, n < 2).

    Each measured column (``MEASURES``) and the counts are shown where some row has them, no empty column.
    The CSV keeps numbers apart (mean, std, interval ends) at 6 digits (TensorBoard stores float32), for a spreadsheet.
    """
    shown = [m for m in MEASURES if any(record["measures"][m.key] is not None for record in records)]
    compared, rates = [m for m in shown if not m.rate], [m for m in shown if m.rate]
    counted = any(record["params"] is not None for record in records)
    if fmt == "csv":
        header = ["dataset", "backbone", "attention", "n", "mean", "std", "ci95_half", "paper", "ours_minus_paper",
                  "change_vs_none", "ci95_low", "ci95_high", "p_welch"]  # fmt: skip
        for m in compared:
            header += [f"{m.key}_{column}" for column in ("mean", "ci95_half", "change", "ci95_low", "ci95_high", "p_welch")]
        header += ["params", "macs"] if counted else []
        for m in rates:
            header += [f"{m.key}_mean", f"{m.key}_ci95_half", f"{m.key}_change_pct"]
        header += ["epochs", "note"]
    else:
        header = ["dataset", "backbone", "attention", "n", f"final {metric}", "paper", "ours − paper", "att − none",
                  "95 % CI", "p (Welch)"]  # fmt: skip
        for m in compared:
            header += [m.title, f"{m.short} att − none"]
        header += ["params (M)", "GMACs"] if counted else []
        header += [m.title for m in rates] + ["epochs", "note"]
    differs = _with_differs(header, records)
    cells: list[list[str | None]] = []
    for record in records:
        test: Welch | None = record["welch"]
        measures, changes = record["measures"], record["measure_changes"]
        if fmt == "csv":
            numbers = [record["final_mean"], record["final_std"], record["final_half"], record["paper"], record["vs_paper"],
                       record["change"]]  # fmt: skip
            numbers += [None, None, None] if test is None else [test.low, test.high, test.p]
            for m in compared:
                spread, (change, tested) = measures[m.key], changes.get(m.key, (None, None))
                numbers += [None, None] if spread is None else [spread.mean, spread.half]
                numbers += [change] + ([None, None, None] if tested is None else [tested.low, tested.high, tested.p])
            numbers += [record["params"], record["macs"]] if counted else []
            for m in rates:
                spread = measures[m.key]
                numbers += [None, None] if spread is None else [spread.mean, spread.half]
                numbers.append(changes.get(m.key, (None, None))[0])
            figures = [_number(number, ".6g") for number in numbers]
        else:
            figures = [
                _with_half(Spread(record["final"], record["final_mean"], record["final_half"])),
                _number(record["paper"], ".2f"),
                _number(record["vs_paper"], "+.2f"),
                _number(record["change"], "+.2f"),
                None if test is None else f"[{test.low:+.2f}, {test.high:+.2f}]",
                None if test is None else _p(test),
            ]
            for m in compared:
                figures += [_with_half(measures[m.key]), _change(changes.get(m.key))]
            if counted:
                figures += [_number(None if record["params"] is None else record["params"] / 1e6, ".3f"),
                            _number(None if record["macs"] is None else record["macs"] / 1e9, ".3f")]  # fmt: skip
            figures += [_rate(record, m.key) for m in rates]
        cells.append([*_names(record, differs), str(record["runs"]), *figures, _span(record["epochs"]), record["note"]])
    return format_table(header, cells, fmt)


def write_report(records: list[dict[str, Any]], metric: str, out: Path) -> list[Path]:
    """report.md (the table and what its columns mean), report.csv and report.png in ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    md, csv, png = out / "report.md", out / "report.csv", out / "report.png"
    md.write_text(
        f"# Reproduction report: final {metric}\n\n{render_paper(records, metric)}\n\n"
        "Mean ± half the 95 % interval (Student's t) over seeds of each run's last value; paper: its printed figure for"
        " the same configuration; att − none: change of the mean from the baseline; 95 % CI and p: Welch's t-test "
        "(unequal variances) of that change, given two runs or more on each side. Where runs logged them: ECE % "
        "(expected calibration error, the test's, else the last validation's), corruption error % (mean over the "
        "corruptions), mCE % and relative mCE % (ImageNet-C), each with its change from the baseline, its 95 % CI and "
        "p; parameters and GMACs (counted on the configuration's network); images/s of training and of inference "
        "(validation's, else a test's; Lightning's ThroughputMonitor, the mean of each run's values after its first), "
        "with the change from the baseline in percent.\n\n"
        "![chart](report.png)\n"
    )
    csv.write_text(render_paper(records, metric, "csv") + "\n")
    bars = [
        Bar(" | ".join(filter(None, _names(r, differs=True))), r["final_mean"], r["final_half"], r["paper"], r["runs"],
            r["attention"] is not None, r["measures"]["train_images_per_s"], r["corruptions"])
        for r in records
    ]  # fmt: skip
    plot(bars, f"final {metric}, mean ± 95 % interval over seeds", png)
    return [md, csv, png]


def build_parser() -> ArgumentParser:
    parser = tool_parser(
        "bam compare", "Runs of `bam fit` grouped by configuration: mean ± std over seeds, and attention minus baseline."
    )
    parser.add_argument("runs", nargs="+", type=str, help="version folders, or any folder above them (searched recursively)")
    parser.add_argument("--metric", type=str, default="val/err1", help="a scalar tag, e.g. val/acc1, val/loss")
    parser.add_argument("--format", type=Literal["markdown", "csv"], default="markdown")
    parser.add_argument("--paper", action="store_true", help="the reproduction report: beside the paper, with Welch's test")
    parser.add_argument(
        "--out", type=str | None, help="with --paper: the folder of report.md/.csv/.png (default: the one runs folder)"
    )
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    if options.out is not None and not options.paper:
        raise InputError("bam compare: --out is where --paper writes its report; add --paper")
    if not options.paper:
        print(render(collect(options.runs, options.metric), options.metric, options.format))
        return
    if options.out is None and len(options.runs) > 1:
        raise InputError("bam compare --paper: several run folders given; say where the report goes with --out FOLDER")
    out = Path(options.out or options.runs[0])
    if out.is_file():
        raise InputError(f"bam compare --paper: --out {out} is a file; give a folder")
    check_output_folder(out, "bam compare --paper: --out")  # under a file, not writable: refused before any work
    records = paper_report(collect(options.runs, options.metric), options.metric)
    print(render_paper(records, options.metric, options.format))
    written = write_report(records, options.metric, out)
    print(f"bam compare: wrote {', '.join(map(str, written))}", file=sys.stderr)


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["compare", *sys.argv[1:]])
