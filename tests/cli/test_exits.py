"""How ``bam`` ends: the warnings it quiets, and the exit table's rows (the commands themselves: test_cli, test_faults)."""

import warnings

import pytest
from lightning.pytorch.utilities import _pytree

from bam_lightning.cli.exits import EXITS, STOPPED, RunState, quiet_library_warnings
from bam_lightning.errors import InputError

LEAFSPEC = "`isinstance(treespec, LeafSpec)` is deprecated"


def warned(action) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in seen]


def test_lightnings_leafspec_warning_is_quiet_and_only_it():
    assert any(m.startswith(LEAFSPEC) for m in warned(lambda: _pytree._tree_flatten(1)))  # still there: the filter is needed

    def quieted() -> None:
        quiet_library_warnings()
        _pytree._tree_flatten(1)
        warnings.warn(LEAFSPEC, FutureWarning, stacklevel=1)  # the same words from another module stay

    assert warned(quieted) == [LEAFSPEC]


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (InputError("no such folder"), "error: no such folder"),
        (KeyboardInterrupt(), None),  # Ctrl-C before a run, unpressed: Python's own handling
        (SystemExit(0), None),  # --help
        (RuntimeError("a bug"), None),  # keeps its traceback
    ],
)
def test_the_first_row_that_matches_an_error_says_its_line(error, line):
    row = next(row for row in EXITS if isinstance(error, row.errors))
    assert row.line(error, RunState(["fit"])) == line


def test_a_stop_by_ctrl_c_exits_as_a_shell_reports_it():
    run = RunState(["fit"])
    run.interrupted = True
    row = next(row for row in EXITS if isinstance(KeyboardInterrupt(), row.errors))
    assert row.status == STOPPED and row.line(KeyboardInterrupt(), run).startswith(
        "stopped by Ctrl-C (SIGINT); resume from the last checkpoint saved: --ckpt_path last"
    )
