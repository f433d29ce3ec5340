"""Generate the student release (assignments/) from the instructor sources (solutions/).

assignments/ is never edited by hand: this module runs nbgrader's own
``generate_assignment`` in a scratch course folder (so no gradebook or working
folder lands in the repository) and copies the result over assignments/<id>.
The tests regenerate it and fail when the committed release is stale.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
ASSIGNMENTS = REPO / "assignments"


class NbgraderFailed(RuntimeError):
    """An nbgrader command failed; the message holds its output."""


def tool_env() -> dict[str, str]:
    """The environment for nbgrader: it runs ``alembic`` and kernels from PATH, so this interpreter's bin comes first."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:  # idempotent: callers may put the result back into os.environ
        path = bindir + os.pathsep + path
    return dict(os.environ, PATH=path)


# How nbgrader is started: plain, or as odl-grade does (autograder.gradebook: SQLite hook, 1 s faster start).
NBGRADER_ENTRIES = {"nbgrader": "nbgrader", "course": "autograder.gradebook"}


def nbgrader(args: list[str], course_root: Path, timeout: float = 1800, check: bool = True,
             entry: str = "nbgrader") -> str:
    """Run ``nbgrader ARGS`` in ``course_root``; return its output or (``check``) raise NbgraderFailed."""
    proc = subprocess.run(
        [sys.executable, "-m", NBGRADER_ENTRIES[entry], *args], cwd=course_root, capture_output=True, text=True,
        timeout=timeout, env=tool_env(),
    )
    if check and proc.returncode != 0:
        raise NbgraderFailed(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def write_course_config(course_root: Path) -> None:
    """A course folder whose nbgrader config is the repository's, rooted here."""
    (course_root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(REPO / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course_root)!r}\n"
    )


def assignment_ids(solutions: Path = SOLUTIONS) -> list[str]:
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and not p.name.startswith("."))


def generate(course_root: Path, ids: list[str]) -> None:
    """Run generate_assignment for ``ids`` in a course folder that has solutions/ and a config."""
    for assignment_id in ids:
        nbgrader(["generate_assignment", assignment_id, "--force"], course_root)


def generate_release(ids: list[str] | None, into: Path, solutions: Path = SOLUTIONS) -> list[Path]:
    """Generate the release of ``ids`` (default: all) into ``into``/<id>; return the folders."""
    ids = ids or assignment_ids(solutions)
    with tempfile.TemporaryDirectory(prefix="odl-release-") as tmp:
        root = Path(tmp)
        write_course_config(root)
        shutil.copytree(solutions, root / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        generate(root, ids)
        out = []
        for assignment_id in ids:
            dest = into / assignment_id
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(root / "assignments" / assignment_id, dest)
            out.append(dest)
        return out


def release(ids: list[str] | None = None) -> list[Path]:
    """Regenerate assignments/ in the repository."""
    ASSIGNMENTS.mkdir(exist_ok=True)
    return generate_release(ids, ASSIGNMENTS)
