"""Grading a class in parallel: N submissions with 1 local worker against W workers, side by side.

    python benchmarks/parallel_grading.py [--submissions 8] [--workers 1,2] [--repeats 1] [--no-reference]

N copies of the instructor's solution of 01_pytorch_basics, under different student ids, are graded
by ``autograder.parallel.grade_class`` (one ``nbgrader autograde --student`` process per
submission, W at a time, SQLite gradebook in WAL mode) in a fresh copy of the course for every
run; runs are interleaved so machine load affects them alike. Rows:

* nbgrader alone: stock ``nbgrader autograde`` grading all N in one process, one after another;
* 1 worker: one submission at a time, free to use every CPU (one grading runs its kernel and its
  hidden checks at once, so it already keeps more than one core busy);
* 1 worker on 1 CPU: the same pinned to one CPU: the per-core baseline;
* W workers: each pinned to its own 1/W of the CPUs (the default), and unpinned (``pin=False``).

Target (issue 4): speed-up >= 0.8 * W on the cores available. Two speed-ups are printed: against
1 worker with every CPU (what an instructor gains over grading one at a time) and against 1 worker
on 1 CPU when W equals the CPU count (how grading scales per core). Every run must grade every
submission with full marks; the script says so when one does not.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.assignments import ASSIGNMENTS  # noqa: E402
from autograder.demo import place, prepare_course  # noqa: E402
from autograder.parallel import grade_class  # noqa: E402
from autograder.release import generate, nbgrader, write_course_config  # noqa: E402
from autograder.submissions import make_submission  # noqa: E402

A = "01_pytorch_basics"
REFERENCE = "nbgrader alone"


def make_class(course: Path, n: int) -> list[str]:
    prepare_course(course)
    generate(course, [A])
    notebook = ASSIGNMENTS[A].notebook
    nb = make_submission(course / "assignments" / A / notebook, course / "solutions" / A / notebook)
    students = [f"s{i:02d}" for i in range(1, n + 1)]
    for student in students:
        place(course, student, A, nb)
    return students


def fresh_copy(template: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(template, dst)
    write_course_config(dst)
    return dst


def children_cpu() -> float:
    """CPU seconds of every finished descendant (nbgrader, its kernels and check processes are waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_workers(template: Path, scratch: Path, workers: int, **options) -> tuple[float, float, list[float], int]:
    """(wall s, CPU s, per-submission s, submissions graded with full marks) for one run with ``workers``."""
    course = fresh_copy(template, scratch / f"w{workers}")
    cpu = children_cpu()
    summary = grade_class(course, A, workers=workers, **options)
    cpu = children_cpu() - cpu
    full = sum(r.status == "graded" and r.score == r.max_score > 0 for r in summary.results)
    return summary.seconds, cpu, [r.seconds for r in summary.results], full


def run_reference(template: Path, scratch: Path, students: list[str]) -> tuple[float, float, list[float], int]:
    from nbgrader.api import Gradebook

    course = fresh_copy(template, scratch / "reference")
    cpu = children_cpu()
    started = time.perf_counter()
    nbgrader(["autograde", A, "--force"], course)
    seconds = time.perf_counter() - started
    cpu = children_cpu() - cpu
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "odl-pytorch") as gb:
        full = sum(gb.find_submission(A, s).score == gb.find_submission(A, s).max_score > 0 for s in students)
    return seconds, cpu, [], full


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="comma-separated worker counts (default: 1 and the number of cores)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true", help="skip stock nbgrader's sequential run")
    args = parser.parse_args()
    counts = sorted({int(w) for w in args.workers.split(",")})
    if 1 not in counts:
        counts.insert(0, 1)  # the speed-up is against 1 worker
    os.environ.setdefault("COURSE_OFFLINE", "1")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    scratch = Path(tempfile.mkdtemp(prefix="parallel-grading-bench-"))
    try:
        template = scratch / "template"
        students = make_class(template, args.submissions)
        load_start = os.getloadavg()
        print(f"{os.cpu_count()} CPU cores, 1-min load at start {load_start[0]:.2f}; {args.submissions} submissions "
              f"(the solution of {A}), {args.repeats} repeat(s), runs interleaved", flush=True)
        cpus = sorted(os.sched_getaffinity(0))
        variants: list[tuple[str, int, dict]] = [("1 worker", 1, {}), ("1 worker on 1 CPU", 1, {"cpus": str(cpus[0])})]
        for w in counts:
            if w > 1:
                variants += [(f"{w} workers, pinned", w, {}), (f"{w} workers, unpinned", w, {"pin": False})]
        runs: dict[str, list[tuple[float, float, list[float], int]]] = {}
        for r in range(args.repeats):
            if not args.no_reference:
                runs.setdefault(REFERENCE, []).append(run_reference(template, scratch, students))
                print(f"  repeat {r + 1}: {REFERENCE:<24} {runs[REFERENCE][-1][0]:7.1f} s", flush=True)
            for name, w, options in variants:
                runs.setdefault(name, []).append(run_workers(template, scratch, w, **options))
                print(f"  repeat {r + 1}: {name:<24} {runs[name][-1][0]:7.1f} s (load {os.getloadavg()[0]:.2f})",
                      flush=True)
        median = {name: statistics.median(t for t, _, _, _ in results) for name, results in runs.items()}
        base, per_core = median["1 worker"], median["1 worker on 1 CPU"]
        n = args.submissions
        print(f"\n{'runner':<26}{'median s':>9}{'min':>7}{'max':>7}{'subs/min':>9}{'s/sub':>7}{'cores busy':>11}"
              f"{'speed-up':>9}{'per core':>9}   target speed-up >= 0.8 x W")
        for name, results in runs.items():
            walls = [t for t, _, _, _ in results]
            med = median[name]
            busy = statistics.median(cpu / t for t, cpu, _, _ in results)
            per_sub = [s for _, _, subs, _ in results for s in subs]
            per = f"{statistics.median(per_sub):7.1f}" if per_sub else f"{'-':>7}"
            line = (f"{name:<26}{med:>9.1f}{min(walls):>7.1f}{max(walls):>7.1f}{n / med * 60:>9.1f}{per}"
                    f"{busy:>11.2f}{base / med:>9.2f}")
            w = int(name.split()[0]) if name[0].isdigit() else 1
            if w > 1:
                scaled = per_core / med if w == len(cpus) else float("nan")
                line += f"{scaled:>9.2f}   {0.8 * w:.1f}: {'ok' if base / med >= 0.8 * w else 'MISSED'}"
                line += f" (per core: {'ok' if scaled >= 0.8 * w else 'MISSED'})" if w == len(cpus) else ""
            bad = [n - full for _, _, _, full in results if full != n]
            if bad:
                line += f"   ({sum(bad)} submission(s) not graded with full marks!)"
            print(line)
        print("s/sub: median seconds one submission's nbgrader process took (longer under contention); cores busy: "
              "CPU seconds of nbgrader, its kernels and check processes per wall second; speed-up: against 1 worker "
              "with every CPU; per core: W workers on W CPUs against 1 worker on 1 CPU")
        print(f"1-min load at end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
