"""A warm process that forks the checking processes, so each submission skips Python's, torch's and pytest's start.

A fresh checking process (see :mod:`autograder.runner`) spends about 3.5 s of CPU before it checks
anything: the interpreter, ``import torch``, pytest, and ``torch._dynamo``, which every
``torch.optim`` step imports. The check server pays that once: it imports them, listens on a
Unix socket, and forks one child per request. The child is the checking process, exactly as a
fresh one would be from there on: it starts its own session, arms its own guard and memory limit
(the server never arms one and never runs student code), runs ``pytest.main`` with the runner's
arguments, and exits; the server reports its exit status back on the request's connection.

    python -m autograder.checkserver SOCKET        # or: odl-grade check-server SOCKET
    AUTOGRADER_CHECK_SERVER=SOCKET nbgrader autograde ...

``odl-grade autograde`` starts one per worker by itself. Without ``AUTOGRADER_CHECK_SERVER``, or
when the server cannot be reached, the runner starts a fresh process as before.

Safety. The server runs in a sandbox (:mod:`autograder.isolation`): it and every child see only
the read-only environment, its socket's folder and its spool (``<socket folder>-spool``, where the
runner puts each submission's scratch folder). It accepts requests only from outside that sandbox
(``SO_PEERCRED`` gives 0 as the pid of a process outside its pid namespace), so a submission
cannot ask for a checking process of its own; and when its last child ends it kills whatever else
runs in the sandbox (daemons, forks), so nothing of one submission sees the next. The socket lives
in a folder only its owner can enter, and the graders' guards refuse student code a connection to
it (``socket.connect`` is audited) as a second layer. The server never initializes CUDA or an OpenMP thread pool (both
are unsafe to fork): children do that themselves. A child whose client goes away (nbgrader
killed) is killed with its process group.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

ENV = "AUTOGRADER_CHECK_SERVER"
SANDBOXED_ENV = "AUTOGRADER_CHECK_SERVER_SANDBOXED"  # set inside the sandbox the server runs in
_REQUEST_LIMIT = 1 << 20  # bytes: one JSON request line


# ----------------------------------------------------------------------------------------------- server
def warm_up() -> None:
    """Import what every checking process needs, without starting CUDA or a thread pool."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(1)  # no OpenMP pool before fork; children choose their own thread count
    import torch._dynamo  # noqa: F401 - imported by the first torch.optim step: 1.3-2 s
    import torch.nn.functional  # noqa: F401
    import torch.optim  # noqa: F401
    import torch.utils.data  # noqa: F401

    import pytest  # noqa: F401
    import _pytest.assertion.rewrite  # noqa: F401
    import _pytest.fixtures  # noqa: F401
    import _pytest.main  # noqa: F401
    import _pytest.python  # noqa: F401
    import _pytest.runner  # noqa: F401
    import _pytest.terminal  # noqa: F401

    import numpy  # noqa: F401

    import course  # noqa: F401 - the checks load their data through it
    import autograder.compare  # noqa: F401
    import autograder.plugin  # noqa: F401
    import autograder.references  # noqa: F401


def _child(request: dict, listener: socket.socket, conn: socket.socket) -> None:
    """In the forked child: become a fresh checking process and run pytest; never returns."""
    code = 70
    try:
        os.setsid()  # its own process group: the runner kills the group, student code's children included
        listener.close()
        conn.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(devnull)
        os.close(out)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        if isinstance(request.get("env"), dict):  # the caller's environment, as a fresh process would inherit it
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        sys.path[0] = request["cwd"]  # what `python -m pytest` run there would have, not the server's folder
        import numpy

        numpy.random.seed()  # as a fresh process would be (random reseeds itself after fork)
        import pytest

        sys.argv = ["pytest", *request["args"]]
        code = int(pytest.main(request["args"]))
    except BaseException:  # noqa: BLE001 - report anything as the exit status; the runner reads the output
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _peer_pid(conn: socket.socket) -> int:
    """The pid of the process at the other end, as this process's pid namespace numbers it (0: outside it)."""
    import struct

    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return -1
    return struct.unpack("3i", creds)[0]


def _end_stragglers() -> None:
    """Kill every process in this sandbox but its init and this server: what a checked submission left running.

    Only called inside a sandbox, whose pid namespace holds nothing else, when no child is running."""
    me = os.getpid()
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (1, me):
                continue
            try:
                os.kill(int(entry), signal.SIGKILL)
                found = True
            except (ProcessLookupError, PermissionError):
                pass
        if not found:
            break
        while True:  # reap the ones that were ours
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.01)


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass


