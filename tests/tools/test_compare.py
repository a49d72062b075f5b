"""`bam compare` on runs written the way `bam fit` writes them: TensorBoard events and LightningCLI's config.yaml.

`--paper` (the reproduction report) is checked against the paper's figures read here from
paper_tables.json itself and against Welch's test computed here with scipy from the same values.
"""

import csv
import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from scipy.stats import t, ttest_ind
from torch.utils.tensorboard import SummaryWriter

from bam_lightning.errors import InputError
from bam_lightning.tools.compare import collect, differences, find_runs, paper_report, render, render_paper, write_report
from bam_lightning.tools.report import MEASURES, Bar, Spread, half_interval, plot, printed_figure, welch

from helpers.command import bam, one_line_error, refusal

CONFIG = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"
PAPER = json.loads((Path(__file__).parents[2] / "bam_lightning" / "paper" / "reference" / "paper_tables.json").read_text())
STEPS_PER_EPOCH = 10
# Parameters (M) and GMACs of WRN-28-8 without and with BAM on CIFAR-100, as tests/tools/test_summary.py finds them.
COUNTS = {None: "23.401 | 3.360", "bam": "23.423 | 3.365"}
# val/err1 per epoch of each (attention, seed): finals 22, 23 | 21, 20 and bests 21, 23 | 20, 19.5.
ERRORS = {
    (None, 0): [30.0, 21.0, 22.0],
    (None, 1): [31.0, 24.0, 23.0],
    ("bam", 0): [29.0, 20.0, 21.0],
    ("bam", 1): [28.0, 19.5, 20.0],
}


