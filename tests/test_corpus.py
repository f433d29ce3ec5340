"""The corpus of broken and malicious submissions, graded as one class through real nbgrader.

The class is graded the way an instructor does it, ``odl-grade autograde`` with two
workers (one nbgrader process per student). Every case of autograder.corpus must get
its stated score and feedback; the batch must finish, leave every submitted file and
the gradebook intact, keep a victim student's work and score, list every tampering
and every grader note in its summary, and re-grading must be idempotent with no
stale score. Odd submission folders (links, FIFOs, renamed or extra notebooks, ids with glob
characters) go through autograder.intake: a tripwire FIFO outside every submission, the target of
their links, must never be opened, and ``nbgrader generate_feedback`` must succeed for the class.

``CORPUS_CASES=name,name`` grades only those cases (and the victim), for a quick run while working
on a few; the full corpus takes about ten minutes on two cores.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.corpus import ASSIGNMENT, CASES as ALL_CASES, FULL, NOTEBOOK, VICTIM, Tripwire, context, place_case
from autograder.demo import DEMO_TIMESTAMP
from autograder.parallel import GRADED, grade_class
from autograder.release import REPO, generate, nbgrader, tool_env, write_course_config

pytestmark = pytest.mark.slow

_ONLY = [n.strip() for n in os.environ.get("CORPUS_CASES", "").split(",") if n.strip()]
CASES = [case for case in ALL_CASES if not _ONLY or case.name in _ONLY]

# Short limits keep the corpus quick; the cases that hang hit them on purpose.
LIMITS = """
c.Execute.timeout = 20
c.HiddenChecks.check_timeout = 8
c.HiddenChecks.cell_timeout = 8
c.HiddenChecks.timeout = 240
"""


def _digest(path: Path) -> str:
    if path.is_symlink():
        return f"link to {os.readlink(path)}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _submitted_files(course: Path) -> dict[Path, str]:
    """Every plain file and link under submitted/ (without following links or opening FIFOs)."""
    return {p: _digest(p) for p in (course / "submitted").rglob("*") if p.is_symlink() or (
        p.is_file() and not p.is_fifo())}


def _text(nb) -> str:
    """Everything a student sees in a graded notebook: sources and outputs."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.get("source", ""))
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"]))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
            parts.append(str(out.get("evalue", "")))
    return "\n".join(parts)


def scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "odl-pytorch") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(ASSIGNMENT)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("corpus")
    write_course_config(course)
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(LIMITS)
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    generate(course, [ASSIGNMENT])
    outside = tmp_path_factory.mktemp("outside")  # not in the course: where the links of odd submissions point
    tripwire = Tripwire(outside / "tripwire")
    ctx = context(course / "assignments" / ASSIGNMENT / NOTEBOOK, course / "solutions" / ASSIGNMENT / NOTEBOOK,
                  REPO / "assignments" / "01_pytorch_basics" / "pytorch_basics.ipynb",
                  REPO / "solutions" / "01_pytorch_basics" / "pytorch_basics.ipynb", outside, Path(tripwire.path))
    from autograder.corpus import CASES_BY_NAME

    students = {case.student_id: case for case in CASES}
    for student, case in [(VICTIM, CASES_BY_NAME["solution"])] + list(students.items()):
        folder = course / "submitted" / student / ASSIGNMENT
        place_case(case, ctx, folder)
        (folder / "timestamp.txt").write_text(DEMO_TIMESTAMP)
    before = _submitted_files(course)
    try:
        summary = grade_class(course, ASSIGNMENT, workers=2)
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", ASSIGNMENT, "--force"],
                              cwd=course, capture_output=True, text=True, env=tool_env(), timeout=1800)
        feedback = (proc.returncode, proc.stdout + proc.stderr)
    finally:
        tripwire.stop()
    return course, before, summary, tripwire, feedback


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_is_graded_as_expected(graded, case):
    course, *_ = graded
    path = course / "autograded" / case.student_id / ASSIGNMENT / NOTEBOOK
    assert path.exists(), f"{case.name} ({case.what}) was not graded"
    assert scores(course)[case.student_id] == pytest.approx(case.score), f"{case.name}: {case.what}"
    nb = nbformat.read(str(path), as_version=4)
    text = _text(nb)
    for phrase in case.feedback:
        assert phrase in text, f"{case.name}: feedback lacks {phrase!r}"
    tampering = nb.metadata.get("autograder", {}).get("tampering", [])
    assert bool(tampering) == case.tampering, tampering
    if case.tampering:
        assert "earns no points" in text


