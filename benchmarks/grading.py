"""Grading latency: the time to autograde ONE submission through nbgrader, per assignment, against a floor.

    python benchmarks/grading.py [--repeats 5] [--entry course|nbgrader]

The floor is the same pipeline on a bare notebook whose only cell imports torch: nbgrader's start,
the kernel's start and the import, and the database. Target (issue: benchmarks): each assignment
<= 1.5x the floor and <= 6 s median. The breakdown times the parts on their own: nbgrader's start
(`nbgrader autograde` of an assignment nobody submitted), executing the notebook in a kernel
(nbclient), and the out-of-kernel checks (autograder.runner.run_checks). The checks start before the
kernel does and run beside it, so the total is less than the sum of the parts.

``--entry course`` (default) runs nbgrader as ``odl-grade autograde`` does, ``python -m
autograder.gradebook autograde ...`` (nbgrader's start without rfc3987_syntax's import); ``--entry
nbgrader`` runs plain ``python -m nbgrader``. Both entries' start-up is printed either way.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.assignments import ASSIGNMENTS  # noqa: E402
from autograder.demo import place, prepare_course  # noqa: E402
from autograder.release import NBGRADER_ENTRIES as ENTRIES, generate, nbgrader  # noqa: E402
from autograder.runner import run_checks  # noqa: E402
from autograder.submissions import make_submission  # noqa: E402

FLOOR = "floor"


def add_floor_assignment(course: Path) -> None:
    meta = {"nbgrader": {"grade": False, "locked": True, "solution": False, "grade_id": "setup", "schema_version": 3}}
    nb = new_notebook(cells=[new_code_cell("import torch", metadata=meta)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    (course / "solutions" / FLOOR).mkdir(parents=True)
    nbformat.write(nb, str(course / "solutions" / FLOOR / f"{FLOOR}.ipynb"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def execute(path: Path) -> None:
    """Run the notebook as nbgrader's autograde does: NBGRADER_EXECUTION=autograde (course.grading() is true)."""
    nb = nbformat.read(str(path), as_version=4)
    before = os.environ.get("NBGRADER_EXECUTION")
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # the kernel inherits it
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if before is None:
            del os.environ["NBGRADER_EXECUTION"]
        else:
            os.environ["NBGRADER_EXECUTION"] = before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--entry", choices=sorted(ENTRIES), default="course",
                        help="how nbgrader is started (default: as odl-grade autograde does)")
    args = parser.parse_args()
    os.environ.setdefault("COURSE_OFFLINE", "1")
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    course = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        ids = prepare_course(course)
        add_floor_assignment(course)
        generate(course, ids + [FLOOR])
        floor_nb = nbformat.read(str(course / "assignments" / FLOOR / f"{FLOOR}.ipynb"), as_version=4)
        subs = {FLOOR: floor_nb}
        for a in ids:
            nbname = ASSIGNMENTS[a].notebook
            subs[a] = make_submission(course / "assignments" / a / nbname, course / "solutions" / a / nbname)
        print(f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}, {args.repeats} repeats, "
              f"one submission per nbgrader call (the instructor's solution), nbgrader started with "
              f"python -m {ENTRIES[args.entry]}")
        totals = {a: [] for a in subs}
        parts = {a: {"kernel": [], "checks": []} for a in subs}
        start_only = {entry: [] for entry in ENTRIES}
        for r in range(args.repeats):  # interleave assignments so machine load affects them alike
            for entry in ENTRIES:  # fails after start-up: nothing to grade
                start_only[entry].append(timed(lambda: nbgrader(
                    ["autograde", FLOOR, "--student", "nobody"], course, check=False, entry=entry)))
            for a, nb in subs.items():
                student = f"s{r}"
                path = place(course, student, a, nb, f"{FLOOR}.ipynb" if a == FLOOR else None)
                totals[a].append(timed(lambda: nbgrader(
                    ["autograde", a, "--student", student, "--force"], course, entry=args.entry)))
                parts[a]["kernel"].append(timed(lambda: execute(path)))
                if a in ASSIGNMENTS:
                    parts[a]["checks"].append(timed(lambda: run_checks(nb, ASSIGNMENTS[a])))
        floor = statistics.median(totals[FLOOR])
        print(f"\n{'submission':<22}{'median s':>9}{'min':>7}{'max':>7}{'x floor':>9}   "
              f"{'kernel run':>10}{'checks':>8}   target <= 1.5x floor and <= 6 s")
        for a in subs:
            med = statistics.median(totals[a])
            kernel = statistics.median(parts[a]["kernel"])
            checks = f"{statistics.median(parts[a]['checks']):8.1f}" if parts[a]["checks"] else f"{'-':>8}"
            verdict = "" if a == FLOOR else ("ok" if med <= 1.5 * floor and med <= 6 else "MISSED")
            print(f"{a:<22}{med:>9.1f}{min(totals[a]):>7.1f}{max(totals[a]):>7.1f}{med / floor:>9.2f}   "
                  f"{kernel:>10.1f}{checks}   {verdict}")
        for entry, times in start_only.items():
            print(f"{'start only, ' + entry:<22}{statistics.median(times):>9.1f}   (autograde with no submission; "
                  f"-m {ENTRIES[entry]})")
    finally:
        shutil.rmtree(course, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
