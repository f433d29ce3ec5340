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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder import isolation
from autograder.assignments import Assignment
from autograder.checkserver import (CheckServer, ServedProcess, configured_address, protected_folders, reachable,
                                    spool_folder)
from autograder.notebook import dump_cells, gradable_code
from autograder.scoring import Part, default_parts, earned_fraction, part_points

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
    declared: list[Part] | None = None  # the task's scoring model (autograder.scoring), None: one part per check

    @property
    def parts(self) -> list[Part]:
        return list(self.declared) if self.declared else default_parts([c.function for c in self.checks])

    @property
    def fraction(self) -> float:
        if not self.checks:
            return 0.0
        return earned_fraction(self.parts, {c.function: c.passed for c in self.checks})

    def score(self, points: float) -> float:
        return round(points * self.fraction, 2)


@dataclass
class Report:
    tasks: dict[str, TaskResult]
    cell_errors: list[dict]
    problem: str | None = None  # the whole run failed (time-out, crash): every task scores 0
    tampering: list[str] = field(default_factory=list)  # attempts to interfere with grading: every task scores 0
    restarts: list[str] = field(default_factory=list)  # units that ended the checking process, skipped on re-runs

    def task(self, name: str) -> TaskResult:
        return self.tasks.get(name, TaskResult(name))


def _build_report(data: dict, restarts: list[str]) -> Report:
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
    for task, parts in data.get("scoring", {}).items():
        if task in tasks:
            tasks[task].declared = [Part.from_json(p) for p in parts]
    return Report(tasks, data.get("cell_errors", []), tampering=list(data.get("tampering", [])), restarts=restarts)


def _ending(returncode: int, timed_out: bool) -> str:
    """How a process that wrote no report ended, in a student's words."""
    if timed_out:
        return "it ran past its time limit (an endless loop?), so the grader stopped it"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGKILL:
            return "the process was killed (SIGKILL: out of memory, or a time-out)"
        return f"the process crashed ({name})"
    return f"it ended the process (exit code {returncode}: os._exit or a crash)"


_MAX_RUNS = 6  # a first run and up to five re-runs, each skipping one more unit that ended the process


