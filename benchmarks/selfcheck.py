"""Self-check latency: `odl-grade check` on one notebook, as a learner runs it, before and after issue 16.

    python benchmarks/selfcheck.py [--repeats 3] [--assignment 02_optimizers]

Each figure is the wall time of one command from a fresh shell (`python -m autograder check ...`), median of
--repeats runs, on a student's notebook (the release filled with the instructor's answers) in a scratch folder
with its own cache and per-user server folder:

* before: what `odl-grade check` did until issue 16: import nbgrader's preprocessors and nbformat, read the
  notebook, run every check in a fresh checking process (the same runner and checks as now);
* check: `odl-grade check NOTEBOOK` now (no nbgrader import; a fresh checking process);
* --server, first: the first check with --server (it starts the per-user server and waits for it);
* --server: later checks, the server warm;
* --server --changed, one answer edited: the learner changed one answer cell (--edit, default the last
  graded task's: only that task runs again);
* --server --changed, nothing edited: every result from the cache.

Target (issue 16): <= 5 s for one notebook on 2 cores with --server --changed after an edit.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.assignments import ASSIGNMENTS  # noqa: E402
from autograder.submissions import answer_sources, fill, make_submission  # noqa: E402

BEFORE = """
import sys
from autograder.assignments import find_assignment
from autograder.notebook import read_notebook
from autograder.preprocessors import TEST_PREFIX, graded_test_cells
from autograder.runner import format_task, run_checks
nb = read_notebook(sys.argv[1])
assignment = find_assignment(sys.argv[1])
report = run_checks(nb, assignment)
for cell in graded_test_cells(nb):
    gid = cell.metadata.nbgrader.get("grade_id", "")
    if gid.startswith(TEST_PREFIX):
        print(format_task(report, gid[len(TEST_PREFIX):], float(cell.metadata.nbgrader["points"]))[0])
"""


def timed(cmd, env) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "Score:" not in done.stdout:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--assignment", default="02_optimizers")
    parser.add_argument("--edit", help="the answer cell (grade_id) to edit (default: the last graded task's)")
    args = parser.parse_args()
    assignment = ASSIGNMENTS[args.assignment]
    scratch = Path(tempfile.mkdtemp(prefix="odl-bench-", dir="/tmp"))
    run_dir = scratch / "run"
    run_dir.mkdir(mode=0o700)
    env = dict(os.environ, PYTHONPATH=str(REPO), COURSE_PROGRESS="0", MPLBACKEND="Agg",
               XDG_CACHE_HOME=str(scratch / "cache"), XDG_RUNTIME_DIR=str(run_dir), ODL_GRADE_SERVER_IDLE="60")
    env.pop("AUTOGRADER_CHECK_SERVER", None)
    release = REPO / "assignments" / assignment.id / assignment.notebook
    solution = REPO / "solutions" / assignment.id / assignment.notebook
    nb_path = scratch / assignment.notebook
    student = make_submission(release, solution, [])
    nbformat.write(student, str(nb_path))
    answers = answer_sources(solution_nb := nbformat.read(str(solution), as_version=4))
    parser_edit = args.edit or [t for t, _ in __import__("autograder.selfcheck", fromlist=["x"]).graded_tasks(
        student)][-1]
    last = parser_edit if parser_edit in answers else list(answers)[-1]
    check = [sys.executable, "-m", "autograder", "check", str(nb_path)]
    rows: dict[str, list[float]] = {}

    def record(label, seconds):
        rows.setdefault(label, []).append(seconds)
        print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)

    try:
        for r in range(args.repeats):
            print(f"round {r + 1}", file=sys.stderr)
            record("before (nbgrader import, fresh process)", timed([sys.executable, "-c", BEFORE, str(nb_path)], env))
            record("check (fresh process)", timed(check, env))
            shutil.rmtree(run_dir / "odl-grade", ignore_errors=True)  # a new server each round
            record("--server, first (starts the server)", timed([*check, "--server"], env))
            record("--server (warm)", timed([*check, "--server"], env))
            timed([*check, "--server", "--changed"], env)  # fills the cache
            edited = fill(nbformat.read(str(release), as_version=4), {**answers, last: answers[last] + f"\n# edited {r} {time.time()}\n"})
            nbformat.write(edited, str(nb_path))
            record("--server --changed, one answer edited", timed([*check, "--server", "--changed"], env))
            record("--server --changed, nothing edited", timed([*check, "--server", "--changed"], env))
            nbformat.write(student, str(nb_path))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    del solution_nb
    load = os.getloadavg()[0]
    print(f"odl-grade check on {assignment.id}/{assignment.notebook}, {args.repeats} runs each, "
          f"{os.cpu_count()} CPUs, load {load:.1f} at the end (the edited answer: {last})")
    print(f"{'command':48} {'median s':>9} {'min':>6} {'max':>6}")
    for label, values in rows.items():
        print(f"{label:48} {statistics.median(values):9.1f} {min(values):6.1f} {max(values):6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
