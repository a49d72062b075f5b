"""``bam compare``: the runs of one configuration pooled over seeds, and what attention changed.

A run is what ``bam fit`` leaves in ``lightning_logs/version_N/``: TensorBoard events and
the ``config.yaml`` LightningCLI saved. Runs are grouped by what makes the experiment
(dataset, backbone and its options, attention and its options), so that the seeds
(``seed_everything``) of one configuration become one row of mean ± std. Versions of one
configuration with the same seed are one run (``--ckpt_path last`` goes on in the run's own
folder; runs resumed before it did, in ``version_N+1``): their values are merged by step, the
one written last winning. A sweep may
still be running: a run that has logged nothing yet counts as waiting in its row.

``--paper`` is the reproduction report (``report``): each row's final value beside the paper's
printed figure, each attention row's change from its baseline with Welch's 95 % interval and
p-value, written as report.md, report.csv and report.png beside the runs (or in ``--out``).

    bam compare runs/ [more/runs ...] [--metric val/err1] [--format markdown|csv] [--paper [--out DIR]]
"""

import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ArgumentParser
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..errors import InputError
from . import parse
from .report import Bar, Welch, plot, printed_figure, ttest_ind, welch
from .summary import format_table, with_options

GROUP_KEYS = ("dataset", "backbone", "backbone_kwargs", "image_size", "attention", "attention_kwargs")
TWIN_KEYS = ("dataset", "backbone", "backbone_kwargs", "image_size")  # what an attention row shares with its baseline


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


