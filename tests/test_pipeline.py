"""The instructor pipeline through real nbgrader: release, autograde, feedback, export.

The scores of the demo's three students are compared with a golden file
(tests/golden/demo_scores.json); after a deliberate change to checks, points or
mistakes, regenerate it with UPDATE_GOLDEN=1 and review the diff.
"""
import csv
import html
import hashlib
import json
import os
from pathlib import Path

import nbformat
import pytest

from autograder.demo import STUDENTS, demo_mistakes, run_demo, task_losses
from autograder.release import assignment_ids
from tests.test_release import check_lines, leaks

GOLDEN = Path(__file__).parent / "golden" / "demo_scores.json"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("course")
    submitted_hashes = {}
    from autograder import demo

    original = demo.place_submissions

    def place_and_hash(folder, assignment_id):  # remember what students submitted
        original(folder, assignment_id)
        for p in (folder / "submitted").rglob("*.ipynb"):
            submitted_hashes[p] = hashlib.sha256(p.read_bytes()).hexdigest()

    demo.place_submissions = place_and_hash
    try:
        assert run_demo(workdir) == 0
    finally:
        demo.place_submissions = original
    return workdir, submitted_hashes


def cell_scores_of(workdir: Path, submissions: list[tuple[str, str]]) -> dict:
    """{"student/assignment": {grade cell: score}} from the gradebook, for (assignment, student) pairs."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}", "odl-pytorch") as gb:
        for assignment_id, student_id in submissions:
            sub = gb.find_submission(assignment_id, student_id)
            out[f"{student_id}/{assignment_id}"] = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
    return out


def cell_scores(workdir: Path) -> dict:
    ids = assignment_ids(workdir / "solutions")
    return cell_scores_of(workdir, [(a, s.id) for a in ids for s in STUDENTS])


def test_scores_match_the_golden_file(course):
    workdir, _ = course
    scores = cell_scores(workdir)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    assert scores == json.loads(GOLDEN.read_text())


def test_kernel_patch_empties_test_cells_in_the_kernel_but_scores_zero(course):
    """The tamperer's patch really works inside the kernel (stock nbgrader would give full marks to
    test cells without output), yet the out-of-kernel checks give it nothing."""
    from nbclient import NotebookClient

    from autograder.assignments import ASSIGNMENTS
    from autograder.submissions import with_kernel_patch

    workdir, _ = course
    a = ASSIGNMENTS["01_pytorch_basics"]
    nb = with_kernel_patch(workdir / "assignments" / a.id / a.notebook)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    test_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                  and not c.metadata["nbgrader"].get("solution")]
    assert test_cells and all(c.outputs == [] for c in test_cells)
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader((workdir / "grades.csv").open())}
    assert float(rows[("tamperer", a.id)]["score"]) == 0


def test_solution_full_marks_untouched_zero(course):
    workdir, _ = course
    rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader((workdir / "grades.csv").open())}
    for assignment_id in assignment_ids(workdir / "solutions"):
        solution = rows[("solution", assignment_id)]
        # Answers graded by hand (written questions) count in max_score but are not scored by autograde.
        assert float(solution["score"]) == float(solution["max_score"]) - hand_graded_points(workdir, assignment_id) > 0
        assert float(rows[("untouched", assignment_id)]["score"]) == 0
        assert task_losses(workdir, assignment_id, "solution") == []


def hand_graded_points(workdir: Path, assignment_id: str) -> float:
    """Points of the release's answer cells that are graded by hand (answer and grade cell at once)."""
    release = next((workdir / "assignments" / assignment_id).glob("*.ipynb"))
    cells = nbformat.read(str(release), as_version=4).cells
    return sum(float(c.metadata["nbgrader"]["points"]) for c in cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.metadata["nbgrader"].get("grade"))


def test_mistakes_lose_points_where_made_and_feedback_names_them(course):
    workdir, _ = course
    for assignment_id in assignment_ids(workdir / "solutions"):
        lost = {entry.split()[0] for entry in task_losses(workdir, assignment_id, "mistakes")}
        feedback = html.unescape(next((workdir / "feedback" / "mistakes" / assignment_id).glob("*.html")).read_text())
        for mistake in demo_mistakes(assignment_id):
            assert mistake.task in lost, mistake.name
            assert mistake.feedback in feedback, mistake.name


def test_feedback_and_graded_notebooks_leak_nothing(course):
    """No hidden check source or hidden region reaches anyone; the untouched release's feedback
    (no student code in it) shows no solution or reference line either. Students who wrote code
    see their own lines, which naturally share idioms with the reference."""
    workdir, _ = course
    for assignment_id in assignment_ids(workdir / "solutions"):
        for student in STUDENTS:
            for path in [*(workdir / "feedback" / student.id / assignment_id).glob("*.html"),
                         *(workdir / "autograded" / student.id / assignment_id).glob("*.ipynb")]:
                text = path.read_text()
                if student.id == "untouched":
                    found = leaks(text, assignment_id)
                else:
                    found = [line for line in check_lines() if line in text]
                    found += [m for m in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS") if m in text]
                assert not found, f"{path}: {found[:3]}"


def test_graded_test_cells_have_no_stderr_and_submissions_are_untouched(course):
    workdir, hashes = course
    for path in (workdir / "autograded").rglob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                assert not [o for o in cell.outputs if o.get("name") == "stderr"], path
    assert hashes
    for p, digest in hashes.items():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == digest, f"{p} was modified by grading"


def test_demo_and_checked_test_cells_are_not_run_in_the_kernel_and_the_rest_is(course):
    """Cells tagged `demo` say they were skipped; test cells hold the hidden checks' report; every other code
    cell ran in the kernel (unless the kernel died before it)."""
    from autograder.execute import SKIPPED

    workdir, _ = course
    skipped = checked = 0
    for path in (workdir / "autograded").rglob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if "demo" in cell.metadata.get("tags", []):
                assert [o.get("text") for o in cell.outputs] == [SKIPPED], path
                skipped += 1
            elif grade_id.startswith("test_"):
                text = "".join(o.get("text", "") for o in cell.outputs)
                assert text.startswith(("Task '", "Not graded:")), (path, grade_id, text[:200])
                checked += 1
            elif cell.source.strip() and not any("not run: the kernel" in str(o.get("text", "")) for o in cell.outputs):
                assert cell.execution_count is not None, (path, cell.source[:80])
    assert skipped >= 5 * len(STUDENTS)  # 2 demo cells in assignment 1, 3 in assignment 2
    assert checked >= 16 * len(STUDENTS)