def _read_request(conn: socket.socket) -> dict:
    data = b""
    conn.settimeout(10)
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) > _REQUEST_LIMIT:
            raise ValueError("incomplete request")
        data += chunk
    request = json.loads(data)
    if not isinstance(request.get("args"), list) or not all(isinstance(a, str) for a in request["args"]):
        raise ValueError("request needs args: a list of strings")
    for key in ("cwd", "output"):
        if not isinstance(request.get(key), str):
            raise ValueError(f"request needs {key}: a path")
    return request


def _check_private(folder: Path) -> None:
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise SystemExit(f"check server: {folder} must belong to you and be closed to others (chmod 700)")


def serve(path: str | os.PathLike, *, idle_timeout: float | None = None, ready=None,
          parent: int | None = None) -> None:
    """Listen on ``path`` and fork a checking process per request, until SIGTERM/SIGINT, ``idle_timeout``
    seconds without requests, or (``parent``) the end of the process with that pid."""
    path = Path(path)
    folder = path.parent
    sandboxed = os.environ.get(SANDBOXED_ENV) == "1"
    folder.mkdir(parents=True, exist_ok=True)
    _check_private(folder)
    warm_up()
    if path.exists() or path.is_symlink():
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(64)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: dict[int, socket.socket] = {}  # pid -> the connection that asked for it
    last_activity = time.monotonic()
    if ready is not None:
        ready()
    try:
        while not stopping:
            try:
                readable, _, _ = select.select([listener, *children.values()], [], [], 0.05)
            except InterruptedError:
                continue
            for sock in readable:
                if sock is listener:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    if sandboxed and _peer_pid(conn) != 0:
                        # A process inside this sandbox (student code of a checking process) asked: refused. The
                        # grader is outside the sandbox's pid namespace, where its pid reads as 0.
                        _send(conn, {"error": "requests are accepted only from outside the sandbox"})
                        conn.close()
                        continue
                    if sandboxed and not children:
                        _end_stragglers()  # nothing of an earlier submission may see this one's files
                    try:
                        request = _read_request(conn)
                    except (OSError, ValueError) as exc:
                        _send(conn, {"error": str(exc)})
                        conn.close()
                        continue
                    pid = os.fork()
                    if pid == 0:
                        _child(request, listener, conn)
                    children[pid] = conn
                    # In a sandbox the pid is this pid namespace's: the client must not signal it (it would name
                    # another process outside); it asks the server instead (ServedProcess.kill).
                    _send(conn, {"pid": pid, "namespaced": sandboxed})
                    last_activity = time.monotonic()
                else:  # the client asked to kill its child ("kill"), or went away: the child has no one to report to
                    pid = next(p for p, c in children.items() if c is sock)
                    try:
                        sock.setblocking(False)
                        sock.recv(4096)  # drained, so the connection is not readable again for the same request
                    except OSError:
                        pass
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            while children:
                try:
                    pid, wait_status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = children.pop(pid, None)
                if sandboxed and not children:
                    _end_stragglers()  # daemons and forks of the submission just checked: before it is reported
                if conn is not None:
                    _send(conn, {"returncode": os.waitstatus_to_exitcode(wait_status)})  # as Popen.returncode
                    conn.close()
                last_activity = time.monotonic()
            if idle_timeout is not None and not children and time.monotonic() - last_activity > idle_timeout:
                break
            if parent is not None and os.getppid() != parent:  # the grader that started it is gone
                break
    finally:
        for pid, conn in children.items():
            try:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError, PermissionError):
                pass
            conn.close()
        listener.close()
        try:
            path.unlink()
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------- client
class ServedProcess:
    """A checking process forked by a check server, with the parts of ``subprocess.Popen`` the runner uses."""

    def __init__(self, address: str, args: list[str], *, cwd: str, output: str, env: dict[str, str]):
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._conn.settimeout(10)
        self._buffer = b""
        self.returncode: int | None = None
        try:
            self._conn.connect(address)
            self._conn.sendall((json.dumps({"args": args, "cwd": cwd, "output": output, "env": env}) + "\n")
                               .encode())
            reply = self._message(10.0)
        except BaseException:
            self._conn.close()
            raise
        if reply is None or "pid" not in reply:
            self._conn.close()
            raise OSError(f"the check server refused the request: {reply}")
        self.pid = int(reply["pid"])
        self.namespaced = bool(reply.get("namespaced"))  # pid is the server's sandbox's, not ours

    def _message(self, timeout: float | None) -> dict | None:
        """The next message from the server within ``timeout`` seconds (None: none yet)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._conn.settimeout(left)
            try:
                chunk = self._conn.recv(4096)
            except (socket.timeout, TimeoutError):
                return None
            if not chunk:
                raise ConnectionError("the check server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        try:
            message = self._message(timeout)
        except (OSError, ValueError):  # the server died: end its child too, and report it as killed
            self._kill_group()
            message = {"returncode": -signal.SIGKILL}
        if message is None:
            import subprocess

            raise subprocess.TimeoutExpired("checking process", timeout)
        self.returncode = int(message["returncode"])
        self._conn.close()
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                return self.wait(0.0)
            except Exception:  # noqa: BLE001 - still running
                return None
        return self.returncode

    def kill(self) -> None:
        """Have the server kill the child and its process group (wait() then reports how it ended)."""
        if self.returncode is not None:
            return
        try:
            self._conn.sendall(b"kill\n")
        except OSError:  # the server is gone
            self._kill_group()

    def _kill_group(self) -> None:
        if self.namespaced:  # the server's sandbox ended with it, and its children with the sandbox
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def configured_address() -> str | None:
    """The server named by AUTOGRADER_CHECK_SERVER (None when it is unset or 'off')."""
    address = os.environ.get(ENV)
    return address if address and address != "off" else None


def reachable(address: str | None) -> bool:
    return bool(address) and os.path.exists(address)


def socket_folder() -> Path:
    """A fresh private folder for a server's socket (and, beside it, its spool: see :func:`spool_folder`)."""
    return Path(tempfile.mkdtemp(prefix="autograder-checkserver-"))


