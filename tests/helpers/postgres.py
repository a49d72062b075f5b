"""A real PostgreSQL server for the tests, from Debian's packages, in a temporary folder: ``bam tune``'s study storage.

Debian's ``postgresql`` package (``apt-get install postgresql``; ``.ci/run`` installs it where missing) puts
``initdb``, ``pg_ctl`` and ``postgres`` under ``/usr/lib/postgresql/<version>/bin``. The server's data, its unix
socket (no TCP port: ``listen_addresses=''``) and its log are in one folder; it trusts local connections (``initdb -A
trust``) and is stopped at the end (``pg_ctl stop -m fast``), its folder removed. PostgreSQL refuses to run as root:
as root (CI), ``initdb`` and the server run as ``nobody`` (``runuser``), in a folder it owns. ``python
tests/helpers/postgres.py`` starts one by hand and prints its URL.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOW = "PostgreSQL tests need Debian's PostgreSQL server: apt-get install -y postgresql (.ci/run does it)"
USER = "nobody"  # who runs the server where the tests run as root
REQUIRE = ("BAM_REQUIRE_POSTGRES", "BAM_REQUIRE_SLURM")  # set (.ci/run): a server that cannot start fails, not skips


def binaries() -> Path | None:
    """The folder of the newest installed server's ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3].split(".")[0]))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def missing() -> str | None:
    """Why a server cannot start here (one line saying how to get it), or None."""
    if binaries() is None:
        return f"initdb, pg_ctl not found: {HOW}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return f"runuser not found: as root the server runs as {USER}: apt-get install -y util-linux"
    return None


def _as_server(command: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *command] if os.geteuid() == 0 else command


@contextmanager
def running_postgres() -> Iterator[str]:
    """A server running in a temporary folder; yields its SQLAlchemy URL (psycopg 3, over the folder's unix socket)."""
    bin_dir = binaries()
    assert bin_dir is not None, HOW
    root = Path(tempfile.mkdtemp(prefix="bam-postgres-"))  # not pytest's tmp_path: root's alone, closed to the server's user
    if os.geteuid() == 0:
        user = pwd.getpwnam(USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "server.log"
    try:
        subprocess.run(
            _as_server([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bam", "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-k {root} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        started = subprocess.run(
            _as_server([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"]),
            capture_output=True, text=True,
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {started.stdout}{started.stderr}\n{log.read_text()[-1500:]}")
        try:
            yield f"postgresql+psycopg://bam@/postgres?host={root}"
        finally:
            subprocess.run(
                _as_server([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    import time

    print(missing() or "PostgreSQL found")
    with running_postgres() as url:
        print(f"{url}  # Ctrl-C stops it")
        while True:
            time.sleep(3600)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server running for the session (its URL), or the test skipped in one line saying how to get one.

    With ``BAM_REQUIRE_POSTGRES`` or ``BAM_REQUIRE_SLURM`` set (``.ci/run`` sets both), one that cannot start fails the
    test instead: CI must run them.
    """
    why = missing()
    if why is not None:
        required = [name for name in REQUIRE if os.environ.get(name)]
        if required:
            pytest.fail(f"{required[0]} is set but {why}")
        pytest.skip(why)
    with running_postgres() as url:
        yield url
