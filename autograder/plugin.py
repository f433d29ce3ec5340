"""pytest plugin loaded in the fresh grading process (never in the student's kernel).

It provides the ``student`` fixture (the namespace left by executing the
notebook's setup and solution cells), parametrizes ``device`` over the devices
this grader has, bounds every check in time, and writes one JSON record per
check to ``--report``: task, function, outcome and the student-facing message.
"""
from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
import signal
import sys
import traceback
import types

import pytest

from autograder.compare import CheckFailure
from autograder.notebook import load_cells

STUDENT_MODULE = "student_notebook"


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption("--student-cells", help="JSON file of the notebook cells to execute")
    group.addoption("--report", help="where to write the JSON report")
    group.addoption("--check-timeout", type=float, default=60.0, help="seconds one check may take")
    group.addoption("--cell-timeout", type=float, default=60.0, help="seconds one notebook cell may take to execute")


def pytest_configure(config):
    config.addinivalue_line("markers", "task(name): the graded task (nbgrader test cell test_<name>) a check belongs to")
    config._autograder_records = []
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
            hint = f" Your {first['cell']} stopped with {first['error']}, so later definitions may be missing."
        raise CheckFailure(f"`{name}` is not defined. Define it in the answer cell of its task.{hint}")

    def __contains__(self, name):
        return name in self._ns


def _student_location(tb) -> str:
    """The innermost frame of the traceback that lies in the student's cells."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename.startswith("<cell")]
    if not frames:
        return ""
    f = frames[-1]
    line = f" `{f.line.strip()}`" if f.line else ""
    return f" (in your {f.filename.strip('<>')}, line {f.lineno}:{line})"


def execute_cells(path: str, cell_timeout: float) -> Student:
    module = types.ModuleType(STUDENT_MODULE)
    sys.modules[STUDENT_MODULE] = module
    namespace = module.__dict__
    errors: list[dict] = []
    for cell in load_cells(path):
        filename = f"<{cell.label}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        out = io.StringIO()
        try:
            code = compile(cell.source, filename, "exec")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), time_limit(cell_timeout):
                exec(code, namespace)
        except SyntaxError as exc:
            errors.append({"cell": cell.label, "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"})
        except _Timeout:
            errors.append({"cell": cell.label, "error": f"a time-out: it ran for more than {cell_timeout:g} s"})
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            errors.append(
                {"cell": cell.label, "error": f"{type(exc).__name__}: {exc}{_student_location(exc.__traceback__)}"}
            )
    return Student(namespace, errors)


@pytest.fixture(scope="session")
def student(request):
    path = request.config.getoption("--student-cells")
    if not path:
        pytest.fail("the grader was started without --student-cells")
    result = execute_cells(path, request.config.getoption("--cell-timeout"))
    request.config._autograder_student = result
    return result


def _task_of(item) -> str:
    marker = item.get_closest_marker("task")
    return marker.args[0] if marker else "ungraded"


def student_message(excinfo) -> str:
    exc = excinfo.value
    if isinstance(exc, CheckFailure):
        return str(exc)
    if isinstance(exc, _Timeout):
        return "your code did not finish in time (an infinite loop, or far too much work?)"
    location = _student_location(excinfo.tb)
    return f"your code raised {type(exc).__name__}: {exc}{location}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    seconds = item.config.getoption("--check-timeout")
    with time_limit(seconds):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        message = ""
        if call.excinfo is not None and report.outcome == "failed":
            message = student_message(call.excinfo)
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
    path = session.config.getoption("--report")
    if not path:
        return
    student = getattr(session.config, "_autograder_student", None)
    with open(path, "w") as f:
        json.dump(
            {
                "records": session.config._autograder_records,
                "cell_errors": student.cell_errors if student else [],
                "exitstatus": int(exitstatus),
            },
            f,
        )
