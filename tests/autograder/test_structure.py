"""autograder.structure.normalize: a submission put back into the release's structure."""
import copy

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.structure import normalize


def cell(kind, grade_id, source, **flags):
    meta = {"nbgrader": {"grade_id": grade_id, "schema_version": 3, "solution": False, "grade": False,
                         "locked": False, **flags}}
    make = new_code_cell if kind == "code" else new_markdown_cell
    return make(source, metadata=meta)


def release():
    return new_notebook(cells=[
        cell("markdown", "intro", "# Task", locked=True),
        cell("code", "answer_a", "raise NotImplementedError()", solution=True),
        cell("code", "test_a", "assert a() == 1", grade=True, locked=True, points=1),
        cell("code", "answer_b", "raise NotImplementedError()", solution=True),
        cell("code", "test_b", "assert b() == 2", grade=True, locked=True, points=1),
    ])


def ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def submitted(**answers):
    nb = release()
    for c in nb.cells:
        gid = c.metadata["nbgrader"]["grade_id"]
        if gid in answers:
            c.source = answers[gid]
    return nb


def test_an_intact_submission_is_unchanged_and_has_no_notes():
    nb = submitted(answer_a="def a(): return 1", answer_b="def b(): return 2")
    nb.cells.insert(2, new_code_cell("print(a())"))  # the student's own cell
    fixed, notes = normalize(nb, release())
    assert notes == []
    assert ids(fixed) == ["intro", "answer_a", None, "test_a", "answer_b", "test_b"]
    assert fixed.cells[1].source == "def a(): return 1"


def test_deleted_duplicated_reordered_and_retyped_cells_are_repaired_and_named():
    nb = submitted(answer_a="def a(): return 1", answer_b="def b(): return 2")
    del nb.cells[2]  # test_a
    nb.cells.append(copy.deepcopy(nb.cells[1]))  # answer_a again
    nb.cells[-1].source = "def a(): return 0"
    nb.cells[1], nb.cells[2] = nb.cells[2], nb.cells[1]  # answer_b before answer_a
    nb.cells[1].cell_type = "markdown"  # answer_b as markdown
    fixed, notes = normalize(nb, release())
    text = " ".join(notes)
    assert ids(fixed)[:5] == ["intro", "answer_a", None, "test_a", "answer_b"] or ids(fixed)[:4] == [
        "intro", "answer_a", "test_a", "answer_b"]
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in fixed.cells if c.metadata.get("nbgrader")}
    assert by_id["answer_a"].source == "def a(): return 1"  # the first copy is graded
    assert by_id["answer_b"].cell_type == "code" and by_id["answer_b"].source == "def b(): return 2"
    assert by_id["test_a"].source == "assert a() == 1"
    assert "restored from the release: test_a" in text
    assert "more than once: answer_a" in text and "out of order" in text and "release's type: answer_b" in text
    assert any(c.source == "def a(): return 0" and not c.metadata.get("nbgrader") for c in fixed.cells)


def test_a_notebook_of_another_assignment_is_graded_as_unanswered():
    other = new_notebook(cells=[cell("code", "other_answer", "x = 1", solution=True)])
    fixed, notes = normalize(other, release())
    assert "None of this assignment's answer cells" in notes[0]
    assert ids(fixed) == [None, "intro", "answer_a", "test_a", "answer_b", "test_b"]  # its cell kept, unmarked
    assert fixed.cells[2].source == "raise NotImplementedError()"


def test_another_assignments_notebook_that_shares_a_cell_name_is_named_too():
    """Assignments share some cell names (predictions, tuning): a notebook of another assignment then carries one
    of this assignment's answer cells among its own, and the note still asks whether it is the right notebook."""
    this = release()
    this.cells += [cell("code", "answer_c", "raise NotImplementedError()", solution=True),
                   cell("code", "predictions", "raise NotImplementedError()", solution=True)]
    other = new_notebook(cells=[cell("code", "predictions", "p = 1", solution=True),
                                cell("code", "other_answer", "x = 1", solution=True),
                                cell("code", "test_other", "assert x == 1", grade=True, locked=True, points=1)])
    fixed, notes = normalize(other, this)
    text = " ".join(notes)
    assert "Only 1 of this assignment's 4 answer cells" in text and "other_answer, test_other" in text
    assert "is it the right notebook (or a notebook of another assignment)?" in text
    # A submission that merely lost some of its own cells is not suspected of being another notebook.
    _, notes = normalize(submitted(answer_a="def a(): return 1"), this)
    assert not any("right notebook" in n for n in notes)
