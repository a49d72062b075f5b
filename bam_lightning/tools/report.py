"""What ``bam compare --paper`` adds to the pooled runs: the paper's printed figure, Welch's test, the measured columns
(``MEASURES``: calibration, corruption error, throughput) and the chart.

The printed figure of a run comes from its configuration only (dataset, backbone and its options,
input size, attention and its options, ``PAPER_SETTINGS``) through ``bam_lightning.paper.rows``, never
from folder names: a run of BAM at other settings than the paper's, placed elsewhere (BAM-C), of
another attention, or trained with a modern recipe's extras, has no printed figure.
"""

import inspect
import math
import re
import statistics
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


def half_interval(values: list[float]) -> float | None:
    """Half the width of the 95 % Student-t interval of the mean of ``values`` (one per seed); None below two.

    Two seeds give t = 12.7: a wide interval is what two seeds can say. scipy is there: ``ttest_ind`` checked it.
    """
    if len(values) < 2:
        return None
    from scipy.stats import t

    return float(t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values)))


@dataclass(frozen=True)
class Spread:
    """One quantity over a row's seeds: a value per run that logged it, their mean, ``half_interval`` of them."""

    values: list[float]
    mean: float
    half: float | None

    @classmethod
    def of(cls, values: list[float]) -> "Spread | None":
        return Spread(values, statistics.fmean(values), half_interval(values)) if values else None


@dataclass(frozen=True)
class Measure:
    """A column of the report besides the metric, shown where some run logged one of ``tags`` (the first a run has).

    A ``rate`` (throughput) is the mean of a run's logged values after the first (which carries the warm-up and any
    compiling), and is set beside the baseline's as a change in percent; any other is the run's last value, and its
    change from the baseline gets Welch's test, as the metric's.
    """

    title: str
    short: str  # the name its change from the baseline is headed by
    key: str
    tags: tuple[str, ...]
    rate: bool = False

    def of_run(self, scalars: dict[str, list[float]]) -> float | None:
        values = next((scalars[tag] for tag in self.tags if scalars.get(tag)), None)
        if values is None:
            return None
        return statistics.fmean(values[1:] or values) if self.rate else values[-1]


# The names classifiers and their corruption tests log (mCE: ImageNet-C's, normalised by AlexNet's errors), and
# Lightning's ThroughputMonitor's: with one device it logs only the device/ rate, with several the whole run's beside it
# (read first).
# Inference: the validations' during the fit first (the same batches every epoch, on the machine that trained), else a
# test's; tests of one run at other batch sizes (a corrupted copy of the test split) log under the same test/ names.
INFERENCE = ("validate/samples_per_sec", "validate/device/samples_per_sec", "test/samples_per_sec", "test/device/samples_per_sec")
MEASURES = (
    Measure("ECE %", "ECE", "ece", ("test/ece", "val/ece")),
    Measure("corruption err %", "corruption", "corruption_err1", ("test/corruption/mean_err1",)),
    Measure("mCE %", "mCE", "mce", ("test/corruption/mce",)),
    Measure("relative mCE %", "relative mCE", "relative_mce", ("test/corruption/relative_mce",)),
    Measure("train img/s", "train", "train_images_per_s", ("train/samples_per_sec", "train/device/samples_per_sec"), True),
    Measure("inference img/s", "inference", "inference_images_per_s", INFERENCE, True),
)
CORRUPTION = re.compile(r"test/corruption/([^/]+)/err1")  # a corruption's error over its severities


def corruptions(runs: list[dict[str, list[float]]]) -> dict[str, Spread]:
    """Each corruption's error (its last value in each run that logged it) over a row's runs, by corruption name."""
    names = sorted({match[1] for scalars in runs for tag in scalars if (match := CORRUPTION.fullmatch(tag))})
    found = {name: Spread.of([s[f"test/corruption/{name}/err1"][-1] for s in runs if s.get(f"test/corruption/{name}/err1")])
             for name in names}  # fmt: skip
    return {name: spread for name, spread in found.items() if spread is not None}


@dataclass(frozen=True)
class Bar:
    """One row of the report as the chart draws it: ``half`` None below two runs, ``paper`` None where nothing is printed,
    ``rate`` its measured training images/s (None where not logged), ``corruptions`` its error per corruption."""

    label: str
    mean: float
    half: float | None
    paper: float | None
    runs: int
    attention: bool
    rate: Spread | None = None
    corruptions: dict[str, Spread] | None = None