class PendingChecks:
    """A checking process that runs while something else happens (nbgrader executing the notebook).

    Student code can end the process (``os._exit``, a segfault, the out-of-memory killer, an
    endless loop that swallows the alarm). The process appends the unit it is about to run
    (a cell, a check) to a progress file; when it ends without a report, the unit it was in
    is marked as failed with the reason and the checks run again without it, so the credit
    for the rest of the notebook is kept.
    """

    def __init__(self, nb, assignment: Assignment, *, timeout: float, check_timeout: float, python: str | None,
                 guard: dict | None = None, memory_limit_mb: int = 0, cell_timeout: float = 60.0,
                 server: str | CheckServer | None = None, tasks: list[str] | None = None):
        # Student code runs in a sandbox (autograder.isolation) unless the unsafe mode was chosen; this raises
        # isolation.SandboxUnavailable, with how to install bubblewrap, when it cannot.
        self.sandboxed = isolation.required()
        if server is None:
            address = configured_address()
            server = address if reachable(address) else None
        self._server = server if python is None else None
        # The scratch folder: inside the check server's spool when a server forks the process (a sandboxed server
        # sees only its spool), else in the temp folder. Either way the sandbox sees only this submission's.
        spool = spool_folder(self._server)
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-", dir=spool)
        self.tmp = tmp = Path(self._tmp.name)
        self._sandbox: isolation.Sandbox | None = None
        self._cells_path = tmp / "cells.json"
        self._cells = gradable_code(nb)
        dump_cells(self._cells, self._cells_path)
        (tmp / "pytest.ini").write_text("[pytest]\n")
        self.assignment, self.check_timeout, self.python = assignment, check_timeout, python
        self.guard = dict(guard or {})
        self.guard.setdefault("readonly", [])
        self.guard["protected"] = list(self.guard.get("protected", [])) + [str(tmp / "report"), str(tmp / "progress")]
        self.memory_limit_mb, self.cell_timeout = memory_limit_mb, cell_timeout
        self.tasks = list(tasks) if tasks is not None else None  # None: every task; else only these
        # A warm check server (autograder.checkserver) forks the process, unless another Python is asked for:
        # ``server`` (an address, or a CheckServer that may still be warming up), else AUTOGRADER_CHECK_SERVER.
        self.served = 0  # how many runs the server forked (the rest were fresh processes)
        self.guard["protected"] += protected_folders(self._server)
        self.crashed: dict[str, dict[str, str]] = {"cells": {}, "tasks": {}}
        self.restarts: list[str] = []
        self.timeout = timeout
        self.started = time.perf_counter()
        self._run = 0
        self._proc = None
        self._launcher: threading.Thread | None = None
        self._launch_error: BaseException | None = None
        if isinstance(self._server, CheckServer) and not self._server.address:
            # The server is still warming up: wait for it in the background, so the caller (nbgrader starting
            # the kernel) goes on; result() joins. If it fails to start, a fresh process runs instead.
            self._launcher = threading.Thread(target=self._launch_in_background, daemon=True)
            self._launcher.start()
        else:
            self._launch()

    def _launch_in_background(self) -> None:
        try:
            self._launch()
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self._launch_error = exc

    def _join_launcher(self) -> None:
        if self._launcher is not None:
            self._launcher.join()
            self._launcher = None

    def _server_address(self) -> str | None:
        if isinstance(self._server, CheckServer):
            return self._server.wait_ready()
        return self._server

    def _checks_path(self) -> Path:
        """The checks' file as the checking process sees it: the autograder's own, or (checks kept elsewhere,
        e.g. an instructor's extra assignment) a copy in the scratch folder, the one folder a sandbox shares."""
        checks = self.assignment.checks_path
        if not self.sandboxed or checks.resolve().is_relative_to(Path(__file__).resolve().parent):
            return checks
        copy = self.tmp / "checks" / checks.name
        if not copy.exists():
            copy.parent.mkdir(exist_ok=True)
            copy.write_bytes(checks.read_bytes())
        return copy

    def _launch(self) -> None:
        self._run += 1
        tmp = self.tmp
        self._report = tmp / "report" / f"run{self._run}.json"
        self._progress = tmp / "progress" / f"run{self._run}.txt"
        self._report.parent.mkdir(exist_ok=True)
        self._progress.parent.mkdir(exist_ok=True)
        work = tmp / f"work{self._run}"
        work.mkdir()
        self._output = tmp / f"output{self._run}.txt"
        # No third-party pytest plugins: the checks need none, and loading them costs a second per submission.
        env = dict(os.environ, MPLBACKEND="Agg", COURSE_PROGRESS="0", PYTHONDONTWRITEBYTECODE="1",
                   PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        if self.sandboxed:  # no secrets (PGPASSWORD, tokens) and no grader paths reach student code
            env = isolation.sandbox_env(env)
        args = [
            str(self._checks_path()),
            "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp), "-p", "autograder.plugin",
            "-p", "no:cacheprovider", "-q", "--no-header", "-o", "console_output_style=classic",
            f"--student-cells={self._cells_path}", f"--report={self._report}",
            f"--check-timeout={self.check_timeout}", f"--cell-timeout={self.cell_timeout}",
            f"--progress={self._progress}",
            f"--crashed={json.dumps(self.crashed)}", f"--guard={json.dumps(self.guard)}",
            f"--memory-limit={self.memory_limit_mb}",
        ]
        if self.tasks is not None:
            args.append(f"--tasks={','.join(self.tasks)}")
        address = self._server_address() if self._server else None
        if address:
            try:  # a child of the warm check server: the same process, without 3-4 s of start-up
                self._proc = ServedProcess(address, args, cwd=str(work), output=str(self._output), env=env)
                self.served += 1
                return
            except (OSError, ValueError):  # gone or refusing: a fresh process from now on
                pass
        self._server = None
        cmd = [self.python or sys.executable, "-m", "pytest", *args]
        if self.sandboxed:  # sees the checks, this submission's scratch folder and the read-only environment
            self._sandbox = isolation.Sandbox(writable=[str(tmp)], autograder=True, cwd=str(work))
            cmd = self._sandbox.command(cmd)
        with open(self._output, "w") as out:  # to a file: student code may print megabytes
            self._proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def _kill(self) -> None:
        self._join_launcher()
        if self._proc is None:
            return
        if self._proc.poll() is None:
            if isinstance(self._proc, ServedProcess):
                self._proc.kill()  # by the server: the child's pid is its sandbox's, not ours
            else:
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)  # the whole group: student code may have spawned more
                except ProcessLookupError:
                    pass
        self._proc.wait()
        if self._sandbox is not None:
            self._sandbox.cleanup()

    def _returncode(self) -> int:
        """How the checking process ended, as Popen says it (-N: signal N). bwrap reports a child killed by
        signal N as exit status 128 + N."""
        code = self._proc.returncode
        if self._sandbox is not None and code is not None and 128 < code < 128 + 65:
            return -(code - 128)
        return code

    def _tail(self, lines: int = 15) -> str:
        try:
            with open(self._output, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 8192))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _last_unit(self) -> tuple[str, str, bool] | None:
        """(kind, name, timed out) of the unit (cell or check) the process was in when it ended, if any."""
        try:
            lines = self._progress.read_text().splitlines()
        except OSError:
            return None
        timed_out = bool(lines) and lines[-1].startswith("timeout ")
        if timed_out:
            lines.pop()
        if not lines or not lines[-1].startswith("start "):
            return None  # it ended between units (start-up, collection, the end)
        kind, _, name = lines[-1].removeprefix("start ").partition(" ")
        return kind, name, timed_out

    def _label(self, index: str) -> str:
        for cell in self._cells:
            if str(cell.index) == index:
                return cell.label
        return f"cell {int(index) + 1}"

    def result(self) -> Report:
        """Wait for the checks (up to the time left of ``timeout``), re-running after crashes; read the report."""
        try:
            self._join_launcher()
            if self._proc is None:
                return Report({}, [], problem=f"the checking process could not start: {self._launch_error}")
            while True:
                left = max(0.0, self.timeout - (time.perf_counter() - self.started))
                timed_out = False
                try:
                    self._proc.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    self._kill()
                    timed_out = True
                if self._report.exists() and self._report.stat().st_size > 0:
                    data = json.loads(self._report.read_text())
                    ok = (0, 1, 5) if self.tasks is not None else (0, 1)  # 5: none of the tasks asked for
                    if data["exitstatus"] not in ok:  # 0: all passed, 1: some failed; else a usage error
                        return Report({}, data.get("cell_errors", []), tampering=data.get("tampering", []),
                                      problem=f"the checks could not run (pytest exit {data['exitstatus']}):\n"
                                              f"{self._tail()}")
                    return _build_report(data, self.restarts)
                unit = self._last_unit()
                if timed_out and (unit is None or self._run >= _MAX_RUNS):
                    return Report({}, [], problem=f"the checks did not finish within {self.timeout:g} s",
                                  restarts=self.restarts)
                if unit is None or self._run >= _MAX_RUNS:
                    return Report({}, [], restarts=self.restarts,
                                  problem=f"the checking process stopped unexpectedly "
                                          f"({_ending(self._returncode(), False)}):\n{self._tail()}")
                kind, name, unit_timed_out = unit
                reason = _ending(self._returncode(), timed_out or unit_timed_out)
                if kind == "cell":
                    self.crashed["cells"][name] = f"when the grader ran this cell, {reason}"
                    self.restarts.append(f"{self._label(name)}: {reason}")
                else:  # a check: the task's code ended the process; its other checks would do the same
                    task, _, nodeid = name.partition("\t")
                    self.crashed["tasks"][task] = (f"when the check {nodeid.rpartition('::')[2]} called your code, "
                                                   f"{reason}; the other checks of this task were not run")
                    self.restarts.append(f"task {task} (check {nodeid.rpartition('::')[2]}): {reason}")
                if time.perf_counter() - self.started >= self.timeout:
                    return Report({}, [], problem=f"the checks did not finish within {self.timeout:g} s",
                                  restarts=self.restarts)
                self._launch()
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
                 python: str | None = None, guard: dict | None = None, memory_limit_mb: int = 0,
                 cell_timeout: float = 60.0, server: str | CheckServer | None = None,
                 tasks: list[str] | None = None) -> PendingChecks:
    """Start every check of ``assignment`` on notebook ``nb`` in a fresh process; collect with .result().

    ``guard``: paths student code may not read (``protected``) or change (``readonly`` minus ``writable``),
    see :class:`autograder.sandbox.Guard`; the autograder's own files are always protected. ``tasks``: check
    only these tasks (the notebook's cells all run: later answers may use earlier ones).
    """
    return PendingChecks(nb, assignment, timeout=timeout, check_timeout=check_timeout, python=python,
                         guard=guard, memory_limit_mb=memory_limit_mb, cell_timeout=cell_timeout, server=server,
                         tasks=tasks)


