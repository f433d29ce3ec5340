"""The instructor pipeline, end to end, in a scratch course folder (default .work/demo).

1. release every assignment from solutions/ with nbgrader (gradebook: SQLite in the folder);
2. place four demo submissions per assignment: ``solution`` (the instructor's answers),
   ``untouched`` (the release as handed out), ``mistakes`` (typical mistakes) and ``tamperer``
   (no answers, but a cell that makes every test cell a no-op in the kernel: full marks under
   stock nbgrader, 0 here);
3. ``nbgrader autograde``, ``nbgrader generate_feedback`` and ``nbgrader export``;
4. print the score table, the points each student lost per task, and where each feedback file is.
"""
from __future__ import annotations

import csv
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.assignments import ASSIGNMENTS
from autograder.notebook import read_notebook
from autograder.release import REPO, SOLUTIONS, assignment_ids, generate, nbgrader, write_course_config
from autograder.submissions import MISTAKES, make_submission, with_kernel_patch, write

DEFAULT_WORKDIR = REPO / ".work" / "demo"
DEMO_TIMESTAMP = "2026-01-15 12:00:00.000000 UTC"


@dataclass(frozen=True)
class DemoStudent:
    id: str
    description: str


STUDENTS = [
    DemoStudent("solution", "the instructor's answers"),
    DemoStudent("untouched", "the release, unchanged"),
    DemoStudent("mistakes", "typical mistakes"),
    DemoStudent("tamperer", "the release plus a cell that patches the kernel so test cells do nothing"),
]


def demo_mistakes(assignment_id: str):
    """The mistakes the demo's 'mistakes' student makes: one per task that has one, the first listed."""
    chosen, seen = [], set()
    for mistake in MISTAKES.get(assignment_id, []):
        if mistake.task not in seen:
            chosen.append(mistake)
            seen.add(mistake.task)
    return chosen


def prepare_course(workdir: Path) -> list[str]:
    """A fresh course folder with the solutions and the repository's nbgrader config; returns the assignment ids."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    write_course_config(workdir)
    shutil.copytree(SOLUTIONS, workdir / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return assignment_ids(workdir / "solutions")


def place_submissions(workdir: Path, assignment_id: str) -> None:
    notebook = ASSIGNMENTS[assignment_id].notebook
    release = workdir / "assignments" / assignment_id / notebook
    solution = workdir / "solutions" / assignment_id / notebook
    for student in STUDENTS:
        if student.id == "untouched":
            nb = read_notebook(release)
        elif student.id == "tamperer":
            nb = with_kernel_patch(release)
        else:
            nb = make_submission(release, solution, demo_mistakes(assignment_id) if student.id == "mistakes" else [])
        place(workdir, student.id, assignment_id, nb)


def task_losses(workdir: Path, assignment_id: str, student_id: str) -> list[str]:
    """'task: earned/max' for every auto-graded cell that lost points (cells graded by hand are not scored yet)."""
    from nbgrader.api import Gradebook

    lost = []
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}", "odl-pytorch") as gb:
        submission = gb.find_submission(assignment_id, student_id)
        for nb in submission.notebooks:
            for grade in nb.grades:
                if grade.auto_score is None and grade.manual_score is None:
                    continue  # an answer to grade by hand, not graded yet (nbgrader's score reads 0 until then)
                score = grade.score
                if score < grade.max_score:
                    lost.append(f"{grade.name.removeprefix('test_')} {score:g}/{grade.max_score:g}")
    return lost


def place(workdir: Path, student_id: str, assignment_id: str, nb, notebook: str | None = None) -> Path:
    """Put notebook ``nb`` where nbgrader collects a student's submission (file name from the registry by default)."""
    folder = workdir / "submitted" / student_id / assignment_id
    path = folder / (notebook or ASSIGNMENTS[assignment_id].notebook)
    write(nb, path)
    (folder / "timestamp.txt").write_text(DEMO_TIMESTAMP)
    return path


def grade(workdir: Path, ids: list[str]) -> None:
    """nbgrader autograde and generate_feedback for every submission of ``ids``."""
    for assignment_id in ids:
        print(f"Autograding {assignment_id} ...", flush=True)
        nbgrader(["autograde", assignment_id, "--force"], workdir)
        nbgrader(["generate_feedback", assignment_id, "--force"], workdir)


def export(workdir: Path) -> list[dict]:
    """nbgrader export to grades.csv; returns its rows."""
    grades_csv = workdir / "grades.csv"
    nbgrader(["export", "--to", str(grades_csv)], workdir)
    return list(csv.DictReader(grades_csv.open()))


def run_demo(workdir: Path | None = None) -> int:
    workdir = (workdir or DEFAULT_WORKDIR).resolve()
    started = time.perf_counter()
    ids = prepare_course(workdir)
    print(f"Course folder: {workdir}")
    generate(workdir, ids)
    print(f"Released {', '.join(ids)} into {workdir / 'assignments'}")
    for assignment_id in ids:
        place_submissions(workdir, assignment_id)
    print(f"Submitted as students: {', '.join(f'{s.id} ({s.description})' for s in STUDENTS)}")
    grade(workdir, ids)
    rows = export(workdir)

    print(f"\nScores (exported to {workdir / 'grades.csv'}):")
    print(f"{'student':<12}{'assignment':<22}{'score':>8}{'max':>6}  lost points in")
    for row in sorted(rows, key=lambda r: (r["student_id"], r["assignment"])):
        lost = task_losses(workdir, row["assignment"], row["student_id"])
        print(f"{row['student_id']:<12}{row['assignment']:<22}{float(row['score']):>8g}{float(row['max_score']):>6g}"
              f"  {', '.join(lost) or '-'}")
    print("\nFeedback:")
    for path in sorted((workdir / "feedback").glob("*/*/*.html")):
        print(f"  {path}")
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")
    return 0
