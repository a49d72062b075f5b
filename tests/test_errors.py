"""check_output_folder refuses, in one line, a folder the user cannot write, also below one they cannot search."""

import os
import tempfile
from pathlib import Path

import pytest

from bam_lightning.errors import check_output_folder


def refusal_as_nobody(folder: str) -> str:
    """check_output_folder's refusal of ``folder`` in a forked process of user nobody: root passes every permission check."""
    read, write = os.pipe()
    if os.fork() == 0:  # the child: one line back through the pipe, and out without running pytest's exit handlers
        try:
            if os.geteuid() == 0:
                os.setuid(65534)
            check_output_folder(folder, "--out")
            os.write(write, b"accepted")
        except BaseException as error:  # whatever it is goes back to the test
            os.write(write, f"{type(error).__name__}: {error}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        return pipe.read()


@pytest.mark.parametrize(
    ("below", "line"),
    [("", "takes no file (Permission denied)"), ("sub/runs", "cannot be made (Permission denied)")],
    ids=["not-writable", "below-one-not-searchable"],
)
def test_a_folder_without_permission_is_one_line(below, line):
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o755)
        locked = Path(top) / "locked"
        locked.mkdir(mode=0o500)
        folder = str(locked / below) if below else str(locked)
        assert refusal_as_nobody(folder) == f"InputError: --out {folder} {line}: give a folder you can write to"
