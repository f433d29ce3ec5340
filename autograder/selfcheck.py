"""``odl-grade check``: the grader's report on one notebook, for a learner, in seconds.

Three things make it fast (``benchmarks/selfcheck.py`` measures them):

* it reads the notebook as JSON and never imports nbgrader or nbformat (several seconds on a busy machine);
* ``--server``: a per-user check server (:mod:`autograder.checkserver`) that stays warm for
  :data:`IDLE_TIMEOUT` seconds after its last check, so the checks start without importing torch and pytest.
  One per version of the grader's and the course's code (a changed check never runs in an old server);
* ``--changed``: only the tasks whose cells changed since the last check run; the others' results come
  from a small cache (:func:`cache_path`), keyed by a hash of the cells each task can see.

Scores are the grader's (:func:`autograder.runner.format_task`); nothing here decides a score.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.notebook import NotebookError, gradable_code

TEST_PREFIX = "test_"  # as autograder.preprocessors (not imported: it imports nbgrader)
IDLE_ENV = "ODL_GRADE_SERVER_IDLE"  # seconds a per-user server waits for the next check before it exits
IDLE_TIMEOUT = 1800.0  # ... by default
CACHE_VERSION = 1
_HERE = Path(__file__).resolve().parent


class _Node(dict):
    """A dict whose keys read as attributes, as nbformat's NotebookNode (what the runner expects)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _node(value):
    if isinstance(value, dict):
        return _Node({k: _node(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_node(v) for v in value]
    return value


def read_notebook(path: str | Path):
    """A version-4 notebook read as plain JSON (sources joined), or NotebookError; other versions through
    nbformat, which converts them."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"{path}: not valid JSON ({exc}); was the notebook saved completely?") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or data.get("nbformat") != 4:
        from autograder.notebook import read_notebook as full_read

        return full_read(path)
    for cell in data["cells"]:
        if isinstance(cell, dict) and isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return _node(data)


def graded_tasks(nb) -> list[tuple[str, float]]:
    """(task, points) of every test cell the hidden checks grade, in notebook order."""
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if (cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")
                and grade_id.startswith(TEST_PREFIX)):
            out.append((grade_id[len(TEST_PREFIX):], float(meta.get("points", 0))))
    return out


def task_keys(nb) -> dict[str, str]:
    """task -> hash of the setup and answer cells above its test cell: what its checks can depend on in
    notebook order (an answer that uses an earlier one, a later answer cell that redefines an earlier
    function is not seen: run without --changed to check everything)."""
    gradable = {c.index: c.source for c in gradable_code(nb)}
    keys, digest = {}, hashlib.sha256()
    for index, cell in enumerate(nb.cells):
        if index in gradable:
            digest.update(f"{index}\0{gradable[index]}\0".encode())
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if cell.get("cell_type") == "code" and meta.get("grade") and grade_id.startswith(TEST_PREFIX):
            keys[grade_id[len(TEST_PREFIX):]] = digest.copy().hexdigest()
    return keys


def code_fingerprint() -> str:
    """The grader's and the course's code (file names, sizes, times), the Python and the sandbox mode."""
    import importlib.util

    from autograder import isolation

    course = importlib.util.find_spec("course")  # found, not imported (importing it imports torch)
    digest = hashlib.sha256(f"{sys.executable}\0{isolation.unsafe()}".encode())
    for root in (_HERE, *(Path(p).resolve() for p in (course.submodule_search_locations or []) if course)):
        for path in sorted(root.rglob("*.py")):
            st = path.stat()
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _user_folder() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "odl-grade" if base and os.path.isdir(base) else \
        Path(tempfile.gettempdir()) / f"odl-grade-{os.getuid()}"
    if len(str(folder)) > 70:  # a Unix socket's path has at most 107 bytes
        folder = Path("/tmp") / f"odl-grade-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{folder} is not private to this user (mode {st.st_mode & 0o777:o}); remove it")
    return folder


def _listening(sock: Path) -> bool:
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2)
        probe.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def user_server(wait: float = 120.0) -> str | None:
    """The address of this user's warm check server for this code, started (detached) when there is none;
    None if it cannot start (the checks then run in a fresh process, with the same results)."""
    try:
        folder = _user_folder() / f"server-{code_fingerprint()[:12]}"
    except OSError:
        return None
    sock = folder / "checks.sock"
    if sock.exists():
        if _listening(sock):
            return str(sock)
        sock.unlink(missing_ok=True)  # a server that ended (idle, killed): start another
    folder.mkdir(mode=0o700, exist_ok=True)
    lock = folder / "starting"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another check is starting it: wait for it (or for a stale lock to age)
        fd = None
        if time.time() - lock.stat().st_mtime > wait:
            lock.unlink(missing_ok=True)
            return user_server(wait)
    waiter_proc = None
    if fd is not None:
        os.close(fd)
        env = dict(os.environ)
        env.pop("AUTOGRADER_CHECK_SERVER", None)
        # The sandbox (bwrap --die-with-parent) ends with the process that started it: a small waiter, in its own
        # session, is that process, so the server outlives this check.
        waiter = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
        with open(folder / "server.log", "w") as log:
            waiter_proc = subprocess.Popen([sys.executable, "-c", waiter, sys.executable, "-m", "autograder.checkserver", str(sock),
                              "--idle-timeout", os.environ.get(IDLE_ENV, str(IDLE_TIMEOUT))], env=env, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(folder))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if sock.exists():
            lock.unlink(missing_ok=True)
            return str(sock)
        if waiter_proc is not None and waiter_proc.poll() is not None:
            break  # it failed to start (server.log says why)
        time.sleep(0.05)
    lock.unlink(missing_ok=True)
    return None


def cache_path(notebook: str | Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "odl-grade" / "check"
    name = hashlib.sha256(str(Path(notebook).resolve()).encode()).hexdigest()[:20]
    return base / f"{name}.json"


def _load_cache(path: Path, assignment_id: str, fingerprint: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("version") != CACHE_VERSION or data.get("assignment") != assignment_id \
            or data.get("code") != fingerprint:
        return {}
    return data.get("tasks", {})


def _task_to_json(result) -> dict:
    return {"checks": [{"function": c.function, "passed": c.passed, "message": c.message} for c in result.checks],
            "declared": [p.to_json() for p in result.declared] if result.declared else None}


def _task_from_json(task: str, data: dict):
    from autograder.runner import CheckResult, TaskResult
    from autograder.scoring import Part

    declared = [Part.from_json(p) for p in data["declared"]] if data.get("declared") else None
    return TaskResult(task, [CheckResult(**c) for c in data["checks"]], declared=declared)


def check(notebook: str | Path, assignment, *, server: bool = False, changed: bool = False, out=None) -> int:
    """Print the report on ``notebook``; return 0 (2: the notebook could not be read)."""
    from autograder.runner import Report, format_task, run_checks, start_checks

    out = out or sys.stdout
    nb = read_notebook(notebook)
    tasks = graded_tasks(nb)
    keys = task_keys(nb)
    fingerprint = code_fingerprint()
    cached = _load_cache(cache_path(notebook), assignment.id, fingerprint) if changed else {}
    reuse = {t for t, _ in tasks if t in cached and cached[t].get("key") == keys.get(t)}
    to_run = [t for t, _ in tasks if t not in reuse]
    if to_run or not tasks:
        address = user_server() if server else None
        if address:
            report = start_checks(nb, assignment, server=address,
                                  tasks=to_run if reuse else None).result()
        else:
            report = run_checks(nb, assignment) if not reuse else \
                start_checks(nb, assignment, tasks=to_run).result()
    else:
        report = Report({}, [])
    clean = not (report.problem or report.tampering or report.restarts)
    for t in reuse:
        report.tasks[t] = _task_from_json(t, cached[t])
    if reuse and not to_run:  # nothing ran: the cells' errors of the last run
        report.cell_errors = next((cached[t].get("cell_errors", []) for t in reuse), [])
    from autograder.sandbox import NOTES_TASK  # what the checking process noted on the whole run (torch defaults)

    for note in (c.message for c in report.task(NOTES_TASK).checks if c.message):
        print(f"Note: {note}", end="\n\n", file=out)
    total = earned = 0.0
    for task, points in tasks:
        text, score = format_task(report, task, points)
        print(text, end="\n\n", file=out)
        total += points
        earned += score
    if reuse:
        print(f"Unchanged since the last check, results from then: {', '.join(t for t, _ in tasks if t in reuse)}"
              " (run without --changed to check everything again)", file=out)
    print(f"Total: {earned:g} / {total:g} points", file=out)
    if clean and report.tasks:
        store = {t: dict(_task_to_json(report.tasks[t]), key=keys.get(t), cell_errors=report.cell_errors)
                 for t, _ in tasks if t in report.tasks}
        path = cache_path(notebook)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "assignment": assignment.id, "code": fingerprint,
                                       "tasks": store}))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the next --changed check runs everything
    return 0