def write_run(
    version_dir: Path,
    attention: str | None,
    seed: int,
    errors: list[float],
    first_epoch: int = 0,
    attention_kwargs=None,
    base: Path = CONFIG,
    scalars: dict[str, list[float]] | None = None,
    **options,
) -> None:
    """One `lightning_logs/version_N`: the scalars Lightning logs at each validation, and the saved config.

    No ``errors``: a run that has started and not validated yet. ``attention_kwargs`` None as LightningCLI saves an unset option.
    ``scalars``: more tags, each value at a step of its own (``test/ece``, ``train/device/samples_per_sec``, ...).
    ``options``: more of the config, as ``section__option=value`` (``trainer__max_epochs=3``) over ``base``'s.
    """
    config = yaml.safe_load(base.read_text())
    config["seed_everything"] = seed
    config["model"]["attention"] = attention
    config["model"]["attention_kwargs"] = attention_kwargs
    for name, value in options.items():
        *sections, option = name.split("__")
        place = config
        for section in sections:
            place = place.setdefault(section, {})
        place[option] = value
    writer = SummaryWriter(str(version_dir))
    for epoch, error in enumerate(errors, start=first_epoch):
        step = (epoch + 1) * STEPS_PER_EPOCH - 1
        writer.add_scalar("val/err1", error, step)
        writer.add_scalar("val/acc1", 100 - error, step)
        writer.add_scalar("epoch", epoch, step)
    for tag, values in (scalars or {}).items():
        for step, value in enumerate(values):
            writer.add_scalar(tag, value, step)
    writer.close()
    (version_dir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two seeds of the baseline and of BAM, in the folders `bam fit` would make."""
    root = tmp_path_factory.mktemp("runs")
    for version, ((attention, seed), errors) in enumerate(ERRORS.items()):
        write_run(root / "x" / "lightning_logs" / f"version_{version}", attention, seed, errors)
    return root


def test_finds_every_version_folder_from_any_folder_above(runs):
    assert len(find_runs([runs])) == 4
    assert find_runs([runs / "x" / "lightning_logs" / "version_2"]) == [(runs / "x" / "lightning_logs" / "version_2").resolve()]
    assert len(find_runs([runs, runs / "x"])) == 4  # overlapping arguments count a run once


def test_groups_seeds_into_mean_and_std(runs):
    baseline, bam = collect([runs])
    assert (baseline["attention"], bam["attention"]) == (None, "bam")
    assert baseline["backbone"] == "wrn28_8" and baseline["dataset"] == "CIFAR100"
    assert baseline["runs"] == bam["runs"] == 2 and baseline["epochs"] == [3, 3]
    assert baseline["final_mean"] == pytest.approx(22.5) and baseline["final_std"] == pytest.approx(statistics.stdev([22, 23]))
    assert baseline["best_mean"] == pytest.approx(22.0) and baseline["best_std"] == pytest.approx(2**0.5)
    assert bam["final_mean"] == pytest.approx(20.5) and bam["best_mean"] == pytest.approx(19.75)
    assert bam["best_std"] == pytest.approx(statistics.stdev([20, 19.5]))
    (diff,) = differences([baseline, bam])
    assert diff["final_diff"] == pytest.approx(-2.0) and diff["best_diff"] == pytest.approx(-2.25)


def test_accuracy_best_is_the_highest(runs):
    baseline, bam = collect([runs], metric="val/acc1")
    assert baseline["best_mean"] == pytest.approx(100 - 22.0) and bam["final_mean"] == pytest.approx(100 - 20.5)
    assert differences([baseline, bam])[0]["best_diff"] == pytest.approx(2.25)


def test_markdown_table(runs):
    lines = render(collect([runs]), "val/err1").splitlines()
    assert lines[0] == "| dataset | backbone | attention | runs | final val/err1 | best val/err1 | epochs |"
    assert lines[2] == "| CIFAR100 | wrn28_8 | none | 2 | 22.50 ± 0.71 | 22.00 ± 1.41 | 3 |"
    assert lines[3] == "| CIFAR100 | wrn28_8 | bam | 2 | 20.50 ± 0.71 | 19.75 ± 0.35 | 3 |"
    assert lines[4] == "| CIFAR100 | wrn28_8 | bam − none | — | -2.00 | -2.25 | — |"
    assert len(lines) == 5


def test_one_run_has_no_std_and_csv_parses(runs):
    rows = collect([runs / "x" / "lightning_logs" / "version_0"])
    assert rows[0]["runs"] == 1 and rows[0]["final_std"] is None
    assert render(rows, "val/err1", "csv").splitlines()[1] == "CIFAR100,wrn28_8,none,1,22.00 ± —,21.00 ± —,3"


def test_a_resumed_run_is_one_run_and_the_later_value_wins(tmp_path):
    """`--ckpt_path last` goes on in version_N+1 with the same config and seed."""
    write_run(tmp_path / "lightning_logs" / "version_0", None, 0, ERRORS[None, 0])
    write_run(tmp_path / "lightning_logs" / "version_1", None, 0, [19.5, 25.0], first_epoch=2)  # epoch 2 logged again
    (row,) = collect([tmp_path])
    assert row["runs"] == 1 and row["epochs"] == [4]
    assert (row["final_mean"], row["best_mean"]) == (25.0, 19.5)


def test_errors_are_one_line(runs, tmp_path):
    with pytest.raises(InputError, match="no run under"):
        collect([tmp_path])
    with pytest.raises(InputError, match="no such folder"):
        collect([tmp_path / "missing"])
    with pytest.raises(
        InputError, match="no 'val/err5' logged in .*version_0 nor any other run; logged: epoch, val/acc1, val/err1"
    ):
        collect([runs], metric="val/err5")


def test_bam_compare_command(runs):
    done = bam("compare", str(runs), cwd=runs)
    assert "| CIFAR100 | wrn28_8 | bam − none | — | -2.00 | -2.25 | — |" in done.stdout


def test_bam_compare_on_an_empty_folder_says_so_in_one_line(tmp_path, capsys):
    assert one_line_error(["compare", str(tmp_path)], capsys).startswith("bam: error: no run under")


def printed(arch: str, key: str = "top1_error") -> float:
    """The figure as paper_tables.json prints it, read here without the package's mapping."""
    (row,) = (row for table in ("cifar100", "imagenet") for row in PAPER[table]["rows"] if row["arch"] == arch)
    return row[key]


def group(backbone: str, attention: str | None = None, attention_kwargs=None, dataset="CIFAR100", experiment=None, **options):
    """A row of ``collect`` as ``printed_figure`` reads it; ``experiment``: its other options, as dotted keys."""
    image_size = options.pop("image_size", None)
    return {"dataset": dataset, "backbone": backbone, "backbone_kwargs": options, "image_size": image_size,
            "attention": attention, "attention_kwargs": attention_kwargs or {}, "experiment": experiment or {}}  # fmt: skip


def test_the_paper_figure_comes_from_the_config():
    assert printed_figure(group("wrn28_8"), "val/err1") == printed("WideResNet 28 (w=8)") == 20.4
    assert printed_figure(group("wrn28_8", "bam"), "val/err1") == printed("WideResNet 28 (w=8) + BAM") == 19.06
    assert printed_figure(group("wrn28_8", "bam_official", {"fused": False}), "test/err1") == 19.06
    assert printed_figure(group("wrn28_8", "bam", {"reduction": 16, "dilation": 4}), "val/acc1") == pytest.approx(100 - 19.06)
    bam_resnet18 = group("resnet18", "bam", dataset="ImageNet", image_size=224)
    assert printed_figure(bam_resnet18, "val/err5") == printed("ResNet18 + BAM", "top5_error")
    assert printed_figure(group("mobilenet_v1", dataset="ImageNet", image_size=192), "val/err1") == printed(
        "MobileNet rho=192/224"
    )
    assert printed_figure(group("wide_resnet18", dataset="ImageNet", widen_factor=2.0), "val/err1") == printed(
        "WideResNet18 (widen=2.0)"
    )
    nothing_printed = [
        (group("wrn28_8", "bam", {"reduction": 8}), "val/err1"),  # not the paper's BAM
        (group("wrn28_8", "bam", {"combine": "max"}), "val/err1"),
        (group("wrn28_8", "se"), "val/err1"),
        (group("wrn28_8", dataset="CIFAR10"), "val/err1"),  # the paper's table is CIFAR-100's
        (group("resnet18", dataset="CIFAR100"), "val/err1"),  # an ImageNet row
        (group("wrn28_8"), "val/err5"),  # CIFAR rows print no top-5
        (group("wrn28_8"), "val/loss"),
        (group("wrn16_8"), "val/err1"),  # not in the paper
        (group("wrn28_8", "bam", experiment={"model.placement": "every_block"}), "val/err1"),  # Table 2's BAM-C
        (group("wrn28_8", experiment={"model.label_smoothing": 0.1}), "val/err1"),  # a modern recipe's extra
        (group("wrn28_8", "bam", experiment={"ema.decay": 0.9998}), "val/err1"),
        (group("wrn28_8", experiment={"data.init_args.auto_augment": "trivialaugment"}), "val/err1"),
    ]
    assert [printed_figure(*case) for case in nothing_printed] == [None] * len(nothing_printed)


def welch_cells(values: list[float], baseline: list[float], between: str = " | ") -> str:
    """The interval and p cells of the report, from scipy's Welch test computed here."""
    result = ttest_ind(values, baseline, equal_var=False)
    interval = result.confidence_interval(0.95)
    return f"[{interval.low:+.2f}, {interval.high:+.2f}]{between}{result.pvalue:.3f}"


def interval(values: list[float]) -> float:
    """Half the 95 % interval of the mean, from scipy's Student t computed here."""
    return t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5


def test_paper_report_beside_the_paper_with_welch(runs):
    records = paper_report(collect([runs]), "val/err1")
    finals = {"none": [22.0, 23.0], "bam": [21.0, 20.0]}
    welch = ttest_ind(finals["bam"], finals["none"], equal_var=False)
    assert records[1]["welch"].p == pytest.approx(welch.pvalue) and records[1]["change"] == pytest.approx(-2.0)
    assert records[1]["vs_paper"] == pytest.approx(20.5 - printed("WideResNet 28 (w=8) + BAM"))
    lines = render_paper(records, "val/err1").splitlines()
    header = "dataset | backbone | attention | n | final val/err1 | paper | ours − paper | att − none | 95 % CI | p (Welch)"
    assert lines[0] == f"| {header} | params (M) | GMACs | epochs | note |"
    half = half_interval(finals["none"])  # of the 95 % interval of the mean: 12.7 x 0.71 / sqrt(2) for two seeds
    assert f"{half:.2f}" == "6.35" and half_interval(finals["bam"]) == pytest.approx(half)
    assert lines[2] == f"| CIFAR100 | wrn28_8 | none | 2 | 22.50 ± 6.35 | 20.40 | +2.10 | — | — | — | {COUNTS[None]} | 3 | — |"
    tested = welch_cells(finals["bam"], finals["none"])
    bam_row = f"| CIFAR100 | wrn28_8 | bam | 2 | 20.50 ± 6.35 | 19.06 | +1.44 | -2.00 | {tested} | {COUNTS['bam']}"
    assert lines[3] == f"{bam_row} | 3 | — |"
    assert welch.pvalue == pytest.approx(0.106, abs=5e-4) and len(lines) == 4


def test_welch_does_not_pool_the_variances():
    values, baseline = [19.0, 20.5, 23.0], [22.0, 22.4]  # unequal sizes and spreads: Student's p differs
    expected = ttest_ind(values, baseline, equal_var=False)
    found = welch(ttest_ind, values, baseline)
    assert found.p == pytest.approx(expected.pvalue) and found.p != pytest.approx(ttest_ind(values, baseline).pvalue)
    assert (found.low, found.high) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert welch(ttest_ind, [20.0], baseline) is None and welch(ttest_ind, [20.0, 20.0], [21.0, 21.0]) is None


def test_paper_report_of_a_sweep_still_running(tmp_path):
    """Seeds not started, a seed started and not validated yet, and a baseline resumed in a later version."""
    logs = tmp_path / "lightning_logs"
    write_run(logs / "version_0", None, 0, [30.0, 22.0])
    write_run(logs / "version_1", None, 0, [21.0], first_epoch=2)  # resumed: epoch 2 in version_1
    write_run(logs / "version_2", None, 1, [31.0, 24.0, 23.0])
    write_run(logs / "version_3", "bam", 0, [29.0, 20.0])
    write_run(logs / "version_4", "bam", 1, [])  # started, nothing logged yet
    write_run(logs / "version_5", "bam", 2, [28.0], attention_kwargs={"reduction": 8})
    baseline, bam_row, bam_r8 = paper_report(collect([tmp_path]), "val/err1")
    assert (baseline["runs"], baseline["final"], baseline["welch"]) == (2, [21.0, 23.0], None)
    assert (bam_row["runs"], bam_row["waiting"], bam_row["note"]) == (1, 1, "1 of 2 seeds; 1 waiting")
    assert bam_row["welch"] is None and bam_row["change"] == pytest.approx(20.0 - 22.0)
    lines = render_paper([baseline, bam_row, bam_r8], "val/err1").splitlines()
    half = f"{half_interval([21.0, 23.0]):.2f}"
    assert lines[2] == f"| CIFAR100 | wrn28_8 | none | 2 | 22.00 ± {half} | 20.40 | +1.60 | — | — | — | {COUNTS[None]} | 3 | — |"
    bam_cells = f"| CIFAR100 | wrn28_8 | bam | 1 | 20.00 ± — | 19.06 | +0.94 | -2.00 | — | — | {COUNTS['bam']}"
    assert lines[3] == f"{bam_cells} | 2 | 1 of 2 seeds; 1 waiting |"
    counted = "23.456 | 3.374"  # r=8: a wider bottleneck than r=16's, as summarize counts it
    r8 = f"| CIFAR100 | wrn28_8 | bam (reduction=8) | 1 | 28.00 ± — | — | — | +6.00 | — | — | {counted}"
    assert lines[4] == f"{r8} | 1 | 1 of 2 seeds |"


def test_bam_compare_paper_writes_the_report_beside_the_sweep(runs):
    done = bam("compare", str(runs), "--paper", cwd=runs)
    welch = ttest_ind([21.0, 20.0], [22.0, 23.0], equal_var=False)
    tested = welch_cells([21.0, 20.0], [22.0, 23.0])
    assert f"| bam | 2 | 20.50 ± 6.35 | 19.06 | +1.44 | -2.00 | {tested} | {COUNTS['bam']} | 3 | — |" in done.stdout
    assert done.stderr.strip().endswith(f"wrote {runs / 'report.md'}, {runs / 'report.csv'}, {runs / 'report.png'}")
    assert (runs / "report.md").read_text().count(done.stdout.strip()) == 1
    none, bam_row = csv.DictReader((runs / "report.csv").open())
    assert (none["paper"], none["p_welch"], bam_row["paper"]) == ("20.4", "", "19.06")
    assert float(bam_row["p_welch"]) == pytest.approx(welch.pvalue, rel=1e-5)
    assert float(bam_row["ci95_low"]) == pytest.approx(welch.confidence_interval(0.95).low, rel=1e-5)
    with Image.open(runs / "report.png") as png:
        assert png.format == "PNG" and png.width > 800 and png.height > 150


def test_bam_compare_paper_mistakes_are_one_line(runs, tmp_path):
    (tmp_path / "file").touch()
    mistakes = {
        ("--out", str(tmp_path)): "bam compare: --out is where --paper writes its report; add --paper",
        (str(tmp_path), "--paper"): "bam compare --paper: several run folders given; say where the report goes with --out FOLDER",
        ("--paper", "--out", str(tmp_path / "file")): f"bam compare --paper: --out {tmp_path / 'file'} is a file; give a folder",
    }
    for args, message in mistakes.items():
        assert refusal(bam("compare", str(runs), *args, cwd=tmp_path, check=False)) == f"bam: error: {message}"


def test_bam_compare_paper_without_scipy_names_the_extra(runs, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import scipy.stats raises ImportError
    line = one_line_error(["compare", str(runs), "--paper"], capsys)
    assert line == "bam: error: bam compare --paper needs scipy: pip install 'bam_lightning[report]'"


def test_a_row_is_one_experiment_the_rest_says_how_it_differs(tmp_path):
    """Runs that differ in anything but their seed and where they write are never pooled (issue 36).

    BAM beside BAM-C (Table 2's placement), a shorter run of the same seed, a smaller lr: each a row of
    its own, named by how it differs; each seed's output folder and data loading may differ.
    """
    logs = tmp_path / "lightning_logs"
    write_run(logs / "version_0", None, 0, [30.0, 22.0], trainer__default_root_dir="a", data__init_args__num_workers=1)
    write_run(logs / "version_1", None, 1, [31.0, 23.0], trainer__default_root_dir="b", data__init_args__num_workers=8,
              throughput={"window_size": 9, "enable": False})  # what it shows, not what it trains  # fmt: skip
    write_run(logs / "version_2", "bam", 0, [29.0, 20.0])
    write_run(logs / "version_3", "bam", 1, [28.0, 21.0], model__placement="bottleneck")  # WRN's own, written out
    write_run(logs / "version_4", "bam", 0, [27.0, 26.0], model__placement="every_block")
    write_run(logs / "version_5", "bam", 0, [40.0], trainer__max_epochs=1)  # seed 0 again, one epoch: not a resumed run
    write_run(logs / "version_6", "bam", 0, [35.0, 25.0], model__optimizer={"class_path": "torch.optim.SGD",
              "init_args": {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 5.0e-4}})  # fmt: skip
    rows = collect([tmp_path])
    found = {(row["attention"], row["placement"], row["differs"]): (row["runs"], row["final"]) for row in rows}
    assert found == {
        (None, None, None): (2, [22.0, 23.0]),
        ("bam", None, None): (2, [20.0, 21.0]),
        ("bam", "every_block", None): (1, [26.0]),
        ("bam", None, "max_epochs=1"): (1, [40.0]),
        ("bam", None, "optimizer.lr=0.01"): (1, [25.0]),
    }
    lines = render(rows, "val/err1").splitlines()
    assert lines[0] == "| dataset | backbone | attention | differs | runs | final val/err1 | best val/err1 | epochs |"
    assert "| CIFAR100 | wrn28_8 | bam (placement=every_block) | — | 1 | 26.00 ± — | 26.00 ± — | 2 |" in lines
    assert "| CIFAR100 | wrn28_8 | bam | max_epochs=1 | 1 | 40.00 ± — | 40.00 ± — | 1 |" in lines
    # Each attention row against the baseline trained as it was: only plain BAM and BAM-C have one.
    assert "| CIFAR100 | wrn28_8 | bam − none | — | — | -2.00 | -2.00 | — |" in lines
    assert "| CIFAR100 | wrn28_8 | bam (placement=every_block) − none | — | — | +3.50 | +3.50 | — |" in lines
    assert len(lines) == 2 + 5 + 2
    records = paper_report(rows, "val/err1")
    paper = {(r["attention"], r["placement"], r["differs"]): (r["paper"], r["change"]) for r in records}
    assert paper[None, None, None] == (20.4, None) and paper["bam", None, None][0] == 19.06
    assert paper["bam", "every_block", None][0] is None  # BAM-C is not the paper's Table 3 BAM
    assert paper["bam", None, "max_epochs=1"][1] is None and paper["bam", None, "optimizer.lr=0.01"][1] is None


def test_ssd_and_stairnet_are_two_rows(tmp_path):
    """Two detectors on one backbone and data, same seed: two experiments, neither hidden by the other."""
    voc = Path(__file__).parents[2] / "configs" / "voc"
    write_run(tmp_path / "ssd" / "version_0", None, 0, [30.0], base=voc / "ssd300_vgg16.yaml")
    write_run(tmp_path / "stairnet" / "version_0", None, 0, [25.0], base=voc / "stairnet300_vgg16.yaml")
    ssd, stairnet = sorted(collect([tmp_path]), key=lambda row: row["differs"])
    assert (ssd["differs"], ssd["final"], stairnet["differs"], stairnet["final"]) == (
        "detector=ssd300",
        [30.0],
        "detector=stairnet300",
        [25.0],
    )


def test_a_run_resumed_in_another_version_and_another_folder_is_still_one_run(tmp_path):
    """`--ckpt_path last` saves its own ckpt_path, and may be given another root (a copied run): still one run."""
    write_run(tmp_path / "lightning_logs" / "version_0", "bam", 0, [30.0, 22.0])
    write_run(tmp_path / "lightning_logs" / "version_1", "bam", 0, [21.0], first_epoch=2, ckpt_path="last",
              trainer__default_root_dir="elsewhere", checkpoint={"dirpath": "elsewhere/checkpoints"})  # fmt: skip
    (row,) = collect([tmp_path])
    assert (row["runs"], row["epochs"], row["final"], row["differs"]) == (1, [3], [21.0], None)


def test_a_damaged_config_is_skipped_and_named(tmp_path, capsys):
    """A config.yaml cut short (or not a mapping) is never pooled with the others: skipped, named on stderr.

    An events file cut short is read up to its last whole record (TensorBoard's reader), without a traceback.
    """
    logs = tmp_path / "lightning_logs"
    write_run(logs / "version_0", None, 0, [30.0, 22.0])
    (events,) = (logs / "version_0").glob("events.out.tfevents.*")
    events.write_bytes(events.read_bytes()[:-5])  # the last record (the last step's "epoch") cut short
    for version, text in ((1, "model:\n  backbone: [wrn28"), (2, "just a line"), (3, "model: 3\ndata: {}")):
        write_run(logs / f"version_{version}", None, version, [1.0])
        (logs / f"version_{version}" / "config.yaml").write_text(text)
    (row,) = collect([tmp_path])
    assert (row["runs"], row["final"]) == (1, [22.0])
    runs = [logs.resolve() / f"version_{version}" for version in (1, 2, 3)]
    assert capsys.readouterr().err.splitlines() == [
        f"bam compare: skipped the run in {run}: {run / 'config.yaml'} is not a YAML mapping (damaged?)" for run in runs
    ]


def test_bam_compare_command_on_damaged_and_mixed_runs(tmp_path):
    """As a user runs it: a damaged run named, not a traceback; only damaged runs: one refusal line."""
    write_run(tmp_path / "good" / "version_0", "bam", 0, [21.0])
    write_run(tmp_path / "bam_c" / "version_0", "bam", 0, [23.0], model__placement="every_block")
    write_run(tmp_path / "bad" / "version_0", "bam", 1, [99.0])
    (tmp_path / "bad" / "version_0" / "config.yaml").write_text("model: {attention: bam")
    done = bam("compare", str(tmp_path), cwd=tmp_path)
    assert "| CIFAR100 | wrn28_8 | bam | 1 | 21.00 ± — | 21.00 ± — | 1 |" in done.stdout
    assert "| CIFAR100 | wrn28_8 | bam (placement=every_block) | 1 | 23.00 ± — | 23.00 ± — | 1 |" in done.stdout
    assert f"skipped the run in {tmp_path / 'bad' / 'version_0'}" in done.stderr and "Traceback" not in done.stderr
    line = refusal(bam("compare", str(tmp_path / "bad"), cwd=tmp_path, check=False))
    assert line == "bam: error: bam compare: no run with a readable config.yaml (the damaged ones are named above)"


# What a new user points it at (issue 36's probe).


def test_paper_out_that_cannot_be_made_is_refused_before_any_table(tmp_path: Path):
    """--out under a file, or where no folder can be made (/proc, even for root): one line, nothing printed before it."""
    write_run(tmp_path / "runs" / "version_0", "bam", 0, [21.0])
    (tmp_path / "file").write_text("")
    for out, why in (("file/report", "is under file, a file, not a folder"), ("/proc/report", "cannot be made")):
        done = bam("compare", "runs", "--paper", "--out", out, cwd=tmp_path, check=False)
        assert refusal(done) == f"bam: error: bam compare --paper: --out {out} {why}" + (
            ": give a folder" if out.startswith("file") else " (No such file or directory): give a folder you can write to"
        )
        assert done.stdout == ""


def test_a_config_or_events_file_that_is_a_folder_is_no_traceback(tmp_path: Path):
    """A config.yaml that cannot be read is a damaged run, skipped and named; events that cannot be read count as waiting."""
    good, no_config, no_events = (tmp_path / name / "version_0" for name in ("good", "no_config", "no_events"))
    write_run(good, "bam", 0, [21.0])
    write_run(no_config, "bam", 1, [23.0])
    (no_config / "config.yaml").unlink()
    (no_config / "config.yaml").mkdir()
    write_run(no_events, "bam", 2, [25.0])
    (events,) = no_events.glob("events.out.tfevents.*")
    events.unlink()
    events.mkdir()
    done = bam("compare", str(tmp_path), "--paper", "--out", "report", cwd=tmp_path)
    assert f"| bam | 1 | 21.00 ± — | 19.06 | +1.94 | — | — | — | {COUNTS['bam']} | 1 | 1 waiting |" in done.stdout
    assert f"skipped the run in {no_config}: {no_config / 'config.yaml'} is not a YAML mapping" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_experiment_none_of_whose_runs_has_validated_yet_is_named(tmp_path: Path):
    """Its row cannot be made yet, but it is not left out unsaid: a sweep's newest config would seem never to have run."""
    write_run(tmp_path / "done" / "version_0", "bam", 0, [21.0])
    write_run(tmp_path / "started" / "version_0", "bam", 0, [], trainer__max_epochs=3)
    done = bam("compare", str(tmp_path), cwd=tmp_path)
    assert "| CIFAR100 | wrn28_8 | bam | 1 | 21.00 ± — | 21.00 ± — | 1 |" in done.stdout
    assert done.stderr.splitlines() == [
        f"bam compare: no row yet for {tmp_path / 'started' / 'version_0'}: no 'val/err1' logged yet"
    ]


# What a reviewer asks for beside top-1 (issue 38): calibration, corruption error, throughput, each over seeds.

# Per (attention, seed): ECE %, mean corruption error %, its two corruptions, training images/s (the first value a
# warm-up) and validation images/s, as the classifiers, a corruption `bam test` and Lightning's ThroughputMonitor log
# them; the tests' images/s beside them (read only where a run has no validation's).
MEASURED = {
    (None, 0): (4.0, 40.0, (30.0, 50.0), [20.0, 100.0, 110.0], [400.0]),
    (None, 1): (5.0, 42.0, (33.0, 51.0), [25.0, 104.0, 106.0], [420.0]),
    ("bam", 0): (3.0, 37.0, (28.0, 46.0), [15.0, 90.0, 96.0], [380.0]),
    ("bam", 1): (3.5, 36.0, (29.0, 43.0), [18.0, 94.0, 92.0], [370.0]),
}


def measured_scalars(ece: float, corruption: float, each: tuple[float, float], train: list[float], test: list[float]):
    noise, blur = each
    return {"val/ece": [9.0, ece + 1], "test/ece": [ece], "test/corruption/mean_err1": [corruption],
            "test/corruption/gaussian_noise/err1": [noise], "test/corruption/gaussian_noise/s1/err1": [noise - 9],
            "test/corruption/motion_blur/err1": [blur], "train/device/samples_per_sec": train,
            "validate/device/samples_per_sec": test, "test/device/samples_per_sec": [1.0, 1e4]}  # fmt: skip


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> list[dict]:
    """The report's records of two seeds of the baseline and of BAM that logged every measured column."""
    root = tmp_path_factory.mktemp("measured")
    for version, ((attention, seed), values) in enumerate(MEASURED.items()):
        errors = ERRORS[attention, seed]
        write_run(root / "lightning_logs" / f"version_{version}", attention, seed, errors, scalars=measured_scalars(*values))
    return paper_report(collect([root]), "val/err1")


def column(attention, index: int) -> list[float]:
    return [values[index] for (which, _), values in MEASURED.items() if which == attention]


def test_measures_per_run_prefer_the_test_and_the_whole_runs_rate():
    ece, train, inference = (
        next(m for m in MEASURES if m.key == key) for key in ("ece", "train_images_per_s", "inference_images_per_s")
    )
    assert ece.of_run({"val/ece": [9.0, 7.0], "test/ece": [5.0]}) == 5.0 and ece.of_run({"val/ece": [9.0, 7.0]}) == 7.0
    assert ece.of_run({"val/err1": [1.0]}) is None
    assert train.of_run({"train/device/samples_per_sec": [1.0, 100.0, 110.0]}) == 105.0  # the first one, a warm-up, left
    assert train.of_run({"train/device/samples_per_sec": [50.0]}) == 50.0  # a single value is all there is
    assert train.of_run({"train/samples_per_sec": [1.0, 400.0], "train/device/samples_per_sec": [1.0, 100.0]}) == 400.0
    tested = {"test/device/samples_per_sec": [1.0, 900.0]}  # a test's, perhaps of corrupted data at another batch size
    assert (
        inference.of_run({"validate/device/samples_per_sec": [1.0, 300.0], **tested}) == 300.0 and inference.of_run(tested) == 900
    )


def test_the_report_shows_calibration_corruption_and_throughput_with_intervals(measured):
    baseline, bam_row = measured
    lines = render_paper(measured, "val/err1").splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[10:] == [
        "ECE %",
        "ECE att − none",
        "corruption err %",
        "corruption att − none",
        "params (M)",
        "GMACs",
        "train img/s",
        "inference img/s",
        "epochs",
        "note",
    ]  # fmt: skip  (no mCE: no run logged one)
    cells = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)) for line in lines[2:]]
    for row, attention in zip(cells, (None, "bam"), strict=True):
        ece, corruption = column(attention, 0), column(attention, 1)
        assert row["ECE %"] == f"{statistics.fmean(ece):.2f} ± {interval(ece):.2f}"
        assert row["corruption err %"] == f"{statistics.fmean(corruption):.2f} ± {interval(corruption):.2f}"
        assert row["inference img/s"].startswith(f"{statistics.fmean(rate[0] for rate in column(attention, 4)):.0f} ± ")
    assert cells[0]["ECE att − none"] == "—" and cells[0]["train img/s"] == "105 ± 0"
    ece_change = statistics.fmean(column("bam", 0)) - statistics.fmean(column(None, 0))
    assert cells[1]["ECE att − none"] == f"{ece_change:+.2f} {welch_cells(column('bam', 0), column(None, 0), ' p ')}"
    corruption_change = statistics.fmean(column("bam", 1)) - statistics.fmean(column(None, 1))
    tested = welch_cells(column("bam", 1), column(None, 1), " p ")
    assert cells[1]["corruption att − none"] == f"{corruption_change:+.2f} {tested}"
    slower = 100 * (statistics.fmean([93.0, 93.0]) / statistics.fmean([105.0, 105.0]) - 1)  # means after the warm-up
    assert cells[1]["train img/s"] == f"93 ± 0 ({slower:+.1f} %)" and bam_row["measure_changes"]["train_images_per_s"][1] is None
    assert set(bam_row["corruptions"]) == {"gaussian_noise", "motion_blur"}  # not s1: a severity's, not a corruption's
    assert bam_row["corruptions"]["motion_blur"].values == [46.0, 43.0]
    assert baseline["measures"]["mce"] is None


