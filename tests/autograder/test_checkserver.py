"""The warm check server: its children are checking processes like fresh ones, and it fails safe.

tests/autograder/test_runner.py runs every runner test both with a fresh process and through a server
(crashes, time-outs, the watchdog, tampering); the corpus (tests/test_corpus.py) grades its broken and
malicious submissions with `odl-grade autograde`, whose workers use servers. This file covers what is
particular to the server.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.assignments import ASSIGNMENTS, Assignment
from autograder.checkserver import ENV, CheckServer, ServedProcess, main as server_main
from autograder.runner import run_checks, start_checks
from autograder.demo import demo_mistakes
from autograder.submissions import make_submission

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A check that fails with a message describing the process it runs in.
FACTS = '''
import json, os, sys
import numpy as np
import pytest
import torch
from autograder.compare import fail

@pytest.mark.task("facts")
def test_facts(student):
    fail(json.dumps({
        "env": os.environ.get("COURSE_TEST_MARK"), "secret": os.environ.get("PGPASSWORD"), "cwd": os.getcwd(),
        "path": [p.replace(os.getcwd(), "<cwd>").replace(os.path.dirname(os.getcwd()), "<tmp>") for p in sys.path],
        "own_session": os.getsid(0) == os.getpid(), "threads": torch.get_num_threads(),
        "numpy_draw": float(np.random.random_sample()), "answer": student.answer,
    }))
'''


def notebook(*sources):
    meta = {"nbgrader": {"solution": True, "grade": False, "locked": False, "grade_id": "a", "schema_version": 3}}
    return new_notebook(cells=[new_code_cell(textwrap.dedent(s), metadata=meta) for s in sources])


@pytest.fixture(scope="module")
def server():
    with CheckServer() as started:
        assert started.address, started.error
        yield started.address


@pytest.fixture
def facts_assignment(tmp_path):
    path = tmp_path / "test_facts.py"
    path.write_text(FACTS)
    return Assignment("facts", "facts.ipynb", str(path))


def facts(report) -> dict:
    return json.loads(report.task("facts").checks[0].message)


def test_a_served_process_is_a_fresh_checking_process(server, facts_assignment, monkeypatch):
    monkeypatch.setenv(ENV, server)
    monkeypatch.setenv("COURSE_TEST_MARK", "set by the caller after the server started")
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    nb = notebook("answer = 42")
    runs = []
    for _ in range(2):
        pending = start_checks(nb, facts_assignment)
        report = pending.result()
        assert pending.served == 1
        runs.append(facts(report))
    monkeypatch.delenv(ENV)
    fresh = facts(run_checks(nb, facts_assignment))
    for got in runs:
        assert got["env"] == "set by the caller after the server started"  # the caller's environment ...
        assert got["secret"] is None  # ... less what student code must not see
        assert "autograder-" in got["cwd"]  # its own scratch folder
        assert got["path"] == fresh["path"]  # the import path of `python -m pytest` there, not the server's
        assert got["own_session"] and got["threads"] == 1 and got["answer"] == 42
    assert runs[0]["numpy_draw"] != runs[1]["numpy_draw"]  # reseeded like a new process, not a copy of one state


def test_served_and_fresh_checks_report_the_same(server, monkeypatch):
    """The real checks of assignment 2 on a submission with typical mistakes: identical reports."""
    a = ASSIGNMENTS["02_optimizers"]
    release = os.path.join(REPO, "assignments", "02_optimizers", a.notebook)
    solution = os.path.join(REPO, "solutions", "02_optimizers", a.notebook)
    nb = make_submission(release, solution, demo_mistakes("02_optimizers")[:3])
    monkeypatch.delenv(ENV, raising=False)
    fresh = run_checks(nb, a)
    monkeypatch.setenv(ENV, server)
    pending = start_checks(nb, a)
    served = pending.result()
    assert pending.served == 1

    def summary(report):
        return {t: [(c.function, c.passed, c.message) for c in r.checks] for t, r in report.tasks.items()}

    assert summary(served) == summary(fresh)
    assert any(not c.passed for r in fresh.tasks.values() for c in r.checks)  # the mistakes were found
    assert (served.problem, served.tampering, served.cell_errors) == (fresh.problem, fresh.tampering,
                                                                        fresh.cell_errors)


def test_student_code_cannot_ask_the_server_for_an_unguarded_process(server, facts_assignment, monkeypatch):
    monkeypatch.setenv(ENV, server)
    report = run_checks(notebook(f"""
        import socket
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({server!r})
        except PermissionError:
            pass
        answer = 1
    """), facts_assignment)
    assert report.tampering and "connecting to" in report.tampering[0]
    assert os.path.dirname(server) in report.tampering[0]


def test_an_unreachable_server_means_a_fresh_process(tmp_path, facts_assignment, monkeypatch):
    stale = tmp_path / "stale.sock"  # a socket file nobody listens on (a server that was killed)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()
    monkeypatch.setenv(ENV, str(stale))
    pending = start_checks(notebook("answer = 7"), facts_assignment)
    assert facts(pending.result())["answer"] == 7 and pending.served == 0


HEARTBEAT = """import time

