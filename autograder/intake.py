"""Intake: what nbgrader takes from a submission folder, decided before any file in it is read.

nbgrader collects a submission with globs and plain ``open``/``shutil.copy``: a notebook that is a
symbolic link is read through the link (another student's file, the gradebook, a FIFO that hangs the
grader), a FIFO among the other files makes the copy fail, a student id with glob characters
(``x[1]``, ``a*b``) matches nothing, and a notebook saved under another name ("optimizers – Kopie
(1).ipynb") leaves nbgrader with "No notebooks found" (exit 1). Here, per submission folder:

* :func:`survey` lists the folder with ``lstat`` only (no link is followed, nothing is opened) and
  refuses every symbolic link, FIFO, socket and device, and every hard link to a file outside the
  submission (``st_nlink`` larger than the names it has inside);
* :func:`plan` decides which file is graded as each notebook the assignment expects: the file of
  that name; else, when exactly one notebook is missing and exactly one unexpected notebook was
  submitted, that one (a renamed copy), with a note; else none: the notebook is graded as the
  unanswered release, with a note naming the file the grader expected. A refused notebook is graded
  the same way (0 points, a note saying why); its target is never opened;
* :class:`IntakeAutograde` / :class:`IntakeFeedback` are nbgrader's converters with that intake:
  notebooks found through escaped globs, other files copied only when they are plain files (opened
  with ``O_NOFOLLOW``, checked again after opening), ``timestamp.txt`` read the same way.
  :func:`install` makes ``nbgrader autograde`` and ``nbgrader generate_feedback`` use them (the
  course's nbgrader_config.py calls it; nbgrader's apps build their converter by name).

What the intake decided reaches the notebook through its resources (``resources["nbgrader"]
["intake"]``): ``structure.TolerantExporter`` reads the planned file (or none) and
``structure.NormalizeSubmission`` turns the intake notes into the grader's notes. Submitted files are
never modified.
"""
from __future__ import annotations

import errno
import fnmatch
import glob
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

INTAKE = "intake"  # resources["nbgrader"][INTAKE]: {"source": path or None, "refused": str, "notes": [...]}


class RefusedFile(OSError):
    """A submitted file the grader will not read (a link, a FIFO, a device, a hard link to elsewhere)."""


def _kind(st: os.stat_result) -> str | None:
    """Why a file with this ``lstat`` is refused, or None for a plain file or folder."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a plain file"
    return None


@dataclass
class Survey:
    folder: str
    files: dict[str, int] = field(default_factory=dict)  # relative path of each plain file -> its names inside
    refused: dict[str, str] = field(default_factory=dict)  # relative path -> why it is refused


def survey(folder: str) -> Survey:
    """Every entry below ``folder``, by ``lstat`` only: plain files, and refused entries with the reason."""
    result = Survey(folder)
    inodes: dict[tuple[int, int], list[str]] = {}
    links: dict[str, int] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        try:
            entries = sorted(os.scandir(os.path.join(folder, rel) if rel else folder), key=lambda e: e.name)
        except OSError as exc:
            result.refused[rel or "."] = f"cannot be listed ({exc.strerror})"
            continue
        for entry in entries:
            path = os.path.join(rel, entry.name) if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                result.refused[path] = f"cannot be read ({exc.strerror})"
                continue
            why = _kind(st)
            if why:
                result.refused[path] = why
            elif stat.S_ISDIR(st.st_mode):
                pending.append(path)
            else:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(path)
                links[path] = st.st_nlink
    for names in inodes.values():
        for path in names:
            if links[path] > len(names):
                result.refused[path] = "a hard link to a file outside your submission"
            else:
                result.files[path] = len(names)
    return result


@dataclass
class NotebookSource:
    name: str  # the notebook id the assignment expects
    source: str | None  # the submitted file graded as it (absolute path), or None: graded as unanswered
    links: int = 1  # names the file has inside the submission (a hard link between two of its own files is fine)
    refused: str = ""  # why the submitted file is not read
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    folder: str
    notebooks: dict[str, NotebookSource]
    copy: list[str]  # relative paths of the other files to copy (plain files only)
    notes: list[str]  # about the whole submission (refused files, notebooks not graded)


def _listing(names) -> str:
    return ", ".join(f"'{n}'" for n in names)


def plan(folder: str, expected: list[str] | None, wanted: str = "*", ignore: list[str] = ()) -> Plan:
    """Which submitted file is graded as each expected notebook (``None``: every notebook as named)."""
    found = survey(folder)
    top = lambda path: os.sep not in path  # noqa: E731
    submitted = {p[:-len(".ipynb")]: p for p in list(found.files) + list(found.refused)
                 if top(p) and p.endswith(".ipynb")}
    names = [n for n in (expected if expected is not None else sorted(submitted)) if fnmatch.fnmatchcase(n, wanted)]
    unexpected = sorted(n for n in submitted if n not in names and (expected is None or n not in expected))
    missing = [n for n in names if n not in submitted]
    notebooks: dict[str, NotebookSource] = {}
    notes: list[str] = []
    renamed = len(missing) == 1 and len(unexpected) == 1
    for name in names:
        if name in submitted:
            file = submitted[name]
            note = []
        elif renamed:
            file = submitted[unexpected[0]]
            note = [f"Your notebook was submitted as '{file}', not '{name}.ipynb': it was graded as {name}.ipynb "
                    f"(the only notebook in your submission). Keep the name {name}.ipynb."]
        else:
            others = [submitted[n] for n in unexpected]
            where = f"your submission has {_listing(others)}" if others else "your submission has no notebook"
            notebooks[name] = NotebookSource(name, None, notes=[
                f"The grader expected a notebook named '{name}.ipynb', but {where}; it was graded as the "
                f"unanswered notebook (0 points). Submit your work as {name}.ipynb."])
            continue
        if file in found.refused:
            notebooks[name] = NotebookSource(name, None, refused=found.refused[file], notes=note + [
                f"Your notebook '{file}' is {found.refused[file]}; the grader does not follow links or read "
                f"special files, so it was graded as the unanswered notebook (0 points). Submit the notebook "
                f"file itself."])
        else:
            notebooks[name] = NotebookSource(name, os.path.join(folder, file), links=found.files[file], notes=note)
    if not renamed and unexpected and expected is not None:
        notes.append(f"Notebooks this assignment does not have were not graded: "
                     f"{_listing(submitted[n] for n in unexpected)}.")
    refused_others = sorted(p for p in found.refused if not (top(p) and p.endswith(".ipynb")))
    if refused_others:
        notes.append("Files the grader does not copy or read (links, pipes, devices): " + "; ".join(
            f"'{p}' ({found.refused[p]})" for p in refused_others) + ".")
    copy = [p for p in sorted(found.files) if not p.endswith(".ipynb") and not _ignored(p, ignore)]
    return Plan(folder, notebooks, copy, notes)


def _ignored(path: str, ignore) -> bool:
    """nbgrader's ignore globs, matched on each part of the path (its own matching globs the folder name)."""
    return any(fnmatch.fnmatch(part, pattern) for part in Path(path).parts for pattern in ignore)


