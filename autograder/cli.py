"""Command line: ``odl-grade`` (or ``python -m autograder``).

    odl-grade check NOTEBOOK       run the hidden checks on a notebook, print the report (no gradebook)
    odl-grade release [ID ...]     regenerate assignments/ from solutions/ with nbgrader
    odl-grade demo                 the instructor pipeline end to end, in .work/demo
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_check(args) -> int:
    from autograder.assignments import find_assignment
    from autograder.notebook import NotebookError, read_notebook
    from autograder.preprocessors import TEST_PREFIX, graded_test_cells
    from autograder.runner import format_task, run_checks

    try:
        assignment = find_assignment(args.notebook, args.assignment)
        nb = read_notebook(args.notebook)
    except (KeyError, NotebookError) as exc:
        print(f"odl-grade check: {exc.args[0]}", file=sys.stderr)
        return 2
    report = run_checks(nb, assignment)
    total = earned = 0.0
    for cell in graded_test_cells(nb):
        grade_id = cell.metadata.nbgrader.get("grade_id", "")
        if not grade_id.startswith(TEST_PREFIX):
            continue
        points = float(cell.metadata.nbgrader["points"])
        text, score = format_task(report, grade_id[len(TEST_PREFIX):], points)
        print(text, end="\n\n")
        total += points
        earned += score
    print(f"Total: {earned:g} / {total:g} points")
    return 0


def cmd_release(args) -> int:
    from autograder.release import release

    for path in release(args.assignments or None):
        print(f"released {path}")
    return 0


def cmd_demo(args) -> int:
    from autograder.demo import run_demo

    return run_demo(Path(args.workdir) if args.workdir else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odl-grade", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="run the hidden checks on a notebook and print the report")
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment id (default: found from the notebook's file name)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("demo", help="release, submit, autograde, feedback and export in a scratch course")
    p.add_argument("--workdir", help="scratch course folder (default: .work/demo)")
    p.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
