"""OS-level isolation of student code: every process that runs it is started inside a bubblewrap sandbox.

The audit-hook guard (:mod:`autograder.sandbox`) sees what Python does; it cannot stop code that
reaches the operating system some other way. So the student's kernel, the checking process and
the check server that forks checking processes all start inside `bubblewrap
<https://github.com/containers/bubblewrap>`_ (Debian's ``bubblewrap`` package), with:

* a private view of the file system built from nothing: the system's programs and libraries
  (``/usr`` and a few files of ``/etc``), Python and its packages (``sys.prefix``,
  ``sys.base_prefix``), the ``course`` package, the data folder, all read-only; the submission's own
  scratch folders read-write; an empty, size-limited ``/tmp``; nothing else. No gradebook, no
  ``solutions/``, no other student's folder, no exchange, no feedback, no class summary. The
  kernel sees of the ``autograder`` package only its guard (``autograder/sandbox.py``), never the
  checks or references (the checking process must see those: it runs the checks);
* its own user namespace (user ``nobody`` inside), pid namespace (it sees and can signal only its
  own processes, and all of them end with it), network namespace (no network, not even the
  grader's sockets on localhost), IPC and UTS namespaces, and a new session (no terminal);
* an environment with only the variables it needs (no ``PGPASSWORD``, tokens, ``HOME``);
* limits: processes (a pids cgroup where the grader may create one, else ``RLIMIT_NPROC``), the
  size of each file it writes (``RLIMIT_FSIZE``), open files, CPU seconds, and ``/tmp``'s size.
  Memory is limited inside (``RLIMIT_AS``, see ``c.HiddenChecks.memory_limit_mb``).

Paths inside are the same as outside, so reports, sockets and working folders need no translation.

Where ``bwrap`` is missing (or cannot create namespaces), grading refuses to run student code and
says how to install it. ``odl-grade ... --unsafe-no-sandbox`` (or ``AUTOGRADER_UNSAFE_NO_SANDBOX=1``)
runs it unconfined, behind the Python guard only: for trusted settings such as checking your own
work.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

UNSAFE_ENV = "AUTOGRADER_UNSAFE_NO_SANDBOX"
BWRAP_ENV = "AUTOGRADER_BWRAP"  # the bwrap program to use (default: bwrap on PATH)
SANDBOX_UID = 65534  # nobody

INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install bubblewrap`; "
    "Arch: `sudo pacman -S bubblewrap`). For a trusted setting such as checking your own work, you may instead run "
    "without it: `odl-grade ... --unsafe-no-sandbox` or AUTOGRADER_UNSAFE_NO_SANDBOX=1 (student code then runs with "
    "your rights, behind the Python guard only)."
)

# Variables a sandboxed process keeps; everything else (passwords, tokens, the grader's paths) is dropped.
_KEPT_ENV = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "MPLBACKEND", "PYTHONHASHSEED", "PYTHONPATH",
             "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONWARNINGS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
             "NBGRADER_EXECUTION", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "SOURCE_DATE_EPOCH"}
_KEPT_PREFIXES = ("LC_", "COURSE_", "TORCH_")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The parts of /etc programs read to start (dynamic linker, users, time zone, certificates, fonts);
# not the rest (no /etc/shadow, no service configuration or credentials).
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime",
        "timezone", "hosts", "ssl", "ca-certificates", "fonts", "alternatives", "mime.types", "os-release",
        "debian_version", "matplotlibrc", "host.conf")


# What the kernel sees of the autograder: its guard (autograder.sandbox), which it arms before any cell runs.
GUARD_FILES = ("__init__.py", "sandbox.py")


class SandboxUnavailable(RuntimeError):
    """Student code would have to run without the sandbox, and nobody said that is acceptable."""


def unsafe() -> bool:
    """True when the instructor chose to run student code without the sandbox."""
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def bwrap_program() -> str | None:
    configured = os.environ.get(BWRAP_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=None)
def _probe(program: str) -> str:
    """'' if ``program`` can build a sandbox here, else what went wrong."""
    try:
        done = subprocess.run([program, "--ro-bind", "/", "/", "--unshare-all", "--uid", str(SANDBOX_UID),
                               "--gid", str(SANDBOX_UID), "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def available() -> tuple[bool, str]:
    """(whether the sandbox can be used, why not)."""
    program = bwrap_program()
    if program is None:
        where = os.environ.get(BWRAP_ENV)
        return False, (f"{BWRAP_ENV}={where} is not an executable file" if where
                       else "the program `bwrap` (bubblewrap) is not installed")
    problem = _probe(program)
    if problem:
        return False, f"`{program}` cannot create a sandbox on this machine ({problem}); user namespaces may be off"
    return True, ""


def required() -> bool:
    """Whether student code must run in the sandbox; raises :class:`SandboxUnavailable` if it cannot.

    False only when the unsafe mode was chosen explicitly.
    """
    if unsafe():
        return False
    ok, why = available()
    if not ok:
        raise SandboxUnavailable(f"Refusing to run student code without a sandbox: {why}. {INSTALL_HINT}")
    return True


def sandbox_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The variables of ``env`` a sandboxed process may see, plus ``extra``."""
    kept = {k: v for k, v in env.items() if k in _KEPT_ENV or k.startswith(_KEPT_PREFIXES)}
    kept.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    kept.update(HOME="/tmp/home", USER="nobody", LOGNAME="nobody", TMPDIR="/tmp",
                MPLCONFIGDIR="/tmp/home/.matplotlib", IPYTHONDIR="/tmp/home/.ipython",
                JUPYTER_RUNTIME_DIR="/tmp/home/.jupyter-runtime", XDG_CACHE_HOME="/tmp/home/.cache")
    data = _data_dir()
    if data:  # the grader's data folder (read-only inside), not one under the sandbox's empty home: its caches
        kept.setdefault("COURSE_DATA_DIR", data)  # (the decoded MNIST split) save every process seconds
    kept.update(extra)
    return kept


