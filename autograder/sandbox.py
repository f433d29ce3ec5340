"""Guards around student code while it is graded: in the student's kernel and in the checking process.

Python cannot sandbox code that runs in the same process, so this module does
the two things it can do well, and the grader treats what they find as
tampering (the submission earns nothing, and the instructor's summary says why):

* :class:`Guard` — an audit hook (:func:`sys.addaudithook`, which cannot be
  removed once added). Once armed it **blocks** reading the grader's files
  (hidden checks, references, the instructor's solutions, other students'
  folders, the gradebook) and writing inside the course folder outside the
  submission's own folder; it blocks starting programs and the ``gc`` and
  ``sys._current_frames`` routes to other code's objects. Frame inspection
  from student code (``sys._getframe``, ``inspect.currentframe``, a
  traceback's frames) is allowed but reported, since it is how code reaches
  the checks' variables. Each violation is recorded (and, in the kernel,
  appended to a log file the grader reads afterwards).
* :class:`Snapshot` — the identity of every attribute of the modules the checks
  rely on (torch, ``torch.Tensor``, builtins, pytest, the autograder, the course
  library, torch.optim and the methods of the classes defined there), taken
  before student code runs and compared afterwards: monkeypatching
  ``torch.allclose``, ``builtins.AssertionError``, ``torch.optim.SGD.step`` or a
  check helper shows up as a changed attribute. What torch's own setters change
  (``torch.set_default_dtype`` rebinds ``torch.Storage``) is state, not tampering.

What this does not stop: code that finds the checks' objects through routes
that raise no audit event (for example walking ``sys.modules``). The checks
never run in the kernel, the feedback never shows them, and the obvious routes
are reported; see README "Grading" for the threat model.
"""
from __future__ import annotations

import os
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

# File names of code the student wrote: cells executed by the checks are compiled as
# "<cell N (grade_id)>"; IPython compiles a kernel cell to ".../ipykernel_<pid>/<hash>.py".
STUDENT_MARKERS = ("<cell", "ipykernel_", "<ipython-input")

TAMPER_PREFIX = "blocked by the grader"
# Records of this pseudo-task in a checking process's report are notes on the whole grading, not checks.
NOTES_TASK = "_grader_notes"

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {  # event -> (index of the path argument(s), whether it modifies)
    "os.remove": ((0,), True), "os.rmdir": ((0,), True), "os.mkdir": ((0,), True),
    "os.rename": ((0, 1), True), "os.replace": ((0, 1), True), "os.link": ((0, 1), True),
    "os.symlink": ((0, 1), True), "os.truncate": ((0,), True), "os.chmod": ((0,), True),
    "os.chown": ((0,), True), "os.utime": ((0,), True), "shutil.rmtree": ((0,), True),
    "shutil.copyfile": ((1,), True), "shutil.move": ((1,), True), "os.listdir": ((0,), False),
    "os.scandir": ((0,), False),
}
_PROGRAM_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn",
                   "os.startfile"}
_REACH_EVENTS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"}
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}


# Modules through which code reads files on someone's behalf (the request is theirs) ...
_TRANSPARENT = {"pathlib.py", "io.py", "_pyio.py", "codecs.py", "tokenize.py", "linecache.py", "inspect.py",
                "shutil.py", "glob.py", "fileinput.py", "os.py", "genericpath.py", "posixpath.py", "zipfile.py",
                "tarfile.py", "runpy.py", "pkgutil.py", "__init__.py"}
# ... and the modules that read source lines to show a warning or a traceback.
_DIAGNOSTIC = {"warnings.py", "traceback.py"}


def _is_student_file(filename: str) -> bool:
    return any(marker in filename for marker in STUDENT_MARKERS)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