def _experiment(config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The group a run belongs to, and its seed (None where the run was not seeded)."""
    model, data = config.get("model") or {}, config.get("data") or {}
    group = {
        "dataset": str(data.get("class_path", "")).rpartition(".")[2].removesuffix("DataModule"),
        "backbone": model.get("backbone"),
        "backbone_kwargs": model.get("backbone_kwargs") or {},
        "image_size": (data.get("init_args") or {}).get("image_size"),  # None: the dataset's fixed size (CIFAR)
        "attention": model.get("attention"),
        "attention_kwargs": model.get("attention_kwargs") or {},
    }
    seed = config.get("seed_everything")
    return group, None if isinstance(seed, bool) else seed


def _scalars(run: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """``tag -> step -> (wall time, value)`` of one run folder, every value kept (no reservoir sampling)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: {e.step: (e.wall_time, e.value) for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _stats(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def collect(paths: Iterable[str | Path], metric: str = "val/err1") -> list[dict[str, Any]]:
    """One row per group: the runs' final and best values, their mean and std (ddof=1), epochs per run.

    Best is the lowest value for an error or a loss, the highest otherwise; epochs count the
    values logged (one per validation). Runs that have logged no ``metric`` yet are ``waiting``
    in their group's row; a group none of whose runs has logged it has no row.
    """
    groups: dict[str, dict[str, Any]] = {}
    merged: dict[tuple[str, Any], dict[int, tuple[float, float]]] = defaultdict(dict)
    folders: dict[tuple[str, Any], list[str]] = defaultdict(list)
    tags: set[str] = set()
    for run in find_runs(paths):
        group, seed = _experiment(yaml.safe_load((run / "config.yaml").read_text()) or {})
        key = json.dumps(group, sort_keys=True, default=str)
        groups[key] = group
        identity = (key, str(run) if seed is None else seed)
        folders[identity].append(str(run))
        scalars = _scalars(run)
        tags |= scalars.keys()
        steps = merged[identity]
        for step, (time, value) in scalars.get(metric, {}).items():
            if step not in steps or time >= steps[step][0]:
                steps[step] = (time, value)
    best = min if "err" in metric or "loss" in metric else max
    if not any(merged.values()):
        raise InputError(f"no {metric!r} logged in {', '.join(sorted(folders[next(iter(folders))]))} nor any other run; "
                         f"logged: {', '.join(sorted(tags))}")  # fmt: skip
    series: dict[str, list[list[float]]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for (key, _), steps in merged.items():
        if steps:
            series[key].append([value for _, (_, value) in sorted(steps.items())])
        else:
            waiting[key] += 1
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
                "waiting": waiting[key],
                "final": finals,
                "best": bests,
                "final_mean": final_mean,
                "final_std": final_std,
                "best_mean": best_mean,
                "best_std": best_std,
                "epochs": sorted(len(values) for values in runs),
            }
        )
    return sorted(rows, key=_order)


def _twin(row: dict[str, Any]) -> str:
    return json.dumps([row[key] for key in TWIN_KEYS], default=str)


def baselines(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The baseline twin (same dataset, backbone, options and input size; no attention) of each attention row that has one.

    Keyed by the attention row's position in ``rows``.
    """
    found = {_twin(row): row for row in rows if row["attention"] is None}
    return {i: found[_twin(row)] for i, row in enumerate(rows) if row["attention"] is not None and _twin(row) in found}


def differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attention minus baseline (means of the final and best value) wherever a group has its baseline twin."""
    return [
        {key: rows[i][key] for key in GROUP_KEYS}
        | {f"{value}_diff": rows[i][f"{value}_mean"] - baseline[f"{value}_mean"] for value in ("final", "best")}
        for i, baseline in baselines(rows).items()
    ]


def _attention(row: dict[str, Any]) -> str:
    return "none" if row["attention"] is None else with_options(row["attention"], row["attention_kwargs"])


def _order(row: dict[str, Any]) -> tuple[str, str, bool, str]:
    """Dataset, backbone, then the baseline before its attention variants."""
    return row["dataset"], with_options(row["backbone"], row["backbone_kwargs"]), row["attention"] is not None, _attention(row)


def _span(epochs: list[int]) -> str:
    return str(epochs[0]) if epochs[0] == epochs[-1] else f"{epochs[0]}–{epochs[-1]}"


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.2f} ± {'—' if std is None else f'{std:.2f}'}"


def render(rows: list[dict[str, Any]], metric: str, fmt: Literal["markdown", "csv"] = "markdown") -> str:
    """The groups, then one "attention − none" line per backbone that has both."""
    header = ["dataset", "backbone", "attention", "runs", f"final {metric}", f"best {metric}", "epochs"]
    cells: list[list[str | None]] = [
        [
            row["dataset"],
            with_options(row["backbone"], row["backbone_kwargs"]),
            _attention(row),
            str(row["runs"]),
            _mean_std(row["final_mean"], row["final_std"]),
            _mean_std(row["best_mean"], row["best_std"]),
            _span(row["epochs"]),
        ]
        for row in rows
    ]
    for diff in differences(rows):
        backbone = with_options(diff["backbone"], diff["backbone_kwargs"])
        change = f"{_attention(diff)} − none"
        cells.append([diff["dataset"], backbone, change, None, f"{diff['final_diff']:+.2f}", f"{diff['best_diff']:+.2f}", None])
    return format_table(header, cells, fmt)


def _note(row: dict[str, Any], most: int) -> str | None:
    """What a sweep still running lacks in ``row``: seeds below the fullest row's ``most``, runs with nothing logged yet."""
    notes = []
    if row["runs"] < most:
        notes.append(f"{row['runs']} of {most} seeds")
    if row["waiting"]:
        notes.append(f"{row['waiting']} waiting")
    return "; ".join(notes) or None


def paper_report(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """``collect``'s rows beside the paper, with what attention changed and how sure that change is.

    Added: the paper's figure (``paper``, None where it printed none), ours minus it (``vs_paper``),
    for an attention row with a baseline twin the change of the final mean (``change``) and
    Welch's test of it (``welch``, None below two runs a side), and a ``note`` (``_note``).
    """
    test, most = ttest_ind(), max(row["runs"] for row in rows)
    twins = baselines(rows)
    records = []
    for i, row in enumerate(rows):
        paper, baseline = printed_figure(row, metric), twins.get(i)
        records.append(
            row
            | {
                "paper": paper,
                "vs_paper": None if paper is None else row["final_mean"] - paper,
                "change": None if baseline is None else row["final_mean"] - baseline["final_mean"],
                "welch": None if baseline is None else welch(test, row["final"], baseline["final"]),
                "note": _note(row, most),
            }
        )
    return records


def _number(value: float | None, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def render_paper(records: list[dict[str, Any]], metric: str, fmt: Literal["markdown", "csv"] = "markdown") -> str:
    """``paper_report``'s rows as a table; "—" where there is nothing (no printed figure, no baseline, n < 2).

    The CSV keeps numbers apart (mean, std, interval ends) at 6 digits (TensorBoard stores float32), for a spreadsheet.
    """
    if fmt == "csv":
        header = ["dataset", "backbone", "attention", "n", "mean", "std", "paper", "ours_minus_paper", "change_vs_none",
                  "ci95_low", "ci95_high", "p_welch", "epochs", "note"]  # fmt: skip
    else:
        header = ["dataset", "backbone", "attention", "n", f"final {metric}", "paper", "ours − paper", "att − none",
                  "95 % CI", "p (Welch)", "epochs", "note"]  # fmt: skip
    cells: list[list[str | None]] = []
    for record in records:
        test: Welch | None = record["welch"]
        if fmt == "csv":
            numbers = [record["final_mean"], record["final_std"], record["paper"], record["vs_paper"], record["change"]]
            numbers += [None, None, None] if test is None else [test.low, test.high, test.p]
            figures = [_number(number, ".6g") for number in numbers]
        else:
            figures = [
                _mean_std(record["final_mean"], record["final_std"]),
                _number(record["paper"], ".2f"),
                _number(record["vs_paper"], "+.2f"),
                _number(record["change"], "+.2f"),
                None if test is None else f"[{test.low:+.2f}, {test.high:+.2f}]",
                None if test is None else "< 0.001" if test.p < 0.001 else f"{test.p:.3f}",
            ]
        names = [record["dataset"], with_options(record["backbone"], record["backbone_kwargs"]), _attention(record)]
        cells.append([*names, str(record["runs"]), *figures, _span(record["epochs"]), record["note"]])
    return format_table(header, cells, fmt)


def write_report(records: list[dict[str, Any]], metric: str, out: Path) -> list[Path]:
    """report.md (the table and what its columns mean), report.csv and report.png in ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    md, csv, png = out / "report.md", out / "report.csv", out / "report.png"
    md.write_text(
        f"# Reproduction report: final {metric}\n\n{render_paper(records, metric)}\n\n"
        "Mean ± std (ddof=1) over seeds of each run's last value; paper: its printed figure for the same configuration; "
        "att − none: change of the mean from the baseline; 95 % CI and p: Welch's t-test (unequal variances) of that "
        "change, given two runs or more on each side.\n\n![bars](report.png)\n"
    )
    csv.write_text(render_paper(records, metric, "csv") + "\n")
    bars = [
        Bar(f"{r['dataset']} {with_options(r['backbone'], r['backbone_kwargs'])} | {_attention(r)}",
            r["final_mean"], r["final_std"], r["paper"], r["runs"], r["attention"] is not None)
        for r in records
    ]  # fmt: skip
    plot(bars, f"final {metric}, mean ± std over seeds", png)
    return [md, csv, png]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="bam compare",
        exit_on_error=False,  # mistakes raise, for parse to word in one line
        description="Runs of `bam fit` grouped by configuration: mean ± std over seeds, and attention minus baseline.",
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
    records = paper_report(collect(options.runs, options.metric), options.metric)
    print(render_paper(records, options.metric, options.format))
    written = write_report(records, options.metric, out)
    print(f"bam compare: wrote {', '.join(map(str, written))}", file=sys.stderr)


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["compare", *sys.argv[1:]])