def test_summary_lists_every_submission_note_and_tampering(graded):
    course, _, summary, *_ = graded
    by = {r.student: r for r in summary.results}
    assert sorted(by) == sorted([VICTIM] + [case.student_id for case in CASES])
    assert all(r.status == GRADED for r in summary.results), [(r.student, r.error) for r in summary.results if r.error]
    assert {s for s, r in by.items() if r.tampering} == {case.student_id for case in CASES if case.tampering}
    for case in CASES:
        nb = nbformat.read(str(course / "autograded" / case.student_id / ASSIGNMENT / NOTEBOOK), as_version=4)
        assert by[case.student_id].notes == nb.metadata.get("autograder", {}).get("notes", []), case.name
        assert by[case.student_id].score == pytest.approx(case.score), case.name
    if "os_exit" in by:
        assert "The kernel died" in " ".join(by["os_exit"].notes)
    written = (course / f"grading_summary_{ASSIGNMENT}.csv").read_text()
    assert all(case.student_id in written for case in CASES)


def test_links_in_submissions_are_never_followed(graded):
    *_, tripwire, _ = graded
    assert tripwire.opened == 0, "something opened the target of a submitted link"


def test_feedback_is_generated_for_the_class(graded):
    course, *_, (returncode, output) = graded
    assert returncode == 0, output[-3000:]
    for case in CASES:
        assert list((course / "feedback" / case.student_id / ASSIGNMENT).glob("*.html")) == [
            course / "feedback" / case.student_id / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")], case.name


def test_submitted_files_are_never_modified(graded):
    course, before, *_ = graded
    assert _submitted_files(course) == before


def test_victim_keeps_work_and_score(graded):
    course, *_ = graded
    assert scores(course)[VICTIM] == FULL
    nb = nbformat.read(str(course / "autograded" / VICTIM / ASSIGNMENT / NOTEBOOK), as_version=4)
    assert nb.cells, "the victim's graded notebook was overwritten"
    assert not nb.metadata.get("autograder", {}).get("tampering")


def test_gradebook_is_intact(graded):
    course, *_ = graded
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(scores(course)) == len(CASES) + 1


def test_regrading_is_idempotent_and_leaves_no_stale_score(graded):
    course, *_ = graded
    student = "system_exit"  # full marks, with a cell error on the way
    if not any(case.name == student for case in CASES):
        pytest.skip("system_exit is not among CORPUS_CASES")
    first = nbformat.read(str(course / "autograded" / student / ASSIGNMENT / NOTEBOOK), as_version=4)
    nbgrader(["autograde", ASSIGNMENT, "--force", f"--student={student}"], course)
    again = nbformat.read(str(course / "autograded" / student / ASSIGNMENT / NOTEBOOK), as_version=4)
    assert scores(course)[student] == FULL
    grades = lambda nb: [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "execute_result"
                         and c.metadata.get("nbgrader", {}).get("grade")]  # noqa: E731
    assert [g["data"] for g in grades(again)] == [g["data"] for g in grades(first)]
    # The same student hands in a broken file: the re-grade must not keep the old full score.
    (course / "submitted" / student / ASSIGNMENT / NOTEBOOK).write_bytes(b"")
    nbgrader(["autograde", ASSIGNMENT, "--force", f"--student={student}"], course, check=False)
    assert scores(course)[student] == 0


# -- attacks on what lies past the sandbox: asserted on the target itself, not only on the score ------------
def _outputs(course: Path, student: str) -> str:
    """What the student's cells printed (not their sources, which name what they look for)."""
    nb = nbformat.read(str(course / "autograded" / student / ASSIGNMENT / NOTEBOOK), as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in nb.cells:
        cell.source = ""
    return _text(nb)


def test_the_gradebook_was_not_rewritten_from_student_code(graded):
    course, *_ = graded
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT COUNT(*) FROM grade WHERE extra_credit > 0").fetchone()[0] == 0
    text = _outputs(course, "sqlite_gradebook")
    assert "gradebook:" in text and "GRADEBOOK CHANGED" not in text


def test_the_solutions_were_not_read_through_the_course_package(graded):
    course, *_ = graded
    text = _outputs(course, "solutions_through_course")
    assert "solutions:" in text and "SOLUTIONS READ" not in text


def test_the_course_package_was_not_changed(graded):
    import course as course_package

    source = Path(course_package.__file__).read_text()
    assert "POISONED" not in source
    text = _outputs(graded[0], "poison_course_package")
    assert "course:" in text and "COURSE POISONED" not in text


def test_a_shell_without_audit_events_reads_no_hidden_check(graded):
    from autograder.corpus import STOLEN_MARK

    course, *_ = graded
    student = "shell_steals_checks"
    for folder in (course / "autograded" / student, course / "feedback" / student):
        for path in folder.rglob("*") if folder.exists() else ():
            assert path.name != "stolen_checks.txt", f"{path}: a file the kernel wrote reached the grader's folders"
    text = _outputs(course, student)
    assert "No such file or directory" in text
    shown = [line for line in text.splitlines() if STOLEN_MARK in line]
    assert not shown, shown


def test_nothing_of_the_class_outlives_its_grading(graded):
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "autograder-kernel-" in cmdline or "stolen_checks" in cmdline:
            left.append(cmdline[:200])
    assert not left, left
