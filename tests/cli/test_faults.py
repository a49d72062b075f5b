"""Faults through the `bam` command: mistakes end in one line, kills never cost a checkpoint, a lost process ends the run.

The parse and input errors run in this process (``main``); kills need real processes.
"""

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch

from bam_lightning import checkpoints
from bam_lightning.checkpoints import read_checkpoint
from bam_lightning.cli import main
from bam_lightning.cli.distributed import failure_message

from helpers.cli_args import CONFIG, CPU, EAGER, TINY_MODEL
from helpers.command import Background, bam, bam_background
from helpers.datasets import write_cifar100, write_image_folder

CONFIGS = CONFIG.parent


def cifar_args(root: Path, *extra: str) -> list[str]:
    return [
        "--config", str(CONFIG), *TINY_MODEL, *CPU, *EAGER, "--trainer.logger", "false",
        "--data.root", str(root / "data"), "--data.verify_md5", "false", "--data.num_workers", "0",
        "--data.batch_size", "16", "--data.pin_memory", "false", "--trainer.default_root_dir", str(root / "runs"), *extra,
    ]  # fmt: skip


def refused(capsys, *args: str) -> str:
    """Run ``bam args`` here; it must end with status 2 and one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("bam: error:")]
    assert exit_info.value.code == 2 and len(lines) == 1, err[-3000:]
    assert "Traceback" not in err and "usage:" not in err, err[-3000:]
    return lines[0]


# The facts each line must hold (the key, the value, the nearest valid name), not jsonargparse's or our wording.
@pytest.mark.parametrize(
    "yaml,facts",
    [
        ("model:\n  backbone: wrn\n  attenton: bam\n", ["'model.attenton'", "'model.attention'", "bam fit --help"]),
        ("model:\n  optimizer:\n    class_path: torch.optim.SGDD\n", ["model.optimizer", "SGDD", "'torch.optim.SGD'"]),
        ("model:\n  optimizer:\n    class_path: torch.optim.SGD\n    init_args: {lrr: 0.1}\n", ["optimizer", "'lrr'", "'lr'"]),
        ("data:\n  init_args: {batchsize: 8}\n", ["CIFAR100DataModule", "'batchsize'"]),
        ("model:\n  attention: bma\n", ["model.attention", "'bma'", "bam, bam_official, se, cbam"]),
        ("trainer:\n  max_epochs: many\n", ["trainer.max_epochs", "'many'", "int"]),
        ("model:\n  backbone: wrn\n   attention: [\n", ["bad.yaml", "YAML"]),
    ],
)
def test_config_mistakes_end_in_one_line_that_names_the_key(tmp_path, capsys, yaml, facts):
    (tmp_path / "bad.yaml").write_text(yaml)
    line = refused(capsys, "fit", "--config", str(CONFIG), "--config", str(tmp_path / "bad.yaml"))
    assert all(fact in line for fact in facts), line


def test_command_line_mistakes_end_in_one_line_and_help_still_works(capsys):
    assert "unknown command 'fitt' (did you mean 'fit'?)" in refused(capsys, "fitt")
    assert "give a command: fit, validate, test, predict" in refused(capsys)
    line = refused(capsys, "fit", "--config", str(CONFIG), "--model.attenton", "se")
    assert all(fact in line for fact in ("'model.attenton'", "'model.attention'", "command line")), line
    line = refused(capsys, "fit", "--config", str(CONFIG), "--model.optimizer", "torch.optim.SGDD")
    assert all(fact in line for fact in ("model.optimizer", "'torch.optim.SGDD'", "'torch.optim.SGD'")), line
    for args in (["--help"], ["fit", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0 and "usage: " in capsys.readouterr().out  # prog is "pytest" here


@pytest.mark.parametrize(
    "content,message",
    [
        ("hello world\n", "notes.ckpt is not a readable checkpoint (it starts with b'hell'"),  # torch.load: KeyError
        ("epoch: 3\n", "notes.ckpt is not a readable checkpoint (it starts with b'epoc'"),  # torch.load: IndexError
        (None, "no checkpoint file at"),
    ],
)
def test_a_ckpt_path_that_is_no_checkpoint_is_refused_before_lightning_reads_it(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "notes.ckpt").write_text(content)
    line = refused(capsys, "test", "--config", str(CONFIG), "--ckpt_path", str(tmp_path / "notes.ckpt"))
    assert message in line and str(tmp_path) in line


def test_an_unreadable_image_stops_the_run_in_one_line_naming_it_and_the_flag(tmp_path, capsys):
    """The error comes from a loader worker, which DataLoader re-raises with the worker's traceback in its message."""
    write_image_folder(tmp_path / "imagenet", classes=2, per_class=2)
    bad = tmp_path / "imagenet" / "train" / "n00000001" / "train_1_0.JPEG"
    bad.write_text("not an image")
    line = refused(
        capsys, "fit", "--config", str(CONFIGS / "imagenet" / "resnet18_bam.yaml"), *CPU, *EAGER, "--trainer.logger", "false",
        "--data.root", str(tmp_path / "imagenet"), "--data.image_size", "32", "--data.resize_size", "32",
        "--data.batch_size", "4", "--data.num_workers", "1", "--data.pin_memory", "false",
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert line == (
        f"bam: error: {bad} is not a readable image (PIL cannot identify it as an image): replace or delete it,"
        " or pass --data.bad_images skip to train without it"
    )


def test_a_diverged_loss_names_its_step_and_a_whole_checkpoint_from_just_before(tmp_path, capsys, monkeypatch):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    saved, real_save = [], checkpoints.atomic_save
    monkeypatch.setattr(checkpoints, "atomic_save", lambda ckpt, path: saved.append(Path(path)) or real_save(ckpt, path))
    args = cifar_args(tmp_path, "--model.optimizer.init_args.lr", "1e30", "--last_checkpoint.every_n_train_steps", "1")
    line = refused(capsys, "fit", *args, "--trainer.max_epochs", "3")
    found = re.fullmatch(
        r"bam: error: loss became (nan|inf|-inf) at step (\d+) \(epoch \d+\), before that step's update:"
        r" lower the learning rate or check the data; resume from the last good checkpoint (\S+)",
        line,
    )
    assert found, line
    step, path = int(found[2]), Path(found[3])
    checkpoint = read_checkpoint(path)
    assert checkpoint["global_step"] == step >= 1  # saved after the step before
    assert all(torch.isfinite(value).all() for key, value in checkpoint["state_dict"].items() if key.startswith("model."))
    assert path in saved  # written by the CLI's atomic writer


def bam_process(*args: str, tmpdir: Path, log: Path, module: bool = True, session: bool = False) -> subprocess.Popen | Background:
    """``bam args`` in the background, forked from helpers.command's forkserver (``module=False``: ``python args`` in a
    fresh interpreter, e.g. torchrun), output appended to ``log``; ``session``: in a process group of its own, as a
    terminal runs a command (Ctrl-C signals the whole group)."""
    env = {"TMPDIR": str(tmpdir)}  # Lightning's own writer would leave a killed save's temporary file here
    if module:
        return bam_background(*args, cwd=log.parent, log=log, env=env, session=session)
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONWARNINGS": "ignore", **env}  # as helpers.command's
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=out, env=env, start_new_session=session)


