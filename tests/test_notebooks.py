"""Every lecture and every instructor solution notebook runs top to bottom on CPU, offline.

The time-out only guards against hangs; how long each notebook takes against the
60 s target is measured by benchmarks/, not asserted here.
"""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
LECTURES = sorted((REPO / "lectures").glob("*.ipynb"))
SOLUTIONS = sorted((REPO / "solutions").glob("*/*.ipynb"))
pytestmark = pytest.mark.slow


def execute(path: Path):
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def errors(nb) -> list[str]:
    return [
        f"cell {i + 1}: {o.get('ename')}: {o.get('evalue')}"
        for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for o in cell.get("outputs", []) if o.output_type == "error"
    ]


def test_there_are_notebooks():
    assert LECTURES and SOLUTIONS


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_executes(path, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert not errors(execute(path))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_solution_executes_and_its_test_cells_are_clean(path, monkeypatch):
    """Students run these test cells too: with a correct answer they pass and write nothing to stderr
    (nbgrader scores a test cell that writes to stderr as 0)."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    nb = execute(path)
    assert not errors(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):  # not written answers
            assert not [o for o in cell.outputs if o.get("name") == "stderr"], f"cell {i + 1} wrote to stderr"


def test_sources_are_committed_without_outputs():
    for path in LECTURES + SOLUTIONS:
        nb = nbformat.read(str(path), as_version=4)
        dirty = [i + 1 for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"