@dataclass
class Guard:
    """The rules of an audit hook; call :meth:`arm` to start enforcing them (for the rest of the process).

    ``protected``: files and folders student code may neither read nor change.
    ``readonly``: folders it may read but not change (e.g. the course folder).
    ``writable``: folders inside those it may change (its own submission folder, scratch space).
    ``modules``: top-level module names student code may not import (e.g. the autograder).
    """

    protected: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    log_path: str | None = None
    violations: list[str] = field(default_factory=list)

    def __post_init__(self):
        norm = lambda paths: tuple(sorted({os.path.realpath(p) for p in paths}))  # noqa: E731
        self.protected, self.readonly, self.writable = norm(self.protected), norm(self.readonly), norm(self.writable)
        self.modules = tuple(self.modules)
        self._busy = threading.local()
        self._log_fd = None

    # -- what the hook decides -------------------------------------------------------------
    def _violation(self, what: str, *, block: bool = True) -> None:
        where = self._student_location()
        message = f"{what}{where}"
        self.violations.append(message)
        if self._log_fd is not None:
            try:
                os.write(self._log_fd, (message.replace("\n", " ") + "\n").encode())
            except OSError:
                pass
        if block:
            raise PermissionError(f"{TAMPER_PREFIX}: {what}")

    def _student_location(self) -> str:
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if _is_student_file(name):
                label = f"your {name.strip('<>')}" if name.startswith("<") else "a notebook cell"
                return f" (in {label}, line {frame.f_lineno})"
            frame = frame.f_back
        return ""

    def _student_on_stack(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if _is_student_file(frame.f_code.co_filename):
                return True
            frame = frame.f_back
        return False

    def _caller_is_student(self) -> bool:
        """Whether the code that triggered the event is a student's cell (directly, or through inspect)."""
        frame = sys._getframe(3)  # 0 this, 1 _check, 2 hook, 3 the caller of the audited operation
        while frame is not None and frame.f_code.co_filename.endswith(("inspect.py", "traceback.py")):
            if frame.f_code.co_filename.endswith("traceback.py"):
                return False  # printing a traceback is fine
            frame = frame.f_back
        return frame is not None and _is_student_file(frame.f_code.co_filename)

    def _reader_is_student(self) -> bool:
        """Whether student code asked for this file: directly, or through file-reading helpers.

        Reads made to show a warning or a traceback (source lines of the frames involved) are the
        interpreter's own, whoever is on the stack: they happen at arbitrary moments (a finalizer
        warning during a student's cell) and show nothing to the student here.
        """
        frame = sys._getframe(4)  # 0 this, 1 _check_path, 2 _check, 3 _hook, 4 the code that opened the file
        while frame is not None:
            name = frame.f_code.co_filename
            base = os.path.basename(name)
            if _is_student_file(name):
                return True
            if base in _DIAGNOSTIC:
                return False
            if not (base in _TRANSPARENT or name.startswith("<frozen")):
                return False
            frame = frame.f_back
        return False

    def _check_path(self, path, writing: bool, event: str) -> None:
        if isinstance(path, int) or path is None:
            return
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if _inside(real, self.protected) and not _inside(real, self.writable) and (
                writing or self._reader_is_student()):
            verb = "connecting to" if event.startswith("socket.") else "changing" if writing else "reading"
            self._violation(f"{verb} {real} is not allowed while grading")
        elif writing and _inside(real, self.readonly) and not _inside(real, self.writable):
            self._violation(f"writing to {real} is not allowed while grading (only your own folder)")

    def _check(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = bool(mode and any(c in str(mode) for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            self._check_path(path, writing, event)
        elif event in _PATH_EVENTS:
            indices, writing = _PATH_EVENTS[event]
            for i in indices:
                if i < len(args):
                    self._check_path(args[i], writing, event)
        elif event == "sqlite3.connect":  # the C library opens the file: no "open" event
            database = args[0] if args else None
            if isinstance(database, (str, bytes, os.PathLike)) and os.fsdecode(database) not in ("", ":memory:"):
                self._check_path(database, True, event)
        elif event in ("socket.connect", "socket.bind"):  # a Unix socket's path, e.g. the check server's
            address = args[1] if len(args) > 1 else None
            if isinstance(address, (str, bytes)) and address and address[:1] not in ("\0", b"\0"):
                self._check_path(address, True, event)
        elif event == "import":
            name = args[0] or ""
            if name.split(".")[0] in self.modules and self._student_on_stack():
                self._violation(f"importing {name} is not allowed in graded code")
        elif event in _PROGRAM_EVENTS:
            if self._student_on_stack():
                raise PermissionError(f"{TAMPER_PREFIX}: starting programs ({event}) is not allowed while grading")
        elif event in _REACH_EVENTS:
            if self._caller_is_student():
                self._violation(f"{event}() reaches the grader's objects and is not allowed while grading")
        elif event.startswith("ctypes.") and event not in ("ctypes.get_errno", "ctypes.set_errno"):
            if self._caller_is_student():
                self._violation(f"{event} (raw memory access) is not allowed while grading")
        elif event == "sys._getframe" or (event == "object.__getattr__" and len(args) > 1
                                          and args[1] in _FRAME_ATTRS):
            if self._caller_is_student():
                self._violation("inspecting the call stack (frames) reaches the grader's variables", block=False)
        elif event == "object.__setattr__" and len(args) > 1 and args[1] in ("__code__", "__defaults__",
                                                                               "__kwdefaults__"):
            if self._caller_is_student():
                self._violation(f"replacing a function's {args[1]} is not allowed while grading")
        elif event in ("sys.settrace", "sys.setprofile", "threading.settrace", "threading.setprofile"):
            if self._caller_is_student():
                self._violation(f"{event} (watching the grader's code run) is not allowed while grading")

    def _hook(self, event: str, args: tuple) -> None:
        if getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            self._check(event, args)
        finally:
            self._busy.on = False

    def arm(self) -> "Guard":
        """Start enforcing the rules in this process (an audit hook stays for the life of the process)."""
        if self.log_path:
            self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        sys.addaudithook(self._hook)
        return self


def kernel_preamble(guard: Guard, memory_limit_mb: int = 0) -> str:
    """Python source that arms ``guard`` (and a memory limit) inside a student's kernel before any cell runs."""
    return (
        "def _autograder_arm():\n"
        "    import resource, sys\n"
        "    sys.dont_write_bytecode = True  # imports must not write into the shared, read-only packages\n"
        "    from autograder.sandbox import Guard, limit_memory\n"
        f"    limit_memory({int(memory_limit_mb)})\n"
        f"    Guard(protected={guard.protected!r}, readonly={guard.readonly!r}, writable={guard.writable!r},\n"
        f"          modules={guard.modules!r}, log_path={guard.log_path!r}).arm()\n"
        "_autograder_arm()\n"
        "del _autograder_arm\n"
        "import sys as _s; [_s.modules.pop(_m) for _m in [m for m in _s.modules if m.startswith('autograder')]]; "
        "del _s\n"
    )


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (0: no cap). Skipped when CUDA is in use: its driver maps far more."""
    if megabytes <= 0:
        return
    try:
        import resource

        import torch

        if torch.cuda.is_available():
            return
        limit = megabytes * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


# -- integrity of the modules the checks rely on ---------------------------------------------

WATCHED = (
    "builtins", "math", "operator", "functools", "json", "os", "sys", "time", "signal", "traceback", "types",
    "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.nn.modules.module", "torch.optim",
    "torch.optim.optimizer", "torch.testing", "torch.autograd", "torch.linalg", "torch._tensor",
    "pytest", "_pytest.outcomes", "_pytest.runner", "_pytest.python", "_pytest.reports", "_pytest.main",
    "_pytest.fixtures", "_pytest.assertion.rewrite", "_pytest.assertion.util", "pluggy", "pluggy._hooks",
    "pluggy._callers", "pluggy._manager",
)
# Every module under these names, and the classes defined there (their methods: a no-op ``step`` on
# torch.optim.SGD or course.RuleOptimizer, a replaced course.to_tensors). Packages the checks rely on.
WATCHED_PREFIXES = ("autograder", "course", "torch.optim")
# Imported before the snapshot (when installed) so that they are watched even when only student code imports them.
WATCHED_IMPORTS = ("course",)
_IGNORED = {"__loader__", "__spec__", "__cached__", "__builtins__", "_", "__", "___", "_ih", "_oh", "_dh",
            "In", "Out", "exit", "quit", "get_ipython", "last_traceback", "last_type", "last_value",
            "ps1", "ps2", "last_exc"}
# sys attributes that change on their own (or by the grader) while code runs
_VOLATILE = {"sys": {"modules", "path", "path_importer_cache", "meta_path", "path_hooks", "stdout", "stderr",
                     "stdin", "displayhook", "excepthook", "exc_info", "ps3", "_git", "last_exc",
                     "flags", "argv", "dont_write_bytecode", "audit"},
             "os": {"environ", "environb"}, "torch": {"_dynamo", "_inductor"},
             "_pytest.assertion.util": {"_reprcompare", "_assertion_pass", "_config"}}


def _default_storages(torch) -> set:
    """The classes torch.set_default_dtype puts at torch.Storage (its C code does: state, not a patch)."""
    return {value for name, value in vars(torch).items() if name.endswith("Storage") and isinstance(value, type)}


# Attributes torch's own setters change: allowed values, computed when the snapshot is taken.
_SETTER_STATE = {("torch", "Storage"): _default_storages}


def _members(obj) -> dict:
    try:
        return dict(vars(obj))
    except TypeError:
        return {}


class Snapshot:
    """Which object every watched module attribute (and torch.Tensor / nn.Module method) was at one moment.

    The owners (modules, classes, functions) are held directly, so taking modules out of
    ``sys.modules`` afterwards does not confuse the comparison.
    """

    def __init__(self, extra_modules: tuple[str, ...] = ()):
        self._seen: list[tuple[str, object, str, object]] = []
        self._classes: list[tuple[str, type, frozenset]] = []  # watched classes and their attribute names
        for package in WATCHED_IMPORTS:
            try:
                __import__(package)
            except Exception:  # not installed here (or broken): nothing of it to watch
                pass
        names = set(WATCHED) | set(extra_modules)
        names |= {m for m in sys.modules if m.startswith(WATCHED_PREFIXES)}
        for name in sorted(names):
            module = sys.modules.get(name)
            if module is not None:
                self._take(name, module)
        torch = sys.modules.get("torch")
        self._allowed = {key: allowed(torch) for key, allowed in _SETTER_STATE.items()
                         if torch is not None and key[0] == "torch"}
        if torch is not None:
            for label, cls in (("torch.Tensor", torch.Tensor), ("torch._C.TensorBase", torch._C.TensorBase),
                               ("torch.nn.Module", torch.nn.Module), ("torch.Generator", torch.Generator)):
                self._take(label, cls)
                self._classes.append((label, cls, frozenset(vars(cls))))
        for name in sorted(m for m in sys.modules if m.startswith(WATCHED_PREFIXES)):
            for attr, value in _members(sys.modules[name]).items():
                if isinstance(value, type) and value.__module__ == name:
                    self._take(f"{name}.{attr}", value)
                code = getattr(value, "__code__", None)
                if code is not None and getattr(value, "__module__", None) == name:
                    self._seen.append((f"{name}.{attr}", value, "__code__", code))

    def _take(self, label: str, owner) -> None:
        skip = _VOLATILE.get(label, set())
        for attr, value in _members(owner).items():
            # Code, classes and modules: what monkeypatching replaces (data attributes change legitimately).
            if attr not in _IGNORED and attr not in skip and (callable(value) or isinstance(value, types.ModuleType)
                                                              or isinstance(value, (staticmethod, classmethod,
                                                                                    property))):
                self._seen.append((label, owner, attr, value))

    def changes(self) -> list[str]:
        """Attributes that are no longer the object they were (replaced or deleted)."""
        changed = []
        members: dict[int, dict] = {}
        for label, owner, attr, value in self._seen:
            if attr == "__code__":
                now = getattr(owner, "__code__", _MISSING)
            else:
                current = members.get(id(owner))
                if current is None:
                    current = members[id(owner)] = _members(owner)
                now = current.get(attr, _MISSING)
            if now is not value and not _torch_wrapper_of(now, value) and not (
                    isinstance(owner, types.ModuleType) and now in self._allowed.get((label, attr), ())):
                changed.append(f"{label}.{attr}")
        for label, cls, names in self._classes:  # a method added to Tensor overrides the C one it inherits
            changed.extend(f"{label}.{attr}" for attr in sorted(set(vars(cls)) - names))
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changed.append("sys.settrace/sys.setprofile")
        return changed


_MISSING = object()


def _torch_wrapper_of(new, old) -> bool:
    """PyTorch wraps some of its own functions when a submodule loads (torch._dynamo wraps torch.manual_seed)."""
    torch = sys.modules.get("torch")
    code = getattr(new, "__code__", None)
    if torch is None or code is None:
        return False
    root = os.path.dirname(torch.__file__)
    if not code.co_filename.startswith(root + os.sep):
        return False
    for _ in range(5):
        new = getattr(new, "__wrapped__", None)
        if new is old:
            return True
        if new is None:
            return False
    return False


def protected_paths() -> list[str]:
    """The grader's own code (hidden checks and references) and the pytest plugin."""
    return [str(Path(__file__).resolve().parent)]