def wait_for_save(path: Path, after: int | None, proc: subprocess.Popen | Background, log: Path, timeout: float = 180.0) -> None:
    """Until ``path`` has been written (again) by ``proc``."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_mtime_ns != after):
        assert proc.poll() is None, f"bam ended with {proc.returncode} before saving:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no save within {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)


@pytest.mark.long
def test_sigkill_during_saves_never_leaves_a_checkpoint_that_resume_trips_on(tmp_path):
    """Saves after every step, so most kills land near one; each round resumes the last one's last.ckpt."""
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)  # 4 steps an epoch
    tmpdir, log = tmp_path / "tmpdir", tmp_path / "log.txt"
    tmpdir.mkdir()
    folder = tmp_path / "runs" / "checkpoints"
    last = folder / "last.ckpt"
    args = cifar_args(tmp_path, "--last_checkpoint.every_n_train_steps", "1", "--ckpt_path", "last")
    rng, steps = random.Random(0), []
    for _ in range(4):
        proc = bam_process("fit", *args, "--trainer.max_epochs", "1000", tmpdir=tmpdir, log=log)
        wait_for_save(last, last.stat().st_mtime_ns if last.exists() else None, proc, log)
        time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for path in folder.glob("*.ckpt"):
            read_checkpoint(path)  # every checkpoint whole
        steps.append(read_checkpoint(last)["global_step"])
    assert all(b > a for a, b in zip(steps, steps[1:], strict=False)), steps  # every round resumed and went on
    assert [p.name for p in tmpdir.iterdir() if p.is_file()] == []  # no checkpoint-sized leftovers in $TMPDIR
    epoch = read_checkpoint(last)["epoch"]
    proc = bam_process("fit", *args, "--trainer.max_epochs", str(epoch + 2), tmpdir=tmpdir, log=log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    final = read_checkpoint(last)
    # The interrupted epoch, then one more. Not "==": Lightning 2.6.6 (plain, too) replays one batch when a run
    # resumed from a checkpoint of an epoch's last batch saves in the next epoch and is resumed again.
    assert final["epoch"] == epoch + 1 and final["global_step"] >= 4 * (epoch + 2)
    assert not list(folder.glob(".last.ckpt.*.tmp"))  # a killed save's leftover is removed by the next save


def test_ctrl_c_stops_after_the_batch_with_a_checkpoint_and_says_how_to_resume(tmp_path):
    """Ctrl-C in a terminal signals the command's whole process group, its loader worker too."""
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    log = tmp_path / "log.txt"
    last = tmp_path / "runs" / "checkpoints" / "last.ckpt"
    args = cifar_args(tmp_path, "--last_checkpoint.every_n_train_steps", "1", "--data.num_workers", "1")
    # A short $TMPDIR: the worker hands batches over a Unix socket there, whose path has at most 107 characters.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmpdir:
        proc = bam_process("fit", *args, "--trainer.max_epochs", "1000", tmpdir=Path(tmpdir), log=log, session=True)
        try:
            wait_for_save(last, None, proc, log)
            step = read_checkpoint(last)["global_step"]
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert text.strip().splitlines()[-1] == (
        "bam: stopped by Ctrl-C (SIGINT); last.ckpt holds it up to its last batch: continue with --ckpt_path last"
    )
    assert read_checkpoint(last)["global_step"] >= step  # saved where it stopped, whole


class OverflowAfter(L.Callback):
    """Makes one BatchNorm's running variance infinite in each batch of epoch ``epoch`` on: what a huge learning rate
    does late in a run, the training loss staying finite."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        if trainer.current_epoch >= self.epoch:
            next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(float("inf"))


def test_weights_that_diverge_late_end_the_run_in_one_line_and_no_checkpoint_keeps_them(tmp_path, monkeypatch):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the command imports OverflowAfter from here
    callback = ["--trainer.callbacks+=test_faults.OverflowAfter", "--trainer.callbacks.epoch", "1"]
    tqdm = ["--trainer.enable_progress_bar", "true", "--trainer.callbacks+=TQDMProgressBar"]  # its line is left open
    args = cifar_args(tmp_path, "--trainer.max_epochs", "3", *tqdm, *callback)
    result = bam("fit", *args, cwd=tmp_path, check=False, terminal=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]  # on a line of its own after the progress bar's
    assert re.fullmatch(r"bam: error: the weights hold NaN or inf \(model\.[\w.]+\.running_var\) in epoch 1, .*", last_line)
    assert f"resume from the last good checkpoint {tmp_path / 'runs' / 'checkpoints' / 'last.ckpt'}" in last_line
    saved = sorted((tmp_path / "runs" / "checkpoints").glob("*.ckpt"))
    assert len(saved) == 2 and all(read_checkpoint(path)["epoch"] == 0 for path in saved)  # last and best, of epoch 0
    for path in saved:
        assert all(value.isfinite().all() for value in read_checkpoint(path)["state_dict"].values() if value.is_floating_point())


def rank_one(launcher: int) -> int:
    """The pid of rank 1: the process under ``launcher`` whose environment has LOCAL_RANK=1 (Linux /proc)."""
    found, todo = [], [launcher]
    while todo:
        pid = todo.pop()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
        todo += children
        found += [c for c in children if b"LOCAL_RANK=1\0" in Path(f"/proc/{c}/environ").read_bytes()]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.long
def test_a_ddp_process_killed_mid_run_under_torchrun_is_named_and_resume_succeeds(tmp_path):
    """torchrun's agent watches the processes: it names the lost rank and stops the run; no checkpoint is lost."""
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    tmpdir, log = tmp_path / "tmpdir", tmp_path / "log.txt"
    tmpdir.mkdir()
    last = tmp_path / "runs" / "checkpoints" / "last.ckpt"
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bam_lightning.cli"]
    args = cifar_args(tmp_path, "--trainer.strategy", "ddp", "--trainer.devices", "2", "--ckpt_path", "last")
    proc = bam_process(*torchrun, "fit", *args, "--trainer.max_epochs", "1000", tmpdir=tmpdir, log=log, module=False)
    wait_for_save(last, None, proc, log)
    rank1 = rank_one(proc.pid)
    os.kill(rank1, signal.SIGKILL)
    assert proc.wait(timeout=60) != 0
    text = log.read_text()
    assert re.search(rf"rank\s*: 1 \(local_rank: 1\)\s+exitcode\s*: -9 \(pid: {rank1}\)", text), text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("bam: error:")]
    assert all(line.endswith(f"resume from {last}") for line in errors), errors  # rank 0's line, where it came first
    epoch = read_checkpoint(last)["epoch"]  # whole
    proc = bam_process(*torchrun, "fit", *args, "--trainer.max_epochs", str(epoch + 2), tmpdir=tmpdir, log=log, module=False)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert read_checkpoint(last)["epoch"] == epoch + 1


