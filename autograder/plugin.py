"""pytest plugin loaded in the fresh grading process (never in the student's kernel).

It provides the ``student`` fixture (the namespace left by executing the
notebook's setup and solution cells), parametrizes ``device`` over the devices
this grader has, bounds every check in time, and writes one JSON record per
check to ``--report``: task, function, outcome and the student-facing message.
"""
from __future__ import annotations

import collections
import contextlib
import json
import linecache
import os
import signal
import sys
import threading
import time
import traceback
import types

import pytest

from autograder.compare import CheckFailure
from autograder.notebook import load_cells
from autograder.sandbox import NOTES_TASK, Guard, Snapshot, limit_memory, protected_paths

STUDENT_MODULE = "student_notebook"
# A traceback deeper than twice this is cut to its outer and inner frames before anything formats it
# (pytest's report, the student's location): student code can recurse 300,000 calls deep.
TRACEBACK_KEEP = 64


def _cut_tb(tb, keep: int):
    """Relink a traceback chain to its first and last ``keep`` entries; return (tb, frames dropped)."""
    if tb is None:
        return tb, 0
    head, n, tail = None, 0, collections.deque(maxlen=keep + 1)
    node = tb
    while node is not None:
        n += 1
        if n == keep:
            head = node
        tail.append(node)
        node = node.tb_next
    if n <= 2 * keep:
        return tb, 0
    head.tb_next = tail[1]  # tail[0] is the entry before the last ``keep``
    return tb, n - 2 * keep


def cut_traceback(exc: BaseException | None, tb=None, keep: int = TRACEBACK_KEEP) -> int:
    """Cut the tracebacks of ``exc``, its causes and contexts (and ``tb``) to ``keep`` outer and inner frames.

    Returns how many frames were dropped from the longest one. Walking the chain is cheap (a million
    entries in well under a second); formatting it is what takes a minute.
    """
    dropped = _cut_tb(tb, keep)[1] if tb is not None else 0
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        dropped = max(dropped, _cut_tb(exc.__traceback__, keep)[1])
        exc = exc.__cause__ or exc.__context__
    return dropped


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption("--student-cells", help="JSON file of the notebook cells to execute")
    group.addoption("--report", help="where to write the JSON report")
    group.addoption("--check-timeout", type=float, default=60.0, help="seconds one check may take")
    group.addoption("--cell-timeout", type=float, default=60.0, help="seconds one notebook cell may take to execute")
    group.addoption("--progress", help="file to which the unit being run (cell or check) is appended")
    group.addoption("--crashed", help="JSON: cells and checks that ended an earlier run, not to be run again")
    group.addoption("--guard", help="JSON: Guard(...) arguments (paths student code may not read or change)")
    group.addoption("--memory-limit", type=int, default=0, help="MB of address space (0: no limit; not with CUDA)")
    group.addoption("--tasks", default="", help="comma-separated tasks to check (default: every task)")


class _Progress:
    """Appends the unit about to run to a file, so the runner learns which one killed the process.

    A watchdog thread ends the process when a unit overruns its time by far (student code that
    swallows the alarm, or C code that never returns to Python): the runner then skips that unit.
    """

    def __init__(self, path: str | None):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600) if path else None
        self._deadline = None
        self._unit = ""
        if self._fd is not None:
            threading.Thread(target=self._watch, daemon=True).start()

    def start(self, unit: str, seconds: float) -> None:
        self._unit = unit
        self._deadline = time.monotonic() + seconds * 1.5 + 5.0
        if self._fd is not None:
            os.write(self._fd, f"start {unit}\n".encode())

    def done(self) -> None:
        self._deadline = None
        if self._fd is not None:
            os.write(self._fd, b"done\n")

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                os.write(self._fd, f"timeout {self._unit}\n".encode())
                os.kill(os.getpid(), signal.SIGKILL)


def pytest_configure(config):
    config.addinivalue_line("markers", "task(name): the graded task (nbgrader test cell test_<name>) a check belongs to")
    config._autograder_records = []
    config._autograder_tampering = []
    config._autograder_scoring = {}
    # Opened now, before any student code runs: the guard forbids writing here later.
    report = config.getoption("--report")
    config._autograder_report = open(report, "w") if report else None
    config._autograder_progress = _Progress(config.getoption("--progress"))
    crashed = config.getoption("--crashed")
    config._autograder_crashed = json.loads(crashed) if crashed else {"cells": {}, "checks": {}}
    limit_memory(config.getoption("--memory-limit"))
    import torch

    # The checks run beside the student's kernel (and beside other submissions when grading in
    # parallel): one thread each avoids oversubscribing the cores. AUTOGRADER_THREADS overrides.
    torch.set_num_threads(int(os.environ.get("AUTOGRADER_THREADS", "1")))


