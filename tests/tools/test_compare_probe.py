"""`bam compare` on what a new user points it at (issue 36's probe): a report folder that cannot be made, a run folder
whose files are not files, and a sweep whose newest experiment has not validated yet."""

from pathlib import Path

import yaml
from torch.utils.tensorboard import SummaryWriter

from command import bam, refusal

CONFIG = Path(__file__).parents[2] / "configs" / "cifar100_wrn.yaml"


def write_run(folder: Path, attention: str | None, seed: int, errors: list[float], **trainer: object) -> None:
    """A `lightning_logs/version_N` as `bam fit` leaves it: val/err1 at each validation, the saved config.yaml with
    ``trainer`` options over configs/cifar100_wrn.yaml's. No ``errors``: started, not validated yet."""
    config = yaml.safe_load(CONFIG.read_text())
    config["seed_everything"], config["model"]["attention"] = seed, attention
    config["trainer"] |= trainer
    with SummaryWriter(str(folder)) as writer:
        for epoch, error in enumerate(errors):
            writer.add_scalar("val/err1", error, epoch)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


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
    assert "| CIFAR100 | wrn28_8 | bam | 1 | 21.00 ± — | 19.06 | +1.94 | — | — | — | 1 | 1 waiting |" in done.stdout
    assert f"skipped the run in {no_config}: {no_config / 'config.yaml'} is not a YAML mapping" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_experiment_none_of_whose_runs_has_validated_yet_is_named(tmp_path: Path):
    """Its row cannot be made yet, but it is not left out unsaid: a sweep's newest config would seem never to have run."""
    write_run(tmp_path / "done" / "version_0", "bam", 0, [21.0])
    write_run(tmp_path / "started" / "version_0", "bam", 0, [], max_epochs=3)
    done = bam("compare", str(tmp_path), cwd=tmp_path)
    assert "| CIFAR100 | wrn28_8 | bam | 1 | 21.00 ± — | 21.00 ± — | 1 |" in done.stdout
    assert done.stderr.splitlines() == [
        f"bam compare: no row yet for {tmp_path / 'started' / 'version_0'}: no 'val/err1' logged yet"
    ]