def test_a_lost_process_is_one_line_naming_the_checkpoint_to_resume_from(tmp_path):
    """What rank 0 gets from its collective when another process has gone, and what it says."""
    (tmp_path / "v0").mkdir()
    (tmp_path / "v0" / "last.ckpt").write_bytes(b"PK")
    gloo = RuntimeError("[../gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:34697: Connection reset by peer. More.")
    assert failure_message(gloo, tmp_path) == (
        "process rank 0 lost its connection to the rest of the run (Read error [127.0.0.1]:34697: Connection reset by peer):"
        " another process was killed or crashed (look for its message); run the same command with --ckpt_path last to"
        f" resume from {tmp_path / 'v0' / 'last.ckpt'}"
    )
    assert failure_message(torch.distributed.DistError("timeout"), None).endswith(
        "no checkpoint was saved yet: run the same command again"
    )
    assert failure_message(RuntimeError("shape mismatch"), tmp_path) is None  # a bug keeps its traceback


@pytest.mark.parametrize(
    "args,message",
    [
        (["attention", "--image", "x.png"], "bam attention: the following arguments are required: ckpt_path"),
        (["detect", "--image", "x.png"], "bam detect: the following arguments are required: ckpt_path"),
        (
            ["attention", "--ckpt_path", "a", "--image", "b", "--panel_px", "abc"],
            "bam attention: panel_px: 'abc' is not a valid int (",
        ),
        (["detect", "--ckpt_path", "a", "--image", "b", "--bogus", "1"], "bam detect: unknown option 'bogus'"),
        (["detect", "--ckpt_path", "a"], "bam detect: the following arguments are required: image"),
        (["export", "--ckpt_path", "a", "--fromat", "onnx"], "bam export: unknown option 'fromat' (did you mean 'format'?)"),
        (["summary", "--modle", "wrn16_8"], "bam summary: unknown option 'modle' (did you mean 'model'?)"),
        (["summary", "--num_classes", "abc"], "bam summary: num_classes: 'abc' is not a valid int or null ("),
        (
            ["export", "--ckpt_path", "a", "--format", "onxx"],
            "bam export: format: 'onxx' is not one of onnx, pt2, hf (did you mean",
        ),
        (["compare", "runs", "--bogus", "1"], "bam compare: unknown option 'bogus'"),
        (["compare"], "bam compare: the following arguments are required: runs"),
    ],
    ids=[
        "attention-missing-required",
        "detect-missing-required",
        "attention-bad-int",
        "detect-unknown-option",
        "detect-missing-image",
        "export-misspelt-option",
        "summary-misspelt-option",
        "summary-bad-int",
        "export-bad-choice",
        "compare-unknown-option",
        "compare-missing-positional",
    ],
)
def test_a_tools_parse_mistakes_end_in_one_line_not_a_usage_screen(capsys, args, message):
    """argparse and jsonargparse print the usage and a multi-line error; a tool's mistake is one line, like bam fit's."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("bam: error: ") and message in line, line
    assert line.endswith(f"(bam {args[0]} --help lists the options)"), line


def test_a_tools_parse_mistake_is_one_line_from_the_real_command_and_help_still_works(tmp_path):
    done = bam("attention", "--image", "x.png", cwd=tmp_path, check=False)
    assert done.returncode == 2 and done.stderr.strip() == (
        "bam: error: bam attention: the following arguments are required: ckpt_path (bam attention --help lists the options)"
    ), done.stderr[-3000:]
    done = bam("attention", "--help", cwd=tmp_path, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage: bam attention") and "--panel_px" in done.stdout, done.stderr
