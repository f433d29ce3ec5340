import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.notebook import NotebookError, code_cells, gradable_code, read_notebook, strip_magics


def nbgrader(**kw):
    return {"nbgrader": {"grade": False, "locked": False, "solution": False, "schema_version": 3, **kw}}


def sample():
    return new_notebook(cells=[
        new_markdown_cell("# title"),
        new_code_cell("import torch", metadata=nbgrader(locked=True, grade_id="setup")),
        new_code_cell("%matplotlib inline\ndef f():\n    return 1", metadata=nbgrader(solution=True, grade_id="f")),
        new_code_cell("assert f() == 1", metadata=nbgrader(grade=True, locked=True, points=1, grade_id="test_f")),
        new_code_cell("f()  # scratch"),
    ])


def test_cells_get_their_nbgrader_roles():
    kinds = [(c.index, c.kind, c.grade_id) for c in code_cells(sample())]
    assert kinds == [(1, "setup", "setup"), (2, "solution", "f"), (3, "test", "test_f"), (4, "other", None)]


def test_grading_runs_only_setup_and_answer_cells_with_magics_disabled():
    cells = gradable_code(sample())
    assert [c.grade_id for c in cells] == ["setup", "f"]
    namespace = {}
    for c in cells:
        exec(c.source, namespace)
    assert namespace["f"]() == 1


@pytest.mark.parametrize("source", ["!pip install x", "for i in range(2):\n    %time x = i", "%%timeit\nx = 1"])
def test_magics_become_harmless(source):
    compile(strip_magics(source), "<cell>", "exec")


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"{not json", "not valid JSON"), (b'{"hello": 1}', "not a Jupyter notebook"),
     (b"[1, 2]", "not a Jupyter notebook")],
)
def test_unreadable_notebooks_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=message):
        read_notebook(path)


def test_missing_notebook(tmp_path):
    with pytest.raises(NotebookError, match="no such file"):
        read_notebook(tmp_path / "nope.ipynb")


def test_round_trip(tmp_path):
    path = tmp_path / "ok.ipynb"
    nbformat.write(sample(), str(path))
    assert len(read_notebook(path).cells) == 5
    json.loads(path.read_text())


def test_the_checking_process_does_not_import_nbformat():
    """nbformat brings jsonschema's rfc3987_syntax, ~1 s of start-up for every submission's checks."""
    import subprocess
    import sys

    probe = "import sys, autograder.plugin; print(sorted(m for m in ('nbformat', 'rfc3987_syntax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_course_nbgrader_entry_skips_rfc3987_syntax_and_still_validates(tmp_path):
    """python -m autograder.gradebook (what odl-grade autograde runs) starts nbgrader without rfc3987_syntax."""
    import subprocess
    import sys

    probe = ("import sys; sys.argv = ['nbgrader', '--version']\n"
             "from autograder import gradebook\n"
             "try:\n    gradebook.main()\nexcept SystemExit:\n    pass\n"
             "import nbformat, nbformat.v4 as v4\n"
             "nbformat.validate(v4.new_notebook(cells=[v4.new_code_cell('x = 1')]))\n"
             "print('rfc3987_syntax loaded:', sys.modules.get('rfc3987_syntax') is not None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "nbgrader version" in out and "rfc3987_syntax loaded: False" in out
