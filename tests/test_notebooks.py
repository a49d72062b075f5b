"""Every notebook in notebooks/ runs top to bottom with its committed settings, and is committed without outputs."""

from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernel spec for the interpreter running the tests, found before any other one installed.

    The kernel computes with one thread, as conftest has the test workers do: two workers share two cores.
    """
    write_kernel_spec(tmp_path / "kernels" / "python3")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return "python3"


@pytest.mark.long
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_and_shows_an_image(path, this_python_kernel):
    notebook = nbformat.read(path, as_version=4)
    # In the notebook's own folder, as Jupyter runs it, so its relative paths mean what they mean to a reader.
    NotebookClient(
        notebook, timeout=120, kernel_name=this_python_kernel, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_without_outputs(path):
    code = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
