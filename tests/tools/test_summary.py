"""`bam summary` and the paper mapping: counts from built networks, the paper's figures beside them."""

import csv
import io
import re
from pathlib import Path

import pytest
import torch

from bam_lightning.errors import InputError
from bam_lightning.models import count_macs, count_parameters, create_model, get_model_entry
from bam_lightning.paper.reference import load_reference
from bam_lightning.paper.rows import KNOWN_DIFFERENCES, TABLE_3, printed_row
from bam_lightning.tools import summary
from bam_lightning.tools.summary import COLUMNS, ModelSpec, main, spec_from_config, summarize, table_3_specs

from helpers.command import one_line_error

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture(scope="module")
def wrn28_8():
    (row,) = summarize([ModelSpec("wrn28_8")])
    return row


def test_wrn28_8_counts_are_those_of_the_cpu_built_networks(wrn28_8):
    baseline, bam = create_model("wrn28_8", 100, attention=None), create_model("wrn28_8", 100, attention="bam")
    assert (wrn28_8["params"], wrn28_8["params_attn"]) == (23_401_012, 23_423_120)
    assert (wrn28_8["macs"], wrn28_8["macs_attn"]) == (count_macs(baseline, 32), count_macs(bam, 32))
    assert wrn28_8["params_attn"] == count_parameters(bam)
    assert wrn28_8["params_overhead_pct"] == pytest.approx(100 * 22_108 / 23_401_012)
    assert (wrn28_8["input_size"], wrn28_8["num_classes"]) == (32, 100)


def test_wrn28_8_stands_beside_its_table_3_rows(wrn28_8):
    paper, paper_bam = wrn28_8["paper"], wrn28_8["paper_bam"]
    assert (paper["params_M"], paper_bam["params_M"]) == (23.40, 23.42)
    assert (paper["gflops"], paper_bam["gflops"]) == (3.36, 3.37)
    assert (paper["top1_error"], paper_bam["top1_error"]) == (20.40, 19.06)
    assert wrn28_8["note"] == KNOWN_DIFFERENCES["WideResNet 28 (w=8)"]  # 3.3646 GMACs, printed 3.37


def test_table_output(capsys):
    main(["--model", "wrn28_8"])
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:2] == ["model", "input"] and header.split()[-1] == "note"
    numbers = "wrn28_8 32 100 bam 23.401 23.423 0.09 3.360 3.365 0.13 23.40 23.42 3.36 3.37 20.40 19.06"
    assert row.split()[:16] == numbers.split()


def test_markdown_and_csv_parse_back(capsys):
    main(["--model", "wrn28_8", "--format", "csv"])
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["params (M)"] == "23.401" and row["+att params (M)"] == "23.423"
    assert row["paper GMACs"] == "3.36" and row["paper +BAM top-1 err"] == "19.06"

    main(["--model", "resnet18", "--attention", "se", "--format", "markdown"])
    lines = capsys.readouterr().out.strip().splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert cells[0] == [name for name, _ in COLUMNS] and set(cells[1]) == {"---"} and len(cells) == 3
    row = dict(zip(cells[0], cells[2], strict=True))
    assert row["attention"] == "se" and row["paper params (M)"] == "11.69"
    assert row["paper +BAM params (M)"] == "—"  # the paper's BAM row is not SE's


def test_config_counts_what_the_model_flag_counts():
    spec = spec_from_config(CONFIGS / "cifar100_wrn.yaml")
    assert spec == ModelSpec("wrn28_8", num_classes=100)
    assert spec_from_config(CONFIGS / "cifar100_wrn_baseline.yaml") == spec  # a baseline is counted beside BAM
    wide = spec_from_config(CONFIGS / "imagenet" / "wide_resnet18_2.0_bam.yaml")
    assert wide == ModelSpec("wide_resnet18", {"widen_factor": 2.0}, num_classes=1000)


def test_config_flag_prints_the_model_flags_table(capsys):
    main(["--config", str(CONFIGS / "cifar100_wrn.yaml")])
    from_config = capsys.readouterr().out
    main(["--model", "wrn28_8"])
    assert from_config == capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [["--model", "nope"], [], ["--all", "--model", "wrn28_8"], ["--config", "no/such.yaml"]],
    ids=["unknown-model", "nothing", "two-sources", "missing-config"],
)
def test_user_errors(args):
    with pytest.raises(InputError):
        main(args)


def test_bam_command_prints_one_line(capsys):
    from bam_lightning.cli import main as bam

    with pytest.raises(SystemExit) as exit:
        bam(["summary", "--model", "nope"])
    assert exit.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bam: error: unknown model 'nope'")


def _printed_precision(value: float) -> int:
    return max(2, len(repr(value).partition(".")[2]))


@pytest.fixture(scope="module")
def every_row():
    return summarize(table_3_specs())


def test_all_agrees_with_the_print_wherever_no_note_says_otherwise(every_row):
    """A note starting with "GMACs" concerns both GMACs figures; "+BAM ..." only the BAM one."""
    assert len(every_row) == len(TABLE_3)
    for model, row in zip(TABLE_3, every_row, strict=True):
        note = row["note"]
        for ours, paper, key, divisor, noted in [
            (row["params"], row["paper"], "params_M", 1e6, False),
            (row["params_attn"], row["paper_bam"], "params_M", 1e6, "+BAM params" in note),
            (row["macs"], row["paper"], "gflops", 1e9, note.startswith("GMACs")),
            (row["macs_attn"], row["paper_bam"], "gflops", 1e9, "GMACs" in note),
        ]:
            agrees = round(ours / divisor, _printed_precision(paper[key])) == paper[key]
            assert agrees != noted, f"{model.arch} {key}: {ours / divisor:.4f} vs printed {paper[key]}, note {note!r}"


