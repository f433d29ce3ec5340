"""Put a submitted notebook back into the shape of the release before nbgrader grades it.

Students delete, duplicate, reorder and retype cells, submit an empty file or
the notebook of another assignment. nbgrader then grades the wrong cell,
silently drops a task, or fails and keeps the old score. Here:

* :class:`TolerantExporter` (``c.Autograde.exporter_class``) reads a file that
  is not a notebook as the release with a note saying why, so the submission
  is graded (0 points, a clear message) instead of failing;
* :class:`NormalizeSubmission` (first sanitize step) rebuilds the notebook in
  the release's order: every instructor cell from the release, every answer
  cell from the submission (the first copy when a ``grade_id`` repeats, in its
  release cell type), the student's own extra cells after the answer they
  followed. What it had to repair is recorded as notes for the feedback and the
  instructor's summary. It also resets the submission's automatic scores, so a
  grading run that fails later never leaves a stale score behind.

The submitted file itself is never changed: nbgrader works on a copy.
"""
from __future__ import annotations

import copy
import datetime
import os
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.v4.nbbase import random_cell_id

from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.notebook import NotebookError, parse_notebook
from autograder.preprocessors import add_note

UNREADABLE = "unreadable_submission"
INTAKE_NOTES = "intake_notes"  # what autograder.intake found (renamed, missing or refused files)


def release_notebook(config, assignment_id: str, notebook_id: str):
    """The notebook as handed out (the course's release folder), or None when it is not there."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    path = Path(coursedir.format_path(coursedir.release_directory, ".", assignment_id)) / f"{notebook_id}.ipynb"
    if not path.exists():
        return None
    return nbformat.read(str(path), as_version=4)


class TolerantExporter(NotebookExporter):
    """Reads an unreadable submission as the release, with a note, instead of failing the whole submission.

    The file read is the one the intake planned (``autograder.intake``: a renamed copy, or none for a
    missing or refused notebook), and only when it is a plain file: a symbolic link, a FIFO or a hard link
    to a file outside the submission is never opened; it is graded as the unanswered release.
    """

    def from_filename(self, filename, resources=None, **kw):
        from autograder.intake import INTAKE, RefusedFile, open_plain

        resources = resources if resources is not None else ResourcesDict()
        if "metadata" not in resources or resources["metadata"] == "":
            resources["metadata"] = ResourcesDict()
        resources["metadata"]["name"] = os.path.splitext(os.path.basename(filename))[0]
        resources["metadata"]["path"] = os.path.dirname(filename)
        resources["metadata"]["modified_date"] = datetime.date.today().strftime("%B %-d, %Y")
        intake = (resources.get("nbgrader") or {}).get(INTAKE) or {}
        source = intake.get("source", filename) if intake else filename
        notes = list(intake.get("notes", []))
        if source is None:  # the intake found no file to grade as this notebook: its notes say why
            return self._as_release(resources, None, notes, **kw)
        name = os.path.basename(source)
        try:
            with open_plain(source, links=intake.get("links", 1)) as f:
                data = f.read()
            nb = parse_notebook(data, name)
        except RefusedFile as exc:
            notes.append(f"Your submitted file {exc}; the grader does not follow links or read special files, so it "
                         f"was graded as the unanswered notebook (0 points). Submit the notebook file itself.")
            return self._as_release(resources, None, notes, **kw)
        except NotebookError as exc:
            return self._as_release(resources, str(exc), notes, **kw)
        if notes:
            nb.metadata.setdefault("autograder", {})[INTAKE_NOTES] = notes
        return self.from_notebook_node(nb, resources, **kw)

    def from_file(self, file_stream, resources=None, **kw):
        path = getattr(file_stream, "name", None)
        if path:
            return self.from_filename(path, resources, **kw)
        return super().from_file(file_stream, resources=resources, **kw)

    def _as_release(self, resources, problem: str | None, notes: list[str], **kw):
        nbgrader = (resources or {}).get("nbgrader", {})
        nb = release_notebook(self.config, nbgrader.get("assignment", ""), nbgrader.get("notebook", ""))
        if nb is None:
            raise NotebookError(problem or " ".join(notes) or "no notebook to grade")
        for cell in nb.cells:
            if cell.get("cell_type") == "code":
                cell.outputs, cell.execution_count = [], None
        meta = nb.metadata.setdefault("autograder", {})
        if problem:
            meta[UNREADABLE] = problem
        if notes:
            meta[INTAKE_NOTES] = notes
        return self.from_notebook_node(nb, resources, **kw)


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _strip_nbgrader(cell):
    cell = copy.deepcopy(cell)
    cell.metadata.pop("nbgrader", None)
    for key in ("deletable", "editable"):
        cell.metadata.pop(key, None)
    return cell


def normalize(submitted, release) -> tuple[object, list[str]]:
    """The submission in the release's structure, and what had to be repaired (as sentences)."""
    notes: list[str] = []
    canonical = [_grade_id(c) for c in release.cells]
    wanted = {gid for gid in canonical if gid}
    release_by_id = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    answers: dict[str, object] = {}
    extras: dict[str | None, list] = {}  # extra cells after the instructor/answer cell they followed
    seen_order: list[str] = []
    anchor = None
    duplicates, foreign, retyped = [], [], []
    for cell in submitted.cells:
        gid = _grade_id(cell)
        if gid in wanted and gid not in seen_order:
            seen_order.append(gid)
            anchor = gid
            is_answer = release_by_id[gid].get("metadata", {}).get("nbgrader", {}).get("solution", False)
            if is_answer:
                answers[gid] = cell
                if cell.get("cell_type") != release_by_id[gid].cell_type:
                    retyped.append(gid)
            continue
        if gid in wanted:
            duplicates.append(gid)
        elif gid:
            foreign.append(gid)
        extras.setdefault(anchor, []).append(_strip_nbgrader(cell))
    cells = list(extras.get(None, []))
    missing = []
    for gid, original in zip(canonical, release.cells):
        if gid is None:
            cells.append(copy.deepcopy(original))
            continue
        if gid in answers:
            cell = copy.deepcopy(original)  # the release's metadata and type, the student's text
            cell.source = answers[gid].get("source", "")
            cells.append(cell)
        else:
            if gid not in seen_order:
                missing.append(gid)
            cells.append(copy.deepcopy(original))
        cells.extend(extras.get(gid, []))
    present = [g for g in canonical if g in seen_order]
    answer_ids = [g for g in canonical if g and release_by_id[g].get("metadata", {}).get("nbgrader", {}).get("solution")]
    found = [g for g in answer_ids if g in answers]
    if answer_ids and not found:
        notes.append("None of this assignment's answer cells are in the submission: is it the right notebook "
                     "(or a notebook of another assignment)? It was graded as an unanswered notebook.")
    elif answer_ids and foreign and len(found) < len(answer_ids) / 2:
        # Assignments share some cell names (predictions, tuning): another assignment's notebook then matches a few.
        shown = ", ".join(foreign[:6]) + (", ..." if len(foreign) > 6 else "")
        notes.append(f"Only {len(found)} of this assignment's {len(answer_ids)} answer cells are in the submission, "
                     f"and it has graded cells this assignment does not have ({shown}): is it the right notebook "
                     "(or a notebook of another assignment)? The missing cells were restored from the release and "
                     "count as unanswered.")
    elif missing:
        notes.append(f"Cells missing from the submission were restored from the release: {', '.join(missing)}"
                     f" (a missing answer cell counts as unanswered).")
    if present != seen_order:
        notes.append("Graded cells were out of order; they were graded in the release's order.")
    if duplicates:
        notes.append(f"Cells appear more than once: {', '.join(dict.fromkeys(duplicates))}; the first copy was "
                     f"graded, later copies were kept as ordinary cells.")
    if foreign:
        notes.append(f"Cells with ids this notebook does not have were kept as ordinary cells: "
                     f"{', '.join(dict.fromkeys(foreign))}.")
    if retyped:
        notes.append(f"Answer cells whose type was changed were graded as the release's type: {', '.join(retyped)}.")
    seen_ids = set()
    for cell in cells:  # copied cells share their nbformat id; nbformat wants them unique
        if "id" in cell:
            if cell["id"] in seen_ids:
                cell["id"] = random_cell_id()
            seen_ids.add(cell["id"])
    result = copy.deepcopy(submitted)
    result.cells = cells
    return result, notes


