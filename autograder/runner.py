"""Run an assignment's hidden checks on a notebook, in a fresh process.

The student's kernel is never trusted: this module extracts the notebook's setup
and solution cells, starts ``python -m pytest`` with :mod:`autograder.plugin` in
a new process and a scratch working folder, and turns the JSON it writes into a
:class:`Report` with a score per task.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignments import Assignment
from autograder.notebook import dump_cells, gradable_code

# One check function counts once, whatever its parametrization (devices, dtypes):
# it passes only if every case passes, so a CPU-only and a GPU grader agree on
# scores unless a mistake only shows on the GPU.


@dataclass
class CheckResult:
    function: str
    passed: bool
    message: str = ""  # the first failing case's message


@dataclass
class TaskResult:
    task: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return sum(c.passed for c in self.checks) / len(self.checks) if self.checks else 0.0

    def score(self, points: float) -> float:
        return round(points * self.fraction, 2)


@dataclass
class Report:
    tasks: dict[str, TaskResult]
    cell_errors: list[dict]
    problem: str | None = None  # the whole run failed (time-out, crash): every task scores 0

    def task(self, name: str) -> TaskResult:
        return self.tasks.get(name, TaskResult(name))


def _build_report(data: dict) -> Report:
    tasks: dict[str, TaskResult] = {}
    by_function: dict[tuple[str, str], CheckResult] = {}
    for rec in data["records"]:
        key = (rec["task"], rec["function"])
        result = by_function.get(key)
        if result is None:
            result = by_function[key] = CheckResult(rec["function"], True)
            tasks.setdefault(rec["task"], TaskResult(rec["task"])).checks.append(result)
        if rec["outcome"] != "passed" and result.passed:
            result.passed = False
            case = rec["id"][len(rec["function"]):]
            result.message = (f"[{case.strip('[]')}] " if case else "") + rec["message"]
    return Report(tasks, data.get("cell_errors", []))


class PendingChecks:
    """A checking process that runs while something else happens (nbgrader executing the notebook)."""

    def __init__(self, nb, assignment: Assignment, *, timeout: float, check_timeout: float, python: str | None):
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-")
        tmp = Path(self._tmp.name)
        cells, self._report, ini = tmp / "cells.json", tmp / "report.json", tmp / "pytest.ini"
        dump_cells(gradable_code(nb), cells)
        ini.write_text("[pytest]\n")
        work = tmp / "work"
        work.mkdir()
        # No third-party pytest plugins: the checks need none, and loading them costs a second per submission.
        env = dict(os.environ, MPLBACKEND="Agg", COURSE_PROGRESS="0", PYTHONDONTWRITEBYTECODE="1",
                   PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        cmd = [
            python or sys.executable, "-m", "pytest", str(assignment.checks_path),
            "-c", str(ini), "--rootdir", str(tmp), "-p", "autograder.plugin",
            "-p", "no:cacheprovider", "-q", "--no-header", "-o", "console_output_style=classic",
            f"--student-cells={cells}", f"--report={self._report}", f"--check-timeout={check_timeout}",
        ]
        self.timeout = timeout
        self.started = time.perf_counter()
        self._proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)

    def _kill(self) -> None:
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the whole group: student code may have spawned more
            except ProcessLookupError:
                pass
        self._proc.wait()

    def result(self) -> Report:
        """Wait for the checks (up to the time left of ``timeout``) and read their report."""
        try:
            left = max(0.0, self.timeout - (time.perf_counter() - self.started))
            try:
                output, _ = self._proc.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                self._kill()
                return Report({}, [], problem=f"the checks did not finish within {self.timeout:g} s")
            tail = "\n".join(output.strip().splitlines()[-15:])
            if not self._report.exists():
                return Report({}, [], problem=f"the checking process stopped unexpectedly "
                                              f"(exit code {self._proc.returncode}):\n{tail}")
            data = json.loads(self._report.read_text())
            if data["exitstatus"] not in (0, 1):  # 0: all passed, 1: some failed; else a usage/collection error
                return Report({}, data.get("cell_errors", []),
                              problem=f"the checks could not run (pytest exit {data['exitstatus']}):\n{tail}")
            return _build_report(data)
        finally:
            self.close()

    def close(self) -> None:
        self._kill()
        self._tmp.cleanup()

    def __del__(self):  # never leave a checking process behind (e.g. when nbgrader's Execute fails)
        try:
            self.close()
        except Exception:
            pass


def start_checks(nb, assignment: Assignment, *, timeout: float = 600.0, check_timeout: float = 60.0,
                 python: str | None = None) -> PendingChecks:
    """Start every check of ``assignment`` on notebook ``nb`` in a fresh process; collect with .result()."""
    return PendingChecks(nb, assignment, timeout=timeout, check_timeout=check_timeout, python=python)


def run_checks(nb, assignment: Assignment, *, timeout: float = 600.0, check_timeout: float = 60.0,
               python: str | None = None) -> Report:
    """Run every check of ``assignment`` on notebook ``nb`` in a fresh process and wait for the report."""
    return start_checks(nb, assignment, timeout=timeout, check_timeout=check_timeout, python=python).result()


def format_task(report: Report, task: str, points: float) -> tuple[str, float]:
    """The feedback text for one graded test cell and the points it earns."""
    if report.problem:
        return f"Not graded: {report.problem}\nScore: 0 / {points:g}", 0.0
    result = report.task(task)
    if not result.checks:
        return f"No checks were found for task '{task}' (an instructor error).\nScore: 0 / {points:g}", 0.0
    score = result.score(points)
    passed = sum(c.passed for c in result.checks)
    lines = [f"Task '{task}': {passed} of {len(result.checks)} checks passed. Score: {score:g} / {points:g}"]
    for c in result.checks:
        mark = "PASS" if c.passed else "FAIL"
        lines.append(f"  {mark} {c.function.removeprefix('test_').replace('_', ' ')}")
        if not c.passed:
            lines.extend("       " + line for line in c.message.splitlines())
    if report.cell_errors and passed < len(result.checks):
        lines.append("  Note: some of your cells raised errors when run on their own:")
        lines.extend(f"    {e['cell']}: {e['error']}" for e in report.cell_errors)
    return "\n".join(lines), score
