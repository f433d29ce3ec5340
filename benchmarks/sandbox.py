"""What the sandbox costs: grading latency and class throughput with bubblewrap vs without, side by side.

    python benchmarks/sandbox.py [--repeats 3] [--class-size 6] [--workers 2]

Target (issue: OS-level isolation): the sandbox costs <= 10% of a submission's grading time. Rows:

* one submission (the instructor's solution) through ``nbgrader autograde``, as ``odl-grade autograde``
  starts it, per assignment: with a fresh checking process, and with a warm check server (what
  every submission after a worker's first gets); each in the sandbox and with
  ``AUTOGRADER_UNSAFE_NO_SANDBOX=1``, interleaved so machine load affects both alike;
* a class of N copies of the solution of assignment 1 through ``odl-grade autograde``'s
  ``grade_class`` with W workers, in the sandbox and without.

The ratio column is sandboxed / unsandboxed median.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder import isolation  # noqa: E402
from autograder.assignments import ASSIGNMENTS  # noqa: E402
from autograder.checkserver import ENV as SERVER_ENV, CheckServer  # noqa: E402
from autograder.demo import place, prepare_course  # noqa: E402
from autograder.parallel import grade_class  # noqa: E402
from autograder.release import generate, nbgrader, write_course_config  # noqa: E402
from autograder.submissions import make_submission  # noqa: E402

MODES = ("sandbox", "no sandbox")


class mode:
    """Environment for one mode (and, optionally, a check server address) in this process and its children."""

    def __init__(self, name: str, server: str | None = None):
        self.name, self.server = name, server

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in (isolation.UNSAFE_ENV, SERVER_ENV)}
        os.environ.pop(isolation.UNSAFE_ENV, None)
        os.environ.pop(SERVER_ENV, None)
        if self.name == "no sandbox":
            os.environ[isolation.UNSAFE_ENV] = "1"
        if self.server:
            os.environ[SERVER_ENV] = self.server
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ok, why = isolation.available()
    if not ok:
        raise SystemExit(f"no sandbox here: {why}")
    os.environ.setdefault("COURSE_OFFLINE", "1")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    servers: dict[str, CheckServer] = {}
    try:
        course = scratch / "course"
        course.mkdir()
        ids = prepare_course(course)
        generate(course, ids)
        subs = {a: make_submission(course / "assignments" / a / ASSIGNMENTS[a].notebook,
                                   course / "solutions" / a / ASSIGNMENTS[a].notebook) for a in ids}
        for name in MODES:  # a warm server of each kind (a sandboxed one, and one without)
            with mode(name):
                servers[name] = CheckServer().start()
                if not servers[name].wait_ready():
                    raise SystemExit(f"could not start a check server ({name}): {servers[name].error}")
        print(f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.2f}, {args.repeats} repeats")
        rows = [(a, served) for a in ids for served in (False, True)]
        times = {(a, served, name): [] for a, served in rows for name in MODES}
        for r in range(args.repeats):
            for a, served in rows:
                for name in (MODES if r % 2 == 0 else MODES[::-1]):
                    student = f"s{r}{'w' if served else ''}{'n' if name != 'sandbox' else ''}"
                    place(course, student, a, subs[a])
                    with mode(name, servers[name].address if served else None):
                        times[(a, served, name)].append(timed(lambda: nbgrader(
                            ["autograde", a, "--student", student, "--force"], course)))
        print(f"\n{'one submission':<44}{'sandbox s':>10}{'without s':>10}{'ratio':>7}   target <= 1.10")
        for a, served in rows:
            on, off = (statistics.median(times[(a, served, name)]) for name in MODES)
            label = f"{a}, {'warm check server' if served else 'fresh checking process'}"
            print(f"{label:<44}{on:>10.2f}{off:>10.2f}{on / off:>7.2f}   {'ok' if on / off <= 1.10 else 'MISSED'}")

        a = ids[0]
        template = scratch / "class"
        template.mkdir()
        prepare_course(template)
        generate(template, [a])
        nb = make_submission(template / "assignments" / a / ASSIGNMENTS[a].notebook,
                             template / "solutions" / a / ASSIGNMENTS[a].notebook)
        for i in range(args.class_size):
            place(template, f"c{i:02d}", a, nb)
        walls = {name: [] for name in MODES}
        for r in range(max(1, args.repeats // 2)):
            for name in (MODES if r % 2 == 0 else MODES[::-1]):
                run = scratch / f"class-{r}-{name.replace(' ', '-')}"
                shutil.copytree(template, run)
                write_course_config(run)
                with mode(name):
                    summary = grade_class(run, a, workers=args.workers)
                full = sum(x.score == x.max_score > 0 for x in summary.results)
                if full != args.class_size:
                    raise SystemExit(f"{name}: only {full} of {args.class_size} graded with full marks")
                walls[name].append(summary.seconds)
        on, off = (statistics.median(walls[name]) for name in MODES)
        label = f"class of {args.class_size} ({a}), {args.workers} workers"
        print(f"{label:<44}{on:>10.2f}{off:>10.2f}{on / off:>7.2f}   {'ok' if on / off <= 1.10 else 'MISSED'}")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
