"""The sandbox student code runs in (autograder.isolation): what it can see, reach and use, and the refusal
without it. Each test runs a small program inside a real bubblewrap sandbox and asserts on what it found."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograder import isolation

SANDBOX, WHY_NOT = isolation.available()
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason=f"no sandbox on this machine: {WHY_NOT}")
REPO = Path(__file__).resolve().parents[2]


def run_inside(box: isolation.Sandbox, code: str, env: dict | None = None, timeout: float = 120) -> dict:
    """Run ``code`` (which sets a dict ``found``) in ``box``; return ``found``."""
    program = textwrap.dedent(code) + "\nimport json, sys\nprint('FOUND' + json.dumps(found))\n"
    done = subprocess.run(box.command([sys.executable, "-c", program]),
                          env=isolation.sandbox_env(env or dict(os.environ)), capture_output=True, text=True,
                          timeout=timeout)
    box.cleanup()
    line = next((l for l in done.stdout.splitlines() if l.startswith("FOUND")), None)
    assert line, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads(line[len("FOUND"):])


@needs_sandbox
def test_the_kernels_view_holds_the_environment_and_its_folder_only(tmp_path):
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / "solutions" / "answers.ipynb").write_text("{}")
    (course / "gradebook.db").write_text("grades")
    own = course / "autograded" / "alice" / "a1"
    own.mkdir(parents=True)
    other = course / "autograded" / "bob" / "a1"
    other.mkdir(parents=True)
    (other / "work.ipynb").write_text("{}")
    found = run_inside(isolation.Sandbox(writable=[str(own)], cwd=str(own)), f"""
        import os
        found = {{}}
        for name, path in {{"solutions": {str(course / "solutions")!r}, "gradebook": {str(course / "gradebook.db")!r},
                            "bob": {str(other)!r}, "repo solutions": {str(REPO / "solutions")!r},
                            "checks": {str(REPO / "autograder" / "checks")!r},
                            "references": {str(REPO / "autograder" / "references")!r},
                            "shadow": "/etc/shadow", "root home": "/root/.bash_history"}}.items():
            found[name] = os.path.exists(path)
        import torch, course
        found["torch"] = float(torch.ones(3).sum())
        found["uid"] = os.getuid()
        open("mine.txt", "w").write("ok")
        try:
            import autograder.references
            found["import references"] = True
        except ImportError:
            found["import references"] = False
        import autograder.sandbox  # the guard the kernel arms: the only part of the autograder it sees
        found["guard"] = True
    """)
    assert found["torch"] == 3.0 and found["uid"] == isolation.SANDBOX_UID and found["guard"]
    hidden = ["solutions", "gradebook", "bob", "repo solutions", "checks", "references", "shadow", "root home"]
    assert not any(found[name] for name in hidden), found
    assert not found["import references"]
    assert (own / "mine.txt").read_text() == "ok"


@needs_sandbox
def test_the_checking_process_sees_the_checks_but_nothing_of_the_course(tmp_path):
    found = run_inside(isolation.Sandbox(writable=[str(tmp_path)], autograder=True, cwd=str(tmp_path)), f"""
        import os
        import autograder.references.optimizers
        found = {{"checks": os.path.exists({str(REPO / "autograder" / "checks")!r}),
                 "solutions": os.path.exists({str(REPO / "solutions")!r}),
                 "config": os.path.exists({str(REPO / "nbgrader_config.py")!r})}}
    """)
    assert found == {"checks": True, "solutions": False, "config": False}


@needs_sandbox
def test_shared_code_and_packages_are_read_only(tmp_path):
    import course

    found = run_inside(isolation.Sandbox(writable=[str(tmp_path)], cwd=str(tmp_path)), f"""
        found = {{}}
        for name, path in {{"course": {course.__file__!r}, "python": {os.path.join(sys.prefix, "pyvenv.cfg")!r},
                            "etc": "/etc/passwd", "usr": "/usr/bin/env"}}.items():
            try:
                open(path, "a").close()
                found[name] = "written"
            except OSError as e:
                found[name] = e.strerror
    """)
    assert found == dict.fromkeys(["course", "python", "etc", "usr"], "Read-only file system"), found


@needs_sandbox
def test_no_network_and_no_secrets(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        found = run_inside(isolation.Sandbox(writable=[str(tmp_path)], cwd=str(tmp_path)), f"""
            import os, socket
            found = {{"env": sorted(os.environ)}}
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                found["grader's port"] = "reached"
            except OSError as e:
                found["grader's port"] = type(e).__name__
        """, env=dict(os.environ, PGPASSWORD="hunter2", GITHUB_TOKEN="x", AUTOGRADER_CHECK_SERVER="/tmp/s"))
    finally:
        listener.close()
    assert found["grader's port"] == "ConnectionRefusedError"
    assert not {"PGPASSWORD", "GITHUB_TOKEN", "AUTOGRADER_CHECK_SERVER"} & set(found["env"])


@needs_sandbox
def test_limits_on_file_size_and_tmp(tmp_path):
    found = run_inside(isolation.Sandbox(writable=[str(tmp_path)], cwd=str(tmp_path), max_file_mb=1, tmp_mb=2), """
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        found = {}
        for name, path in {"own folder": "big.bin", "tmp": "/tmp/big.bin"}.items():
            try:
                with open(path, "wb") as f:
                    f.write(b"x" * (3 << 20))
                found[name] = "written"
            except OSError as e:
                found[name] = e.strerror
    """)
    assert found["own folder"] == "File too large"
    assert found["tmp"] in ("File too large", "No space left on device")


@needs_sandbox
def test_processes_are_limited_and_nothing_outlives_the_sandbox(tmp_path):
    box = isolation.Sandbox(writable=[str(tmp_path)], cwd=str(tmp_path), max_processes=20)
    found = run_inside(box, f"""
        import os, time
        found = {{"forked": 0}}
        children = []
        try:
            for _ in range(60):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
                found["forked"] += 1
        except OSError as e:
            found["stopped"] = e.strerror
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        # a daemon that escapes its session and would outlive its grading
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open({str(tmp_path / "daemon.pid")!r}, "w").write(str(os.getpid()))
                time.sleep(60)
                open({str(tmp_path / "daemon.alive")!r}, "w").write("still here")
            os._exit(0)
        time.sleep(0.5)
    """)
    if box.cgroup_supported():
        assert found["forked"] < 20 and found.get("stopped"), found
    time.sleep(1.5)
    assert (tmp_path / "daemon.pid").exists()
    assert not any("daemon.alive" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                   for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/cmdline")), \
        "the daemon outlived its sandbox"


def test_without_bwrap_grading_refuses_and_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv(isolation.BWRAP_ENV, "/nonexistent/bwrap")
    monkeypatch.delenv(isolation.UNSAFE_ENV, raising=False)
    with pytest.raises(isolation.SandboxUnavailable, match="apt-get install bubblewrap"):
        isolation.required()
    from autograder.assignments import ASSIGNMENTS
    from autograder.notebook import read_notebook
    from autograder.runner import run_checks

    nb = read_notebook(REPO / "assignments" / "01_pytorch_basics" / "pytorch_basics.ipynb")
    with pytest.raises(isolation.SandboxUnavailable, match="--unsafe-no-sandbox"):
        run_checks(nb, ASSIGNMENTS["01_pytorch_basics"])
    done = subprocess.run([sys.executable, "-m", "autograder", "check",
                           str(REPO / "assignments" / "01_pytorch_basics" / "pytorch_basics.ipynb")],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 2
    assert "Refusing to run student code without a sandbox" in done.stderr and "bubblewrap" in done.stderr
    monkeypatch.setenv(isolation.UNSAFE_ENV, "1")
    assert isolation.required() is False  # the explicit, documented way round it


@needs_sandbox
def test_a_check_server_refuses_requests_from_inside_its_sandbox(tmp_path, monkeypatch):
    monkeypatch.delenv(isolation.UNSAFE_ENV, raising=False)
    from autograder.checkserver import CheckServer, ServedProcess, spool_folder

    with CheckServer() as server:
        assert server.address, server.error
        spool = Path(spool_folder(server))
        work = Path(spool) / "work"
        work.mkdir()
        (work / "test_ask.py").write_text(textwrap.dedent(f"""
            import json, socket
            def test_ask():
                s = socket.socket(socket.AF_UNIX)
                s.connect({server.address!r})
                try:
                    s.sendall((json.dumps({{"args": ["--version"], "cwd": "/tmp", "output": "/tmp/o"}}) + "\\n").encode())
                except BrokenPipeError:  # refused before the request was read
                    pass
                open({str(work / "reply.txt")!r}, "w").write(s.recv(4096).decode())
        """))
        proc = ServedProcess(server.address, [str(work / "test_ask.py"), "-q", "-p", "no:cacheprovider"],
                             cwd=str(work), output=str(work / "out.txt"), env=isolation.sandbox_env(dict(os.environ)))
        assert proc.wait(60) == 0, (work / "out.txt").read_text()
        reply = json.loads((work / "reply.txt").read_text())
        assert "only from outside the sandbox" in reply.get("error", ""), reply
