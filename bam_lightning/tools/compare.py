"""``bam compare``: the runs of one configuration pooled over seeds, and what attention changed.

A run is what ``bam fit`` leaves in ``lightning_logs/version_N/``: TensorBoard events and
the ``config.yaml`` LightningCLI saved. Runs are grouped by what makes the experiment
(dataset, backbone and its options, attention and its options), so that the seeds
(``seed_everything``) of one configuration become one row of mean ± std. Versions of one
configuration with the same seed are one run resumed (``--ckpt_path last`` continues in
``version_N+1``): their values are merged by step, the one written last winning.

    bam compare runs/ [more/runs ...] [--metric val/err1] [--format markdown|csv]
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
from .summary import format_table, with_options

GROUP_KEYS = ("dataset", "backbone", "backbone_kwargs", "attention", "attention_kwargs")


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
    """One row per group: the number of runs, mean and std (ddof=1) of the final and best value, epochs per run.

    Best is the lowest value for an error or a loss, the highest otherwise; epochs count the
    values logged (one per validation).
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
    series: dict[str, list[list[float]]] = defaultdict(list)
    for identity, steps in merged.items():
        if not steps:
            raise InputError(f"no {metric!r} logged in {', '.join(folders[identity])}; logged: {', '.join(sorted(tags))}")
        series[identity[0]].append([value for _, (_, value) in sorted(steps.items())])
    rows = []
    for key, runs in series.items():
        final_mean, final_std = _stats([values[-1] for values in runs])
        best_mean, best_std = _stats([best(values) for values in runs])
        rows.append(
            groups[key]
            | {
                "metric": metric,
                "runs": len(runs),
                "final_mean": final_mean,
                "final_std": final_std,
                "best_mean": best_mean,
                "best_std": best_std,
                "epochs": sorted(len(values) for values in runs),
            }
        )
    return sorted(rows, key=_order)


def differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attention minus baseline (means of the final and best value) wherever a group has its baseline twin."""
    twin = ("dataset", "backbone", "backbone_kwargs")
    baselines = {json.dumps([row[k] for k in twin], default=str): row for row in rows if row["attention"] is None}
    found = []
    for row in rows:
        baseline = baselines.get(json.dumps([row[k] for k in twin], default=str))
        if row["attention"] is not None and baseline is not None:
            change = {f"{value}_diff": row[f"{value}_mean"] - baseline[f"{value}_mean"] for value in ("final", "best")}
            found.append({key: row[key] for key in GROUP_KEYS} | change)
    return found


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


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="bam compare",
        exit_on_error=False,  # mistakes raise, for parse to word in one line
        description="Runs of `bam fit` grouped by configuration: mean ± std over seeds, and attention minus baseline.",
    )
    parser.add_argument("runs", nargs="+", type=str, help="version folders, or any folder above them (searched recursively)")
    parser.add_argument("--metric", type=str, default="val/err1", help="a scalar tag, e.g. val/acc1, val/loss")
    parser.add_argument("--format", type=Literal["markdown", "csv"], default="markdown")
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    print(render(collect(options.runs, options.metric), options.metric, options.format))


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["compare", *sys.argv[1:]])
