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

A release folder may hold a student's work: a self-study learner who answered the notebook in
assignments/<id>/ instead of a fetched copy. Replacing it would lose that work silently, so
every release (``odl-grade release`` and nbgrader's own ``generate_assignment``, which
formgrader's Generate button runs, through ``install_release_guard``) first checks each file of
the folder it replaces: a file is the course's own when it is byte-identical to the new
release, to what the last release wrote (``<release>/.released/<id>.json``, a SHA-256
manifest), or, with no record, to the copy committed in git. Anything else is someone's edit:
the release refuses and names the files; ``odl-grade release --force`` keeps a copy of them in
``.work/release-backups/<time>/`` first and says where. Students work on fetched copies
(``nbgrader fetch_assignment``, ``odl-grade fetch``), which never overwrite a file.
"""
from __future__ import annotations

import datetime
import hashlib
import json
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


MANIFEST_DIR = ".released"  # in the release folder: <id>.json, what the last release wrote (hidden, not released)
IGNORED = (".ipynb_checkpoints", "__pycache__")


class ReleaseHoldsEdits(CourseError):
    """Replacing a release folder would lose files someone edited or added (``paths``)."""

    def __init__(self, folder: Path, paths: list[Path]):
        self.folder, self.paths = folder, paths
        shown = "\n".join(f"  {p}" for p in paths)
        super().__init__(
            f"{folder} holds work that is not the course's release, and releasing would replace it:\n{shown}\n"
            f"Students and self-study learners work on a fetched copy (odl-grade fetch {folder.name}). Move these "
            f"files away, or run odl-grade release --force {folder.name}: it keeps a copy of them in "
            f".work/release-backups/ and says where.")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release_files(folder: Path) -> dict[str, Path]:
    """Relative path -> file, for the files of a release folder (checkpoints and caches left out)."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in IGNORED for part in rel.parts) or not (path.is_file() or path.is_symlink()):
            continue
        out[rel.as_posix()] = path
    return out


def manifest_path(folder: Path) -> Path:
    return folder.parent / MANIFEST_DIR / f"{folder.name}.json"


def read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads(manifest_path(folder).read_text())
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_manifest(folder: Path) -> Path:
    """Record what the release folder holds now (SHA-256 per file; no times, so it is reproducible)."""
    path = manifest_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {rel: sha256(p) for rel, p in release_files(folder).items() if not p.is_symlink()}
    path.write_text(json.dumps({"assignment": folder.name, "files": files}, indent=1, sort_keys=True) + "\n")
    return path


def git_clean(path: Path) -> bool:
    """Whether ``path`` is tracked by git and unchanged since the last commit."""
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30)
        if top.returncode != 0:
            return False
        rel = path.resolve().relative_to(Path(top.stdout.strip()).resolve())
        tracked = subprocess.run(["git", "-C", top.stdout.strip(), "ls-files", "--error-unmatch", "--", str(rel)],
                                 capture_output=True, timeout=30)
        if tracked.returncode != 0:
            return False
        diff = subprocess.run(["git", "-C", top.stdout.strip(), "diff", "--quiet", "HEAD", "--", str(rel)],
                              capture_output=True, timeout=30)
        return diff.returncode == 0
    except (OSError, ValueError, subprocess.SubprocessError):
        return False


def edited_files(folder: Path, new_release: Path | None = None) -> list[Path]:
    """Files in release folder ``folder`` that replacing it would lose: not the course's own release.

    A file is the course's own when it is identical to the same file of ``new_release`` (the folder
    about to replace it, when known), matches the manifest of the last release, or (no manifest
    entry) is tracked by git and unchanged. Links are never the course's own."""
    manifest = read_manifest(folder)
    new = release_files(new_release) if new_release is not None else {}
    lost = []
    for rel, path in release_files(folder).items():
        if path.is_symlink():
            lost.append(path)
            continue
        digest = sha256(path)
        if rel in new and not new[rel].is_symlink() and sha256(new[rel]) == digest:
            continue
        if rel in manifest:
            if manifest[rel] != digest:
                lost.append(path)
            continue
        if not git_clean(path):
            lost.append(path)
    return lost


def backup(paths: list[Path], folder: Path, backups: Path) -> Path:
    """Copy ``paths`` (files of ``folder``) into a new timestamped folder under ``backups``; return it."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest = backups / stamp / folder.name
    for path in paths:
        target = dest / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            os.symlink(os.readlink(path), target)
        else:
            shutil.copy2(path, target)
    return dest.parent


def replace_release(new: Path, dest: Path, force: bool = False, backups: Path | None = None) -> Path | None:
    """Replace release folder ``dest`` by ``new``; refuse (ReleaseHoldsEdits) when that would lose edits.

    ``force``: copy the edited files into ``backups`` first (returned), then replace."""
    kept = None
    edits = edited_files(dest, new) if dest.exists() else []
    if edits:
        if not force:
            raise ReleaseHoldsEdits(dest, edits)
        kept = backup(edits, dest, backups or dest.parent.parent / ".work" / "release-backups")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(new, dest, ignore=shutil.ignore_patterns(*IGNORED))
    write_manifest(dest)
    return kept


def install_release_guard() -> None:
    """Make nbgrader's own ``generate_assignment`` (formgrader's Generate) refuse to replace edited work.

    nbgrader removes the existing release folder (``--force``, or when the source is newer) before
    converting; the guard checks that folder first and fails the assignment with the list of edited
    files instead. After a successful generate it records the manifest, so the next release knows
    the files as the course's own. Idempotent."""
    from nbgrader.converters.generate_assignment import GenerateAssignment

    if getattr(GenerateAssignment, "_odl_release_guard", False):
        return
    from nbgrader.converters.base import NbGraderException

    original_init, original_permissions = GenerateAssignment.init_destination, GenerateAssignment.set_permissions
    original_convert = GenerateAssignment.convert_notebooks

    def init_destination(self, assignment_id, student_id):
        dest = Path(os.path.normpath(self._format_dest(assignment_id, student_id)))
        if dest.is_dir():
            edits = edited_files(dest)
            if edits:
                # not an exception: nbgrader removes the folder of an assignment that fails
                self.log.error(str(ReleaseHoldsEdits(dest, edits)))
                self._odl_refused.append(assignment_id)
                return False
        return original_init(self, assignment_id, student_id)

    def convert_notebooks(self):
        self._odl_refused = []
        original_convert(self)
        if self._odl_refused:
            raise NbGraderException(f"not generated, the release folder holds edited work: "
                                    f"{', '.join(self._odl_refused)} (see above)")

    def set_permissions(self, assignment_id, student_id):
        original_permissions(self, assignment_id, student_id)
        dest = Path(os.path.normpath(self._format_dest(assignment_id, student_id)))
        try:
            write_manifest(dest)
        except OSError as exc:
            self.log.warning("could not record the release manifest of %s: %s", dest, exc)

    GenerateAssignment.init_destination = init_destination
    GenerateAssignment.set_permissions = set_permissions
    GenerateAssignment.convert_notebooks = convert_notebooks
    GenerateAssignment._odl_release_guard = True


