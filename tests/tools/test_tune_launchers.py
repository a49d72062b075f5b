"""`bam tune` end to end on a real one-node SLURM (tests/helpers/slurm.py) with its study in a real PostgreSQL
(tests/helpers/postgres.py): 4 trials of the digits demo, 2 at a time; one pruned, one preempted by ``scontrol requeue``
mid-epoch and resumed to the same result as a trial of the same values that never stopped; then the same command again
continues the study (nothing started), and the same study name with another space is refused.

The space is one categorical learning rate, [0.2, 0.0]. With ``--seed 6``, Optuna 5's TPE (its random start) draws 0.2,
0.2, 0.0, 0.2, and under that seed the 0.0 run's first epoch (92.19 % error) is worse than the 0.2 runs' (91.41 %):
the median pruner (``--prune_after 1``) prunes trial 2 after its first epoch; trials 0, 1 and 3 train the same values.
"""

import os
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from bam_lightning.tools.sweep_runs import LOG, read_state

from helpers.command import bam, bam_background, refusal
from helpers.postgres import postgres_url  # noqa: F401 (a fixture)
from helpers.resume import assert_same_run
from helpers.slurm import slurm_cluster, slurm_command, wait_for  # noqa: F401 (slurm_cluster: a fixture)

DEMO = str(Path(__file__).parents[2] / "configs" / "demo_digits.yaml")
TINY = (
    "--trainer.max_epochs 2 --trainer.limit_train_batches 8 --trainer.limit_val_batches 2 --trainer.log_every_n_steps 1"
    " --trainer.enable_progress_bar false --trainer.deterministic true"
    " --trainer.callbacks+=helpers.sweep_pause.PauseOnce --trainer.callbacks.step 12 --trainer.callbacks.run trial0"
    " --trainer.callbacks+=helpers.sweep_pause.PauseOnce --trainer.callbacks.step 10 --trainer.callbacks.run trial2"
)  # 8 steps an epoch; trial 0 waits mid-epoch 2 (step 12) for its preemption, trial 2 (step 10) for its pruning: its
# epochs take less than the driver's poll, and without the wait it could end before the pruner's SIGTERM arrives
HERE = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.mark.long
@pytest.mark.xdist_group("slurm")
def test_a_study_in_postgresql_on_slurm_prunes_resumes_a_preempted_trial_and_continues(
    slurm_cluster,  # noqa: F811 (the fixture imported above)
    postgres_url,  # noqa: F811
    tmp_path,
):
    start = time.monotonic()
    space = tmp_path / "space.yaml"
    space.write_text("model.optimizer.init_args.lr: {type: categorical, choices: [0.2, 0.0]}\n")
    out = tmp_path / "tune"
    args = ["tune", "--config", DEMO, "--space", str(space), "--trials", "4", "--parallel", "2", "--out", str(out)]
    args += ["--storage", postgres_url, "--study", "tiny", "--seed", "6", "--prune_after", "1", "--args", TINY]
    args += ["--launcher", "slurm", "--slurm.cpus_per_task", "1", "--slurm.time", "10"]
    env = {**slurm_cluster, **HERE}
    driver = bam_background(*args, cwd=tmp_path, log=tmp_path / "driver.log", env=env)
    try:
        preempted = out / "trial0"
        wait_for("trial 0's pause", (preempted / "paused").exists, 120)
        job = read_state(preempted)["job"]
        slurm_command(env, "scontrol", "requeue", job)
        wait_for("the requeued job pending", lambda: slurm_command(env, "squeue", "-h", "-j", job, "-o", "%T") == "PENDING", 60)
        slurm_command(env, "scontrol", "update", f"JobId={job}", "StartTime=now")  # not at the BeginTime SLURM gives it
        driver.wait(timeout=240)
    finally:
        driver.kill()
    printed = (tmp_path / "driver.log").read_text()
    assert driver.returncode == 0, printed[-3000:]
    took = time.monotonic() - start
    print(f"tune on slurm + postgres: {took:.0f} s", file=sys.stderr)

    study = optuna.load_study(study_name="tiny", storage=postgres_url)
    trials = study.get_trials()
    assert [(t.params["model.optimizer.init_args.lr"], t.state.name) for t in trials] == [
        (0.2, "COMPLETE"), (0.2, "COMPLETE"), (0.0, "PRUNED"), (0.2, "COMPLETE"),
    ], printed  # fmt: skip
    assert "bam tune: trial 2 pruned after epoch 1 (val/err1 92.19)" in printed
    assert "bam: stopped by SIGTERM; last.ckpt" in (out / "trial2" / LOG).read_text()  # pruned: stopped, last.ckpt kept
    # The preempted trial: stopped mid-epoch, requeued, resumed, and ended as trial 1 (the same values, never stopped).
    log = (preempted / LOG).read_text()
    assert "bam: stopped by SIGTERM; last.ckpt" in log and "bam: resuming from" in log
    assert read_state(preempted)["attempt"] == 2
    (out / "straight").symlink_to(out / "trial1")
    assert_same_run(out, "trial0")
    assert trials[0].value == trials[1].value == trials[3].value == 91.40625
    assert yaml.safe_load((out / "best.yaml").read_text()) == {"model": {"optimizer": {"init_args": {"lr": 0.2}}}}
    assert (out / "optimization_history.png").is_file() and (out / "param_importances.png").is_file()

    again = bam(*args, cwd=tmp_path, env=env).stdout  # the same study: 4 trials there, none started
    assert "started" not in again and "bam tune: study tiny: 4 trials (3 complete, 1 pruned)" in again, again
    status = bam("tune", "--status", "--storage", postgres_url, "--study", "tiny", "--out", str(out), cwd=tmp_path).stdout
    assert [line.split()[:4] for line in status.splitlines()[2:]] == [
        ["0", "0.2", "91.41", "done"], ["1", "0.2", "91.41", "done"],
        ["2", "0", "92.19", "pruned"], ["3", "0.2", "91.41", "done"],
    ], status  # fmt: skip
    space.write_text("model.optimizer.init_args.lr: {type: categorical, choices: [0.2, 0.1]}\n")
    assert refusal(bam(*args, cwd=tmp_path, env=env, check=False)) == (
        "bam: error: --study tiny: it exists in the storage with another space: give another --study name for this "
        "search, or the same --space, --metric and --mode to continue it"
    )
    assert slurm_command(env, "squeue", "-h") == ""