def grading_devices() -> list[str]:
    """cpu always; cuda when this grader has it. AUTOGRADER_DEVICES=cpu,cuda overrides."""
    import torch

    wanted = os.environ.get("AUTOGRADER_DEVICES")
    if wanted:
        return [d.strip() for d in wanted.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", grading_devices())


class _Timeout(BaseException):
    """Raised in the main thread when a check or a cell runs out of time."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def handler(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Student:
    """Attribute access to what the student's cells defined, with helpful errors."""

    def __init__(self, namespace: dict, cell_errors: list[dict]):
        self._ns = namespace
        self.cell_errors = cell_errors

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._ns:
            return self._ns[name]
        hint = ""
        if self.cell_errors:
            first = self.cell_errors[0]
            hint = f" Your {first['cell']} did not run to the end ({first['error']}), so definitions may be missing."
        raise CheckFailure(f"`{name}` is not defined. Define it in the answer cell of its task.{hint}")

    def __contains__(self, name):
        return name in self._ns


def _short(exc: BaseException, limit: int = 2000) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit:,} more characters]"


def _depth_note(dropped: int) -> str:
    return (f" (the error came {dropped + 2 * TRACEBACK_KEEP:,} calls deep: deep recursion?)" if dropped else "")


def _student_location(tb) -> str:
    """The innermost frame of the traceback that lies in the student's cells."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename.startswith("<cell")]
    if not frames:
        return ""
    f = frames[-1]
    line = f" `{f.line.strip()}`" if f.line else ""
    return f" (in your {f.filename.strip('<>')}, line {f.lineno}:{line})"


class _Sink:
    """A text stream that keeps the first ``limit`` characters written to it and drops the rest."""

    def __init__(self, limit: int = 10_000):
        self.limit, self.size, self.parts = limit, 0, []

    def write(self, text) -> int:
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[: self.limit - self.size])
        self.size += len(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def execute_cells(path: str, cell_timeout: float, crashed: dict | None = None, progress: _Progress | None = None) -> Student:
    module = types.ModuleType(STUDENT_MODULE)
    sys.modules[STUDENT_MODULE] = module
    namespace = module.__dict__
    errors: list[dict] = []
    crashed = crashed or {}
    for cell in load_cells(path):
        filename = f"<{cell.label}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        if str(cell.index) in crashed:
            errors.append({"cell": cell.label, "error": crashed[str(cell.index)]})
            continue
        out = _Sink()
        if progress:
            progress.start(f"cell {cell.index}", cell_timeout)
        try:
            code = compile(cell.source, filename, "exec")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), time_limit(cell_timeout):
                exec(code, namespace)
        except SyntaxError as exc:
            errors.append({"cell": cell.label, "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"})
        except _Timeout:
            errors.append({"cell": cell.label, "error": f"a time-out: it ran for more than {cell_timeout:g} s"})
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            deep = cut_traceback(exc)
            errors.append(
                {"cell": cell.label, "error": f"{type(exc).__name__}: {_short(exc)}{_student_location(exc.__traceback__)}"
                                              f"{_depth_note(deep)}"}
            )
        finally:
            if progress:
                progress.done()
    return Student(namespace, errors)


def _arm_guard(config) -> None:
    """Forbid student code the grader's files and the gradebook, and take the integrity snapshot."""
    spec = json.loads(config.getoption("--guard") or "{}")
    protected = list(spec.get("protected", [])) + protected_paths()
    guard = Guard(protected=tuple(protected), readonly=tuple(spec.get("readonly", [])),
                  writable=tuple(spec.get("writable", [])), modules=("autograder",))
    config._autograder_snapshot = Snapshot()
    config._autograder_defaults = _default_state()
    config._autograder_default_notes = []
    # Student code must not find the checks or references by name: drop them from sys.modules
    # (pytest keeps its own references); importing them again is then an audited, refused import.
    for name in [m for m in sys.modules if m.startswith("autograder")]:
        del sys.modules[name]
    config._autograder_guard = guard.arm()


def _default_state() -> dict[str, str]:
    """torch's process-wide defaults that student code may change and the checks' tensors then inherit."""
    import torch

    state = {"dtype": str(torch.get_default_dtype())}
    try:
        state["device"] = str(torch.get_default_device())
    except (AttributeError, RuntimeError):
        pass
    return state


_DEFAULT_NOTES = {
    "dtype": lambda now, before: (
        f"your code called torch.set_default_dtype({now}) (the default was {before}); tensors the checks create "
        f"without a dtype are then {now.removeprefix('torch.')}, and the checks graded what your code does with them"),
    "device": lambda now, before: (
        f"your code called torch.set_default_device({now!r}) (the default was {before!r}); tensors the checks "
        f"create then live on {now}" + (", a device without values, which is why checks fail that "
                                        "would otherwise pass" if now == "meta" else
                                        ", which is why results may not be where a check expects them")),
}


def _note_defaults(config) -> list[str]:
    """Notes on torch defaults changed from what they were before student code ran (remembered once seen)."""
    before = getattr(config, "_autograder_defaults", None)
    if before is None:
        return []
    try:
        now = _default_state()
    except Exception:
        return config._autograder_default_notes
    for key, value in now.items():
        if key in before and value != before[key]:
            note = _DEFAULT_NOTES[key](value, before[key])
            if note not in config._autograder_default_notes:
                config._autograder_default_notes.append(note)
    return config._autograder_default_notes