def generate_release(ids: list[str] | None, into: Path, solutions: Path = SOLUTIONS,
                     config: Path | None = None, force: bool = False) -> list[Path]:
    """Generate the release of ``ids`` (default: all) into ``into``/<id>; return the folders.

    ``config``: the course's nbgrader_config.py (default: the repository's). A folder holding
    edited work is not replaced (ReleaseHoldsEdits, raised before anything changes) unless
    ``force``: then the edited files are kept in ``into``/../.work/release-backups first
    (printed)."""
    ids = ids or assignment_ids(solutions)
    with tempfile.TemporaryDirectory(prefix="odl-release-") as tmp:
        root = Path(tmp)
        write_course_config(root, config)
        shutil.copytree(solutions, root / "solutions", ignore=shutil.ignore_patterns(*IGNORED))
        generate(root, ids)
        if not force:
            for assignment_id in ids:  # all checked before any is replaced
                dest = into / assignment_id
                edits = edited_files(dest, root / "assignments" / assignment_id) if dest.exists() else []
                if edits:
                    raise ReleaseHoldsEdits(dest, edits)
        out = []
        for assignment_id in ids:
            dest = into / assignment_id
            kept = replace_release(root / "assignments" / assignment_id, dest, force=force,
                                   backups=into.parent / ".work" / "release-backups")
            if kept is not None:
                print(f"kept a copy of the edited files of {dest} in {kept}", file=sys.stderr)
            out.append(dest)
        return out


def release(ids: list[str] | None = None, course_dir: str | Path = ".", force: bool = False) -> list[Path]:
    """Regenerate the release folder (assignments/) of the course in ``course_dir`` (default: here)."""
    layout = course_layout(course_dir)
    unknown = [i for i in ids or [] if not (layout.solutions / i).is_dir()]
    if unknown:
        raise CourseError(f"no assignment {', '.join(unknown)} in {layout.solutions} "
                          f"(known: {', '.join(assignment_ids(layout.solutions)) or 'none'})")
    layout.assignments.mkdir(parents=True, exist_ok=True)
    return generate_release(ids, layout.assignments, layout.solutions, layout.config, force=force)


# --- students: a working copy of the release that is never overwritten -----------------------------------------

class FetchError(ValueError):
    """The assignment cannot be fetched: the message says why, in one line."""


@dataclass(frozen=True)
class Fetched:
    folder: Path  # the working copy
    copied: list[Path]  # files copied now
    kept: list[Path]  # files already there and left as they are (the student's)
    backups: list[Path]  # with replace: where each replaced file was kept


def fetch(assignment_id: str, course_dir: str | Path = ".", into: str | Path | None = None,
          replace: bool = False) -> Fetched:
    """Copy the release of ``assignment_id`` into a working folder (default ``<course>/work/<id>``).

    A file already there is never overwritten: it is kept as it is and reported. ``replace``: a
    kept file that differs from the release is first renamed to ``<name>.backup-<time><suffix>``
    (reported), then the release's copy takes its place."""
    layout = course_layout(course_dir)
    source = layout.assignments / assignment_id
    if not source.is_dir():
        known = sorted(p.name for p in layout.assignments.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if layout.assignments.is_dir() else []
        raise FetchError(f"no released assignment {assignment_id!r} in {layout.assignments} "
                         f"(released: {', '.join(known) or 'none'})")
    dest = Path(into).expanduser().absolute() if into else layout.root / "work" / assignment_id
    if dest.resolve() == source.resolve():
        raise FetchError(f"{dest} is the release folder itself: fetch into a working folder")
    copied, kept, backups = [], [], []
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for rel, path in release_files(source).items():
        if path.is_symlink():
            continue  # a release holds no links; never follow one
        target = dest / rel
        if target.exists() or target.is_symlink():
            if not replace or (target.is_file() and not target.is_symlink() and sha256(target) == sha256(path)):
                kept.append(target)
                continue
            saved = target.with_name(f"{target.stem}.backup-{stamp}{target.suffix}")
            n = 1
            while saved.exists():
                saved = target.with_name(f"{target.stem}.backup-{stamp}-{n}{target.suffix}")
                n += 1
            target.rename(saved)
            backups.append(saved)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied.append(target)
    return Fetched(dest, copied, kept, backups)
