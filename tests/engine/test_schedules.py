"""WarmupCosine: its curve, its refusals, and a run of ``bam fit`` that follows it in TensorBoard."""

import math

import pytest
import torch

from bam_lightning.engine.schedules import WarmupCosine

from helpers.cli_args import cifar_args
from helpers.command import bam, refusal
from helpers.datasets import write_cifar100
from helpers.scalars import scalars


def learning_rates(steps: int, **options) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = WarmupCosine(optimizer, **options)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_a_linear_warmup_to_the_peak_then_a_cosine_to_the_floor():
    rates = learning_rates(9, total=8, warmup=3, start_factor=0.1, min_lr=0.2)
    assert rates[:4] == pytest.approx([0.1, 0.4, 0.7, 1.0])  # LinearLR: start_factor x lr up to lr
    assert rates[4:] == pytest.approx([0.2 + 0.8 * (1 + math.cos(k * math.pi / 5)) / 2 for k in range(1, 6)])
    assert rates[-1] == pytest.approx(0.2)
    assert learning_rates(3, total=2) == pytest.approx([1.0, 0.5, 0.0])  # no warmup: the cosine alone


def test_without_a_total_it_waits_for_the_runs_and_its_state_round_trips():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = WarmupCosine(optimizer, warmup=1)
    assert scheduler.total is None
    scheduler.fit_to(3)
    optimizer.step()
    scheduler.step()
    state = scheduler.state_dict()
    assert "cosine" not in state and state["total"] == 3
    again = WarmupCosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), warmup=1)
    again.load_state_dict(state)
    assert again.total == 3 and again.cosine.T_max == 2 and again.last_epoch == scheduler.last_epoch


@pytest.mark.parametrize(
    "options,message",
    [
        ({"total": 0}, "total 0"),
        ({"total": 4, "warmup": 4}, "warmup 4 with total 4"),
        ({"total": 4, "warmup": -1}, "warmup -1"),
        ({"total": 4, "start_factor": 0.0}, "start_factor 0.0"),
        ({"total": 4, "min_lr": -0.1}, "min_lr -0.1"),
    ],
)
def test_bad_values_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        learning_rates(1, **options)


def schedule(tmp_path, total: int | None, warmup: int) -> list[str]:
    delta = tmp_path / "warmup_cosine.yaml"
    length = "" if total is None else f"total: {total}, "
    delta.write_text(
        "model:\n  scheduler_interval: step\n  lr_scheduler:\n    class_path: bam_lightning.engine.schedules.WarmupCosine\n"
        f"    init_args: {{{length}warmup: {warmup}, start_factor: 0.25}}\n"
    )
    return ["--config", str(delta)]


@pytest.mark.parametrize("total", [4, None], ids=["given", "the-runs"])
def test_bam_fit_steps_it_every_step_and_tensorboard_shows_the_warmup(tmp_path, total):
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    args = cifar_args(tmp_path, "--trainer.max_epochs", "1", "--data.val_size", "0")
    bam("fit", *args, *schedule(tmp_path, total=total, warmup=2), cwd=tmp_path)
    assert scalars(tmp_path / "runs" / "lightning_logs" / "version_0")["lr-SGD"] == pytest.approx(
        [0.025, 0.0625, 0.1, 0.05]
    )  # lr 0.1: 1/4, 5/8, 1, cosine


@pytest.mark.parametrize(
    "total,warmup,facts",
    [
        (4, 4, ["model.lr_scheduler", "warmup 4 with total 4"]),  # refused before the run starts
        (2, 1, ["model.lr_scheduler", "total 2 is shorter than the run's 4 steps", "give total 4"]),
        (None, 4, ["model.lr_scheduler", "warmup 4 with total 4", "(4 steps)"]),  # refused as the run starts
    ],
)
def test_a_schedule_that_does_not_fit_the_run_ends_in_one_line(tmp_path, total, warmup, facts):
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    args = cifar_args(tmp_path, "--trainer.max_epochs", "1", "--data.val_size", "0")
    line = refusal(bam("fit", *args, *schedule(tmp_path, total, warmup), cwd=tmp_path, check=False))
    assert all(fact in line for fact in facts), line


def test_without_a_total_a_run_of_no_known_length_is_refused(tmp_path):
    write_cifar100(tmp_path / "data", n_train=64, n_test=16)
    endless = cifar_args(tmp_path, "--trainer.max_epochs", "-1", "--trainer.limit_train_batches", "1", "--data.val_size", "0")
    delta = tmp_path / "warmup_cosine.yaml"
    delta.write_text("model:\n  lr_scheduler:\n    class_path: bam_lightning.engine.schedules.WarmupCosine\n")
    line = refusal(bam("fit", *endless, "--config", str(delta), cwd=tmp_path, check=False))
    assert "WarmupCosine without a total" in line, line
