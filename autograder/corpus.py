"""A corpus of broken and malicious submissions, generated from the instructor's solution.

Every case is one student's submission of assignment ``02_optimizers`` (21
points): the solution with one thing done to it. Each case states the score it
must get through the real pipeline (nbgrader autograde with this course's
configuration) and phrases the feedback or the grader's notes must contain.
``tests/test_corpus.py`` grades the whole corpus as one class and asserts every
case, that nothing else in the course was touched, and that the batch finished.

Points per task: sgd 1, momentum 2, nesterov 2, adagrad 2, rmsprop 2, adam 3,
linear_decay 2, search 1, adamw 1, amsgrad 1. AdamW reuses the student's adam
in the solution, so breaking adam costs adamw's point too.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell
from nbformat.v4.nbbase import random_cell_id

from autograder.notebook import read_notebook
from autograder.submissions import KERNEL_PATCH, answer_sources, fill

ASSIGNMENT = "02_optimizers"
NOTEBOOK = "optimizers.ipynb"
FULL = 21.0
VICTIM = "corpus_victim"  # a correct submission the attacks aim at; it must keep its score and files


class Tripwire:
    """A FIFO that notices when anyone opens it for reading (a writer's non-blocking open then succeeds).

    The corpus points submitted links at it: the grader must never open what a link points to.
    """

    def __init__(self, path: Path):
        self.path, self.opened, self._stop = str(path), 0, False
        os.mkfifo(self.path)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader has it open
                time.sleep(0.01)
                continue
            self.opened += 1
            os.close(fd)  # the reader gets end-of-file instead of hanging

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)


@dataclass
class Context:
    release: object  # the release notebook of ASSIGNMENT
    solution: object  # the instructor's source notebook of ASSIGNMENT
    other_release: object  # the release of another assignment (submitted by mistake)
    other_solution: object
    autograder_dir: Path  # where the hidden checks live on this grader
    outside: Path | None = None  # a folder outside every submission (targets of links)
    tripwire: Path | None = None  # a FIFO there that the test watches: nothing may ever open it

    def answers(self) -> dict[str, str]:
        return answer_sources(self.solution)

    def solved(self, **changes: str):
        """The release with the instructor's answers, ``changes`` (grade_id -> new answer text) applied."""
        answers = {**self.answers(), **changes}
        return fill(self.release, answers)

    def edited(self, grade_id: str, old: str, new: str):
        source = self.answers()[grade_id]
        if source.count(old) != 1:
            raise ValueError(f"corpus: {old!r} occurs {source.count(old)} times in answer {grade_id!r}")
        return self.solved(**{grade_id: source.replace(old, new)})

    def injected(self, grade_id: str, statement: str):
        """The answer with ``statement`` as the first line of the body of its (first) function."""
        lines = self.answers()[grade_id].splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("def ") and line.rstrip().endswith(":"))
        lines.insert(at + 1, "    " + statement)
        return self.solved(**{grade_id: "\n".join(lines)})

    def appended(self, grade_id: str, text: str):
        return self.solved(**{grade_id: self.answers()[grade_id] + "\n" + text})

    def prepended(self, grade_id: str, text: str):
        return self.solved(**{grade_id: text + "\n" + self.answers()[grade_id]})


