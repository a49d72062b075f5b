"""The ``bam`` command run as a process of its own, as a user runs it, without re-paying its imports every time.

Importing torch, torchvision, torchmetrics and Lightning costs about 9 s of CPU, more than most
commands the tests run. A forkserver imports ``bam_lightning.cli`` once per test worker and forks
a fresh process per command: a real process, with the command's working directory, environment,
arguments in ``sys.argv``, output to files, and an exit status set by the console script's entry
point (``bam_lightning.cli:main``), as ``bam`` itself sets it. ``sys.argv[0]`` is the ``bam`` console script
beside this interpreter (``make install`` writes it; ``make sweep`` runs it too), as for a user's ``bam``: a
multi-process DDP run starts its other ranks from it, fresh interpreters, as a user's run does. ``fresh=True``:
``python -m bam_lightning.cli`` in a fresh interpreter. ``bam_background`` leaves a forked command running (killed,
signalled by the test). ``one_line_error`` runs a command in the test's own process instead, for the refusals that
end it before any work.
"""

import atexit
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import pytest

_forkserver = multiprocessing.get_context("forkserver")
_forkserver.set_forkserver_preload(["bam_lightning.cli"])
SCRIPT = Path(sys.executable).parent / "bam"  # the console script, where Lightning's DDP launcher finds it: sys.argv[0]


def _exit_status(code: object) -> int:
    """What the interpreter makes of ``SystemExit(code)``: None is 0, a message is printed and is 1."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _run(args: list[str], cwd: str, env: dict[str, str], out: str, err: str, session: bool = False) -> None:
    """The forked process: what ``bam ARGS`` does, from its imports on; ``session``: in a process group of its own."""
    import torch

    from bam_lightning.cli import main

    if session:
        os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # $TMPDIR as given
    for fd, path in ((1, out), (2, err)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # appended: stdout and stderr may share a file
        os.dup2(file, fd)
        os.close(file)
    # stderr line-buffered, as the interpreter's own (stdout, a file here, is block-buffered as its own is)
    sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    if env.get("PYTHONWARNINGS") == "ignore":
        warnings.simplefilter("ignore")
    torch.set_num_threads(int(env.get("OMP_NUM_THREADS", torch.get_num_threads())))  # read by torch's import, done
    sys.argv = [str(SCRIPT), *args]
    try:
        main()
        status = 0
    except SystemExit as exit:
        status = _exit_status(exit.code)
    except BaseException:
        traceback.print_exc()
        status = 1
    atexit._run_exitfuncs()  # as the interpreter does at exit (TensorBoard writers, loader workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def bam(
    *args: str,
    cwd: Path,
    check: bool = True,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    fresh: bool = False,
    terminal: bool = False,
) -> subprocess.CompletedProcess:
    """``bam ARGS`` in ``cwd``; its status and output. ``check`` fails the test, with the output's end, on a non-zero status.

    One thread by default, as conftest gives pytest's own: two threads on two shared cores run a tiny fit 3x slower.
    ``terminal``: stdout and stderr interleaved in one stream, as a terminal shows them (both attributes hold it).
    """
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    if fresh:
        command = [sys.executable, "-m", "bam_lightning.cli", *args]
        streams = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT if terminal else subprocess.PIPE}
        result = subprocess.run(command, cwd=cwd, text=True, env=env, timeout=timeout, **streams)
        if terminal:
            result.stderr = result.stdout
    else:
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stdout" if terminal else "stderr")
            out.touch(), err.touch()  # read even where the process fails before it opens them
            process = _forkserver.Process(target=_run, args=(list(args), str(cwd), env, str(out), str(err)))
            process.start()
            process.join(timeout)
            if process.exitcode is None:
                process.kill()
                process.join()
                raise subprocess.TimeoutExpired(["bam", *args], timeout, out.read_text(), err.read_text())
            result = subprocess.CompletedProcess(["bam", *args], process.exitcode, out.read_text(), err.read_text())
    if check and result.returncode != 0:
        raise AssertionError(f"bam {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


class Background:
    """``bam ARGS`` started from the forkserver and left running: what the tests use of ``subprocess.Popen``."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process, self.pid = process, process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, minus the signal's number for a process a signal ended (as Popen's); None while it runs."""
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(["bam"], timeout)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        if self.poll() is None:
            self.send_signal(signal.SIGKILL)


def bam_background(*args: str, cwd: Path, log: Path, env: dict[str, str] | None = None, session: bool = False) -> Background:
    """``bam ARGS`` in the background, stdout and stderr appended to ``log``, as ``bam`` runs: a process of its own,
    forked from the forkserver (its imports paid once), its environment ``env`` over this one's, one thread by default.
    ``session``: in a process group of its own, as a terminal runs a command (Ctrl-C signals the whole group)."""
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    log.touch()
    process = _forkserver.Process(target=_run, args=(list(args), str(cwd), env, str(log), str(log), session))
    process.start()
    return Background(process)


def refusal(result: subprocess.CompletedProcess) -> str:
    """The last line of a ``bam`` refused as a user's mistake: exit status 2, no traceback, and that line ``bam: error: ...``."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bam: error: "), last
    return last


def one_line_error(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """``bam ARGS`` run in this process (``cli.main``, the command's entry point): its exit status 2 and last line."""
    from bam_lightning.cli import main

    with pytest.raises(SystemExit) as exit:
        main(args)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("bam: error:"), last
    return last