def _note_tampering(config, when: str) -> None:
    snapshot = getattr(config, "_autograder_snapshot", None)
    guard = getattr(config, "_autograder_guard", None)
    found = config._autograder_tampering
    if snapshot is not None:
        for name in snapshot.changes():
            text = f"{name} was replaced or removed ({when})"
            if not any(t.startswith(f"{name} was replaced") for t in found):
                found.append(text)
    if guard is not None:
        for violation in guard.violations:
            if violation not in found:
                found.append(violation)


@pytest.fixture(scope="session")
def student(request):
    config = request.config
    path = config.getoption("--student-cells")
    if not path:
        pytest.fail("the grader was started without --student-cells")
    _arm_guard(config)
    result = execute_cells(path, config.getoption("--cell-timeout"), config._autograder_crashed.get("cells", {}),
                           config._autograder_progress)
    _note_tampering(config, "by your cells")
    _note_defaults(config)
    config._autograder_student = result
    return result


def _collect_scoring(config, items) -> None:
    """The scoring models (``SCORING``, see autograder.scoring) of the check modules, for the report."""
    for module in {id(item.module): item.module for item in items if getattr(item, "module", None)}.values():
        for task, parts in getattr(module, "SCORING", {}).items():
            config._autograder_scoring[task] = [part.to_json() for part in parts]


def pytest_collection_modifyitems(session, config, items):
    """Only the tasks asked for (--tasks); tasks whose code ended an earlier run (a crash, an endless loop)
    fail without running again."""
    _collect_scoring(config, items)
    wanted = {t for t in config.getoption("--tasks").split(",") if t}
    if wanted:
        items[:] = [item for item in items if _task_of(item) in wanted]
    crashed = config._autograder_crashed.get("tasks", {})
    if not crashed:
        return
    keep = []
    for item in items:
        task = _task_of(item)
        if task in crashed:
            config._autograder_records.append({
                "task": task, "function": item.originalname or item.name, "id": item.name,
                "outcome": "failed", "message": crashed[task], "seconds": 0.0,
            })
        else:
            keep.append(item)
    items[:] = keep


def _task_of(item) -> str:
    marker = item.get_closest_marker("task")
    return marker.args[0] if marker else "ungraded"


def student_message(excinfo) -> str:
    exc = excinfo.value
    if isinstance(exc, CheckFailure):
        return str(exc)
    if isinstance(exc, _Timeout):
        return "your code did not finish in time (an infinite loop, or far too much work?)"
    if isinstance(exc, StudentInterrupt):
        return f"{exc}{_student_location(exc.__cause__.__traceback__) if exc.__cause__ else ''}"
    location = _student_location(excinfo.tb)
    return f"your code raised {type(exc).__name__}: {_short(exc)}{location}"


class StudentInterrupt(Exception):
    """KeyboardInterrupt raised by student code: a failure of this check, not the end of grading."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    seconds = item.config.getoption("--check-timeout")
    progress = item.config._autograder_progress
    progress.start(f"check {_task_of(item)}\t{item.nodeid}", seconds)
    try:
        with time_limit(seconds):
            return (yield)
    except KeyboardInterrupt as exc:
        raise StudentInterrupt("your code raised KeyboardInterrupt") from exc
    finally:
        progress.done()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    dropped = 0
    if call.excinfo is not None:  # before pytest formats the traceback (a million frames take a minute)
        from _pytest._code import Traceback

        dropped = cut_traceback(call.excinfo.value, call.excinfo.tb)
        if dropped:
            call.excinfo.traceback = Traceback(call.excinfo.tb)
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        message = ""
        if call.excinfo is not None and report.outcome == "failed":
            message = student_message(call.excinfo) + _depth_note(dropped)
        if report.when == "call":
            _note_tampering(item.config, f"while checking {item.originalname or item.name}")
        changed = _note_defaults(item.config)
        if message and changed:
            message += "\n" + "\n".join(f"Note: {n}" for n in changed)
        item.config._autograder_records.append(
            {
                "task": _task_of(item),
                "function": item.originalname or item.name,
                "id": item.name,
                "outcome": report.outcome,
                "message": message,
                "seconds": round(report.duration, 3),
            }
        )


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    out = config._autograder_report
    if out is None:
        return
    _note_tampering(config, "after the checks")
    for i, note in enumerate(_note_defaults(config)):
        config._autograder_records.append({"task": NOTES_TASK, "function": f"note{i}", "id": f"note{i}",
                                           "outcome": "noted", "message": note[0].upper() + note[1:] + "."})
    student = getattr(config, "_autograder_student", None)
    json.dump(
        {
            "records": config._autograder_records,
            "cell_errors": student.cell_errors if student else [],
            "tampering": config._autograder_tampering,
            "scoring": config._autograder_scoring,
            "exitstatus": int(exitstatus),
        },
        out,
    )
    out.close()
    config._autograder_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Once the report is written and pytest has printed its summary, the checking process ends at once: a thread
    or an atexit handler the student's code left behind cannot keep the grader waiting."""
    status = getattr(config, "_autograder_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
