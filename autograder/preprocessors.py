"""nbgrader preprocessors that move grading out of the student's kernel.

:class:`RunHiddenChecks` runs after nbgrader's ``Execute``: it runs the
assignment's hidden checks in a fresh process on the notebook's setup and
solution cells and overwrites each graded test cell's outputs with the result:
a feedback text (stdout) and the points earned as the cell's value, which
nbgrader's ``SaveAutoGrades`` reads as partial credit. Whatever the student's
kernel printed in those cells, or patched to make them pass, no longer counts.

:class:`StartHiddenChecks`, placed before ``Execute``, starts that process early: the checks need
only the notebook's source, so they run while nbgrader executes the notebook in the kernel.

nbgrader's own ``ClearHiddenTests`` then removes the hidden regions from the
autograded notebook, so feedback never shows them.
"""
from __future__ import annotations

import os
import sys
import re
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_markdown_cell, new_output
from traitlets import Bool, Float, Integer

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from autograder.assignments import ASSIGNMENTS
from autograder.checkserver import ENV as CHECK_SERVER_ENV, process_server, protected_folders
from autograder.runner import format_task, start_checks
from autograder.sandbox import NOTES_TASK, TAMPER_PREFIX

TEST_PREFIX = "test_"


def graded_test_cells(nb):
    """Code cells that nbgrader grades automatically (grade cells that are not answers)."""
    return [c for c in nb.cells if c.cell_type == "code" and is_grade(c) and not is_solution(c)]


PENDING = "autograder_pending_checks"
# grade_ids of the test cells the hidden checks grade: RunHiddenChecks replaces their outputs, so the
# kernel need not run them (GuardedExecute skips them).
CHECKED_CELLS = "autograder_checked_cells"


def checked_cells(nb):
    return [c for c in graded_test_cells(nb) if c.metadata.nbgrader.get("grade_id", "").startswith(TEST_PREFIX)]


NOTES = "autograder"  # nb.metadata[NOTES]["notes"]: what the grader found, for the feedback and the summary


def add_note(nb, text: str) -> None:
    """Record something the student and the instructor must know about this grading (shown in both)."""
    notes = nb.metadata.setdefault(NOTES, {}).setdefault("notes", [])
    if text not in notes:
        notes.append(text)


def grader_notes(report) -> list[str]:
    """Notes the checking process made on the whole grading (e.g. torch defaults student code changed)."""
    return [c.message for c in report.task(NOTES_TASK).checks if c.message]


def add_tampering(nb, text: str) -> None:
    """Record an attempt to interfere with grading: the submission then earns no points."""
    found = nb.metadata.setdefault(NOTES, {}).setdefault("tampering", [])
    if text not in found:
        found.append(text)


# Code no answer needs and that targets the grader: patching the kernel's cell runner or its events,
# reaching for the autograder, or rewriting functions' code. Found anywhere in the notebook's code.
SUSPICIOUS = [
    (re.compile(r"\brun_cell(_async)?\b"), "replaces or calls the kernel's cell runner (run_cell)"),
    (re.compile(r"\bevents\s*\.\s*(register|unregister)\b"), "hooks into the kernel's cell events"),
    (re.compile(r"\b(import\s+autograder|from\s+autograder\b)"), "imports the autograder"),
    (re.compile(r"\bsys\s*\.\s*modules\s*\[\s*['\"]autograder"), "reaches for the autograder's modules"),
    (re.compile(r"\baddaudithook\b"), "installs an audit hook"),
    (re.compile(r"gradebook\.db"), "touches the gradebook"),
]


def scan_for_tampering(nb) -> list[str]:
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for pattern, what in SUSPICIOUS:
            if pattern.search(cell.get("source", "")):
                found.append(f"cell {index + 1} {what}")
    return found


class HiddenChecks(NbGraderPreprocessor):
    """Settings shared by StartHiddenChecks and RunHiddenChecks (configure them as c.HiddenChecks.*)."""

    timeout = Float(600.0, help="Seconds all checks of one notebook may take together.").tag(config=True)
    check_timeout = Float(60.0, help="Seconds one check may take (an infinite loop fails only that check).").tag(
        config=True
    )
    cell_timeout = Float(60.0, help="Seconds one notebook cell may take when the checks execute it.").tag(config=True)
    check_server = Bool(True, help=(
        "Fork the checking processes from a warm check server (autograder/checkserver.py), started on first use "
        "and kept for the life of this nbgrader process, unless AUTOGRADER_CHECK_SERVER names a running one "
        "('off': fresh processes). Grading several submissions in one process, each after the first starts "
        "3-4 s sooner.")).tag(config=True)
    memory_limit_mb = Integer(
        6144, help="Address space (MB) of the checking process and of the student's kernel; 0: unlimited. "
                   "Not applied where CUDA is available (the driver maps far more than it uses)."
    ).tag(config=True)

    def _start(self, nb, resources):
        """Start the checks of this notebook's assignment, or return None if there is nothing to check."""
        assignment_id = resources.get("nbgrader", {}).get("assignment")
        if not checked_cells(nb):
            return None
        assignment = ASSIGNMENTS.get(assignment_id)
        if assignment is None:
            self.log.warning("No hidden checks are registered for assignment %r; test cells keep their kernel outputs",
                             assignment_id)
            return None
        server = process_server() if self.check_server and not os.environ.get(CHECK_SERVER_ENV) else None
        return start_checks(nb, assignment, timeout=self.timeout, check_timeout=self.check_timeout,
                            guard=guard_spec(self.config, resources), memory_limit_mb=self.memory_limit_mb,
                            cell_timeout=self.cell_timeout, server=server)


