"""`bam compare` on runs written the way `bam fit` writes them: TensorBoard events and LightningCLI's config.yaml."""

import statistics
from pathlib import Path

import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from bam_lightning.errors import InputError
from bam_lightning.tools.compare import collect, differences, find_runs, render

from command import bam

CONFIG = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"
STEPS_PER_EPOCH = 10
# val/err1 per epoch of each (attention, seed): finals 22, 23 | 21, 20 and bests 21, 23 | 20, 19.5.
ERRORS = {
    (None, 0): [30.0, 21.0, 22.0],
    (None, 1): [31.0, 24.0, 23.0],
    ("bam", 0): [29.0, 20.0, 21.0],
    ("bam", 1): [28.0, 19.5, 20.0],
}


def write_run(version_dir: Path, attention: str | None, seed: int, errors: list[float], first_epoch: int = 0) -> None:
    """One `lightning_logs/version_N`: the scalars Lightning logs at each validation, and the saved config."""
    config = yaml.safe_load(CONFIG.read_text())
    config["seed_everything"] = seed
    config["model"]["attention"] = attention
    config["model"]["attention_kwargs"] = None  # as LightningCLI saves an unset option
    writer = SummaryWriter(str(version_dir))
    for epoch, error in enumerate(errors, start=first_epoch):
        step = (epoch + 1) * STEPS_PER_EPOCH - 1
        writer.add_scalar("val/err1", error, step)
        writer.add_scalar("val/acc1", 100 - error, step)
        writer.add_scalar("epoch", epoch, step)
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
    with pytest.raises(InputError, match="no 'val/err5' logged in .*version_0.*; logged: epoch, val/acc1, val/err1"):
        collect([runs], metric="val/err5")


def test_bam_compare_command(runs):
    done = bam("compare", str(runs), cwd=runs)
    assert "| CIFAR100 | wrn28_8 | bam − none | — | -2.00 | -2.25 | — |" in done.stdout


def test_bam_compare_on_an_empty_folder_says_so_in_one_line(tmp_path, capsys):
    from bam_lightning.cli import main

    with pytest.raises(SystemExit) as exit:
        main(["compare", str(tmp_path)])
    assert exit.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("bam: error: no run under")
