"""Generate the student release (assignments/) from the instructor sources (solutions/).

assignments/ is never edited by hand: this module runs nbgrader's own
``generate_assignment`` in a scratch course folder (so no gradebook or working
folder lands in the course) and copies the result over assignments/<id>.
The tests regenerate it and fail when the committed release is stale.

``odl-grade release`` serves the course folder it is run in (or ``--course-dir``):
its nbgrader_config.py says where the sources and the release are
(``CourseDirectory.source_directory`` / ``.release_directory``), and the scratch
course loads that config, so the release is generated the way that course's
nbgrader would generate it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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


def write_course_config(course_root: Path, base: Path | None = None) -> None:
    """A course folder whose nbgrader config is ``base`` (default: the repository's), rooted here."""
    base = base or REPO / "nbgrader_config.py"
    (course_root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(base)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course_root)!r}\n"
        'c.CourseDirectory.source_directory = "solutions"\n'
        'c.CourseDirectory.release_directory = "assignments"\n'
    )


class CourseError(ValueError):
    """A folder that is not a course folder: the message says what is missing, in one line."""


@dataclass(frozen=True)
class CourseLayout:
    root: Path
    config: Path  # its nbgrader_config.py
    solutions: Path  # nbgrader's source folder
    assignments: Path  # nbgrader's release folder


def course_layout(folder: str | Path) -> CourseLayout:
    """Where the course in ``folder`` keeps its sources and its release, read from its nbgrader_config.py."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    folder = Path(folder).expanduser().absolute()
    config_file = folder / "nbgrader_config.py"
    if not config_file.is_file():
        raise CourseError(f"{folder} is not a course folder (no nbgrader_config.py): run this in the course folder "
                          f"or give --course-dir")
    try:
        config = PyFileConfigLoader(config_file.name, path=str(folder)).load_config()
    except Exception as exc:
        raise CourseError(f"cannot read {config_file}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    coursedir = CourseDirectory(config=config)
    root = Path(coursedir.root) if "root" in config.CourseDirectory else folder
    solutions = root / coursedir.source_directory
    if not solutions.is_dir():
        raise CourseError(f"no source folder {solutions} in the course {root} (CourseDirectory.source_directory)")
    return CourseLayout(root=root, config=config_file, solutions=solutions,
                        assignments=root / coursedir.release_directory)


def assignment_ids(solutions: Path = SOLUTIONS) -> list[str]:
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and not p.name.startswith("."))


def generate(course_root: Path, ids: list[str]) -> None:
    """Run generate_assignment for ``ids`` in a course folder that has solutions/ and a config."""
    for assignment_id in ids:
        nbgrader(["generate_assignment", assignment_id, "--force"], course_root)


def generate_release(ids: list[str] | None, into: Path, solutions: Path = SOLUTIONS,
                     config: Path | None = None) -> list[Path]:
    """Generate the release of ``ids`` (default: all) into ``into``/<id>; return the folders.

    ``config``: the course's nbgrader_config.py (default: the repository's)."""
    ids = ids or assignment_ids(solutions)
    with tempfile.TemporaryDirectory(prefix="odl-release-") as tmp:
        root = Path(tmp)
        write_course_config(root, config)
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


def release(ids: list[str] | None = None, course_dir: str | Path = ".") -> list[Path]:
    """Regenerate the release folder (assignments/) of the course in ``course_dir`` (default: here)."""
    layout = course_layout(course_dir)
    unknown = [i for i in ids or [] if not (layout.solutions / i).is_dir()]
    if unknown:
        raise CourseError(f"no assignment {', '.join(unknown)} in {layout.solutions} "
                          f"(known: {', '.join(assignment_ids(layout.solutions)) or 'none'})")
    layout.assignments.mkdir(parents=True, exist_ok=True)
    return generate_release(ids, layout.assignments, layout.solutions, layout.config)
