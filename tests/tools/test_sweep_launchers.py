"""`bam sweep` end to end, through the real command: the demo sweep run locally, then as a SLURM job array on a real SLURM.

The local sweep (both demo rows, seed 0) is also the uninterrupted run the preempted SLURM run must
end as, to the bit. The SLURM sweep (2 rows x 2 seeds) runs beside an array of a run cut by its time
limit and a bad config; one of its runs pauses mid-epoch (``helpers.sweep_pause.PauseOnce``) and is preempted
there by ``scontrol requeue``, then released from the BeginTime SLURM gives a requeued job, and resumes from its last.ckpt. Every
SLURM check is in one test (xdist group "slurm"): one SLURM, one of each sweep.
"""

import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bam_lightning.tools.sweep_runs import LOG, read_state, write_state

from helpers.command import bam, bam_background, refusal
from helpers.resume import assert_same_run
from helpers.slurm import free_port, slurm_cluster, slurm_command, wait_for  # noqa: F401 (slurm_cluster: a fixture)

CONFIGS = Path(__file__).parents[2] / "configs"
DEMO = str(CONFIGS / "demo_digits.yaml")
ROWS = [DEMO, f"{DEMO}+{CONFIGS / 'ablations' / 'table1b_max.yaml'}"]
NAMES = ["demo_digits", "table1b_max"]
TINY = (
    "--trainer.max_epochs 2 --trainer.limit_train_batches 4 --trainer.limit_val_batches 2 --trainer.log_every_n_steps 1"
    " --trainer.enable_progress_bar false --trainer.deterministic true"
)  # 4 steps an epoch
PAUSE = "--trainer.callbacks+=helpers.sweep_pause.PauseOnce --trainer.callbacks.step"
PAUSED = {
    row: f"{TINY} {PAUSE} 6 --trainer.callbacks.run {row}/seed0" for row in NAMES
}  # TINY, and the row's seed 0 run waits mid-epoch once
# where the runs import helpers.sweep_pause from, before the package's own folder where one is set (a worktree's)
HERE = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
SLURM = ["--launcher", "slurm", "--slurm.cpus_per_task", "1", "--slurm.time", "10"]


