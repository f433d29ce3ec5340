"""The grading process on its own: time limits, crashes and cell errors, with a tiny checks module."""
import textwrap
import time

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.assignments import Assignment
from autograder.checkserver import ENV as CHECK_SERVER_ENV, CheckServer
from autograder.runner import format_task, run_checks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def check_server():
    with CheckServer() as server:
        assert server.address, server.error
        yield server.address


@pytest.fixture(autouse=True, params=["fresh", "served"])
def checking_process(request, monkeypatch):
    """Every test runs twice: with a fresh checking process, and with one forked by a warm check server."""
    if request.param == "served":
        monkeypatch.setenv(CHECK_SERVER_ENV, request.getfixturevalue("check_server"))
    else:
        monkeypatch.delenv(CHECK_SERVER_ENV, raising=False)
    return request.param

CHECKS = '''
import pytest
from autograder.compare import check_number

@pytest.mark.task("add")
def test_add(student):
    check_number(student.add(2, 3), 5.0, "add(2, 3)")

@pytest.mark.task("add")
def test_add_negative(student):
    check_number(student.add(-2, -3), -5.0, "add(-2, -3)")

@pytest.mark.task("loop")
def test_loop(student):
    student.loop()
'''


def notebook(*sources):
    meta = {"nbgrader": {"solution": True, "grade": False, "locked": False, "grade_id": "a", "schema_version": 3}}
    return new_notebook(cells=[new_code_cell(textwrap.dedent(s), metadata=meta) for s in sources])


@pytest.fixture
def assignment(tmp_path):
    path = tmp_path / "test_tiny.py"
    path.write_text(CHECKS)
    return Assignment("tiny", "tiny.ipynb", str(path))


def test_partial_credit_and_time_limit_per_check(assignment):
    nb = notebook("def add(a, b):\n    return a + b if a > 0 else 0", "def loop():\n    while True:\n        pass")
    report = run_checks(nb, assignment, check_timeout=2)
    assert report.task("add").fraction == 0.5
    text, score = format_task(report, "add", 2)
    assert score == 1 and "add(-2, -3): expected -5, got 0" in text
    assert "did not finish in time" in report.task("loop").checks[0].message


def test_student_exception_names_the_cell_and_line(assignment):
    report = run_checks(notebook("def add(a, b):\n    return a + undefined_name"), assignment, check_timeout=5)
    message = report.task("add").checks[0].message
    assert "NameError" in message and "cell 1 (a), line 2" in message and "return a + undefined_name" in message


def test_cell_that_exits_or_loops_does_not_stop_grading(assignment):
    report = run_checks(
        notebook("import sys\nsys.exit(3)", "def add(a, b):\n    return a + b", "raise KeyboardInterrupt"),
        assignment, check_timeout=5,
    )
    assert report.task("add").fraction == 1
    assert [e["error"].split(":")[0] for e in report.cell_errors] == ["SystemExit", "KeyboardInterrupt"]


def test_whole_run_time_out_scores_zero_with_a_reason(assignment):
    report = run_checks(notebook("import time\ntime.sleep(30)"), assignment, timeout=3)
    text, score = format_task(report, "add", 2)
    assert score == 0 and "did not finish within 3 s" in text


def test_a_cell_that_ends_the_process_is_skipped_and_the_rest_keeps_its_credit(assignment):
    report = run_checks(notebook("def add(a, b):\n    return a + b", "import os\nos._exit(7)",
                                 "def loop():\n    return None"), assignment, check_timeout=5)
    assert report.task("add").fraction == 1 and report.task("loop").fraction == 1
    assert report.problem is None and len(report.restarts) == 1
    assert "cell 2 (a)" in report.restarts[0] and "exit code 7" in report.restarts[0]
    assert any("exit code 7" in e["error"] for e in report.cell_errors)


def test_a_check_that_crashes_the_process_fails_its_task_only(assignment):
    nb = notebook("def add(a, b):\n    return a + b",
                  "def loop():\n    import faulthandler\n    faulthandler._sigsegv()")
    report = run_checks(nb, assignment, check_timeout=5)
    assert report.task("add").fraction == 1 and report.task("loop").fraction == 0
    assert "SIGSEGV" in report.task("loop").checks[0].message
    text, _ = format_task(report, "loop", 1)
    assert "ended the grading process" in text


def test_code_that_swallows_the_alarm_is_stopped_by_the_watchdog(assignment):
    swallow = "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass"
    report = run_checks(notebook("def add(a, b):\n    return a + b", swallow), assignment, check_timeout=2,
                        cell_timeout=2)
    assert report.task("add").fraction == 1
    assert "ran past its time limit" in report.restarts[0]


def test_monkeypatching_torch_is_tampering_and_scores_zero(assignment):
    report = run_checks(notebook("import torch\ntorch.allclose = lambda *a, **k: True\n"
                                 "def add(a, b):\n    return a + b"), assignment, check_timeout=5)
    assert report.tampering == ["torch.allclose was replaced or removed (by your cells)"]
    text, score = format_task(report, "add", 2)
    assert score == 0 and "interferes with grading" in text


def test_threads_and_atexit_handlers_left_behind_do_not_delay_the_report(assignment):
    nb = notebook("""
        import atexit, threading, time
        atexit.register(time.sleep, 60)
        threading.Thread(target=time.sleep, args=(60,)).start()  # not a daemon: the interpreter would wait for it
        def add(a, b):
            return a + b
    """)
    started = time.perf_counter()
    report = run_checks(nb, assignment, timeout=120)
    assert report.task("add").fraction == 1.0, report.problem
    assert time.perf_counter() - started < 45  # the process ends once its report is written, not 60 s later
