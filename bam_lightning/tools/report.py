"""What ``bam compare --paper`` adds to the pooled runs: the paper's printed figure, Welch's test, the bar chart.

The printed figure of a run comes from its configuration only (dataset, backbone and its options,
input size, attention and its options, ``PAPER_SETTINGS``) through ``bam_lightning.paper.rows``, never
from folder names: a run of BAM at other settings than the paper's, placed elsewhere (BAM-C), of
another attention, or trained with a modern recipe's extras, has no printed figure.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..errors import InputError
from ..nn import ATTENTION_LAYERS
from ..paper.rows import find_paper_model, printed_row
from .summary import BAM_FORMS

PAPER_DATASETS = {"CIFAR100": "cifar100", "ImageNet": "imagenet"}  # datamodule name -> paper_tables.json table
NOT_THE_MATH = ("channels", "fused")  # BAM arguments that do not change the block the paper trained
# Options of a run's config (``compare``'s dotted keys) at what Table 3 trained, unset counting as that: attention where
# the family puts it (not Table 2's BAM-C), none of the modern recipe's extras (configs/recipes/modern.yaml).
PAPER_SETTINGS = {"model.placement": None, "model.label_smoothing": 0.0, "model.mixup_alpha": 0.0, "model.cutmix_alpha": 0.0,
                  "ema.decay": None, "data.init_args.auto_augment": "none", "data.init_args.random_erasing": 0.0}  # fmt: skip


def is_paper_bam(attention: str | None, attention_kwargs: dict[str, Any]) -> bool:
    """Whether the attention is the paper's "+ BAM": a BAM form whose options all equal its defaults (r=16, d=4, sum, ...)."""
    if attention not in BAM_FORMS:
        return False
    defaults = {p.name: p.default for p in inspect.signature(ATTENTION_LAYERS[attention]).parameters.values()}
    return all(key in defaults and value == defaults[key] for key, value in attention_kwargs.items() if key not in NOT_THE_MATH)


def printed_figure(group: dict[str, Any], metric: str) -> float | None:
    """The paper's Table 3 figure for ``group``'s configuration and ``metric``, or None where it printed none.

    ``group`` is a row of ``compare.collect``. Only top-1/top-5 errors are printed; an accuracy
    metric (``acc1``, ``acc5``) gets 100 minus the printed error. Options the paper's table does not
    describe (epochs, optimizer) cannot be checked: the table shows each row's epochs beside it.
    """
    if any(group["experiment"].get(key, value) != value for key, value in PAPER_SETTINGS.items()):
        return None
    name = metric.rpartition("/")[2]
    kind, k = name[:3], name[3:]
    if kind not in ("err", "acc") or k not in ("1", "5") or not isinstance(group["backbone"], str):
        return None
    model = find_paper_model(group["backbone"], group["backbone_kwargs"], group["image_size"])
    paper_bam = is_paper_bam(group["attention"], group["attention_kwargs"])
    if model is None or model.dataset != PAPER_DATASETS.get(group["dataset"]) or not (group["attention"] is None or paper_bam):
        return None
    error = printed_row(model, attention=paper_bam).get(f"top{k}_error")
    return None if error is None else error if kind == "err" else 100 - error


def ttest_ind() -> Callable[..., Any]:
    """scipy's two-sample t-test; scipy is the ``report`` extra (1.11: its result's ``confidence_interval``)."""
    try:
        from scipy.stats import ttest_ind
    except ImportError:
        raise InputError("bam compare --paper needs scipy: pip install 'bam_lightning[report]'") from None
    return ttest_ind


@dataclass(frozen=True)
class Welch:
    """The 95 % confidence interval of a difference of means and the two-sided p-value of it being zero."""

    low: float
    high: float
    p: float


def welch(test: Callable[..., Any], values: list[float], baseline: list[float]) -> Welch | None:
    """Welch's t-test of ``mean(values) - mean(baseline)`` with ``test`` (``ttest_ind``); None without two values each.

    Welch's, not Student's: attention may change how much seeds scatter, so the variances are
    not pooled. Values without any scatter on either side (both stds 0) have no test either: None.
    """
    if min(len(values), len(baseline)) < 2 or len(set(values)) == len(set(baseline)) == 1:
        return None
    result = test(values, baseline, equal_var=False)
    interval = result.confidence_interval(0.95)
    return Welch(float(interval.low), float(interval.high), float(result.pvalue))


@dataclass(frozen=True)
class Bar:
    """One row of the report as the chart draws it: ``std`` None below two runs, ``paper`` None where nothing is printed."""

    label: str
    mean: float
    std: float | None
    paper: float | None
    runs: int
    attention: bool


def plot(bars: list[Bar], metric: str, path: Path) -> None:
    """One horizontal bar per row, top to bottom as in the table: the mean, ± std over seeds, the paper's figure a black diamond.

    Horizontal, so that long row labels read level; each bar is labelled with its mean and n, so
    that a bar without an error bar (n = 1) says why. The axis starts near the smallest value, not
    at 0: errors of ~20 % that differ by a point would otherwise look equal. A ``Figure`` without
    pyplot draws with Agg and keeps no global state.
    """
    figure = Figure(figsize=(9, 1.4 + 0.45 * len(bars)), layout="constrained")
    axes = figure.add_subplot()
    rows = list(range(len(bars)))
    means = [bar.mean for bar in bars]
    axes.barh(rows, means, color=["tab:blue" if bar.attention else "tab:gray" for bar in bars])
    spread = [(row, bar) for row, bar in zip(rows, bars, strict=True) if bar.std is not None]
    if spread:
        axes.errorbar([b.mean for _, b in spread], [r for r, _ in spread], xerr=[b.std for _, b in spread], fmt="none",
                      ecolor="black", capsize=4, label="± std over seeds")  # fmt: skip
    printed = [(row, bar.paper) for row, bar in zip(rows, bars, strict=True) if bar.paper is not None]
    if printed:
        axes.scatter(
            [p for _, p in printed], [r for r, _ in printed], marker="D", color="black", zorder=3, label="paper (printed)"
        )
    reach = [
        [bar.mean - (bar.std or 0.0), bar.mean + (bar.std or 0.0), *([] if bar.paper is None else [bar.paper])] for bar in bars
    ]
    for row, bar, drawn in zip(rows, bars, reach, strict=True):
        axes.annotate(f"{bar.mean:.2f}  n={bar.runs}", (max(drawn), row), xytext=(6, 0), textcoords="offset points", va="center")
    low, high = min(min(drawn) for drawn in reach), max(max(drawn) for drawn in reach)
    pad = max(high - low, 1.0) * 0.5
    axes.set_xlim(max(low - pad, 0.0), high + pad)
    axes.set_yticks(rows, [bar.label for bar in bars])
    axes.invert_yaxis()
    axes.set_xlabel(metric)
    if spread or printed:
        axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False)  # above the bars, covering none
    figure.savefig(path, dpi=120)
