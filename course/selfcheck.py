"""``course.self_check()``: the grader's report on your assignment, from inside JupyterLab.

This module holds no checks and no solutions: it runs the ``odl-grade check`` command of the autograder
(installed for self-study, never in a graded course's image) on the notebook **as last saved**, and shows
what it prints. Without the autograder it says so.
"""
from __future__ import annotations

import html
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NOT_INSTALLED = (
    "The self-check needs the course's autograder (the `odl-grade` command), which is not installed in this "
    "environment. For self-study, install the course repository in this environment (`pip install -e .` in "
    "it, or `bash scripts/setup.sh`), then run course.self_check() again. In a graded course the checks are "
    "hidden: the Check cells of the notebook are what you can run."
)


@dataclass
class SelfCheck:
    """What the check printed (``text``), its exit status and the notebook it checked."""

    notebook: str
    text: str
    returncode: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def _repr_html_(self) -> str:
        return f"<pre style='white-space: pre-wrap'>{html.escape(self.text)}</pre>"

    def __repr__(self) -> str:
        return self.text


def odl_grade_command() -> list[str] | None:
    """How to run ``odl-grade`` from this kernel's Python, or None when the autograder is not installed."""
    beside = Path(sys.executable).with_name("odl-grade")
    if beside.exists():
        return [str(beside)]
    if importlib.util.find_spec("autograder") is not None:  # found, not imported
        return [sys.executable, "-m", "autograder"]
    found = shutil.which("odl-grade")
    return [found] if found else None


def current_notebook() -> Path | None:
    """The notebook this kernel runs, when the front end says: JupyterLab's JPY_SESSION_NAME, VS Code's
    ``__vsc_ipynb_file__``."""
    candidates = [os.environ.get("JPY_SESSION_NAME", "")]
    try:
        ip = get_ipython()  # noqa: F821 - defined in IPython kernels only
        candidates.append(str(ip.user_ns.get("__vsc_ipynb_file__", "")))
    except NameError:
        pass
    for name in filter(None, candidates):
        path = Path(name)
        for guess in ([path] if path.is_absolute() else [Path.cwd() / path, Path.cwd() / path.name]):
            if guess.suffix == ".ipynb" and guess.is_file():
                return guess
    notebooks = [p for p in Path.cwd().glob("*.ipynb") if not p.name.startswith(".")]
    return notebooks[0] if len(notebooks) == 1 else None


def self_check(notebook: str | os.PathLike | None = None, *, changed: bool = True, server: bool = True,
               show: bool = True, timeout: float = 600.0) -> SelfCheck:
    """Run the grader's checks on ``notebook`` (default: this one) as saved, and show the report.

    ``changed``: check only the tasks whose cells changed since the last self-check (the others' results
    are the last check's); ``server``: keep a check server warm for the next call (seconds faster).
    Save the notebook first (Ctrl+S): the check reads the file, not this kernel.
    """
    from .devices import grading

    if grading():
        return _show(SelfCheck(str(notebook or ""), "course.self_check() does nothing while grading.", 2), show)
    path = Path(notebook) if notebook is not None else current_notebook()
    if path is None:
        return _show(SelfCheck("", "course.self_check() could not tell which notebook this is: pass its file "
                                   "name, e.g. course.self_check(\"optimizers.ipynb\").", 2), show)
    if not path.is_file():
        return _show(SelfCheck(str(path), f"course.self_check(): {path} does not exist.", 2), show)
    command = odl_grade_command()
    if command is None:
        return _show(SelfCheck(str(path), NOT_INSTALLED, 2), show)
    args = [*command, "check", str(path), *(["--changed"] if changed else []), *(["--server"] if server else [])]
    saved = time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime))
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        text, code = (done.stdout + done.stderr).strip(), done.returncode
    except subprocess.TimeoutExpired:
        text, code = f"the check did not finish within {timeout:g} s", 1
    except OSError as exc:
        text, code = f"{NOT_INSTALLED}\n({exc})", 2
    return _show(SelfCheck(str(path), f"Checked {path.name} as saved at {saved}.\n\n{text}", code), show)


def _show(result: SelfCheck, show: bool) -> SelfCheck:
    if show:
        try:
            from IPython.display import HTML, display

            display(HTML(result._repr_html_()))
        except ImportError:
            print(result.text)
    return result