def plot(bars: list[Bar], metric: str, path: Path) -> Figure:
    """The report's chart: one panel of the metric, and where runs tested corrupted data one of the error per corruption.

    The metric's panel plots it against the measured training images/s where any row logged them
    (``_against_throughput``), else as bars (``_bars``). A ``Figure`` without pyplot draws with Agg and keeps no
    global state; it is returned for a look at its panels.
    """
    colors = ["tab:gray" if not bar.attention else f"C{index % 10}" for index, bar in enumerate(bars)]  # a row's, in both
    tested = [(bar, color) for bar, color in zip(bars, colors, strict=True) if bar.corruptions]
    figure = Figure(figsize=(9 * (1 + bool(tested)), 1.4 + 0.45 * max(len(bars), 8 if tested else 0)), layout="constrained")
    left = figure.add_subplot(1, 1 + bool(tested), 1)
    if any(bar.rate is not None for bar in bars):
        _against_throughput(left, bars, colors, metric)
    else:
        _bars(left, bars, metric)
    if tested:
        _by_corruption(figure.add_subplot(1, 2, 2), tested)
    figure.savefig(path, dpi=120)
    return figure


def _against_throughput(axes: Any, bars: list[Bar], colors: list[str], metric: str) -> None:
    """Each row a point: its metric against its training images/s, both ± their 95 % intervals, the paper's figure a black
    diamond above the same rate; rows without a rate are named under the panel, not drawn."""
    printed = False
    for bar, color in zip(bars, colors, strict=True):
        if bar.rate is None:
            continue
        axes.errorbar(bar.rate.mean, bar.mean, xerr=bar.rate.half or 0.0, yerr=bar.half or 0.0, fmt="o" if bar.attention
                      else "s", color=color, capsize=4, label=f"{bar.label} (n={bar.runs})")  # fmt: skip
        if bar.paper is not None:
            label = None if printed else "paper (printed)"
            axes.scatter(bar.rate.mean, bar.paper, marker="D", color="black", zorder=3, label=label)
            printed = True
    missing = [bar.label for bar in bars if bar.rate is None]
    axes.set_xlabel("training images/s (measured), ± 95 % interval" + (f"; not logged: {', '.join(missing)}" if missing else ""))
    axes.set_ylabel(metric)
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=1, frameon=False, fontsize="small")


def _by_corruption(axes: Any, bars: list[tuple[Bar, str]]) -> None:
    """Grouped bars: for each corruption, the error of each row that tested it (a baseline beside its attention rows, in
    table order, each in its color), ± 95 % interval over seeds."""
    names = sorted({name for bar, _ in bars for name in bar.corruptions or {}})
    width = 0.8 / len(bars)
    for index, (bar, color) in enumerate(bars):
        found = [(i, bar.corruptions[name]) for i, name in enumerate(names) if name in (bar.corruptions or {})]
        axes.bar([i + (index - (len(bars) - 1) / 2) * width for i, _ in found], [s.mean for _, s in found], width,
                 yerr=[s.half or 0.0 for _, s in found], capsize=2, color=color, label=bar.label)  # fmt: skip
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel("top-1 error % on corrupted data, ± 95 % interval")
    axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False, fontsize="small")


def _bars(axes: Any, bars: list[Bar], metric: str) -> None:
    """One horizontal bar per row, top to bottom as in the table: the mean, ± its 95 % interval over seeds, the paper's
    figure a black diamond.

    Horizontal, so that long row labels read level; each bar is labelled with its mean and n, so
    that a bar without an error bar (n = 1) says why. The axis starts near the smallest value, not
    at 0: errors of ~20 % that differ by a point would otherwise look equal.
    """
    rows = list(range(len(bars)))
    means = [bar.mean for bar in bars]
    axes.barh(rows, means, color=["tab:blue" if bar.attention else "tab:gray" for bar in bars])
    spread = [(row, bar) for row, bar in zip(rows, bars, strict=True) if bar.half is not None]
    if spread:
        axes.errorbar([b.mean for _, b in spread], [r for r, _ in spread], xerr=[b.half for _, b in spread], fmt="none",
                      ecolor="black", capsize=4, label="± 95 % interval over seeds")  # fmt: skip
    printed = [(row, bar.paper) for row, bar in zip(rows, bars, strict=True) if bar.paper is not None]
    if printed:
        axes.scatter(
            [p for _, p in printed], [r for r, _ in printed], marker="D", color="black", zorder=3, label="paper (printed)"
        )
    reach = [
        [bar.mean - (bar.half or 0.0), bar.mean + (bar.half or 0.0), *([] if bar.paper is None else [bar.paper])] for bar in bars
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