def local_args(out: Path) -> list[str]:
    """The local sweep: the demo's two rows, seed 0, two at once; the second row's run waits mid-epoch once."""
    return [
        "--configs",
        *ROWS,
        "--seeds",
        "0",
        "--out",
        str(out),
        "--local.parallel",
        "2",
        "--args",
        PAUSED[NAMES[1]],
    ]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The local sweep, its second row's run stopped by SIGTERM mid-epoch, then the same sweep again, which resumes it.

    Once a session, by the first xdist worker that asks: the SLURM test compares its preempted
    run with this sweep's first run, on whichever worker it runs.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base  # the session's, above the workers' own
    out = shared / "sweep_local"
    printed = {name: shared / f"sweep_local.{name}" for name in ("stopped", "resumed")}
    with open(shared / "sweep_local.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not printed["resumed"].is_file():
            first: list[subprocess.CompletedProcess] = []
            sweep = threading.Thread(
                target=lambda: first.append(bam("sweep", *local_args(out), cwd=shared, env=HERE, check=False))
            )
            sweep.start()
            paused = out / NAMES[1] / "seed0"
            wait_for("the local run's pause", (paused / "paused").exists, 120)
            os.kill(read_state(paused)["pid"], signal.SIGTERM)
            sweep.join(240)
            printed["stopped"].write_text(first[0].stdout + first[0].stderr + f"exit status {first[0].returncode}\n")
            printed["resumed"].write_text(bam("sweep", *local_args(out), cwd=shared, env=HERE, timeout=240).stdout)
    return out, {name: file.read_text() for name, file in printed.items()}


def test_a_local_run_stopped_by_sigterm_is_resumed_by_the_same_sweep_again(local):
    out, printed = local
    assert printed["stopped"].endswith(f"bam sweep: 1 of 2 runs did not finish (bam sweep --status {out})\nexit status 1\n")
    assert "bam sweep: table1b_max/seed0 stopped after" in printed["stopped"]
    assert (
        "  demo_digits/seed0  done     skip    —\n  table1b_max/seed0  stopped  resume  stopped by SIGTERM\n"
        in printed["resumed"]
    )
    assert "bam: resuming from" in (out / NAMES[1] / "seed0" / LOG).read_text()
    assert len(list((out / NAMES[0] / "seed0" / "lightning_logs").iterdir())) == 1  # done: skipped, not run again


def test_local_sweep_runs_every_row_and_seed_then_tabulates_them(local):
    out, printed = local
    assert [read_state(out / name / "seed0")["state"] for name in NAMES] == ["done", "done"]
    assert "bam sweep: demo_digits/seed0 done after" in printed["stopped"]
    table = [line for line in printed["resumed"].splitlines() if line.startswith("| Digits")]
    assert len(table) == 2 and "| bam | 1 |" in table[0] and "| bam (combine=max) | 1 |" in table[1], printed["resumed"]


def test_dry_run_plans_the_missing_seed_and_runs_nothing(local):
    out, _ = local
    plan = bam("sweep", "--configs", *ROWS, "--seeds", "0", "1", "--out", str(out), "--dry_run", cwd=out.parent).stdout
    assert "bam sweep: 4 runs (2 rows x 2 seeds)" in plan
    assert [line.split()[:3] for line in plan.splitlines() if "/seed" in line and "bam fit" not in line] == [
        ["demo_digits/seed0", "done", "skip"],
        ["demo_digits/seed1", "missing", "start"],
        ["table1b_max/seed0", "done", "skip"],
        ["table1b_max/seed1", "missing", "start"],
    ]
    assert f"demo_digits/seed1: bam fit --config {DEMO} --seed_everything 1 --trainer.default_root_dir {out}" in plan
    assert "bam sweep: dry run: 2 runs would be submitted; nothing submitted" in plan
    assert not (out / "demo_digits" / "seed1").exists()


def test_status_shows_each_run(local):
    out, _ = local
    status = bam("sweep", "--status", str(out), cwd=out.parent).stdout
    assert status.splitlines()[0] == f"bam sweep: 2 runs under {out}: 2 done"
    assert [line.split()[:2] for line in status.splitlines()[2:]] == [
        ["demo_digits/seed0", "done"],
        ["table1b_max/seed0", "done"],
    ]


def test_ctrl_c_stops_a_local_sweep_as_bam_fit_and_the_same_sweep_resumes_it(tmp_path):
    """Ctrl-C in a terminal: SIGINT to the sweep's process group (its runs' processes too), while its run waits mid-epoch."""
    paused = f"{TINY} {PAUSE} 2 --trainer.callbacks.run seed0"
    args = ["sweep", "--configs", DEMO, "--seeds", "0", "--out", "out", "--args", paused]
    log = tmp_path / "printed"  # stdout and stderr, as a terminal shows them
    sweep = bam_background(*args, cwd=tmp_path, log=log, env=HERE, session=True)
    run = tmp_path / "out" / "demo_digits" / "seed0"
    try:
        wait_for("the run's pause", (run / "paused").exists, 120)
        os.killpg(sweep.pid, signal.SIGINT)
        sweep.wait(timeout=120)
    finally:
        sweep.kill()
    printed = log.read_text()
    assert sweep.returncode == 130 and "Traceback" not in printed, printed
    lines = printed.splitlines()
    assert re.fullmatch(r"bam sweep: demo_digits/seed0 stopped after \d+ s: stopped by Ctrl-C \(SIGINT\)", lines[-2]), printed
    assert lines[-1] == "bam: stopped by Ctrl-C (SIGINT); the same bam sweep again resumes its runs", printed
    assert read_state(run)["state"] == "stopped"
    assert "bam: stopped by Ctrl-C (SIGINT); last.ckpt holds it up to its last batch" in (run / LOG).read_text()
    again = bam(*args, "--dry_run", cwd=tmp_path).stdout
    assert "  demo_digits/seed0  stopped  resume  stopped by Ctrl-C (SIGINT)\n" in again, again


def check_dry_runs(root: Path, args: list[str], env: dict[str, str]) -> None:
    """The sweep's plan and its #SBATCH lines, nothing submitted; the DDP recipe of a row on 2 nodes x 4 GPUs."""
    plan = bam("sweep", *args, "--dry_run", cwd=root, env=env).stdout
    assert "#SBATCH --array=0-3%4\n" in plan and "#SBATCH --signal=USR2@120\n" in plan and "#SBATCH --requeue\n" in plan
    assert "bam sweep: dry run: 4 runs would be submitted; nothing submitted" in plan and not (root / "slurm").exists()
    options = ["--slurm.gpus_per_node", "4", "--slurm.nodes", "2", "--slurm.partition", "gpu", "--slurm.account", "lab"]
    options += [
        "--slurm.qos",
        "high",
        "--slurm.mem",
        "64G",
        "--slurm.array_parallelism",
        "1",
        "--slurm.sbatch+",
        "constraint=a100",
        "--slurm.sbatch+",
        "exclusive",
    ]
    ddp = ["--launcher", "slurm", *options, "--configs", DEMO, "--seeds", "0", "1", "--out", "ddp", "--dry_run"]
    plan = bam("sweep", *ddp, cwd=root, env=env).stdout
    for line in ("--array=0-1%1", "--partition=gpu", "--account=lab", "--qos=high", "--mem=64G", "--nodes=2",
                 "--gpus-per-node=4", "--ntasks-per-node=4", "--constraint=a100", "--exclusive"):  # fmt: skip
        assert f"#SBATCH {line}\n" in plan, line
    assert "--trainer.num_nodes 2 --trainer.devices 4 --trainer.strategy ddp --data.batch_size 8" in plan  # 8 x 8 = 64
    assert not (root / "ddp").exists()


def wait_pending(run: Path, env: dict[str, str]) -> None:
    """Until the run's requeued job waits in the queue (SLURM holds it there for minutes: BeginTime)."""
    job = read_state(run)["job"]
    wait_for("the requeued job pending", lambda: slurm_command(env, "squeue", "-h", "-j", job, "-o", "%T") == "PENDING", 60)


def release(run: Path, env: dict[str, str], *update: str) -> None:
    """The run's pending job started now, not at its BeginTime; until the run resumes."""
    slurm_command(env, "scontrol", "update", f"JobId={read_state(run)['job']}", "StartTime=now", *update)
    wait_for("the resumed run", lambda: "bam: resuming from" in (run / LOG).read_text(), 120)


@pytest.mark.long
@pytest.mark.xdist_group("slurm")
def test_slurm_sweep_resumes_preempted_and_timed_out_runs_fails_a_bad_config_and_is_idempotent(
    slurm_cluster,  # noqa: F811 (the fixture imported above)
    local,
    tmp_path,
):
    """One test: the sweeps share one SLURM, and one machine's two cores run them side by side."""
    root = tmp_path
    (root / "straight").symlink_to(local[0] / "demo_digits" / "seed0")  # assert_same_run's uninterrupted run
    (root / "typo.yaml").write_text("model:\n  attention_kwargs: {reductoin: 8}\n")
    env = {**slurm_cluster, **HERE}
    args = [
        *SLURM,
        "--configs",
        *ROWS,
        "--seeds",
        "0",
        "1",
        "--out",
        str(root / "slurm"),
        "--args",
        PAUSED[NAMES[0]],
    ]
    check_dry_runs(root, args, env)

    start = time.monotonic()
    timed = root / "timed" / "demo_digits" / "seed0"  # a run that reaches its time limit, first in the queue
    bad = root / "timed" / "typo" / "seed0"  # in the same array: submitit requeues an array task at its time limit
    bam(
        "sweep",
        *SLURM,
        "--configs",
        DEMO,
        f"{DEMO}+{root / 'typo.yaml'}",
        "--seeds",
        "0",
        "--out",
        str(root / "timed"),
        "--args",
        PAUSED[NAMES[0]],
        cwd=root,
        env=env,
    )
    submitted = bam("sweep", *args, cwd=root, env=env).stdout
    assert "bam sweep: submitted 4 runs as SLURM job array" in submitted

    # The time limit: cut to 2 minutes while the run waits mid-epoch, so that SLURM sends its --signal=USR2@120 now.
    wait_for("the timed run's pause", (timed / "paused").exists, 120)
    slurm_command(env, "scontrol", "update", f"JobId={read_state(timed)['job']}", "TimeLimit=2")
    # Preemption: scontrol requeue while the run waits mid-epoch.
    preempted = root / "slurm" / "demo_digits" / "seed0"
    wait_for("the run's pause", (preempted / "paused").exists, 120)
    during = bam("sweep", "--status", str(root / "slurm"), cwd=root, env=env).stdout
    assert "demo_digits/seed0  running  SLURM job" in during, during
    requeued = time.monotonic()
    slurm_command(env, "scontrol", "requeue", read_state(preempted)["job"])
    wait_pending(preempted, env)
    pending = bam("sweep", "--status", str(root / "slurm"), cwd=root, env=env).stdout
    assert "demo_digits/seed0  pending  SLURM job" in pending, pending
    release(preempted, env)
    requeue_to_resume = time.monotonic() - requeued
    signal = wait_for("the time limit's signal", lambda: "its time limit's signal" in read_state(timed).get("why", ""), 90)
    wait_pending(timed, env)
    release(timed, env, "TimeLimit=10")  # not cut again

    runs = [root / "slurm" / name / f"seed{seed}" for name in NAMES for seed in (0, 1)] + [timed, bad]
    wait_for("every run", lambda: all(read_state(run)["state"] in ("done", "failed") for run in runs), 240)
    wait_for("every job's end", lambda: slurm_command(env, "squeue", "-h") == "", 60)  # a job writes its state, then ends
    took = time.monotonic() - start
    print(f"slurm sweep: {took:.0f} s, requeue to resume {requeue_to_resume:.0f} s, time limit's signal after {signal:.0f} s",
          file=sys.stderr)  # fmt: skip

    # 2 configs x 2 seeds: 4 runs done.
    status = bam("sweep", "--status", str(root / "slurm"), cwd=root, env=env).stdout
    assert status.splitlines()[0] == f"bam sweep: 4 runs under {root / 'slurm'}: 4 done", status
    # The preempted run and the one at its time limit (SLURM's --signal, then submitit requeued its job): each stopped
    # mid-epoch with last.ckpt, requeued, resumed, and ended as the run that never stopped.
    for run in (preempted, timed):
        log = (run / LOG).read_text()
        assert "bam: stopped by SIGTERM; last.ckpt" in log and "bam: resuming from" in log, run
        assert read_state(run)["state"] == "done" and read_state(run)["attempt"] == 2, run  # the same job, requeued once
        assert_same_run(root, str(run.relative_to(root)))
    assert re.fullmatch(r"\d+_0", read_state(timed)["job"])  # an array's task, requeued by submitit
    # The bad config: failed with its log's last line, not requeued.
    failed = read_state(bad)
    assert failed["state"] == "failed" and failed["attempt"] == 1 and "'reductoin'" in failed["why"], failed
    assert "Restarts=0" in slurm_command(env, "scontrol", "show", "job", failed["job"])
    status = bam("sweep", "--status", str(root / "timed"), cwd=root, env=env).stdout
    assert re.search(r"typo/seed0 +failed +exit status 2: bam: error:", status), status
    # The same sweep again: nothing submitted.
    again = bam("sweep", *args, cwd=root, env=env).stdout
    assert "bam sweep: nothing to submit" in again and "one job array" not in again
    assert slurm_command(env, "squeue", "-h") == ""


@pytest.mark.xdist_group("slurm")
def test_slurm_refusing_a_job_or_not_answering_submits_nothing(slurm_cluster, tmp_path):  # noqa: F811 (the fixture)
    """sbatch's refusal is one line with its reason; a queue that cannot be read is not an empty one: a run SLURM may
    still be training is neither shown as stopped nor submitted again. Down: the clients pointed at a controller that
    is not there (a copy of the config on a port nothing listens on, answered at once)."""
    conf = Path(slurm_cluster["SLURM_CONF"]).read_text()
    down = tmp_path / "down.conf"
    down.write_text(re.sub(r"^SlurmctldPort=\d+$", f"SlurmctldPort={free_port()}", conf, flags=re.M) + "MessageTimeout=1\n")
    up, env_down = {**slurm_cluster, **HERE}, {**slurm_cluster, **HERE, "SLURM_CONF": str(down)}
    sweep = ["sweep", *SLURM, "--configs", DEMO, "--seeds", "0", "--out", "out"]
    refused = refusal(bam(*sweep, "--slurm.partition", "nosuch", cwd=tmp_path, env=up, check=False))
    assert refused == (
        "bam: error: sbatch refused the job array, nothing submitted: sbatch: error: invalid partition specified: nosuch"
        " sbatch: error: Batch job submission failed: Invalid partition name specified"
    )
    refused = refusal(bam(*sweep, cwd=tmp_path, env=env_down, check=False))
    assert refused.endswith("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)")
    assert not (tmp_path / "out" / "demo_digits").exists()  # no run recorded as submitted

    run = tmp_path / "out" / "demo_digits" / "seed0"
    write_state(run, state="running", launcher="slurm", job="1_0")  # as its job, running, wrote it
    for args in (["sweep", "--status", "out"], sweep):
        assert refusal(bam(*args, cwd=tmp_path, env=env_down, check=False)) == (
            "bam: error: squeue failed: slurm_load_jobs error: Unable to contact slurm controller (connect failure): "
            "whether the sweep's SLURM jobs still run is unknown: try again once squeue answers"
        )
    assert read_state(run) == {"state": "running", "launcher": "slurm", "job": "1_0"}
