"""The course's nbgrader exchange: where released assignments, submissions and feedback pass.

``odl-grade exchange init`` creates it (see docs/grading.md, "The exchange: instructors and
students"): the root (world-writable with the sticky bit, as nbgrader expects), the course's
folders in it with nbgrader's own permissions (``outbound`` 755: students read releases;
``inbound`` 733: students drop submissions they cannot list or read back; ``feedback`` 711:
a student opens only the file whose name is the hash of their own submission's secret), and
``nbgrader_exchange_config.py`` in the course folder, which the course's nbgrader_config.py
loads, so nbgrader, ``odl-grade`` and formgrader all use that root.

Students: on a shared machine each student is a Unix account; nbgrader takes the student id
from it and the exchange's permissions keep students out of each other's submissions. Give
them a ``~/.jupyter/nbgrader_config.py`` (or ``/etc/jupyter/nbgrader_config.py``) with the
course id and the exchange root: ``student_config()`` writes it. ``--students a,b`` adds
*simulated* students for trying the loop on one account (and for the tests): each gets a home
folder of its own (``<students-dir>/<id>``, their working folder, nbgrader cache and config)
whose config also names the student id, since they share one Unix account. Simulated students
are not isolated from each other (same account); they exist to run the real commands.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from autograder.release import CourseError, course_layout

DEFAULT_ROOT = "/srv/nbgrader/exchange"  # nbgrader's own default
CONFIG_NAME = "nbgrader_exchange_config.py"
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PERMISSIONS = {"outbound": 0o755, "inbound": 0o733, "feedback": 0o711}


@dataclass(frozen=True)
class Exchange:
    root: Path
    course_id: str
    course: Path  # the course folder (gradebook, nbgrader_config.py)
    config: Path  # nbgrader_exchange_config.py
    students: dict[str, Path]  # simulated student id -> home folder


def course_settings(course_dir: str | Path = ".") -> tuple[Path, str, str]:
    """(course root, course id, exchange root) as the course's nbgrader config says."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    layout = course_layout(course_dir)
    config = PyFileConfigLoader(layout.config.name, path=str(layout.config.parent)).load_config()
    course_id = CourseDirectory(config=config).course_id
    if not course_id:
        raise CourseError(f"{layout.config} sets no CourseDirectory.course_id: the exchange keeps courses apart by it")
    root = config.Exchange.root if "root" in config.Exchange else DEFAULT_ROOT
    return layout.root, course_id, str(root)


def student_config(course_id: str, root: str | Path, student_id: str | None = None) -> str:
    """A student's nbgrader_config.py: the course and the exchange (and, simulated, who they are)."""
    text = ("# nbgrader for the course " + course_id + " (written by odl-grade exchange init)\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {course_id!r}\n"
            f"c.Exchange.root = {str(root)!r}\n")
    if student_id:
        text += ("# a simulated student sharing one Unix account: nbgrader would otherwise take the account's name\n"
                 f"c.CourseDirectory.student_id = {student_id!r}\n")
    return text


def parse_students(value: str | None) -> list[str]:
    ids = [s.strip() for s in (value or "").split(",") if s.strip()]
    bad = [s for s in ids if not STUDENT_ID.fullmatch(s)]
    if bad:
        raise CourseError(f"student ids must be letters, digits, '.', '_' or '-' (nbgrader reserves '+' and '*'): "
                          f"{', '.join(bad)}")
    if len(set(ids)) != len(ids):
        raise CourseError("a student id is listed twice")
    return ids


def make_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)  # exactly this mode, whatever the umask


def init(course_dir: str | Path = ".", root: str | Path | None = None, students: list[str] = (),
         students_dir: str | Path | None = None) -> Exchange:
    """Create the exchange of the course in ``course_dir`` and record its root in the course's config."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    import autograder.gradebook  # noqa: F401  (WAL and a busy timeout, as every course command)

    course, course_id, configured = course_settings(course_dir)
    root = Path(root if root is not None else configured).expanduser().absolute()
    try:
        if not root.is_dir():
            make_dir(root, 0o1777)
        elif root.stat().st_mode & 0o777 != 0o777 and os.access(root, os.W_OK):
            os.chmod(root, 0o1777)
        for name, mode in PERMISSIONS.items():
            make_dir(root / course_id / name, mode)
    except PermissionError as exc:
        raise CourseError(f"cannot create the exchange in {root}: {exc.strerror} (run as its owner, or choose "
                          f"another --root)") from None
    config = course / CONFIG_NAME
    config.write_text("# The course's nbgrader exchange, written by `odl-grade exchange init` (git-ignored).\n"
                      "c = get_config()  # noqa: F821\n"
                      f"c.Exchange.root = {str(root)!r}\n")
    homes = {}
    if students:
        base = Path(students_dir).expanduser().absolute() if students_dir else course / ".work" / "students"
        for student_id in students:
            home = base / student_id
            (home / ".jupyter").mkdir(parents=True, exist_ok=True)
            (home / ".jupyter" / "nbgrader_config.py").write_text(student_config(course_id, root, student_id))
            homes[student_id] = home
        loaded = PyFileConfigLoader(config.parent.joinpath("nbgrader_config.py").name,
                                    path=str(course)).load_config()
        coursedir = CourseDirectory(config=loaded, root=str(course))
        with Gradebook(coursedir.db_url, course_id) as gb:
            for student_id in students:
                gb.update_or_create_student(student_id)
    return Exchange(root=root, course_id=course_id, course=course, config=config, students=homes)


def student_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a simulated student's commands run in: their own home, Jupyter config and data."""
    env = dict(os.environ if env is None else env)
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PATH",
                "JUPYTER_CONFIG_PATH"):
        env.pop(key, None)
    env["HOME"] = str(home)
    return env


def describe(exchange: Exchange) -> str:
    lines = [f"exchange {exchange.root} (course {exchange.course_id}):",
             f"  {exchange.root / exchange.course_id}/outbound  755  releases, students read them",
             f"  {exchange.root / exchange.course_id}/inbound   733  submissions, students cannot list them",
             f"  {exchange.root / exchange.course_id}/feedback  711  feedback, each file named by a secret hash",
             f"recorded in {exchange.config}"]
    for student_id, home in exchange.students.items():
        lines.append(f"simulated student {student_id}: home {home} "
                     f"(run as them: scripts/as-student.sh {student_id} nbgrader fetch_assignment ID)")
    mode = stat.S_IMODE(exchange.root.stat().st_mode)
    if mode & 0o777 != 0o777:
        lines.append(f"note: {exchange.root} has mode {mode:o}; students need to write into it (1777)")
    return "\n".join(lines)