class NormalizeSubmission(NbGraderPreprocessor):
    """First sanitize step: release structure, repair notes, and no stale automatic scores."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        unreadable = nb.metadata.get("autograder", {}).pop(UNREADABLE, None)
        intake_notes = nb.metadata.get("autograder", {}).pop(INTAKE_NOTES, [])
        self._reset_scores(info)
        for note in intake_notes:
            add_note(nb, note)
        if unreadable:
            add_note(nb, f"Your submitted file could not be read ({unreadable}), so it was graded as the "
                         f"unanswered release.")
            return nb, resources
        release = release_notebook(self.config, info["assignment"], info["notebook"])
        if release is None:
            self.log.warning("No release notebook for %s/%s: the structure is not checked",
                             info["assignment"], info["notebook"])
            return nb, resources
        fixed, notes = normalize(nb, release)
        fixed.metadata = nb.metadata
        for note in notes:
            add_note(fixed, note)
        return fixed, resources

    def _reset_scores(self, info) -> None:
        """Automatic scores of this notebook go to 0 now, and get their new values when grading succeeds."""
        from nbgrader.api import Gradebook, MissingEntry

        try:
            with Gradebook(info["db_url"]) as gb:
                submission = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                for grade in submission.grades:
                    if grade.auto_score is not None:
                        grade.auto_score = 0
                gb.db.commit()
        except MissingEntry:
            pass