def _stride_on_first_1x1(model: torch.nn.Module) -> torch.nn.Module:
    """The original ResNet layout: a downsampling bottleneck strides its first 1x1, not its 3x3."""
    for block in model.modules():
        conv1, conv2 = getattr(block, "conv1", None), getattr(block, "conv2", None)
        if conv1 is not None and conv1.kernel_size == (1, 1) and conv2 is not None and conv2.stride == (2, 2):
            conv1.stride, conv2.stride = (2, 2), (1, 1)
    return model


STRIDE_CLAIM = re.compile(r"striding the first 1x1 .* counts ([\d.]+) / ([\d.]+)")


STRIDE_NOTED = [m for m in TABLE_3 if STRIDE_CLAIM.search(KNOWN_DIFFERENCES.get(m.arch, ""))]


@pytest.mark.parametrize("model", STRIDE_NOTED, ids=lambda m: m.arch)
def test_stride_notes_hold(model):
    note = KNOWN_DIFFERENCES[model.arch]
    claimed = [float(x) for x in STRIDE_CLAIM.search(note).groups()]
    counted = []
    for attention in (None, "bam"):
        with torch.device("meta"):
            net = create_model(model.backbone, 100 if model.dataset == "cifar100" else 1000, attention, **model.backbone_kwargs)
        counted.append(count_macs(_stride_on_first_1x1(net), get_model_entry(model.backbone).input_size) / 1e9)
    assert [round(c, _printed_precision(x)) for c, x in zip(counted, claimed, strict=True)] == claimed
    printed = [printed_row(model, bam)["gflops"] for bam in (False, True)]
    assert (claimed == printed) == ("as printed" in note)


def test_all_flag_prints_every_row_with_its_note(every_row, monkeypatch, capsys):
    """``--all`` summarises Table 3's specs (the fixture's rows, counted once for the module) and prints them all."""

    def counted(specs):
        assert list(specs) == table_3_specs()
        return every_row

    monkeypatch.setattr(summary, "summarize", counted)
    main(["--all", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(TABLE_3)
    assert all(row["paper params (M)"] and row["paper +BAM GMACs"] for row in rows)
    notes = {row["model"] + "@" + row["input"]: row["note"] for row in rows}
    assert notes["wrn28_10@32"] == "" and notes["resnet50@224"] == KNOWN_DIFFERENCES["ResNet50"]
    assert notes["mobilenet_v1@192"] == KNOWN_DIFFERENCES["MobileNet rho=192/224"]


def test_detection_flag_counts_every_table_4_detector_beside_its_row(capsys):
    main(["--detection", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    printed = load_reference("paper_tables")["detection"]
    assert len(rows) == len(printed["ms_coco"]["rows"]) + len(printed["voc2007"]["rows"])
    for row in rows:
        if row["paper params (M)"]:  # VOC's rows; COCO's print no count
            digits = len(row["paper params (M)"].split(".")[1])
            assert round(float(row["params (M)"]), digits) == float(row["paper params (M)"]), row
    assert [row["mAP@.5"] for row in rows[:2]] == ["48.40", "50.20"]  # Table 4(a): without and with BAM


TINY = ["--model", "wrn", "--backbone_kwargs", "{depth: 10, widen_factor: 1}"]


def test_measured_images_per_second_beside_the_counts(capsys):
    """Eager only: compiling costs a minute on CPU (the compiled columns: `bam summary --compile true`, docs/research.md)."""
    main([*TINY, "--measure", "true", "--batch_size", "2", "--warmup", "0", "--repeats", "1", "--format", "csv"])
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    names = list(row)
    measured = ["eager fwd img/s", "eager +att fwd img/s", "eager step img/s", "eager +att step img/s", "eager step time +%"]
    assert names[names.index("GMACs +%") + 1 : names.index("paper params (M)")] == measured
    assert all(float(row[name]) > 0 for name in measured[:4])
    base, attn = float(row["eager step img/s"]), float(row["eager +att step img/s"])  # rounded to whole images/s
    low, high = 100 * ((base - 0.5) / (attn + 0.5) - 1), 100 * ((base + 0.5) / (attn - 0.5) - 1)
    assert low <= float(row["eager step time +%"]) <= high  # the step's time ratio, from the rates before rounding


def test_measure_times_a_forward_and_a_step_of_both_networks():
    rates = summary.measure(ModelSpec("wrn", {"depth": 10, "widen_factor": 1}), 10, 32, summary.Timing(2, warmup=0, repeats=1))
    assert set(rates) == {f"eager {what} {net}" for what in ("forward", "step") for net in ("base", "attn")}
    assert all(rate > 0 for rate in rates.values())


def test_measure_mistakes_are_one_line(capsys):
    cuda = torch.cuda.is_available()
    mistakes = {
        ("--batch_size", "0"): "bam summary: batch_size 0: Not of type PositiveInt",  # jsonargparse says it
        ("--device", "tpu"): "bam summary: --device tpu is not a device: give cpu or cuda (cuda:N)",
        ("--device", "cuda:99"): "this machine has" if cuda else "torch sees no CUDA GPU here: give --device cpu",
    }
    for args, message in mistakes.items():
        line = one_line_error(["summary", *TINY, "--measure", "true", *args], capsys)
        assert message in line, line
    line = one_line_error(["summary", *TINY, "--device", "cpu", "--batch_size", "8"], capsys)
    assert line.endswith("--batch_size, --device, --compile, --warmup and --repeats are --measure's; add --measure true")
    line = one_line_error(["summary", "--detection", "--measure", "true"], capsys)
    assert line == "bam: error: bam summary: --measure times classifiers; give --model, --config or --all"