def _package_dir(name: str) -> str | None:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.realpath(spec.origin))


def _data_dir() -> str | None:
    root = os.environ.get("COURSE_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "odl-course", "data")
    return os.path.realpath(root) if os.path.isdir(root) else None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class Sandbox:
    """One sandbox: what it may read and write; :meth:`command` wraps a program to run inside it.

    ``writable``: folders bound read-write at the same path (they must exist); ``binds``: folders bound
    read-write at another path (a scratch copy where the original was). ``readable``: more
    read-only paths. ``autograder``: whether the ``autograder`` package is visible (the checking
    process runs the checks; the kernel must not see them). ``hidden``: paths inside what is
    visible that stay empty. ``cwd``: the working folder inside.
    """

    writable: list[str] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)  # (folder, where it appears inside), read-write
    readable: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    autograder: bool = False
    cwd: str | None = None
    max_processes: int = 256
    max_file_mb: int = 512
    max_open_files: int = 1024
    max_cpu_seconds: int = 3600
    tmp_mb: int = 256
    name: str = field(default_factory=lambda: f"odl-sandbox-{uuid.uuid4().hex[:12]}")

    def _readonly(self) -> list[str]:
        paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
        # The venv's python is a link into the base installation; both are bound.
        for package in ("course",) + (("autograder",) if self.autograder else ()):
            found = _package_dir(package)
            if found:
                paths.add(found)
        data = _data_dir()
        if data:
            paths.add(data)
        paths.update(os.path.realpath(p) for p in self.readable if os.path.exists(p))
        # Drop a path already inside another one (bwrap would bind it twice).
        ordered = sorted(paths, key=len)
        return [p for i, p in enumerate(ordered) if not any(_inside(p, q) for q in ordered[:i])]

    def _hidden(self, visible: list[str]) -> list[str]:
        hidden = list(self.hidden)
        if not self.autograder:
            found = _package_dir("autograder")
            if found:
                hidden.append(found)
        return [os.path.realpath(h) for h in hidden
                if os.path.exists(h) and any(_inside(os.path.realpath(h), v) for v in visible)]

    def _guard_files(self) -> list[str]:
        """Without the autograder, the kernel still needs its guard: the package's __init__ and sandbox.py only
        (no checks, no references, no solutions)."""
        if self.autograder:
            return []
        found = _package_dir("autograder")
        return [os.path.join(found, name) for name in GUARD_FILES] if found else []

    def bwrap_args(self) -> list[str]:
        args = ["--unshare-all", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--die-with-parent",
                "--new-session", "--hostname", "sandbox", "--cap-drop", "ALL"]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for name in _ETC:
            path = os.path.join("/etc", name)
            if os.path.lexists(path):
                args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev"]
        if os.path.isdir("/sys/devices/system/cpu"):  # torch's cpuinfo reads the CPU topology
            args += ["--ro-bind", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        for device in sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri")):  # GPUs, when there
            args += ["--dev-bind", device, device]
        if glob.glob("/dev/nvidia*") and os.path.isdir("/proc/driver/nvidia"):
            args += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia", "--ro-bind", "/sys", "/sys"]
        args += ["--size", str(self.tmp_mb << 20), "--tmpfs", "/tmp", "--dir", "/tmp/home"]
        visible = self._readonly()
        for path in visible:
            args += ["--ro-bind", path, path]
        for path in self._hidden(visible):
            args += (["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path])
        for path in self._guard_files():
            args += ["--ro-bind", path, path]
        for path in self.writable:
            real = os.path.realpath(path)
            args += ["--bind", real, real]
            if real != os.path.abspath(path):
                args += ["--symlink", real, os.path.abspath(path)]
        for source, target in self.binds:
            args += ["--bind", os.path.realpath(source), os.path.abspath(target)]
        if self.cwd:
            args += ["--chdir", os.path.abspath(self.cwd)]
        return args

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as run inside this sandbox, under its limits."""
        program = bwrap_program()
        if program is None:
            raise SandboxUnavailable(available()[1] + ". " + INSTALL_HINT)
        limits = {"nproc": self.max_processes, "fsize": self.max_file_mb << 20, "nofile": self.max_open_files,
                  "cpu": self.max_cpu_seconds, "cgroup": self.name}
        return [sys.executable, "-S", "-c", _LAUNCHER, json.dumps(limits), program, *self.bwrap_args(), "--",
                *argv]

    @staticmethod
    def cgroup_supported() -> bool:
        """Whether this grader may make the pids cgroups that limit each sandbox's processes."""
        return os.access(_PIDS_V1, os.W_OK) or (os.access(os.path.join(_V2, "cgroup.subtree_control"), os.W_OK)
                                                and "pids" in _read(os.path.join(_V2, "cgroup.controllers")))

    def cgroup(self) -> str | None:
        for base in (_PIDS_V1, _V2):
            path = os.path.join(base, self.name)
            if os.path.isdir(path):
                return path
        return None

    def cleanup(self) -> None:
        """Kill whatever is left in the sandbox's cgroup and remove it (the pid namespace ends with bwrap)."""
        path = self.cgroup()
        if path is None:
            return
        for _ in range(50):
            try:
                pids = [int(p) for p in Path(path, "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            import time

            time.sleep(0.02)
        try:
            os.rmdir(path)
        except OSError:
            pass
        sweep_cgroups()


def sweep_cgroups() -> None:
    """Remove the empty cgroups of sandboxes whose owner ended without cleaning up (killed graders)."""
    for base in (_PIDS_V1, _V2):
        for path in glob.glob(os.path.join(base, "odl-sandbox-*")):
            try:
                if not Path(path, "cgroup.procs").read_text().strip():
                    os.rmdir(path)  # fails, harmlessly, if a process joined it meanwhile
            except OSError:
                pass


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


_PIDS_V1 = "/sys/fs/cgroup/pids"
_V2 = "/sys/fs/cgroup"

# Runs before bwrap (python -S: no site, a few ms): a pids cgroup if one can be made, then the limits, then exec.
_LAUNCHER = r"""
import json, os, resource, sys
limits = json.loads(sys.argv[1])
for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
    path = os.path.join(base, limits["cgroup"])
    try:
        os.mkdir(path)
    except OSError:
        continue
    try:
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(limits["nproc"]))
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
        break
    except OSError:
        try:
            os.rmdir(path)
        except OSError:
            pass
for name, key in (("RLIMIT_NPROC", "nproc"), ("RLIMIT_FSIZE", "fsize"), ("RLIMIT_NOFILE", "nofile"),
                  ("RLIMIT_CPU", "cpu")):
    soft, hard = resource.getrlimit(getattr(resource, name))
    value = limits[key] if hard == resource.RLIM_INFINITY else min(limits[key], hard)
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (ValueError, OSError):
        pass
os.execv(sys.argv[2], sys.argv[2:])
"""
