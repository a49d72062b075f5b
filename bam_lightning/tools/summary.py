"""``bam summary``: what attention costs a network, counted on the network, beside the paper's Table 3.

Parameters and GMACs are counted on models built here (``count_parameters``, ``count_macs``),
never copied; the paper's figures come only from ``paper_tables.json`` through
``bam_lightning.paper.rows``, so a disagreement shows instead of being hidden.

    bam summary --model wrn28_8 [--backbone_kwargs '{...}'] [--attention bam] [--num_classes 100]
    bam summary --config configs/cifar100_wrn.yaml
    bam summary --all [--format table|markdown|csv]
    bam summary --detection [--format ...]       # the detectors of Table 4, counted beside its rows
    bam summary --model wrn28_8 --measure true [--batch_size 32] [--device cpu|cuda] [--compile true]

``--measure true`` adds images/s measured here (``measure``): of an inference forward and of a training step,
eager and (``--compile true``) compiled, for the network with its attention and without: what the MACs leave
out (element-wise work, memory traffic) shows there. Without it nothing is built for real or run.
"""

import csv
import io
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from jsonargparse import ArgumentParser
from jsonargparse.typing import NonNegativeInt, PositiveInt

from ..errors import InputError
from ..models import count_macs, count_parameters, create_model, get_model_entry, images_per_second
from ..models.detection import create_detector
from ..nn import AttentionName
from ..paper.rows import KNOWN_DIFFERENCES, TABLE_3, TABLE_4, find_paper_model, printed_detection_row, printed_row
from . import parse, tool_parser

Format = Literal["table", "markdown", "csv"]
BAM_FORMS = ("bam", "bam_official")  # the attention the paper's "+ BAM" rows stand beside
DATASET_CLASSES = {"CIFAR100": 100, "CIFAR10": 10, "ImageNet": 1000}  # datamodule name prefix -> classes


@dataclass(frozen=True)
class ModelSpec:
    """A network to count, with and without ``attention``.

    ``num_classes`` None means 100 for 32-pixel models, else 1000; ``input_size`` None
    means the size the backbone is registered for.
    """

    backbone: str
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    attention: AttentionName = "bam"
    attention_kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    input_size: int | None = None
    placement: str | None = None


def with_options(name: Any, options: dict[str, Any]) -> str:
    """``wide_resnet18 (widen_factor=2.0)``: a name as tables show it."""
    listed = ", ".join(f"{key}={value}" for key, value in options.items())
    return f"{name} ({listed})" if listed else str(name)


def count_model(spec: ModelSpec, attention: AttentionName | None, num_classes: int, input_size: int) -> tuple[int, int]:
    """Parameters and MACs of the network built on the meta device.

    Shapes without storage: the counts equal a CPU-built network's, but nothing is
    initialised or computed, so ``--all`` takes seconds even on a busy CPU.
    """
    with torch.device("meta"):
        model = create_model(spec.backbone, num_classes, attention, spec.attention_kwargs, spec.placement, **spec.backbone_kwargs)
    return count_parameters(model), count_macs(model, input_size)


@dataclass(frozen=True)
class Timing:
    """How ``measure`` times: ``batch`` random images per call, on ``device``, ``warmup`` calls then the median of
    ``repeats`` timed ones, eager and also compiled where ``compile``."""

    batch: int = 32
    device: str = "cpu"
    compile: bool = False
    warmup: int = 3
    repeats: int = 10


MODES = ("eager", "compiled")