def run_checks(nb, assignment: Assignment, *, timeout: float = 600.0, check_timeout: float = 60.0,
               python: str | None = None, guard: dict | None = None, memory_limit_mb: int = 0,
               cell_timeout: float = 60.0) -> Report:
    """Run every check of ``assignment`` on notebook ``nb`` in a fresh process and wait for the report."""
    return start_checks(nb, assignment, timeout=timeout, check_timeout=check_timeout, python=python,
                        guard=guard, memory_limit_mb=memory_limit_mb, cell_timeout=cell_timeout).result()


def scoring_line(result: TaskResult, points: float) -> str:
    """What the points are for: "3 points: 2.25 for the steps, 0.75 for the state"."""
    parts = result.parts
    shares = ", ".join(f"{worth:g} for {p.name}" for p, worth in zip(parts, part_points(parts, points)))
    return f"{points:g} point{'' if points == 1 else 's'}: {shares}"


def format_task(report: Report, task: str, points: float) -> tuple[str, float]:
    """The feedback text for one graded test cell and the points it earns."""
    if report.tampering:
        return (f"Not graded: the grader found code that interferes with grading, so this submission earns "
                f"no points:\n" + "\n".join(f"  - {t}" for t in report.tampering) + f"\nScore: 0 / {points:g}"), 0.0
    if report.problem:
        return f"Not graded: {report.problem}\nScore: 0 / {points:g}", 0.0
    result = report.task(task)
    if not result.checks:
        return f"No checks were found for task '{task}' (an instructor error).\nScore: 0 / {points:g}", 0.0
    score = result.score(points)
    passed = sum(c.passed for c in result.checks)
    lines = [f"Task '{task}': {passed} of {len(result.checks)} checks passed. Score: {score:g} / {points:g}",
             f"  {scoring_line(result, points)}"]
    by_function = {c.function: c for c in result.checks}
    shown = set()
    for part, worth in zip(result.parts, part_points(result.parts, points)):
        checks = [by_function[f] for f in part.checks if f in by_function]
        if result.declared:
            earned = bool(checks) and len(checks) == len(part.checks) and all(c.passed for c in checks)
            lines.append(f"  {'EARNED' if earned else 'LOST'} {worth:g} for {part.name}"
                         + (f" ({part.about})" if part.about else ""))
        for c in checks:
            shown.add(c.function)
            mark = "PASS" if c.passed else "FAIL"
            indent = "    " if result.declared else "  "
            lines.append(f"{indent}{mark} {c.function.removeprefix('test_').replace('_', ' ')}")
            if not c.passed:
                lines.extend(indent + "     " + line for line in c.message.splitlines())
    for c in result.checks:  # in no part (an instructor error that autograder.scoring.validate reports): no points
        if c.function not in shown:
            lines.append(f"  {'PASS' if c.passed else 'FAIL'} {c.function.removeprefix('test_').replace('_', ' ')}"
                         " (counts for no points)")
    if report.restarts and passed < len(result.checks):
        lines.append("  Note: your code ended the grading process; the grader skipped what ended it and went on:")
        lines.extend(f"    {r}" for r in report.restarts)
    if report.cell_errors and passed < len(result.checks):
        lines.append("  Note: some of your cells raised errors when run on their own:")
        lines.extend(f"    {e['cell']}: {e['error']}" for e in report.cell_errors)
    return "\n".join(lines), score
