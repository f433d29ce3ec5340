"""Command line: ``odl-grade`` (or ``python -m autograder``).

    odl-grade check NOTEBOOK       run the hidden checks on a notebook, print the report (no gradebook);
                                   --server: keep a warm check server, --changed: only the changed tasks
    odl-grade release [ID ...]     regenerate the course's assignments/ from its solutions/ with nbgrader
                                   (refuses to replace a student's edits there; --force keeps a backup)
    odl-grade fetch ID             copy a released assignment into your working folder (work/ID); never
                                   overwrites a file
    odl-grade exchange init        create the course's nbgrader exchange (--root, --students a,b)
    odl-grade demo                 the instructor pipeline end to end, in .work/demo
    odl-grade autograde ID         autograde every submission of an assignment in parallel, print a summary
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder import isolation


def cmd_check(args) -> int:
    from autograder.assignments import find_assignment
    from autograder.notebook import NotebookError
    from autograder.selfcheck import check

    try:
        assignment = find_assignment(args.notebook, args.assignment)
        return check(args.notebook, assignment, server=args.server, changed=args.changed)
    except (KeyError, NotebookError) as exc:
        print(f"odl-grade check: {exc.args[0]}", file=sys.stderr)
        return 2


def cmd_release(args) -> int:
    from autograder.release import CourseError, NbgraderFailed, release

    try:
        paths = release(args.assignments or None, args.course_dir, force=args.force)
    except (CourseError, NbgraderFailed) as exc:
        print(f"odl-grade release: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"released {path}")
    return 0


def cmd_fetch(args) -> int:
    from autograder.release import CourseError, FetchError, fetch

    try:
        got = fetch(args.assignment, args.course_dir, args.into, replace=args.replace)
    except (CourseError, FetchError) as exc:
        print(f"odl-grade fetch: {exc}", file=sys.stderr)
        return 2
    for path in got.copied:
        print(f"fetched {path}")
    for path in got.kept:
        print(f"kept {path} as it is (yours; the release's copy is not written over it: --replace backs yours up "
              f"first)")
    for path in got.backups:
        print(f"your previous file is now {path}")
    print(f"work in {got.folder}")
    return 0


def cmd_exchange(args) -> int:
    from autograder.exchange import describe, init, parse_students
    from autograder.release import CourseError

    try:
        exchange = init(args.course_dir, args.root, parse_students(args.students), args.students_dir)
    except CourseError as exc:
        print(f"odl-grade exchange: {exc}", file=sys.stderr)
        return 2
    print(describe(exchange))
    return 0


def cmd_demo(args) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.workdir) if args.workdir else None)


def cmd_autograde(args) -> int:
    from autograder.parallel import DEFAULT_TIMEOUT, FAILED, GradingError, format_points, format_table, grade_class

    students = [s.strip() for s in args.students.split(",") if s.strip()] if args.students else None
    done = 0

    def progress(result) -> None:
        nonlocal done
        done += 1
        what = (f"{format_points(result.score)}/{format_points(result.max_score)}" if result.status != FAILED
                else result.error.splitlines()[0])
        print(f"[{done}] {result.student}: {result.status} ({what}) in {result.seconds:.1f} s", file=sys.stderr,
              flush=True)

    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    try:
        summary = grade_class(args.course, args.assignment, workers=args.workers, dask_address=args.dask,
                              db_url=args.db, timeout=timeout, students=students, on_result=progress,
                              cpus=args.cpus, pin=not args.no_pin, check_servers=not args.no_check_server)
    except GradingError as exc:
        print(f"odl-grade autograde: {exc}", file=sys.stderr)
        return 2
    print(format_table(summary))
    return 0 if summary.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odl-grade", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="run the hidden checks on a notebook and print the report")
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment id (default: found from the notebook's file name)")
    p.add_argument("--server", action="store_true",
                   help="use your own warm check server (started on first use, ends after 30 idle minutes): "
                        "seconds faster from the second check on")
    p.add_argument("--changed", action="store_true",
                   help="check only the tasks whose cells changed since the last check; the others' results "
                        "are the last check's")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("release", help="regenerate the course's assignments/ from its solutions/",
                       description="Regenerate the release (assignments/) of the course in the current folder "
                                   "(or --course-dir) from its sources (solutions/), with nbgrader "
                                   "generate_assignment and that course's nbgrader_config.py.")
    p.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    p.add_argument("--course-dir", default=".", help="the course folder, with nbgrader_config.py and solutions/ "
                                                     "(default: the current folder)")
    p.add_argument("--force", action="store_true",
                   help="replace a release folder even when it holds edited or added files (a student's work): "
                        "they are copied to .work/release-backups/<time>/ first")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("fetch", help="copy a released assignment into your working folder; never overwrites",
                       description="Copy the release of ASSIGNMENT (the course's assignments/ASSIGNMENT) into a "
                                   "working folder, by default work/ASSIGNMENT in the course folder. A file that "
                                   "is already there is kept as it is and reported; with --replace a file that "
                                   "differs from the release is renamed NAME.backup-TIME.ipynb first. (Students "
                                   "of a class with an exchange use nbgrader fetch_assignment, which never "
                                   "overwrites either.)")
    p.add_argument("assignment")
    p.add_argument("--course-dir", default=".", help="the course folder (default: the current folder)")
    p.add_argument("--into", metavar="DIR", help="the working folder (default: work/ASSIGNMENT)")
    p.add_argument("--replace", action="store_true",
                   help="put the release's files in place of yours, keeping yours as NAME.backup-TIME")
    p.set_defaults(func=cmd_fetch)
    p = sub.add_parser("exchange", help="the course's nbgrader exchange (release, submit, collect, feedback)")
    xsub = p.add_subparsers(dest="action", required=True)
    p = xsub.add_parser("init", help="create the exchange and record its root in the course's config",
                        description="Create the nbgrader exchange of the course (root 1777; the course's "
                                    "outbound 755, inbound 733, feedback 711) and write its root into "
                                    "nbgrader_exchange_config.py in the course folder, which nbgrader_config.py "
                                    "loads. --students adds simulated students (one Unix account, a home folder "
                                    "each) for trying the loop on one machine, and adds them to the gradebook.")
    p.add_argument("--course-dir", default=".", help="the course folder (default: the current folder)")
    p.add_argument("--root", help="the exchange root (default: the course's configured one, else nbgrader's "
                                  "/srv/nbgrader/exchange)")
    p.add_argument("--students", metavar="A,B,...", help="simulated students to create")
    p.add_argument("--students-dir", metavar="DIR", help="where their home folders go (default: .work/students)")
    p.set_defaults(func=cmd_exchange)
    p = sub.add_parser("demo", help="release, submit, autograde, feedback and export in a scratch course")
    p.add_argument("--workdir", help="scratch course folder (default: .work/demo)")
    p.set_defaults(func=cmd_demo)
    # listed here for --help; main() hands its arguments to autograder.checkserver before parsing
    sub.add_parser("check-server", add_help=False,
                   help="run a warm check server that forks checking processes (see AUTOGRADER_CHECK_SERVER)")
    p = sub.add_parser(
        "autograde", help="autograde every submission of an assignment in parallel and print a summary",
        description="Autograde every submission of ASSIGNMENT (one nbgrader process per student, W at a time, "
                    "or one task per student on a Dask cluster) and print a summary table; it is also written "
                    "to grading_summary_ASSIGNMENT.json and .csv in the course folder. Exit status: 0 when "
                    "every submission was graded, 1 when any failed, 2 for bad input.")
    p.add_argument("assignment")
    p.add_argument("--course", default=".", help="the course folder, with nbgrader_config.py and submitted/ "
                                                 "(default: the current folder)")
    p.add_argument("--workers", type=int, help="local grading processes at a time (default: one per CPU of --cpus)")
    p.add_argument("--cpus", metavar="LIST", help="CPUs the local workers share, e.g. 0-7 or 0,2,4 (default: every "
                                                  "CPU this process may use); each worker gets its own slice")
    p.add_argument("--no-pin", action="store_true", help="do not pin each worker to its own CPUs (by default "
                                                         "nbgrader, kernel and checks of a worker run on its slice "
                                                         "only, with as many threads)")
    p.add_argument("--no-check-server", action="store_true",
                   help="start a fresh checking process for every submission (by default each local worker keeps "
                        "a warm check server that forks them, when there are more submissions than workers)")
    p.add_argument("--dask", metavar="ADDRESS", help="grade on a Dask cluster, e.g. tcp://scheduler:8786 (the "
                                                     "workers need the course folder at the same path and --db)")
    p.add_argument("--db", metavar="URL", help="the gradebook, any SQLAlchemy URL (default: the course's, "
                                               "sqlite gradebook.db); several machines: postgresql://user@host/db")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds per submission before it is killed and reported failed (default: 1800)")
    p.add_argument("--students", metavar="A,B,...", help="grade only these students (default: every submission)")
    p.set_defaults(func=cmd_autograde)
    for name in ("check", "demo", "autograde"):
        sub.choices[name].add_argument(
            "--unsafe-no-sandbox", action="store_true",
            help="run student code without the bubblewrap sandbox, behind the Python guard only: for trusted "
                 "settings such as checking your own work (also AUTOGRADER_UNSAFE_NO_SANDBOX=1)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--unsafe-no-sandbox" in argv and argv[:1] == ["check-server"]:
        argv.remove("--unsafe-no-sandbox")
        os.environ[isolation.UNSAFE_ENV] = "1"
    if argv[:1] == ["check-server"]:  # its own options and help
        from autograder.checkserver import main as check_server_main

        return check_server_main(argv[1:])
    args = parser.parse_args(argv)
    if getattr(args, "unsafe_no_sandbox", False):
        os.environ[isolation.UNSAFE_ENV] = "1"  # for this process and the nbgrader processes it starts
    if args.command in ("check", "demo", "autograde"):
        try:
            isolation.required()
        except isolation.SandboxUnavailable as exc:
            print(f"odl-grade {args.command}: {exc}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
