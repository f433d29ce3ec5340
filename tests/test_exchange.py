"""The whole nbgrader loop through the course's exchange, with the real commands, for two students.

Instructor (in the course folder): odl-grade exchange init, nbgrader generate_assignment and
release_assignment, nbgrader collect, odl-grade autograde, nbgrader generate_feedback and
release_feedback. Students (each in a home folder of their own, their own nbgrader config and
cache; simulated on one Unix account, see autograder/exchange.py): nbgrader fetch_assignment,
edit, nbgrader submit, nbgrader fetch_feedback. alice answers everything correctly, bob makes one
typical mistake; the scores and each student's feedback (their own only) are checked.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.exchange import student_env
from autograder.notebook import read_notebook
from autograder.release import SOLUTIONS, nbgrader, tool_env, write_course_config
from autograder.submissions import MISTAKES, make_submission, write

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "02_optimizers", "optimizers.ipynb"


def as_student(home: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=home, capture_output=True, text=True,
                          timeout=600, env=student_env(home, tool_env()))
    if check and proc.returncode != 0:
        pytest.fail(f"student command nbgrader {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def odl_grade(course: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=course, capture_output=True, text=True,
                          timeout=900, env=tool_env())
    assert proc.returncode == 0, f"odl-grade {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def grades(course: Path, student: str) -> dict[str, tuple[float, float]]:
    """Autograded cell -> (score, max) for the student's submission (cells graded by hand left out)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "odl-pytorch") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades
                if g.auto_score is not None}


def first_score(html: str) -> tuple[float, float]:
    found = re.search(r"Score: ([0-9.]+) / ([0-9.]+)", html)
    assert found, "the feedback shows no score"
    return float(found.group(1)), float(found.group(2))


def test_release_fetch_submit_collect_autograde_feedback_for_two_students(tmp_path):
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    course.mkdir()
    write_course_config(course)
    shutil.copytree(SOLUTIONS / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    homes = {s: tmp_path / "students" / s for s in ("alice", "bob")}
    odl_grade(course, "exchange", "init", "--root", str(exchange), "--students", "alice,bob",
              "--students-dir", str(tmp_path / "students"))

    # instructor: generate (fills the gradebook) and release into the exchange
    nbgrader(["generate_assignment", ASSIGNMENT, "--force"], course)
    nbgrader(["release_assignment", ASSIGNMENT], course)
    assert (exchange / "odl-pytorch" / "outbound" / ASSIGNMENT / NOTEBOOK).is_file()

    # students: fetch, answer (alice right, bob with one typical mistake), fetch again (nothing overwritten), submit
    mistake = MISTAKES[ASSIGNMENT][0]
    for student, mistakes in (("alice", []), ("bob", [mistake])):
        assert "Fetched as: odl-pytorch " + ASSIGNMENT in as_student(homes[student], "fetch_assignment", ASSIGNMENT)
        work = homes[student] / ASSIGNMENT / NOTEBOOK
        write(make_submission(work, course / "solutions" / ASSIGNMENT / NOTEBOOK, mistakes), work)
        answered = work.read_bytes()
        again = as_student(homes[student], "fetch_assignment", ASSIGNMENT, check=False)
        assert "You already have a copy of the assignment" in again  # nbgrader refuses a second fetch
        as_student(homes[student], "fetch_assignment", ASSIGNMENT, "--replace")  # copies missing files only
        assert work.read_bytes() == answered, "fetching again overwrote the student's answers"
        assert "Submitted as: odl-pytorch " + ASSIGNMENT in as_student(homes[student], "submit", ASSIGNMENT)
    inbound = sorted(p.name.split("+")[0] for p in (exchange / "odl-pytorch" / "inbound").iterdir())
    assert inbound == ["alice", "bob"]

    # instructor: collect, autograde (the course's out-of-kernel checks, sandboxed), feedback
    nbgrader(["collect", ASSIGNMENT], course)
    for student in homes:
        assert (course / "submitted" / student / ASSIGNMENT / NOTEBOOK).is_file()
    table = odl_grade(course, "autograde", ASSIGNMENT, "--workers", "2")
    assert "2 of 2 graded, 0 failed" in table
    alice, bob = grades(course, "alice"), grades(course, "bob")
    assert alice and all(score == top for score, top in alice.values()), alice
    cell = f"test_{mistake.task}"
    assert bob[cell][0] < bob[cell][1], f"bob's mistake {mistake.name} cost nothing in {cell}"
    spared = set(bob) - {cell} - {f"test_{t}" for t in mistake.also}
    assert all(bob[c] == alice[c] for c in spared), bob
    nbgrader(["generate_feedback", ASSIGNMENT], course)
    nbgrader(["release_feedback", ASSIGNMENT], course)

    # students: each fetches feedback and gets their own, only theirs
    feedback = {}
    for student, home in homes.items():
        assert "Fetched feedback" in as_student(home, "fetch_feedback", ASSIGNMENT)
        [html] = list((home / ASSIGNMENT / "feedback").rglob("*.html"))
        feedback[student] = html.read_text()
    total = {s: (sum(v[0] for v in g.values()), sum(v[1] for v in g.values())) for s, g in
             (("alice", alice), ("bob", bob))}
    # The feedback's maximum also counts the written answers graded by hand (0 until an instructor grades them).
    manual = sum(c.metadata["nbgrader"].get("points", 0) for c in read_notebook(SOLUTIONS / ASSIGNMENT / NOTEBOOK).cells
                 if c.metadata.get("nbgrader", {}).get("solution") and c.metadata["nbgrader"].get("grade"))
    for student in homes:
        assert first_score(feedback[student]) == pytest.approx((total[student][0], total[student][1] + manual))
    assert mistake.feedback in feedback["bob"] and mistake.feedback not in feedback["alice"]
    assert total["bob"][0] < total["alice"][0]
    # the feedback files in the exchange are named by each submission's secret: one each, nothing else to fetch
    assert len(list((exchange / "odl-pytorch" / "feedback").iterdir())) == 2
    assert as_student(homes["alice"], "list", "--inbound").count("odl-pytorch") >= 1
    assert "bob" not in as_student(homes["alice"], "list", "--inbound")