def check_device(device: str) -> torch.device:
    """``device`` as torch takes it, refused in one line where it is none, or a GPU this machine does not have."""
    try:
        found = torch.device(device)
    except RuntimeError:
        raise InputError(f"bam summary: --device {device} is not a device: give cpu or cuda (cuda:N)") from None
    if found.type not in ("cpu", "cuda"):
        raise InputError(f"bam summary: --device {device}: give cpu or cuda (cuda:N)")
    if found.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"bam summary: --device {device}, but torch sees no CUDA GPU here: give --device cpu")
    if found.type == "cuda" and (found.index or 0) >= torch.cuda.device_count():
        raise InputError(f"bam summary: --device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return found


def measure(spec: ModelSpec, num_classes: int, input_size: int, timing: Timing) -> dict[str, float]:
    """Images/s of a forward and of a training step (``images_per_second``) without and with ``spec.attention``, each
    mode of ``MODES`` that ``timing`` asks for, as ``{"eager step attn": ...}``.

    Both networks are built for real and timed together, round-robin, so that their ratio holds on a busy machine.
    Compiled: ``nn.Module.compile`` of the whole network, its compiling inside the warm-up.
    """
    device = check_device(timing.device)
    found: dict[str, float] = {}
    for mode in MODES[: 1 + timing.compile]:
        models = {
            name: create_model(
                spec.backbone, num_classes, attention, spec.attention_kwargs, spec.placement, **spec.backbone_kwargs
            )
            for name, attention in (("base", None), ("attn", spec.attention))
        }
        if mode == "compiled":
            for model in models.values():
                model.compile()
        rates = images_per_second(models, timing.batch, input_size, num_classes, device, timing.warmup, timing.repeats)
        for name, (forward, step) in rates.items():
            found |= {f"{mode} forward {name}": forward, f"{mode} step {name}": step}
    return found


def summarize(specs: Iterable[ModelSpec], timing: Timing | None = None) -> list[dict[str, Any]]:
    """One dict per spec: counts without and with its attention, overheads in percent, the paper's rows and note.

    Each network is built once per attention setting and counted once; ``paper`` and
    ``paper_bam`` are the printed rows (None where the paper has none; ``paper_bam`` only
    beside a BAM), ``note`` says why a figure cannot match the print. With ``timing``, ``measured``: ``measure``'s
    images/s (else None).
    """
    rows = []
    for spec in specs:
        entry = get_model_entry(spec.backbone)
        num_classes = spec.num_classes or (100 if entry.input_size == 32 else 1000)
        input_size = spec.input_size or entry.input_size
        params, macs = count_model(spec, None, num_classes, input_size)
        params_attn, macs_attn = count_model(spec, spec.attention, num_classes, input_size)
        paper = find_paper_model(spec.backbone, spec.backbone_kwargs, spec.input_size)
        rows.append(
            {
                "model": with_options(spec.backbone, spec.backbone_kwargs),
                "input_size": input_size,
                "num_classes": num_classes,
                "attention": spec.attention,
                "params": params,
                "params_attn": params_attn,
                "params_overhead_pct": 100 * (params_attn - params) / params,
                "macs": macs,
                "macs_attn": macs_attn,
                "macs_overhead_pct": 100 * (macs_attn - macs) / macs,
                "paper": printed_row(paper, attention=False) if paper else None,
                "paper_bam": printed_row(paper, attention=True) if paper and spec.attention in BAM_FORMS else None,
                "note": KNOWN_DIFFERENCES.get(paper.arch, "") if paper else "",
                "measured": None if timing is None else measure(spec, num_classes, input_size, timing),
            }
        )
    return rows


def _printed(value: float) -> str:
    """A paper figure with at least two decimals, as the tables print them (23.40, 1.726)."""
    text = repr(value)
    return text if len(text.partition(".")[2]) >= 2 else f"{value:.2f}"


def _paper(which: str, key: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda row: _printed(row[which][key]) if row[which] else None


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str | None]]] = [
    ("model", lambda row: row["model"]),
    ("input", lambda row: str(row["input_size"])),
    ("classes", lambda row: str(row["num_classes"])),
    ("attention", lambda row: row["attention"]),
    ("params (M)", lambda row: f"{row['params'] / 1e6:.3f}"),
    ("+att params (M)", lambda row: f"{row['params_attn'] / 1e6:.3f}"),
    ("params +%", lambda row: f"{row['params_overhead_pct']:.2f}"),
    ("GMACs", lambda row: f"{row['macs'] / 1e9:.3f}"),
    ("+att GMACs", lambda row: f"{row['macs_attn'] / 1e9:.3f}"),
    ("GMACs +%", lambda row: f"{row['macs_overhead_pct']:.2f}"),
    ("paper params (M)", _paper("paper", "params_M")),
    ("paper +BAM params (M)", _paper("paper_bam", "params_M")),
    ("paper GMACs", _paper("paper", "gflops")),
    ("paper +BAM GMACs", _paper("paper_bam", "gflops")),
    ("paper top-1 err", _paper("paper", "top1_error")),
    ("paper +BAM top-1 err", _paper("paper_bam", "top1_error")),
]