def test_beat():
    for i in range(600):
        open({path!r}, "w").write(str(i))
        time.sleep(0.05)
"""


def _beating(path: Path, within: float = 10.0) -> bool:
    """Whether the heartbeat file at ``path`` changes within ``within`` seconds (its process is alive)."""
    deadline = time.monotonic() + within
    first = path.read_text() if path.exists() else None
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = path.read_text() if path.exists() else None
        if now is not None and now != first:
            return True
    return False


@pytest.fixture
def spool(server, tmp_path):
    """A scratch folder the server's children can see (in a sandbox they see only the server's spool)."""
    from autograder.checkserver import spool_folder

    base = spool_folder(server)
    folder = (tempfile.mkdtemp(dir=base, prefix="test-") if base else str(tmp_path))
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _beating_child(server: str, spool: Path) -> tuple[ServedProcess, Path]:
    """A served child that writes a heartbeat into ``spool`` until it is killed; (its process, the heartbeat file)."""
    beat = spool / "beat.txt"
    (spool / "test_beat.py").write_text(HEARTBEAT.format(path=str(beat)))
    proc = ServedProcess(server, [str(spool / "test_beat.py"), "-p", "no:cacheprovider", "-q"], cwd=str(spool),
                         output=str(spool / "out.txt"), env=dict(os.environ))
    assert _beating(beat)
    return proc, beat


def test_a_child_whose_client_goes_away_is_killed(server, spool):
    proc, beat = _beating_child(server, spool)
    proc._conn.close()  # nbgrader was killed
    time.sleep(1)
    assert not _beating(beat, within=2)


def test_a_child_is_killed_when_its_client_asks(server, spool):
    proc, beat = _beating_child(server, spool)
    proc.kill()  # what the runner does at a time-out: by the server, which knows the child's pid
    assert proc.wait(10) == -9
    assert not _beating(beat, within=2)


def test_bad_requests_are_answered_and_the_server_goes_on(server, spool):
    tmp_path = spool
    for payload in (b"not json\n", b'{"args": "not a list", "cwd": "/", "output": "/dev/null"}\n'):
        s = socket.socket(socket.AF_UNIX)
        s.connect(server)
        s.sendall(payload)
        assert "error" in json.loads(s.makefile().readline())
        s.close()
    passing = tmp_path / "test_ok.py"
    passing.write_text("def test_ok():\n    pass\n")
    proc = ServedProcess(server, [str(passing), "-p", "no:cacheprovider", "-q"], cwd=str(tmp_path),
                         output=str(tmp_path / "out.txt"), env=dict(os.environ))
    assert proc.wait(60) == 0 and "1 passed" in (tmp_path / "out.txt").read_text()


def test_the_socket_folder_must_be_private(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(SystemExit, match="chmod 700"):
        server_main([str(folder / "checks.sock")])



def test_checks_wait_in_the_background_for_a_server_that_is_still_warming_up(facts_assignment, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    server = CheckServer().start()
    try:
        started = time.perf_counter()
        pending = start_checks(notebook("answer = 5"), facts_assignment, server=server)
        assert time.perf_counter() - started < 1.0  # the caller (nbgrader, about to start the kernel) goes on
        assert facts(pending.result())["answer"] == 5 and pending.served == 1
    finally:
        server.stop()


def test_a_server_that_cannot_start_in_time_means_a_fresh_process(facts_assignment, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    server = CheckServer(start_timeout=0.01).start()
    try:
        pending = start_checks(notebook("answer = 3"), facts_assignment, server=server)
        assert facts(pending.result())["answer"] == 3 and pending.served == 0
        assert "not ready" in server.error
    finally:
        server.stop()


def test_a_graders_own_server_ends_with_the_grader(tmp_path):
    """Even when the grader is killed (no atexit), its server does not linger."""
    import subprocess
    import sys

    code = ("import os, sys; from autograder.checkserver import CheckServer; "
            "s = CheckServer(exit_with_parent=True).start(); s.wait_ready(); "
            "print(s._proc.pid, s.address, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    pid, address = out.stdout.split()
    assert address != "None", out.stderr
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