def test_the_report_csv_keeps_the_measures_numbers_apart(measured):
    none, bam_row = csv.DictReader(render_paper(measured, "val/err1", "csv").splitlines())
    expected = ttest_ind(column("bam", 0), column(None, 0), equal_var=False)
    assert float(bam_row["ece_p_welch"]) == pytest.approx(expected.pvalue, rel=1e-5)
    assert float(bam_row["ece_ci95_low"]) == pytest.approx(expected.confidence_interval(0.95).low, rel=1e-5)
    assert float(none["corruption_err1_mean"]) == pytest.approx(41.0) and none["corruption_err1_change"] == ""
    assert none["params"] == "23401012" and float(bam_row["train_images_per_s_mean"]) == pytest.approx(93.0)
    assert "mce_mean" not in none


def test_the_chart_has_the_throughput_panel_and_the_corruption_panel(measured, tmp_path):
    bars = [Bar("none", 22.5, 6.35, None, 2, False, Spread([105.0, 105.0], 105.0, 0.0), measured[0]["corruptions"]),
            Bar("bam", 20.5, 6.35, None, 2, True, Spread([93.0, 93.0], 93.0, 0.0), measured[1]["corruptions"])]  # fmt: skip
    figure = plot(bars, "final val/err1", tmp_path / "two.png")
    left, right = figure.axes[0], figure.axes[1]
    assert len(figure.axes) == 2 and left.get_xlabel().startswith("training images/s")
    assert [tick.get_text() for tick in right.get_xticklabels()] == ["gaussian_noise", "motion_blur"]
    assert len(right.patches) == 4  # a bar per row and corruption
    one = plot([Bar("none", 22.5, None, 20.4, 1, False)], "final val/err1", tmp_path / "one.png")
    assert len(one.axes) == 1 and one.axes[0].get_xlabel() == "final val/err1"  # no throughput logged: today's bars
    write_report(measured, "val/err1", tmp_path / "report")
    with Image.open(tmp_path / "report" / "report.png") as png:
        assert png.width == 2 * 9 * 120  # two panels of 9 inches side by side, at 120 dpi
