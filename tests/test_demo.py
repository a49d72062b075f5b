"""The offline demo as ``make demo`` runs it: its config through the ``bam`` command, fit, then test of last.ckpt; and
every notebook in notebooks/ run top to bottom, reading that run where a notebook takes a finished run.

A real training run (about a minute on two free cores, up to ~3 under the parallel suite):
the demo's promise of >= 95 % test accuracy is checked on the real digits, not on a stand-in.
Its wall time is printed (``pytest -s``), not asserted: speed is a benchmark, not a test.
The run is made once for the module (conftest sends its tests to one worker); the notebooks' tests only read it.
"""

import time
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

from helpers.command import bam
from helpers.scalars import scalars

CONFIG = Path(__file__).parents[1] / "configs" / "demo_digits.yaml"
NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def demo(*args: str, cwd: Path):
    """``bam`` on the demo's config, on one thread as ``make demo`` runs it."""
    return bam(*args, "--config", str(CONFIG), "--trainer.default_root_dir", str(cwd), cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``make demo``'s fit, then its test of last.ckpt: the folder, the run's version_0 and the test's output."""
    root = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    demo("fit", "--trainer.enable_progress_bar", "false", cwd=root)
    fitted = time.perf_counter()
    run = root / "lightning_logs" / "version_0"
    result = demo("test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), cwd=root)
    print(f"demo: fit {fitted - start:.0f} s, test {time.perf_counter() - fitted:.0f} s")
    return root, run, result


@pytest.mark.long
def test_demo_trains_to_95_percent_test_accuracy_with_checkpoints_and_tensorboard_logs(demo_run):
    root, run, result = demo_run
    last = run / "checkpoints" / "last.ckpt"
    max_epochs = yaml.safe_load(CONFIG.read_text())["trainer"]["max_epochs"]
    assert torch.load(last, weights_only=True)["epoch"] == max_epochs - 1
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    assert list(run.glob("events.out.tfevents.*")) and len(scalars(run)["val/acc1"]) == max_epochs
    tested = scalars(run)  # the test of a run's checkpoint logs into that run (run_logs)
    assert "test/acc1" in result.stdout and not (root / "lightning_logs" / "version_1").exists()
    assert tested["test/acc1"][-1] >= 95, tested


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernel spec for the interpreter running the tests, found before any other one installed.

    The kernel computes with one thread, as conftest has the test workers do: two workers share two cores.
    """
    write_kernel_spec(tmp_path / "kernels" / "python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return "python3"


def given(run: Path) -> dict[str, dict[str, object]]:
    """What each notebook is given over its first cell's settings (its parameters), as a reader sets them.

    Each notebook still runs the branch that trains its own demo model: compare_runs makes its baseline run
    (``tiny_run``) and reads the demo's run as its BAM run; attention_maps fits its demo model for one epoch, not three
    (the figures are drawn all the same). Its ``CHECKPOINT`` branch is ``bam attention``'s ``load_classifier``
    (tests/tools/test_attention_tool.py).
    """
    return {"compare_runs.ipynb": {"BAM_RUN": str(run)}, "attention_maps.ipynb": {"DEMO_EPOCHS": 1}}


@pytest.mark.long
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_and_shows_an_image(path, this_python_kernel, demo_run):
    notebook = nbformat.read(path, as_version=4)
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    settings = given(demo_run[1])[path.name]
    assert all(f"\n{name} = " in f"\n{notebook.cells[code[0]].source}" for name in settings)  # the first cell sets them
    notebook.cells.insert(code[0] + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in settings.items())))
    # In the notebook's own folder, as Jupyter runs it, so its relative paths mean what they mean to a reader.
    NotebookClient(
        notebook, timeout=120, kernel_name=this_python_kernel, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