def spool_folder(server: "str | CheckServer | None") -> str | None:
    """Where the scratch folders of the checks ``server`` forks must be: ``<socket folder>-spool``, the one
    folder of the grader's a sandboxed server sees read-write besides its socket's (None: no server, or none)."""
    if isinstance(server, CheckServer):
        folder = str(server.folder) if server.folder is not None else None
    elif isinstance(server, str):
        folder = os.path.dirname(os.path.abspath(server))
    else:
        folder = None
    if folder is None:
        return None
    spool = folder + "-spool"
    return spool if os.path.isdir(spool) else None


def sandboxed_command(cmd: list[str], folder: Path, env: dict[str, str], boxes: list | None = None
                      ) -> tuple[list[str], dict[str, str]]:
    """``cmd`` (a check server) as run in its sandbox: it sees its socket's folder, its spool and the read-only
    environment, and lasts as long as the grading (the limits are the whole server's, shared by its children)."""
    from autograder import isolation

    spool = Path(str(folder) + "-spool")
    spool.mkdir(mode=0o700, exist_ok=True)
    box = isolation.Sandbox(writable=[str(folder), str(spool)], autograder=True, max_processes=512,
                            max_cpu_seconds=7 * 24 * 3600)
    if boxes is not None:
        boxes.append(box)  # the caller cleans it up (its cgroup) when the server ends
    keep = {k: env[k] for k in ("ODL_GRADING_CPUS",) if k in env}
    return box.command(cmd), isolation.sandbox_env(env, **keep, **{SANDBOXED_ENV: "1"})


