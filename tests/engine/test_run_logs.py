"""What TensorBoard shows of runs, read from their event files as TensorBoard reads them (``run_logs``)."""

from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from bam_lightning.engine.run_logs import last_scalar
from bam_lightning.models import count_macs, create_model

from helpers.cli_args import CONFIG, CPU, EAGER, TINY_MODEL, cifar_args
from helpers.command import bam, one_line_error, refusal
from helpers.datasets import write_cifar100, write_cifar_c
from helpers.scalars import THROUGHPUT, scalars


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"tensors": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def hparams(run: Path) -> tuple[dict[str, object], list[str]]:
    """The run's HPARAMS row: its values, and the metric columns its experiment declares."""
    values, metrics = {}, []
    for raw in events(run).PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            for key, value in data.session_start_info.hparams.items():
                values[key] = getattr(value, value.WhichOneof("kind"))
        if data.HasField("experiment"):
            metrics = [info.name.tag for info in data.experiment.metric_infos]
    return values, metrics


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A BAM run and its baseline twin, a one-epoch fit each on a tiny CIFAR-100, and a test of the BAM run's checkpoint.

    Two training batches, two test batches (batch 8): throughput over a window of two batches is logged once each.
    """
    root = tmp_path_factory.mktemp("tensorboard")
    write_cifar100(root / "data", n_train=32, n_test=16)
    found = {}
    window = ["--throughput.window_size", "2"]
    for attention in ("bam", "null"):
        extra = ["--model.attention", attention, "--attention_maps.every_n_epochs", "1", "--trainer.max_epochs", "1", *window]
        if attention == "null":
            extra += ["--throughput.enable", "false"]
        bam("fit", *cifar_args(root, *extra, "--trainer.default_root_dir", str(root / attention)), cwd=root)
        found[attention] = root / attention / "lightning_logs" / "version_0"
    checkpoint = found["bam"] / "checkpoints" / "last.ckpt"
    tested = ["--trainer.default_root_dir", str(root / "bam"), "--ckpt_path", str(checkpoint), "--data.batch_size", "8", *window]
    bam("test", *cifar_args(root, *tested), cwd=root)
    return found


def test_two_runs_make_one_hparams_table_differing_only_in_attention_with_the_papers_errors(runs):
    (bam_values, metrics), (baseline_values, _) = hparams(runs["bam"]), hparams(runs["null"])
    assert metrics == ["val/err1", "val/acc1_best", "test/err1", "val/ece", "val/nll", "test/ece", "test/nll"]
    assert {key for key in bam_values if bam_values[key] != baseline_values.get(key)} == {"attention"}
    assert (bam_values["attention"], baseline_values["attention"]) == ("bam", "none")
    assert bam_values["data"] == "CIFAR100DataModule" and bam_values["backbone"] == "wrn"
    assert bam_values["lr"] == pytest.approx(0.1) and bam_values["batch"] == 16 and bam_values["seed"] == 0
    assert not any(key.startswith("_") or "class_path" in key for key in bam_values)  # nothing internal


def test_curves_are_paired_in_one_layout_and_there_is_no_hp_metric(runs):
    for run in runs.values():
        accumulator = events(run)
        (config,) = accumulator.Tensors("custom_scalars__config__")
        layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
        charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
        assert charts["loss"] == ["train/loss", "val/loss"] and charts["top-1 error %"] == ["train/err1", "val/err1"]
        assert "hp_metric" not in accumulator.Tags()["scalars"]
        assert {"val/err1", "val/err5", "val/acc1_best", "train/err1"} <= set(accumulator.Tags()["scalars"])


def test_a_test_of_a_runs_checkpoint_logs_into_that_run_and_keeps_its_config(runs):
    run = runs["bam"]
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]  # no version_1 for the test
    assert "test/err1" in events(run).Tags()["scalars"]  # so its HPARAMS row gets the test/err1 column
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_epochs"] == 1
    assert (run / "config_test.yaml").is_file()


def test_a_test_of_a_checkpoint_kept_elsewhere_is_no_run_for_bam_compare(runs, tmp_path):
    """Its own folder has events and config_test.yaml, no config.yaml: bam compare counts the fits alone."""
    kept = tmp_path / "kept.ckpt"
    kept.write_bytes((runs["bam"] / "checkpoints" / "last.ckpt").read_bytes())
    root = runs["bam"].parents[2]
    bam("test", *cifar_args(root, "--trainer.default_root_dir", str(tmp_path / "tests"), "--ckpt_path", str(kept)), cwd=root)
    (tested,) = (tmp_path / "tests" / "lightning_logs").iterdir()
    assert (tested / "config_test.yaml").is_file() and not (tested / "config.yaml").exists()
    assert "no row yet" not in bam("compare", str(runs["bam"].parents[1]), str(tmp_path / "tests"), cwd=root).stderr


def test_throughput_of_the_fit_and_of_the_test_under_lightnings_names(runs):
    """Images/s and FLOP/s of training steps (three forwards' FLOPs) and of the test (one), from Lightning's monitor."""
    scalars = events(runs["bam"])
    found = {tag: [event.value for event in scalars.Scalars(tag)] for tag in scalars.Tags()["scalars"]}
    (train,), (test,) = found["train/device/samples_per_sec"], found["test/device/samples_per_sec"]
    assert train > 0 and test > 0 and found["train/samples"] == [16, 32] and {8, 16} <= set(found["test/samples"])
    model = create_model("wrn", 100, "bam", depth=10, widen_factor=1)
    flops = 2 * count_macs(model, 32)  # of one image's forward
    (train_flops,), (test_flops,) = found["train/device/flops_per_sec"], found["test/device/flops_per_sec"]
    assert train_flops / train == pytest.approx(3 * flops, rel=1e-6) and test_flops / test == pytest.approx(flops, rel=1e-6)
    assert not any("samples_per_sec" in tag for tag in events(runs["null"]).Tags()["scalars"])  # --throughput.enable false


@pytest.fixture(scope="module")
def corruption_test(runs):
    """``bam test`` of the BAM run's checkpoint on a tiny CIFAR-100-C (two benchmark corruptions and an extra one)."""
    root = runs["bam"].parents[2]
    write_cifar_c(root / "data", corruptions=("fog", "snow", "spatter"), per_severity=4)
    checkpoint = runs["bam"] / "checkpoints" / "last.ckpt"
    return bam(
        "test", "--config", str(CONFIG), *TINY_MODEL, *CPU, *EAGER, "--data", "bam_lightning.data.CIFAR100CDataModule",
        "--data.root", str(root / "data"), "--data.download", "false", "--data.corruptions", "[fog, snow, spatter]",
        "--data.num_workers", "0", "--data.pin_memory", "false", "--trainer.default_root_dir", str(root / "bam"),
        "--ckpt_path", str(checkpoint), cwd=root,
    )  # fmt: skip


def test_a_corruption_test_logs_its_errors_into_the_run_and_leaves_the_clean_test_as_it_was(runs, corruption_test):
    logged = scalars(runs["bam"])
    assert len(logged["test/err1"]) == 1 and len(logged["test/ece"]) == 1 and len(logged["test/nll"]) == 1  # the clean test's
    clean = [tag for tag in logged if tag.startswith("test/") and "corruption" not in tag and not THROUGHPUT.fullmatch(tag)]
    assert set(clean) == _CLEAN  # and the tests' throughput
    for name in ("fog", "snow", "spatter"):
        severities = [logged[f"test/corruption/{name}/s{s}/err1"][-1] for s in range(1, 6)]
        assert logged[f"test/corruption/{name}/err1"][-1] == pytest.approx(sum(severities) / 5)
        assert all(e in (0, 25, 50, 75, 100) for e in severities)  # 4 images each
    fog, snow = logged["test/corruption/fog/err1"][-1], logged["test/corruption/snow/err1"][-1]
    assert logged["test/corruption/mean_err1"][-1] == pytest.approx((fog + snow) / 2)  # spatter: extra, not averaged
    assert 0 <= logged["test/corruption/ece"][-1] <= 100 and "test/corruption/mce" not in logged  # no mCE on CIFAR
    table = corruption_test.stdout.split("CIFAR-100-C: top-1 error (%) per corruption and severity\n")[1].splitlines()
    assert table[0].split() == ["corruption", "s1", "s2", "s3", "s4", "s5", "mean"]
    assert table[1].split()[0] == "fog" and float(table[1].split()[-1]) == pytest.approx(fog, abs=0.01)
    assert "test/corruption/mean_err1" in corruption_test.stdout
    assert last_scalar(runs["bam"], "test/err1") == logged["test/err1"][-1]  # what the relative mCE reads
    assert last_scalar(runs["null"], "test/err1") is None


_CLEAN = {"test/loss", "test/acc1", "test/acc5", "test/err1", "test/err5", "test/ece", "test/nll"}


def test_attention_maps_are_logged_for_bam_and_not_for_the_baseline(runs):
    assert events(runs["bam"]).Tags()["images"] == ["attention/maps"]
    assert events(runs["null"]).Tags()["images"] == []


def test_a_bad_attention_maps_value_is_one_line_from_the_real_command(tmp_path):
    result = bam("fit", *cifar_args(tmp_path, "--attention_maps.every_n_epochs", "0"), cwd=tmp_path, check=False)
    last = refusal(result)
    assert "attention_maps.every_n_epochs" in last, last


def test_a_bad_throughput_window_is_one_line_from_the_real_command(tmp_path, capsys):
    for window, why in (("1", "must be at least 2 (a rate needs two batches), got 1"), ("two", "")):
        line = one_line_error(["fit", *cifar_args(tmp_path, "--throughput.window_size", window)], capsys)
        assert line.startswith("bam: error: ") and "throughput.window_size" in line and why in line, line
