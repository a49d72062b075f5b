"""A real single-node SLURM on this machine for the tests: munged, slurmctld and slurmd, CPU only, in a temporary folder.

Debian's packages (``apt-get install slurmctld slurmd munge``, as root: the daemons run as root
here). Everything they write is under one folder: their own munge key and socket, a minimal
``slurm.conf`` (no accounting, no cgroups: ``proctrack/linuxproc``, ``task/none``), state, spool
and logs; the clients find it through ``SLURM_CONF``. The daemons run in the foreground as this
process's children and are stopped by their pid at the end. ``python tests/helpers/slurm.py`` starts one
by hand and prints the ``SLURM_CONF`` to export.
"""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
HOW = "SLURM tests need Debian's SLURM, as root: apt-get install -y slurmctld slurmd munge (.ci/run does it)"

CONF = """\
ClusterName=bamtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=30
MinJobAge=600
NodeName={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why SLURM cannot start here (one line saying how to get it), or None."""
    if os.geteuid() != 0:
        return f"not root: {HOW}"
    absent = [name for name in (*DAEMONS, "sbatch", "srun", "squeue", "scontrol", "mungekey") if shutil.which(name) is None]
    return f"{', '.join(absent)} not found: {HOW}" if absent else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    kilobytes = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return kilobytes // 1024 - 512


def _wait(what: str, ready, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tails = "\n".join(f"{log}:\n{log.read_text()[-1500:]}" for log in logs if log.exists())
            raise RuntimeError(f"SLURM: {what} not ready after {timeout:.0f} s\n{tails}")
        time.sleep(0.2)


@contextmanager
def running_slurm(root: Path) -> Iterator[dict[str, str]]:
    """The daemons running with their config under ``root``; yields the clients' environment (``SLURM_CONF``)."""
    host = socket.gethostname().split(".")[0]
    for folder in ("state", "spool"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    values = {"host": host, "root": root, "ctld_port": free_port(), "d_port": free_port()}
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(**values, cpus=os.cpu_count(), memory=_memory_mb()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    key = root / "munge.key"
    subprocess.run(["mungekey", "--create", "--keyfile", str(key), "--force"], check=True, capture_output=True)
    munge = [
        "munged", "--foreground", "--force", f"--socket={root}/munge.socket", f"--key-file={key}",
        f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed",
    ]  # fmt: skip
    commands = [munge, ["slurmctld", "-D", "-i", "-f", str(conf)], ["slurmd", "-D", "-f", str(conf)]]
    logs = [root / f"{name}.log" for name in DAEMONS]
    started: list[subprocess.Popen] = []
    try:
        for command, log in zip(commands, logs, strict=True):
            with open(log.with_suffix(".out"), "w") as out:
                started.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            if command is munge:
                _wait("munged", (root / "munge.socket").exists, 20, logs)

        def idle() -> bool:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return state.returncode == 0 and state.stdout.strip() == "idle"

        _wait("the node", idle, 60, logs)
        yield {"SLURM_CONF": str(conf)}
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(what: str, ready, timeout: float) -> float:
    """Seconds until ``ready()``; the test fails after ``timeout``."""
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < timeout, f"{what}: not after {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - start


def slurm_command(env: dict[str, str], *args: str) -> str:
    """A SLURM client command's output (``squeue``, ``scontrol``) with the test cluster's environment."""
    return subprocess.run(args, env={**env, "PATH": "/usr/bin:/bin"}, check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    import tempfile

    print(missing() or "SLURM found")
    with running_slurm(Path(tempfile.mkdtemp(prefix="slurm-"))) as found:
        print(f"export SLURM_CONF={found['SLURM_CONF']}  # Ctrl-C stops it")
        while True:
            time.sleep(3600)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SLURM running for the session (the clients' environment), or the test skipped in one line saying how to get it.

    With ``BAM_REQUIRE_SLURM`` set (``.ci/run`` sets it), a SLURM that cannot start fails the test instead: CI must run them.
    """
    why = missing()
    if why is not None:
        if os.environ.get("BAM_REQUIRE_SLURM"):
            pytest.fail(f"BAM_REQUIRE_SLURM is set but {why}")
        pytest.skip(why)
    with running_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env
