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

Each assignment is graded twice per round: with a fresh checking process (plain nbgrader, or the
first submission a worker grades) and with a warm check server (``AUTOGRADER_CHECK_SERVER``, what
every later submission of ``odl-grade autograde`` gets: see autograder/checkserver.py). The floor has no
checks; it is graded with the server running too.
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
from autograder.checkserver import ENV as SERVER_ENV, CheckServer  # noqa: E402
from autograder.demo import place, prepare_course  # noqa: E402
from autograder.execute import GuardedExecute  # noqa: E402
from autograder.preprocessors import checked_cells  # noqa: E402
from autograder.release import NBGRADER_ENTRIES as ENTRIES, generate, nbgrader  # noqa: E402
from autograder.runner import run_checks  # noqa: E402
from autograder.submissions import make_submission  # noqa: E402

FLOOR = "floor"
SERVED = " + check server"


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


def with_server(address: str | None, fn):
    """Run ``fn`` with AUTOGRADER_CHECK_SERVER set to ``address`` (None: unset) in this process and its children."""
    before = os.environ.pop(SERVER_ENV, None)
    if address:
        os.environ[SERVER_ENV] = address
    try:
        return fn()
    finally:
        os.environ.pop(SERVER_ENV, None)
        if before is not None:
            os.environ[SERVER_ENV] = before


def execute(path: Path) -> None:
    """Run the notebook as nbgrader's autograde does: NBGRADER_EXECUTION=autograde (course.grading() is true),
    without the cells GuardedExecute skips (tagged `demo`, and test cells the hidden checks grade)."""
    nb = nbformat.read(str(path), as_version=4)
    skip = set(GuardedExecute.class_traits()["skip_tags"].default())
    checked = {id(c) for c in checked_cells(nb)}
    nb.cells = [c for c in nb.cells if not set(c.metadata.get("tags", [])) & skip and id(c) not in checked]
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
    server = CheckServer()
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
        address = server.start().wait_ready()
        if not address:
            raise SystemExit(f"could not start a check server: {server.error}")
        rows = [FLOOR] + [name for a in ids for name in (a, a + SERVED)]
        totals = {row: [] for row in rows}
        parts = {row: {"kernel": [], "checks": []} for row in rows}
        start_only = {entry: [] for entry in ENTRIES}
        for r in range(args.repeats):  # interleave assignments so machine load affects them alike
            for entry in ENTRIES:  # fails after start-up: nothing to grade
                start_only[entry].append(timed(lambda: nbgrader(
                    ["autograde", FLOOR, "--student", "nobody"], course, check=False, entry=entry)))
            for row in rows:
                a = row.removesuffix(SERVED)
                nb = subs[a]
                served = address if row.endswith(SERVED) or a == FLOOR else None
                student = f"s{r}{'w' if row.endswith(SERVED) else ''}"
                path = place(course, student, a, nb, f"{FLOOR}.ipynb" if a == FLOOR else None)
                totals[row].append(with_server(served, lambda: timed(lambda: nbgrader(
                    ["autograde", a, "--student", student, "--force"], course, entry=args.entry))))
                if not row.endswith(SERVED):  # the kernel does not depend on the server
                    parts[row]["kernel"].append(timed(lambda: execute(path)))
                if a in ASSIGNMENTS:
                    parts[row]["checks"].append(with_server(served, lambda: timed(
                        lambda: run_checks(nb, ASSIGNMENTS[a]))))
        floor = statistics.median(totals[FLOOR])
        print(f"\n{'submission':<34}{'median s':>9}{'min':>7}{'max':>7}{'x floor':>9}   "
              f"{'kernel run':>10}{'checks':>8}   target <= 1.5x floor and <= 6 s")
        for row in rows:
            med = statistics.median(totals[row])
            kernel = f"{statistics.median(parts[row]['kernel']):10.1f}" if parts[row]["kernel"] else f"{'':>10}"
            checks = f"{statistics.median(parts[row]['checks']):8.1f}" if parts[row]["checks"] else f"{'-':>8}"
            verdict = "" if row == FLOOR else ("ok" if med <= 1.5 * floor and med <= 6 else "MISSED")
            print(f"{row:<34}{med:>9.1f}{min(totals[row]):>7.1f}{max(totals[row]):>7.1f}{med / floor:>9.2f}   "
                  f"{kernel}{checks}   {verdict}")
        for entry, times in start_only.items():
            print(f"{'start only, ' + entry:<34}{statistics.median(times):>9.1f}   (autograde with no submission; "
                  f"-m {ENTRIES[entry]})")
    finally:
        server.stop()
        shutil.rmtree(course, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