def _index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _with_extra_cell(nb, after: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(_index(nb, after) + 1, new_code_cell(source))
    return nb


def _deleted(nb, grade_id: str):
    nb = copy.deepcopy(nb)
    del nb.cells[_index(nb, grade_id)]
    return nb


def _duplicated(nb, grade_id: str, source: str | None = None):
    nb = copy.deepcopy(nb)
    at = _index(nb, grade_id)
    copy_ = copy.deepcopy(nb.cells[at])
    copy_["id"] = random_cell_id()  # JupyterLab gives a pasted cell a new id; its metadata (grade_id) stays
    if source is not None:
        copy_.source = source
    nb.cells.insert(at + 1, copy_)
    return nb


def _reordered(nb):
    """The sgd and momentum blocks (markdown, answer, test) swapped."""
    nb = copy.deepcopy(nb)
    a, b = _index(nb, "sgd") - 1, _index(nb, "momentum") - 1  # the markdown above each answer
    first, second = nb.cells[a:b], nb.cells[b:b + 3]
    nb.cells[a:b + 3] = second + first
    return nb


def _retyped(nb, grade_id: str):
    nb = copy.deepcopy(nb)
    cell = nb.cells[_index(nb, grade_id)]
    cell.cell_type = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    return nb


def _edited_test(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells[_index(nb, grade_id)].source = source
    return nb


def _release_with_theft(c: Context, code: str):
    """The unanswered release whose last answer cell ("extra") ends with ``code``: what it steals would be the
    last definitions of the notebook, so nothing the stubs define afterwards hides it."""
    nb = copy.deepcopy(c.release)
    nb.cells[_index(nb, "extra")].source += "\n" + code
    return nb


# Reaches past the sandbox (autograder.isolation). Each builds its paths at run time, as a student would.
SQLITE_GRADEBOOK = """import os, sqlite3
_db = os.path.join(os.path.abspath(os.path.join(os.getcwd(), '..', '..', '..')), 'grade' + 'book.db')
try:
    with sqlite3.connect(_db) as _con:
        _con.execute("UPDATE grade SET auto_score = 0, extra_credit = 10")
    print('GRADEBOOK CHANGED')
except Exception as _e:
    print('gradebook:', type(_e).__name__, _e)"""
SOLUTIONS_THROUGH_COURSE = """import json as _json, os as _os, course as _course
_src = _os.path.join(_os.path.dirname(_os.path.dirname(_course.__file__)), 'solutions', '02_optimizers',
                     'optimizers.ipynb')
try:
    for _cell in _json.load(open(_src))['cells']:
        if _cell['cell_type'] == 'code' and 'def ' in ''.join(_cell['source']):
            exec(''.join(_cell['source']).replace('### BEGIN SOLUTION', '').replace('### END SOLUTION', ''))
    print('SOLUTIONS READ')
except Exception as _e:
    print('solutions:', type(_e).__name__, _e)"""
POISON_COURSE = """import os, course
try:
    with open(os.path.join(os.path.dirname(course.__file__), '__init__.py'), 'a') as _f:
        _f.write('\\nimport builtins; builtins.POISONED = True\\n')
    print('COURSE POISONED')
except OSError as _e:
    print('course:', _e)"""
SHELL_STEALS_CHECKS = """import os, multiprocessing.util as _u
_checks = os.path.join({checks!r}, 'test_optimizers.py')
_pid = _u.spawnv_passfds(b'/bin/sh', [b'sh', b'-c', ('cat ' + _checks + ' > stolen_checks.txt 2>&1').encode()], ())
os.waitpid(_pid, 0)
print(open('stolen_checks.txt').read()[:2000])"""
LINGERS = """import glob, os, time
if os.fork() == 0:  # a daemon in its own session, outliving its grading to forge other students' guard logs
    os.setsid()
    if os.fork() == 0:
        for _ in range(1200):
            for _log in glob.glob('/tmp/autograder-kernel-*.log'):
                try:
                    with open(_log, 'a') as _f:
                        _f.write('blocked by the grader: forged by another student\\n')
                except OSError:
                    pass
            time.sleep(0.05)
    os._exit(0)"""
READS_OTHER_STUDENTS = """import glob, os
_root = os.path.abspath(os.path.join(os.getcwd(), '..', '..', '..'))
_found = []
for _pattern in ('autograded/*/*/*.ipynb', 'submitted/*/*/*.ipynb', 'feedback/*/*/*.html', 'grading_summary_*',
                 'grading_logs/*/*.log'):
    for _p in glob.glob(os.path.join(_root, _pattern)):
        try:
            _found.append((_p, len(open(_p).read())))
        except OSError as _e:
            pass
print('FOUND', len(_found), 'files of the course')"""
STOLEN_MARK = "def test_"  # in the hidden checks' source, never in a student's notebook


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    build: Callable[[Context], object]  # a notebook, or bytes written as the file
    score: float
    feedback: tuple[str, ...] = ()  # phrases that must appear in the graded notebook's feedback or notes
    tampering: bool = False
    # how the submission folder is laid out (default: the built notebook as NOTEBOOK): (case, context, folder)
    layout: Callable[["Case", Context, Path], None] | None = None
    student: str | None = None  # the student id, when not the case's name (ids with glob characters)

    @property
    def student_id(self) -> str:
        return self.student or self.name


def _write(built, path: Path) -> None:
    if isinstance(built, bytes):
        path.write_bytes(built)
    else:
        nbformat.write(built, str(path))


def _as(*names: str):
    """The built notebook under other file names (a copy the OS named, notebooks besides it)."""
    def layout(case, ctx, folder):
        for name in names:
            _write(case.build(ctx), folder / name)
    return layout


def _symlink_to_tripwire(case, ctx, folder):
    (folder / NOTEBOOK).symlink_to(ctx.tripwire)


def _hardlink_outside(case, ctx, folder):
    target = ctx.outside / f"{case.name}.ipynb"  # a solved notebook elsewhere: grading it would give 21
    _write(case.build(ctx), target)
    os.link(target, folder / NOTEBOOK)


def _special_files(case, ctx, folder):
    _write(case.build(ctx), folder / NOTEBOOK)
    os.mkfifo(folder / "data.fifo")
    (folder / "data.csv").symlink_to(ctx.tripwire)
    (folder / "results").mkdir()
    (folder / "results" / "gradebook.db").symlink_to(ctx.outside)


# measured: on 'meta' (no values) every comparison of numbers fails; each update rule keeps its state share (1/4 of
# its points: 3.5 in all), linear_decay and the predictions, plain Python, their 2 points each, and the tuning
# experiment's chosen rate its 1 point (the grader re-runs it with its own float32 CPU defaults)
META_SCORE = 8.5
SLEEP_FOREVER = "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass"

CASES: list[Case] = [
    # -- the reference point ------------------------------------------------------------------
    Case("solution", "the instructor's answers", lambda c: c.solved(), FULL),
    # -- code that hangs, exits or crashes ----------------------------------------------------
    Case("infinite_loop", "an answer cell that loops forever after defining its function",
         lambda c: c.appended("momentum", "while True:\n    pass"), FULL,
         ("momentum (cell 7) ran past the",)),
    Case("loop_ignores_interrupt", "an answer cell that loops forever and swallows every interrupt",
         lambda c: c.appended("nesterov", SLEEP_FOREVER), FULL - 2,
         ("The kernel stopped answering after", "ran past its time limit")),
    Case("os_exit", "an answer cell that calls os._exit (the kernel dies)",
         lambda c: c.appended("adagrad", "import os\nos._exit(3)"), FULL - 2,
         ("The kernel died", "exit code 3")),
    # (the kernel never calls it: test cells and demos are not run there while grading)
    Case("segfault", "an update rule that crashes the process (SIGSEGV) when called",
         lambda c: c.injected("rmsprop", "import faulthandler; faulthandler._sigsegv()"),
         FULL - 2, ("Your code ended the grading process: task rmsprop", "SIGSEGV")),
    Case("system_exit", "an answer cell that raises SystemExit after its definition",
         lambda c: c.appended("sgd", "raise SystemExit(1)"), FULL, ()),
    Case("keyboard_interrupt", "an update rule that raises KeyboardInterrupt",
         lambda c: c.injected("adagrad", "raise KeyboardInterrupt"), FULL - 2,
         ("KeyboardInterrupt",)),
    Case("memory_bomb", "an answer cell that allocates far more memory than the grader allows",
         lambda c: c.appended("sgd", "hog = [torch.ones(2**28) for _ in range(64)]"), FULL, ()),
    Case("print_100mb", "an answer cell that prints 100 MB",
         lambda c: c.appended("sgd", "print('x' * 100_000_000)"), FULL, ("more characters cut by the grader",)),
    Case("sleeps_past_timeout", "a schedule that sleeps far past the time limit",
         lambda c: c.injected("linear_decay", "import time; time.sleep(1000)"),
         FULL - 2, ("did not finish in time",)),
    Case("deep_recursion", "an update rule that recurses 300,000 calls deep (sys.setrecursionlimit) and then fails",
         lambda c: c.appended("sgd", "import sys\nsys.setrecursionlimit(400_000)\n_sgd = sgd\n"
                                     "def _down(n):\n    return _down(n - 1) if n else 1 / 0\n"
                                     "def sgd(param, grad, state, *, lr):\n    _down(300_000)"),
         FULL - 1, ("ZeroDivisionError", "calls deep")),
    # -- broken structure ---------------------------------------------------------------------
    Case("syntax_error", "an answer cell with a syntax error",
         lambda c: c.solved(sgd="def sgd(param, grad, state, *, lr)\n    param.add_(grad, alpha=-lr)"), FULL - 1,
         ("SyntaxError",)),
    Case("deleted_test_cell", "a test cell deleted",
         lambda c: _deleted(c.solved(), "test_momentum"), FULL, ("restored from the release: test_momentum",)),
    Case("deleted_answer_cell", "an answer cell deleted",
         lambda c: _deleted(c.solved(), "nesterov"), FULL - 2, ("restored from the release: nesterov",)),
    Case("duplicated_test_cell", "a test cell duplicated",
         lambda c: _duplicated(c.solved(), "test_sgd"), FULL, ("appear more than once: test_sgd",)),
    Case("reordered_cells", "two tasks' cells swapped",
         lambda c: _reordered(c.solved()), FULL, ("out of order",)),
    Case("edited_test_cell", "a test cell replaced by `pass`",
         lambda c: _edited_test(c.solved(), "test_adam", "pass"), FULL, ()),
    Case("copied_answer_cell", "an answer cell copied, the copy (below) wrong",
         lambda c: _duplicated(c.solved(), "sgd", "def sgd(param, grad, state, *, lr):\n    pass"), FULL,
         ("appear more than once: sgd",)),
    Case("changed_cell_type", "an answer cell turned into markdown",
         lambda c: _retyped(c.solved(), "rmsprop"), FULL, ("graded as the release's type: rmsprop",)),
    Case("invalid_json", "a file cut off in the middle",
         lambda c: nbformat.writes(c.solved()).encode()[:5000], 0.0, ("not valid JSON",)),
    Case("not_a_notebook", "valid JSON that is not a notebook",
         lambda c: json.dumps({"hello": "world"}).encode(), 0.0, ("not a Jupyter notebook",)),
    Case("empty_file", "an empty file", lambda c: b"", 0.0, ("the file is empty",)),
    Case("other_assignment", "the solved notebook of another assignment under this name",
         lambda c: fill(c.other_release, answer_sources(c.other_solution)), 0.0,
         ("is it the right notebook (or a notebook of another assignment)?",)),
    # -- wrong results ------------------------------------------------------------------------
    Case("nan_results", "Adam that writes NaN into the parameter",
         lambda c: c.appended("adam", "_adam = adam\ndef adam(param, grad, state, **kw):\n"
                                      "    _adam(param, grad, state, **kw)\n    param.fill_(float('nan'))"),
         FULL - 3.0, ("NaN",)),  # adam 0.75/3 and adamw 0.25/1: both keep the state's share of their points
    Case("wrong_dtype", "log_uniform that returns float32",
         lambda c: c.appended("search", "_lu = log_uniform\ndef log_uniform(*a, **k):\n"
                                        "    return _lu(*a, **k).float()"), FULL - 1, ("float32",)),
    Case("wrong_device", "momentum that keeps its state on a CUDA device whatever the parameter's",
         lambda c: c.edited("momentum", "torch.zeros_like(param)", "torch.zeros_like(param, device='cuda')"),
         FULL - 2, ("cuda",)),
    Case("warnings_to_stderr", "answers that print warnings to stderr",
         lambda c: c.appended("sgd", "import sys, warnings\nwarnings.warn('my own warning')\n"
                                     "print('to stderr', file=sys.stderr)"), FULL, ()),
    Case("hardcoded_public_answers", "schedule answers hard-coded to pass the notebook's public tests",
         lambda c: c.solved(linear_decay="def linear_decay(step, lr0, tau, final_fraction=0.01):\n"
                                         "    return lr0 if step == 0 else 0.01 * lr0"),
         FULL - 2, ()),
    Case("default_dtype_float64", "correct answers, and a cell that makes float64 torch's default dtype",
         lambda c: c.appended("sgd", "torch.set_default_dtype(torch.float64)"), FULL,
         ("torch.set_default_dtype(torch.float64)",)),
    Case("default_device_meta", "correct answers, and a cell that makes 'meta' (no values) torch's default device",
         lambda c: c.appended("search", "torch.set_default_device('meta')"), META_SCORE,
         ("torch.set_default_device('meta')", "live on meta")),
    # -- odd submission folders (autograder.intake) ---------------------------------------------
    Case("symlink_notebook", "the notebook is a symbolic link to a file outside the submission (a FIFO)",
         lambda c: c.solved(), 0.0, ("is a symbolic link", "graded as the unanswered notebook"),
         layout=_symlink_to_tripwire),
    Case("hardlink_notebook", "the notebook is a hard link to a solved notebook outside the submission",
         lambda c: c.solved(), 0.0, ("a hard link to a file outside your submission",), layout=_hardlink_outside),
    Case("special_files", "besides the notebook: a FIFO, a link to a FIFO, a link to a folder outside",
         lambda c: c.solved(), FULL, ("'data.fifo' (a named pipe (FIFO))", "'data.csv' (a symbolic link)"),
         layout=_special_files),
    Case("renamed_notebook", "the only notebook, under the name the OS gives a copy",
         lambda c: c.solved(), FULL, ("submitted as 'optimizers – Kopie (1).ipynb'",),
         layout=_as("optimizers – Kopie (1).ipynb")),
    Case("misnamed_notebooks", "two notebooks, neither under the expected name",
         lambda c: c.solved(), 0.0, ("expected a notebook named 'optimizers.ipynb'",
                                     "'optimizers (1).ipynb', 'optimizers_old.ipynb'"),
         layout=_as("optimizers_old.ipynb", "optimizers (1).ipynb")),
    Case("extra_notebook", "the notebook and a scratch notebook besides it",
         lambda c: c.solved(), FULL, ("were not graded: 'scratch.ipynb'",), layout=_as(NOTEBOOK, "scratch.ipynb")),
    Case("glob_id_brackets", "a student id with glob characters: x[1]", lambda c: c.solved(), FULL, student="x[1]"),
    Case("glob_id_star", "a student id with glob characters: a*b", lambda c: c.solved(), FULL, student="a*b"),
    Case("glob_id_question", "a student id with glob characters: q?", lambda c: c.solved(), FULL, student="q?"),
    # -- tampering ----------------------------------------------------------------------------
    Case("patch_torch_allclose", "torch.allclose replaced to always say yes",
         lambda c: c.prepended("sgd", "torch.allclose = lambda *a, **k: True"), 0.0,
         ("torch.allclose was replaced",), tampering=True),
    Case("patch_tensor_method", "torch.Tensor.__sub__ replaced",
         lambda c: c.appended("sgd", "torch.Tensor.__sub__ = lambda a, b: torch.zeros_like(a)"), 0.0,
         ("torch.Tensor.__sub__ was replaced",), tampering=True),
    Case("patch_assert", "AssertionError replaced in builtins",
         lambda c: c.appended("sgd", "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})"),
         0.0, ("builtins.AssertionError was replaced",), tampering=True),
    Case("noop_torch_optimizer", "torch.optim.SGD.step replaced by a no-op (the checks compare with torch.optim)",
         lambda c: c.appended("sgd", "torch.optim.SGD.step = lambda self, closure=None: None"), 0.0,
         ("SGD.step was replaced",), tampering=True),
    Case("noop_rule_optimizer", "course.RuleOptimizer.step replaced by a no-op",
         lambda c: c.appended("sgd", "course.RuleOptimizer.step = lambda self, closure=None: None"), 0.0,
         ("RuleOptimizer.step was replaced",), tampering=True),
    Case("patch_course_function", "a course helper (course.to_tensors) replaced",
         lambda c: c.appended("sgd", "course.to_tensors = lambda *a, **k: None"), 0.0,
         ("course.to_tensors was replaced",), tampering=True),
    Case("patch_run_cell", "the kernel's run_cell patched so test cells do nothing",
         lambda c: c.prepended("sgd", KERNEL_PATCH), 0.0, ("run_cell",), tampering=True),
    Case("patch_autograder", "the autograder's comparison helpers patched",
         lambda c: c.appended("sgd", "import autograder.compare as _c\n_c.check_tensor = lambda *a, **k: None"),
         0.0, ("importing autograder",), tampering=True),
    Case("read_hidden_checks", "the hidden checks read from the grader's disk",
         lambda c: c.appended("sgd", f"_src = open({str(c.autograder_dir / 'checks' / 'test_optimizers.py')!r})"
                                     f".read()"),
         0.0, ("reading", "test_optimizers.py is not allowed"), tampering=True),
    Case("frame_walk", "an update rule that looks up the checks' variables through the call stack",
         lambda c: c.injected("sgd", "import sys; sys._getframe(1).f_globals"), 0.0,
         ("inspecting the call stack",), tampering=True),
    Case("write_gradebook", "a cell that overwrites the gradebook",
         lambda c: _with_extra_cell(c.solved(), "sgd", "open('../../../gradebook.db', 'wb').write(b'owned')"), 0.0,
         ("gradebook",), tampering=True),
    # -- past the sandbox: each fails to reach its target (tests/test_corpus.py asserts on the target) -------
    Case("sqlite_gradebook", "a cell that opens the gradebook with sqlite3 and rewrites every grade",
         lambda c: _with_extra_cell(c.solved(), "sgd", SQLITE_GRADEBOOK), 0.0, ("gradebook.db",), tampering=True),
    Case("solutions_through_course", "no answers, but the instructor's solutions found through course.__file__",
         lambda c: _release_with_theft(c, SOLUTIONS_THROUGH_COURSE), 0.0, ("solutions: FileNotFoundError",)),
    Case("poison_course_package", "a cell that appends code to the course package shared by every grading",
         lambda c: _with_extra_cell(c.solved(), "sgd", POISON_COURSE), 0.0, ("__init__.py",), tampering=True),
    Case("shell_steals_checks", "a shell started without an audit event that copies the hidden checks",
         lambda c: _with_extra_cell(c.solved(), "sgd",
                                    SHELL_STEALS_CHECKS.format(checks=str(c.autograder_dir / "checks"))),
         FULL, ("No such file or directory",)),
    Case("lingers", "a daemon that outlives its grading and forges lines into other kernels' guard logs",
         lambda c: _with_extra_cell(c.solved(), "sgd", LINGERS), FULL),
    Case("reads_other_students", "a cell that looks for other students' notebooks, feedback and the class summary",
         lambda c: _with_extra_cell(c.solved(), "sgd", READS_OTHER_STUDENTS), 0.0,
         ("FOUND 0 files of the course", "is not allowed while grading"), tampering=True),
    Case("write_other_student", "a cell that overwrites another student's submission and graded notebook",
         lambda c: _with_extra_cell(c.solved(), "sgd",
                                    f"for _p in ['../../../submitted/{VICTIM}/{ASSIGNMENT}/{NOTEBOOK}',\n"
                                    f"           '../../{VICTIM}/{ASSIGNMENT}/{NOTEBOOK}']:\n"
                                    f"    try:\n        open(_p, 'w').write('{{}}')\n"
                                    f"    except OSError as e:\n        print(e)"), 0.0,
         ("is not allowed while grading",), tampering=True),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def context(release: Path, solution: Path, other_release: Path, other_solution: Path,
            outside: Path | None = None, tripwire: Path | None = None) -> Context:
    return Context(read_notebook(release), read_notebook(solution), read_notebook(other_release),
                   read_notebook(other_solution), Path(__file__).resolve().parent, outside, tripwire)


def place_case(case: Case, ctx: Context, folder: Path) -> Path:
    """Write ``case``'s submission into ``folder`` (a student's submitted/<id>/<assignment> folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NOTEBOOK
    if case.layout is not None:
        case.layout(case, ctx, folder)
    else:
        _write(case.build(ctx), path)
    return path
