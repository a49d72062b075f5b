"""The `bam` command end to end, as a subprocess, on tiny datasets in the real on-disk formats."""

import shutil
from pathlib import Path

import pytest
import torch

from bam_lightning.cli import build_cli, main

from helpers.cli_args import CONFIG, CPU, EAGER, cifar_args
from helpers.command import bam, one_line_error, refusal
from helpers.datasets import write_cifar10, write_cifar100, write_image_folder
from helpers.scalars import scalars


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One two-epoch fit of a tiny WRN+BAM on a tiny CIFAR-100, shared by the tests below: the config's default path,
    BAM compiled (``compile: attention``)."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100(root / "data", n_train=64, n_test=32)
    bam("fit", *cifar_args(root, "--trainer.max_epochs", "2", eager=False), cwd=root)
    return root


def test_fit_writes_checkpoints_config_and_tensorboard_scalars(fitted):
    run = fitted / "runs" / "lightning_logs" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("best-epoch*-acc1_*.ckpt"))) == 1
    logged = scalars(run)
    for tag in ("train/loss", "train/acc1", "val/loss", "val/acc1", "val/acc5", "val/err1", "val/acc1_best", "lr-SGD"):
        assert tag in logged, tag
    assert len(logged["val/acc1"]) == 2 and logged["lr-SGD"][0] == pytest.approx(0.1)
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["hyper_parameters"]["num_classes"] == 100


def test_test_on_the_checkpoint_reports_what_fit_ended_with(fitted):
    run = fitted / "runs" / "lightning_logs" / "version_0"
    out = fitted / "eval"
    last = run / "checkpoints" / "last.ckpt"
    result = bam("test", *cifar_args(fitted, "--trainer.default_root_dir", str(out)), "--ckpt_path", str(last), cwd=fitted)
    assert "test/acc1" in result.stdout and "test/acc5" in result.stdout and "test/err1" in result.stdout
    logged = scalars(run)  # the test of a run's checkpoint logs into that run, whatever default_root_dir says
    assert logged["test/loss"][-1] == pytest.approx(logged["val/loss"][-1], rel=1e-5)
    assert logged["test/acc1"][-1] == pytest.approx(logged["val/acc1"][-1])
    assert not (out / "lightning_logs").exists() and (run / "config_test.yaml").is_file()