class CheckServer:
    """A check server in a child process, for a ``with`` block (what ``odl-grade autograde`` runs per worker).

    ``cpus``: pin the server, and so every checking process it forks, to these CPUs. ``log``: where its
    output goes (default: discarded). :attr:`address` is None if it could not start: graders then start
    fresh checking processes, as without a server.
    """

    def __init__(self, cpus: tuple[int, ...] = (), log: str | os.PathLike | None = None, start_timeout: float = 120.0,
                 exit_with_parent: bool = False):
        self.cpus, self.log, self.start_timeout = tuple(cpus), log, start_timeout
        self.exit_with_parent = exit_with_parent
        self.address: str | None = None
        self.error = ""
        self._proc = None
        self.folder: Path | None = None  # the socket's private folder, from start() on (guards protect it)
        self._boxes: list = []  # its sandbox, cleaned up by stop()

    def start(self) -> "CheckServer":
        """Start the process (it warms up in the background; :meth:`wait_ready` waits for it)."""
        import subprocess

        from autograder.gradebook import CPUS_VARIABLE

        self.folder = socket_folder()
        self._path = self.folder / "checks.sock"
        env = dict(os.environ)
        env.pop(ENV, None)
        if self.cpus:
            env[CPUS_VARIABLE] = ",".join(map(str, self.cpus))
        out = open(self.log, "w") if self.log else subprocess.DEVNULL
        try:
            cmd = [sys.executable, "-m", "autograder.checkserver", str(self._path)]
            if self.exit_with_parent:
                cmd.append("--exit-with-parent")
            from autograder import isolation

            if isolation.required():
                cmd, env = sandboxed_command(cmd, self.folder, env, self._boxes)
            self._proc = subprocess.Popen(cmd,
                                          env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        finally:
            if self.log:
                out.close()
        return self

    def wait_ready(self) -> str | None:
        """The socket's path once the server listens; None (and :attr:`error`) if it failed or took too long."""
        if self.address or self.error or self._proc is None:
            return self.address
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._path.exists():
                self.address = str(self._path)
                return self.address
            if self._proc.poll() is not None:
                self.error = f"the check server exited with status {self._proc.returncode}"
                return None
            time.sleep(0.05)
        self.error = f"the check server was not ready after {self.start_timeout:g} s"
        self._end_process()  # its folders stay until stop(): a caller may have put a scratch folder in the spool
        return None

    def stop(self) -> None:
        self._end_process()
        for box in self._boxes:
            box.cleanup()
        if self.folder is not None:
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)
            shutil.rmtree(str(self.folder) + "-spool", ignore_errors=True)
        self.address = None
        if not self.error:
            self.error = "stopped"

    def _end_process(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except Exception:  # noqa: BLE001 - stuck: kill it and what it forked
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self._proc.wait()
        self.address = None

    def __enter__(self) -> "CheckServer":
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_PROCESS_SERVER: CheckServer | None = None


def process_server() -> CheckServer:
    """This process's own check server: started (in the background) on first use, stopped when the process ends.

    A grader that checks several submissions (``nbgrader autograde`` of a whole class, one process) pays the
    warm-up once; for one submission it costs about what a fresh checking process would.
    """
    global _PROCESS_SERVER
    if _PROCESS_SERVER is None:
        import atexit

        _PROCESS_SERVER = CheckServer(exit_with_parent=True).start()
        atexit.register(_PROCESS_SERVER.stop)
    return _PROCESS_SERVER


def protected_folders(server: "str | CheckServer | None" = None) -> list[str]:
    """The folders of the check servers this process may use (``server``, AUTOGRADER_CHECK_SERVER's, its own):
    student code must not reach their sockets."""
    addresses = [configured_address(), server if isinstance(server, str) else None]
    folders = [os.path.dirname(os.path.abspath(a)) for a in addresses if a]
    for own in (_PROCESS_SERVER, server if isinstance(server, CheckServer) else None):
        if own is not None and own.folder is not None:
            folders.append(str(own.folder))
    return list(dict.fromkeys(folders))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odl-grade check-server", description=__doc__.split("\n\n")[0])
    parser.add_argument("socket", nargs="?", help="socket path (default: a new private folder in the temp dir)")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="exit after this many seconds without requests (default: run until stopped)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="exit when the process that started it ends (how graders start their own)")
    args = parser.parse_args(argv)
    from autograder.gradebook import CPUS_VARIABLE, parse_cpus, pin_to

    cpus = os.environ.pop(CPUS_VARIABLE, "")
    if cpus and hasattr(os, "sched_setaffinity"):
        pin_to(parse_cpus(cpus))
    path = Path(args.socket) if args.socket else socket_folder() / "checks.sock"
    if os.environ.get(SANDBOXED_ENV) != "1":
        from autograder import isolation

        folder = path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private(folder)
        if isolation.required():  # run in its own sandbox, as the graders' servers do
            rest = [str(path.resolve())] + (["--idle-timeout", str(args.idle_timeout)] if args.idle_timeout else [])
            if cpus:
                os.environ[CPUS_VARIABLE] = cpus
            cmd, env = sandboxed_command([sys.executable, "-m", "autograder.checkserver", *rest],
                                         path.parent.resolve(), dict(os.environ))
            os.execve(cmd[0], cmd, env)

    def ready():
        print(f"check server ready: export {ENV}={path}", flush=True)

    serve(path, idle_timeout=args.idle_timeout, ready=ready, parent=os.getppid() if args.exit_with_parent else None)
    sys.stdout.flush()
    os._exit(0)  # nothing left to clean up; tearing down torch's interpreter state would keep graders waiting ~1 s


if __name__ == "__main__":
    sys.exit(main())