def open_plain(path: str, links: int = 1):
    """Open a submitted file for reading only when it is a plain file: no link followed, no FIFO opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):  # O_NOFOLLOW on a symbolic link
            raise RefusedFile(f"{os.path.basename(path)} is a symbolic link") from None
        raise
    st = os.fstat(fd)
    why = _kind(st) or ("a hard link to a file outside your submission" if st.st_nlink > links else None)
    if why or stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise RefusedFile(f"{os.path.basename(path)} is {why or 'a folder'}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def copy_plain(src: str, dst: str) -> None:
    """shutil.copy for a submitted file that must be a plain file (checked after opening it)."""
    with open_plain(src, links=os.lstat(src).st_nlink) as f_in:  # hard links inside: survey decided
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.remove(dst)
        with open(dst, "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
        os.chmod(dst, stat.S_IMODE(os.fstat(f_in.fileno()).st_mode))


def read_timestamp_text(folder: str) -> str | None:
    """timestamp.txt of a submission, read only when it is a plain file (None when absent or refused)."""
    try:
        with open_plain(os.path.join(folder, "timestamp.txt")) as f:
            return f.read(4096).decode(errors="replace")
    except (OSError, RefusedFile):
        return None


def _linked_below(root: str, folder: str) -> str | None:
    """The first path between ``root`` (exclusive) and ``folder`` that is a symbolic link, if any."""
    root, path = os.path.abspath(root), os.path.abspath(folder)
    if not path.startswith(root + os.sep):
        return None
    parts = os.path.relpath(path, root).split(os.sep)
    for i in range(1, len(parts) + 1):
        candidate = os.path.join(root, *parts[:i])
        if os.path.islink(candidate):
            return candidate
    return None


# -- nbgrader converters with this intake -----------------------------------------------------

def _expected_notebooks(converter, assignment_id: str) -> list[str] | None:
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(converter.coursedir.db_url, converter.coursedir.course_id) as gb:
            return sorted(nb.name for nb in gb.find_assignment(assignment_id).notebooks)
    except MissingEntry:
        return None


def _make_converter_classes():
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.converters.base import BaseConverter, NbGraderException

    class _SafeFolder(BaseConverter):
        """BaseConverter's folder handling with escaped globs and plain-file copies (a mixin, see MRO)."""

        _plans: dict

        def _plan_for(self, folder: str, assignment_id: str) -> Plan:
            expected = _expected_notebooks(self, assignment_id) if self._grades_submissions else None
            return plan(folder, expected, self.coursedir.notebook_id, self.coursedir.ignore)

        _grades_submissions = False

        def _ids(self, folder: str) -> dict | None:
            regexp = self._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
            m = re.match(regexp + "$", folder)
            return m.groupdict() if m else None

        def init_notebooks(self) -> None:
            self.assignments = {}
            self.notebooks = []
            self._plans = {}
            assignment_glob = self._format_source(self.coursedir.assignment_id, self.coursedir.student_id)
            for folder in sorted(glob.glob(assignment_glob)):
                ids = self._ids(folder)
                if ids is None or not os.path.isdir(folder):
                    self.log.warning("Skipping %s: not a submission folder", folder)
                    continue
                linked = _linked_below(self.coursedir.root, folder)
                if linked:
                    self.log.error("Not grading %s: %s is a symbolic link (the grader does not follow links)",
                                   folder, linked)
                    continue
                p = self._plan_for(folder, ids["assignment_id"])
                self._plans[os.path.normpath(folder)] = p
                notebooks = [os.path.join(folder, name + ".ipynb") for name in sorted(p.notebooks)]
                if not notebooks:
                    self.log.warning("No notebooks were matched in '%s'", folder)
                    continue
                self.assignments[folder] = notebooks
            if not self.assignments:
                msg = "No notebooks were matched by '%s'" % assignment_glob
                self.log.error(msg)
                raise NbGraderException(msg)

        def _plan_of_notebook(self, notebook_filename: str) -> tuple[Plan | None, NotebookSource | None]:
            folder = os.path.normpath(os.path.dirname(notebook_filename))
            p = getattr(self, "_plans", {}).get(folder)
            if p is None:
                return None, None
            return p, p.notebooks.get(os.path.splitext(os.path.basename(notebook_filename))[0])

        def init_single_notebook_resources(self, notebook_filename: str):
            resources = super().init_single_notebook_resources(notebook_filename)
            p, source = self._plan_of_notebook(notebook_filename)
            if source is not None:
                resources["nbgrader"][INTAKE] = {"source": source.source, "links": source.links,
                                                 "refused": source.refused, "notes": source.notes + p.notes}
            return resources

        def init_assignment(self, assignment_id: str, student_id: str) -> None:
            """Copy the submission's other files: plain files only, never through a link."""
            source = self._format_source(assignment_id, student_id)
            dest = self._format_dest(assignment_id, student_id)
            p = self._plans.get(os.path.normpath(source)) or plan(source, None, "*", self.coursedir.ignore)
            for rel in p.copy:
                target = os.path.join(dest, rel)
                self.log.info("Copying %s -> %s", os.path.join(source, rel), target)
                try:
                    copy_plain(os.path.join(source, rel), target)
                except (OSError, RefusedFile) as exc:
                    self.log.warning("Not copied: %s (%s)", os.path.join(source, rel), exc)

        def _timestamp(self, path: str):
            from nbgrader.utils import parse_utc

            text = read_timestamp_text(path)
            if not text or not text.strip():
                return None
            try:
                return parse_utc(text.strip())
            except (ValueError, OverflowError):
                self.log.warning("Invalid timestamp in %s", path)
                return None

        def convert_notebooks(self) -> None:
            # nbgrader reads timestamp.txt with open(): the same check as every other submitted file
            original = self.coursedir.get_existing_timestamp
            self.coursedir.get_existing_timestamp = self._timestamp
            try:
                super().convert_notebooks()
            finally:
                self.coursedir.get_existing_timestamp = original

    class IntakeAutograde(Autograde, _SafeFolder):
        """nbgrader's Autograde with the intake (MRO: Autograde, then _SafeFolder, then BaseConverter)."""

        _grades_submissions = True  # the plan maps submitted files to the gradebook's notebooks

    class IntakeFeedback(GenerateFeedback, _SafeFolder):
        """nbgrader's GenerateFeedback with escaped globs; notebooks the gradebook does not know are skipped."""

        def init_notebooks(self) -> None:
            super().init_notebooks()
            for folder, notebooks in list(self.assignments.items()):
                ids = self._ids(folder)
                known = _expected_notebooks(self, ids["assignment_id"]) if ids else None
                if known is None:
                    continue
                kept = [n for n in notebooks if os.path.splitext(os.path.basename(n))[0] in known]
                for n in sorted(set(notebooks) - set(kept)):
                    self.log.warning("Skipping unknown notebook: %s", n)
                if kept:
                    self.assignments[folder] = kept
                else:
                    del self.assignments[folder]
            if not self.assignments:
                raise NbGraderException("No graded notebooks to generate feedback for")

    return IntakeAutograde, IntakeFeedback


IntakeAutograde, IntakeFeedback = _make_converter_classes()


def install() -> None:
    """Make ``nbgrader autograde`` and ``generate_feedback`` use the intake converters (idempotent).

    nbgrader's apps look their converter class up by name in their module when they start, after
    the config file has run; nothing else in nbgrader changes.
    """
    from nbgrader.apps import autogradeapp, generatefeedbackapp

    autogradeapp.Autograde = IntakeAutograde
    generatefeedbackapp.GenerateFeedback = IntakeFeedback