def test_same_command_twice_and_resume_from_last(fitted, tmp_path):
    root = tmp_path
    write_cifar100(root / "data", n_train=32, n_test=16)
    args = cifar_args(root, "--trainer.max_epochs", "1", "--trainer.logger", "false")
    bam("fit", *args, cwd=root)
    bam("fit", *args, cwd=root)  # config.yaml of the first run is already there
    longer = cifar_args(root, "--trainer.max_epochs", "3", "--trainer.logger", "false")
    resumed = bam("fit", *longer, "--ckpt_path", "last", cwd=root)
    assert "resuming from" in resumed.stderr and "last.ckpt" in resumed.stderr
    checkpoint = torch.load(root / "runs" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["global_step"] == 3 * 2  # 32 images / 16 per step


def test_resume_finds_the_latest_run_of_the_config_and_goes_on_in_its_folder(fitted, tmp_path):
    shutil.copytree(fitted / "runs", tmp_path / "runs")  # the shared run stays as it is
    args = cifar_args(fitted, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp_path / "runs"))
    result = bam("fit", *args, "--ckpt_path", "last", cwd=fitted, env={"PYTHONWARNINGS": "default"})
    assert "version_0/checkpoints/last.ckpt" in result.stderr
    assert "exists and is not empty" not in result.stderr  # its own checkpoints: nothing to warn of
    runs = tmp_path / "runs" / "lightning_logs"
    assert [run.name for run in runs.iterdir()] == ["version_0"]
    assert torch.load(runs / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


def test_imagefolder_fit(tmp_path):
    write_image_folder(tmp_path / "imagenet", classes=3, per_class=4)
    result = bam(
        "fit", "--config", str(CONFIG.parent / "imagenet" / "resnet18_bam.yaml"), *CPU, *EAGER,
        "--data.root", str(tmp_path / "imagenet"), "--data.image_size", "64", "--data.resize_size", "72",
        "--data.batch_size", "4", "--data.num_workers", "0", "--data.pin_memory", "false",
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
        cwd=tmp_path,
    )  # fmt: skip
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["num_classes"] == 3 and checkpoint["hyper_parameters"]["image_size"] == 64
    assert checkpoint["state_dict"]["model.fc.weight"].shape == (3, 512)
    assert "val/acc1" in scalars(run), result.stderr


@pytest.mark.long
@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_two_process_ddp_on_cpu_writes_one_checkpoint(tmp_path, strategy):
    write_cifar100(tmp_path / "data", n_train=32, n_test=16)
    args = cifar_args(tmp_path, "--trainer.max_epochs", "1", "--trainer.strategy", strategy, "--trainer.devices", "2")
    bam("fit", *args, cwd=tmp_path)  # sync_batchnorm needs GPUs: torch refuses it on CPU
    checkpoints = sorted(p.name for p in (tmp_path / "runs").rglob("*.ckpt"))
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints  # one best, one last: written once, not per process
    checkpoint = torch.load(next((tmp_path / "runs").rglob("last.ckpt")), weights_only=True)
    assert checkpoint["global_step"] == 1  # 32 images over 2 processes x 16 per step


@pytest.mark.parametrize(
    "override,message",
    [
        (["--data.root", "/nonexistent", "--data.download", "false"], "CIFAR-100 not found under /nonexistent/cifar-100-python"),
        (["--model.backbone", "resnet51"], "unknown model 'resnet51' (did you mean 'resnet50'?): choose one of"),
        (["--model.attention", "bma"], "model.attention"),
    ],
)
def test_user_errors_end_in_one_line_without_traceback(tmp_path, override, message):
    args = ["--config", str(CONFIG), *CPU, "--trainer.default_root_dir", str(tmp_path), *override]
    result = bam("fit", *args, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_ckpt_path_best_evaluates_the_best_checkpoint_the_newest_run_kept(fitted, tmp_path, capsys):
    run = fitted / "runs" / "lightning_logs" / "version_0"  # this run alone, under a root of its own
    shutil.copytree(run, tmp_path / "runs" / "lightning_logs" / "version_0")
    (best,) = (run / "checkpoints").glob("best-*.ckpt")  # where the copied last.ckpt says the best is
    args = cifar_args(fitted, "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "runs"))
    main(["test", *args, "--ckpt_path", "best"])
    captured = capsys.readouterr()
    assert f"bam: using {best}" in captured.err and "test/acc1" in captured.out


@pytest.mark.parametrize("command,which", [("test", "last"), ("validate", "best"), ("test", "best")])
def test_ckpt_path_last_or_best_without_an_earlier_run_is_one_line(tmp_path, command, which, capsys):
    write_cifar100(tmp_path / "data", n_train=16, n_test=16)
    last = one_line_error([command, *cifar_args(tmp_path), "--ckpt_path", which], capsys)
    assert f"--ckpt_path {which}: no " in last and str(tmp_path / "runs") in last


@pytest.mark.parametrize(
    "override,message",
    [
        (["--model.attention_kwargs", "{reductoin: 8}"], "attention bam has no option 'reductoin' (did you mean 'reduction'?)"),
        (["--model.backbone_kwargs", "{dropuot: 0.3}"], "wrn28_8 has no option 'dropuot' (did you mean 'dropout'?)"),
    ],
    ids=["attention_kwargs", "backbone_kwargs"],
)
def test_a_misspelt_key_inside_a_dict_option_names_the_nearest(tmp_path, override, message, capsys):
    args = ["fit", "--config", str(CONFIG), *CPU, "--trainer.default_root_dir", str(tmp_path), *override]
    assert message in one_line_error(args, capsys)
    summary = ["summary", "--model", "wrn", "--backbone_kwargs", "{widen: 2}"]
    assert "wrn has no option 'widen' (did you mean 'widen_factor'?)" in one_line_error(summary, capsys)


DEMO = Path(__file__).parents[2] / "configs" / "demo_digits.yaml"


@pytest.mark.parametrize(
    "override,message",
    [
        (["--data.batch_size", "0"], "data.batch_size: 0 is not a valid PositiveInt"),
        (["--data.num_workers", "-1"], "data.num_workers: -1 is not a valid NonNegativeInt"),
        (["--trainer.max_epochs", "-5"], "trainer: `max_epochs` must be a non-negative integer or -1"),
        (["--trainer.limit_train_batches", "1.5"], "trainer: You have passed invalid value 1.5 for limit_train_batches"),
        (["--model.optimizer.init_args.lr", "-1"], "model.optimizer: Invalid learning rate: -1.0: fix its init_args"),
        pytest.param(
            ["--trainer.accelerator", "gpu"],
            "trainer: No supported gpu backend found!",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there"),
        ),
        (["--model.lr_scheduler.init_args.T_max", "0"], "model.lr_scheduler: CosineAnnealingLR fails at its first step"),
        (["--model.label_smoothing", "1.5"], "model.label_smoothing: 1.5 is not a valid ClosedUnitInterval"),
        (["--trainer.check_val_every_n_epoch", "0"], "trainer.check_val_every_n_epoch 0: give 1 or more"),
        (["--trainer.accumulate_grad_batches", "0"], "trainer.accumulate_grad_batches 0: give 1 or more"),
        (["--trainer.val_check_interval", "0"], "trainer.val_check_interval 0: give a fraction of the epoch above 0"),
        (["--trainer.gradient_clip_val", "-1.5"], "trainer.gradient_clip_val -1.5: a negative limit would reverse"),
        (["--trainer.min_epochs", "5"], "trainer.min_epochs 5 is above trainer.max_epochs 1, where the run would stop"),
        (
            ["--trainer.callbacks+=bam_lightning.engine.callbacks.AttentionMapLogger", "--trainer.callbacks.every_n_epochs", "0"],
            "trainer.callbacks.every_n_epochs: 0 is not a valid PositiveInt",
        ),
    ],
    ids=["batch-size-0", "negative-workers", "negative-epochs", "fraction-above-1", "negative-lr", "gpu-without-one",
         "scheduler-period-0", "label-smoothing-1.5", "validate-every-0-epochs", "accumulate-0", "val-check-interval-0",
         "negative-clip", "min-above-max-epochs", "callback-every-0-epochs"],
)  # fmt: skip
def test_values_out_of_range_end_in_one_line(tmp_path, override, message, capsys):
    args = ["fit", "--config", str(DEMO), *CPU, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1"]
    assert message in one_line_error([*args, *override], capsys)


@pytest.mark.parametrize("where", ["file", "under-a-file", "cannot-be-made"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, where, capsys):
    (tmp_path / "taken").write_text("a file")
    root = {"file": tmp_path / "taken", "under-a-file": tmp_path / "taken" / "runs", "cannot-be-made": Path("/proc/runs")}
    args = ["fit", "--config", str(DEMO), *CPU, "--trainer.default_root_dir", str(root[where])]
    assert f"--trainer.default_root_dir {root[where]} " in one_line_error(args, capsys)
    out = ["attention", "--ckpt_path", str(tmp_path / "x.ckpt"), "--image", "x.png", "--out", str(tmp_path / "taken" / "a.png")]
    assert "--out's folder" in one_line_error(out, capsys)


class Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_checkpoints_that_cannot_be_used_are_refused_in_one_line(fitted, tmp_path):
    import pickle

    last = fitted / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"state_dict": Exploit(tmp_path / "pwned")}, protocol=2))
    cases = [
        (["--ckpt_path", str(tmp_path / "missing.ckpt")], "no checkpoint file at"),
        (["--ckpt_path", str(tmp_path / "evil.ckpt")], "evil.ckpt is refused: it holds more than tensors and numbers"),
        (  # the checkpoint's hyperparameters rebuild the model, but CIFAR-10 makes it a 10-class one
            ["--data", "bam_lightning.data.CIFAR10DataModule", "--data.root", str(tmp_path), "--ckpt_path", str(last)],
            "does not fit this model (it was trained with backbone=wrn, attention=bam, num_classes=100",
        ),
    ]
    write_cifar10(tmp_path, n_train=10, n_test=10)
    for extra, message in cases:
        result = bam("test", *cifar_args(fitted, "--trainer.default_root_dir", str(tmp_path)), *extra, cwd=tmp_path, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "wrong shapes model.fc.bias, model.fc.weight" in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_model_option_the_checkpoint_contradicts_is_refused_naming_both(fitted, tmp_path, capsys):
    """LightningCLI rebuilds the model from the checkpoint's hyperparameters, dropping ``--model.*`` without a word."""
    last = fitted / "runs" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    args = [*cifar_args(fitted, "--trainer.default_root_dir", str(tmp_path)), "--ckpt_path", str(last)]
    result = bam("test", *args, "--model.backbone", "resnet18", cwd=tmp_path, check=False)
    assert refusal(result) == (
        f"bam: error: --model.backbone resnet18 contradicts the checkpoint {last}, trained with backbone=wrn:"
        " the checkpoint decides the network; drop --model.backbone or give a checkpoint trained with it"
    )
    null = one_line_error(["validate", *args, "--model.attention", "null"], capsys)
    assert "--model.attention null contradicts the checkpoint" in null and "trained with attention=bam" in null
    kwargs = one_line_error(["test", *args, "--model.attention_kwargs", "{reduction: 8}"], capsys)
    assert "--model.attention_kwargs {reduction: 8} contradicts" in kwargs and "attention_kwargs=null" in kwargs


def test_an_image_size_the_model_cannot_take_is_refused_before_training(tmp_path):
    write_image_folder(tmp_path / "imagenet", classes=3, per_class=2)
    result = bam(
        "fit", "--config", str(CONFIG.parent / "imagenet" / "squeezenet1_1_bam.yaml"), *CPU,
        "--data.root", str(tmp_path / "imagenet"), "--data.image_size", "16", "--data.resize_size", "16",
        "--data.num_workers", "0", "--trainer.default_root_dir", str(tmp_path / "runs"),
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "squeezenet1_1 cannot take 16x16 images" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "written,expected",
    [(["--trainer.limit_train_batches", "1"], 1), (["--trainer.limit_train_batches=3"], 3), ("limit_train_batches: 2", 2),
     ("limit_train_batches: 1.0", 1.0), (["--trainer.limit_train_batches", "0.25"], 0.25)],
    ids=["one-batch", "three-batches", "yaml-two", "yaml-whole-epoch", "fraction"],
)  # fmt: skip
def test_a_whole_number_of_batches_stays_a_count(tmp_path, written, expected):
    """jsonargparse makes ``1`` a ``1.0``, which Lightning reads as the whole epoch."""
    if isinstance(written, str):
        (tmp_path / "limits.yaml").write_text(f"trainer:\n  {written}\n")
        written = ["--config", str(tmp_path / "limits.yaml")]
    args = ["--config", str(DEMO), *written, "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]
    limit = build_cli(args, run=False).trainer.limit_train_batches
    assert limit == expected and type(limit) is type(expected)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model.attention_kwargs", "{reductoin: 8}"], "attention bam has no option 'reductoin' (did you mean 'reduction'?)"),
        (["--model.lr_scheduler.init_args.T_max", "0"], "model.lr_scheduler: CosineAnnealingLR fails at its first step"),
        (["--trainer.accumulate_grad_batches", "0"], "trainer.accumulate_grad_batches 0: give 1 or more"),
        (["--ckpt_path", "best"], "--ckpt_path best: no best checkpoint recorded in a last.ckpt under"),
        (["--trainer.default_root_dir", "/proc/runs"], "--trainer.default_root_dir /proc/runs cannot be made"),
        (["--config", "empty.yaml"], "empty.yaml is empty, not a config"),
    ],
    ids=["dict-key", "scheduler", "trainer-value", "best-without-a-run", "output-folder", "empty-config"],
)
def test_each_kind_of_mistake_is_one_line_from_the_real_command(tmp_path, args, message):
    """One of each kind through a ``bam`` process of its own; the tests above try many more in this process."""
    (tmp_path / "empty.yaml").write_text("")
    command = "validate" if "best" in args else "fit"
    demo = ["--config", str(DEMO), *CPU, "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs", "1"]
    result = bam(command, *demo, *args, cwd=tmp_path, check=False)
    last = refusal(result)
    assert message in last, last
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_a_one_batch_trial_trains_one_batch_and_its_saved_config_says_1(tmp_path, capsys):
    args = ["--config", str(DEMO), *CPU, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1"]
    main(["fit", *args, "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"])
    run = tmp_path / "lightning_logs" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    saved = (run / "config.yaml").read_text()
    assert "  limit_train_batches: 1\n" in saved and "  limit_val_batches: 1\n" in saved  # a rerun of it: one batch again