class StartHiddenChecks(HiddenChecks):
    """Start the hidden checks before nbgrader executes the notebook, so both run at once."""

    def preprocess(self, nb, resources):
        resources[PENDING] = self._start(nb, resources)
        if resources[PENDING] is not None:
            resources[CHECKED_CELLS] = {c.metadata.nbgrader["grade_id"] for c in checked_cells(nb)}
        return nb, resources


class RunHiddenChecks(HiddenChecks):
    """Grade test cells with the hidden checks, run outside the student's kernel."""

    def preprocess(self, nb, resources):
        pending = resources.pop(PENDING, None) or self._start(nb, resources)
        if pending is None:
            return nb, resources
        cells = checked_cells(nb)
        assignment_id = resources.get("nbgrader", {}).get("assignment")
        started = time.perf_counter()
        report = pending.result()
        self.log.info("Hidden checks of %s: waited %.1f s after execution", assignment_id,
                      time.perf_counter() - started)
        if report.problem:
            self.log.error("Hidden checks for %s failed to run: %s", assignment_id, report.problem)
            add_note(nb, f"The hidden checks could not run: {report.problem.splitlines()[0]}")
        for restart in report.restarts:
            add_note(nb, f"Your code ended the grading process: {restart}. The grader skipped it and graded the rest.")
        for note in grader_notes(report):
            add_note(nb, note)
        for found in report.tampering:
            add_tampering(nb, found)
        for found in scan_for_tampering(nb):
            add_tampering(nb, found)
        for found in _kernel_violations(resources):
            add_tampering(nb, found)
        tampering = nb.metadata.get(NOTES, {}).get("tampering", [])
        if tampering and not report.tampering:
            report.tampering = list(tampering)
        if tampering:
            self.log.warning("Tampering in %s (%s): %s", assignment_id, resources["nbgrader"].get("student"),
                             "; ".join(tampering))
        for cell in cells:
            task = cell.metadata.nbgrader["grade_id"][len(TEST_PREFIX):]
            text, score = format_task(report, task, float(cell.metadata.nbgrader["points"]))
            cell.outputs = [
                new_output("stream", name="stdout", text=text + "\n"),
                new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=cell.get("execution_count")),
            ]
        return nb, resources


class LimitOutputSize(NbGraderPreprocessor):
    """Cut text outputs to a size a feedback page can show (a student's loop may print 100 MB)."""

    max_chars = Integer(20_000, help="Characters kept of each text output; the rest is replaced by a note.").tag(
        config=True)

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n... [{len(text) - self.max_chars:,} more characters cut by the grader]\n"

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                output["text"] = self._cut("".join(text) if isinstance(text, list) else text)
            for key in ("text/plain", "text/html"):
                data = output.get("data", {})
                if key in data:
                    text = data[key]
                    data[key] = self._cut("".join(text) if isinstance(text, list) else text)
        return cell, resources


class ShowGraderNotes(NbGraderPreprocessor):
    """A markdown cell at the top of the graded notebook with the grader's notes (it reaches the feedback)."""

    def preprocess(self, nb, resources):
        _show_notes(nb)
        return nb, resources


def _show_notes(nb) -> None:
    meta = nb.metadata.get(NOTES, {})
    notes, tampering = meta.get("notes", []), meta.get("tampering", [])
    if not notes and not tampering:
        return
    lines = ["**Notes from the grader**", ""]
    if tampering:
        lines.append("- This submission earns no points: it contains code that interferes with grading:")
        lines.extend(f"    - {t}" for t in tampering)
    lines.extend(f"- {n}" for n in notes)
    nb.cells.insert(0, new_markdown_cell("\n".join(lines), metadata={"autograder_notes": True}))


# -- what student code may touch while it is graded ------------------------------------------

KERNEL_LOG = "autograder_kernel_log"


def guard_spec(config, resources) -> dict:
    """Paths for autograder.sandbox.Guard: the course's instructor and other students' folders, the gradebook."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    root = Path(coursedir.root).resolve()
    protected = [
        coursedir.format_path(coursedir.source_directory, ".", "."),
        coursedir.format_path(coursedir.submitted_directory, ".", "."),
        coursedir.format_path(coursedir.autograded_directory, ".", "."),
        coursedir.format_path(coursedir.feedback_directory, ".", "."),
    ]
    db_url = resources.get("nbgrader", {}).get("db_url") or coursedir.db_url
    if db_url.startswith("sqlite:///"):
        db = Path(db_url[len("sqlite:///"):])
        protected += [str(db), str(db) + "-journal", str(db) + "-wal", str(db) + "-shm"]
    protected += protected_folders()  # the check servers' sockets: student code must not ask for unguarded checks
    own = resources.get("metadata", {}).get("path")
    # Code and packages every grading shares: the sandbox mounts them read-only; the guard reports the attempt.
    import course

    shared = [str(root), os.path.dirname(os.path.realpath(course.__file__)), os.path.realpath(sys.prefix),
              os.path.realpath(sys.base_prefix)]
    return {"protected": [os.path.normpath(p) for p in protected], "readonly": list(dict.fromkeys(shared)),
            "writable": [str(Path(own).resolve())] if own else []}


def _kernel_violations(resources) -> list[str]:
    path = resources.get(KERNEL_LOG)
    if not path or not os.path.exists(path):
        return []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    finally:
        os.unlink(path)  # read once: kernel logs do not pile up in the temp folder
    return [f"in the notebook's kernel: {line}" for line in dict.fromkeys(lines) if line.strip()]