def format_table(header: list[str], cells: list[list[str | None]], fmt: Format) -> str:
    """Rows as aligned text, a markdown table or CSV; a missing cell (None) is "—", or empty in CSV."""
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *([cell or "" for cell in row] for row in cells)])
        return out.getvalue().rstrip("\n")
    lines = [header, *([cell or "—" for cell in row] for row in cells)]
    if fmt == "markdown":
        lines.insert(1, ["---"] * len(header))
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines)


def _rate(key: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda row: f"{row['measured'][key]:.0f}" if key in row["measured"] else None


def _slower(mode: str) -> Callable[[dict[str, Any]], str | None]:
    """How much longer a training step takes with the attention, in percent: the figure to set beside ``GMACs +%``."""
    return lambda row: f"{100 * (row['measured'][f'{mode} step base'] / row['measured'][f'{mode} step attn'] - 1):.2f}"


def measured_columns(rows: list[dict[str, Any]]) -> list[tuple[str, Callable[[dict[str, Any]], str | None]]]:
    """The images/s columns of the modes the rows were measured in (none where they were not)."""
    modes = [mode for mode in MODES if rows and rows[0]["measured"] and f"{mode} step base" in rows[0]["measured"]]
    return [
        column
        for mode in modes
        for column in (
            (f"{mode} fwd img/s", _rate(f"{mode} forward base")),
            (f"{mode} +att fwd img/s", _rate(f"{mode} forward attn")),
            (f"{mode} step img/s", _rate(f"{mode} step base")),
            (f"{mode} +att step img/s", _rate(f"{mode} step attn")),
            (f"{mode} step time +%", _slower(mode)),
        )
    ]


def render(rows: list[dict[str, Any]], fmt: Format = "table") -> str:
    """``summarize``'s rows as one table, measured images/s after the counts where measured; the note column only
    where some row has a note."""
    columns = COLUMNS[:10] + measured_columns(rows) + COLUMNS[10:]
    columns += [("note", lambda row: row["note"] or None)] if any(row["note"] for row in rows) else []
    return format_table([name for name, _ in columns], [[cell(row) for _, cell in columns] for row in rows], fmt)


def spec_from_config(path: str | Path) -> ModelSpec:
    """The model of a training YAML (a shipped config or a run's saved ``config.yaml``), without building its data.

    A baseline config (``attention: null``) is counted beside its BAM twin.
    """
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (FileNotFoundError, IsADirectoryError):
        raise InputError(f"no config file {path}") from None
    model, data = config.get("model") or {}, config.get("data") or {}
    if "detector" in model:
        raise InputError(f"{path} is a detection config: bam summary --detection counts the Table 4 detectors")
    if not isinstance(model.get("backbone"), str):
        raise InputError(f"{path}: model.backbone must be a model name (bam summary counts registered models only)")
    name = str(data.get("class_path", "")).rpartition(".")[2]
    return ModelSpec(
        backbone=model["backbone"],
        backbone_kwargs=model.get("backbone_kwargs") or {},
        attention=model.get("attention") or "bam",
        attention_kwargs=model.get("attention_kwargs") or {},
        num_classes=next((classes for prefix, classes in DATASET_CLASSES.items() if name.startswith(prefix)), None),
        input_size=(data.get("init_args") or {}).get("image_size"),
    )


def table_3_specs() -> list[ModelSpec]:
    """Every network of ``bam_lightning.paper.rows.TABLE_3``, with the paper's BAM and its dataset's classes."""
    return [
        ModelSpec(m.backbone, m.backbone_kwargs, num_classes=100 if m.dataset == "cifar100" else 1000, input_size=m.input_size)
        for m in TABLE_3
    ]


DETECTION_CLASSES = {"ms_coco": 80, "voc2007": 20}
DETECTION_FIGURES = ("mAP@.5", "mAP@.75", "mAP@[.5,.95]")


def detection_table(fmt: Format = "table") -> str:
    """Every Table 4 detector built here (on the meta device) and counted, beside its printed row.

    All parameters are counted, frozen ones too (the printed counts are the networks'); COCO's
    rows print no count. The mAPs are the paper's, for reference: results come from ``bam test``.
    """
    header = ["dataset", "detector", "backbone", "attention", "params (M)", "paper params (M)", *DETECTION_FIGURES]
    cells = []
    for row in TABLE_4:
        with torch.device("meta"):
            model = create_detector(row.detector, row.backbone, DETECTION_CLASSES[row.dataset], attention=row.attention)
        printed = printed_detection_row(row)
        params = sum(p.numel() for p in model.parameters())
        paper_params = printed.get("params_M")
        figures = [None if printed.get(f) is None else _printed(printed[f]) for f in DETECTION_FIGURES]
        cells.append(
            [row.dataset, row.detector, row.backbone, row.attention or "none", f"{params / 1e6:.3f}",
             None if paper_params is None else str(paper_params), *figures]
        )  # fmt: skip
    return format_table(header, cells, fmt)


def build_parser() -> ArgumentParser:
    parser = tool_parser(
        "bam summary",
        "Parameters and GMACs without and with attention, beside the paper's Table 3. Give one of --model, --config or --all.",
    )
    parser.add_argument("--model", type=str | None, help="a name from bam_lightning.models.list_models()")
    parser.add_argument("--backbone_kwargs", type=dict[str, Any] | None, help="with --model, e.g. '{widen_factor: 2.0}'")
    parser.add_argument("--attention", type=AttentionName, default="bam", help="with --model")
    parser.add_argument("--num_classes", type=int | None, help="with --model; default 100 for 32-pixel models, else 1000")
    parser.add_argument("--config", type=str | None, help="a training YAML: its model, counted with its dataset's classes")
    parser.add_argument("--all", action="store_true", help="every network of the paper's Table 3 that we build")
    parser.add_argument("--detection", action="store_true", help="every detector of the paper's Table 4")
    parser.add_argument("--format", type=Format, default="table")
    parser.add_argument("--measure", type=bool, default=False, help="also images/s measured here (builds and runs them)")
    defaults = Timing()
    parser.add_argument("--batch_size", type=PositiveInt, default=defaults.batch, help="with --measure: images per call")
    parser.add_argument("--device", type=str, default=defaults.device, help="with --measure: cpu, cuda or cuda:N")
    parser.add_argument("--compile", type=bool, default=defaults.compile, help="with --measure: compiled too (minutes)")
    parser.add_argument("--warmup", type=NonNegativeInt, default=defaults.warmup, help="with --measure: calls not timed")
    parser.add_argument("--repeats", type=PositiveInt, default=defaults.repeats, help="with --measure: timed calls (median)")
    return parser


def main(args: list[str] | None = None) -> None:
    options = parse(build_parser(), args)
    if sum([options.model is not None, options.config is not None, options.all, options.detection]) != 1:
        raise InputError("bam summary: give exactly one of --model NAME, --config PATH, --all or --detection")
    timing = Timing(options.batch_size, options.device, options.compile, options.warmup, options.repeats)
    if options.measure:
        check_device(timing.device)  # before any network is built
    elif timing != Timing():
        raise InputError(
            "bam summary: --batch_size, --device, --compile, --warmup and --repeats are --measure's; add --measure true"
        )
    if options.detection:
        if options.measure:
            raise InputError("bam summary: --measure times classifiers; give --model, --config or --all")
        print(detection_table(options.format))
        return
    if options.all:
        specs = table_3_specs()
    elif options.config is not None:
        specs = [spec_from_config(options.config)]
    else:
        specs = [ModelSpec(options.model, options.backbone_kwargs or {}, options.attention, num_classes=options.num_classes)]
    print(render(summarize(specs, timing) if options.measure else summarize(specs), options.format))


if __name__ == "__main__":
    from ..cli import main as bam

    bam(["summary", *sys.argv[1:]])
