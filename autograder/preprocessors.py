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

import time

from nbformat.v4 import new_output
from traitlets import Float

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from autograder.assignments import ASSIGNMENTS
from autograder.runner import format_task, start_checks

TEST_PREFIX = "test_"


def graded_test_cells(nb):
    """Code cells that nbgrader grades automatically (grade cells that are not answers)."""
    return [c for c in nb.cells if c.cell_type == "code" and is_grade(c) and not is_solution(c)]


PENDING = "autograder_pending_checks"


def _checked_cells(nb):
    return [c for c in graded_test_cells(nb) if c.metadata.nbgrader.get("grade_id", "").startswith(TEST_PREFIX)]


class HiddenChecks(NbGraderPreprocessor):
    """Settings shared by StartHiddenChecks and RunHiddenChecks (configure them as c.HiddenChecks.*)."""

    timeout = Float(600.0, help="Seconds all checks of one notebook may take together.").tag(config=True)
    check_timeout = Float(60.0, help="Seconds one check may take (an infinite loop fails only that check).").tag(
        config=True
    )

    def _start(self, nb, resources):
        """Start the checks of this notebook's assignment, or return None if there is nothing to check."""
        assignment_id = resources.get("nbgrader", {}).get("assignment")
        if not _checked_cells(nb):
            return None
        assignment = ASSIGNMENTS.get(assignment_id)
        if assignment is None:
            self.log.warning("No hidden checks are registered for assignment %r; test cells keep their kernel outputs",
                             assignment_id)
            return None
        return start_checks(nb, assignment, timeout=self.timeout, check_timeout=self.check_timeout)


class StartHiddenChecks(HiddenChecks):
    """Start the hidden checks before nbgrader executes the notebook, so both run at once."""

    def preprocess(self, nb, resources):
        resources[PENDING] = self._start(nb, resources)
        return nb, resources


class RunHiddenChecks(HiddenChecks):
    """Grade test cells with the hidden checks, run outside the student's kernel."""

    def preprocess(self, nb, resources):
        pending = resources.pop(PENDING, None) or self._start(nb, resources)
        if pending is None:
            return nb, resources
        cells = _checked_cells(nb)
        assignment_id = resources.get("nbgrader", {}).get("assignment")
        started = time.perf_counter()
        report = pending.result()
        self.log.info("Hidden checks of %s: waited %.1f s after execution", assignment_id,
                      time.perf_counter() - started)
        if report.problem:
            self.log.error("Hidden checks for %s failed to run: %s", assignment_id, report.problem)
        for cell in cells:
            task = cell.metadata.nbgrader["grade_id"][len(TEST_PREFIX):]
            text, score = format_task(report, task, float(cell.metadata.nbgrader["points"]))
            cell.outputs = [
                new_output("stream", name="stdout", text=text + "\n"),
                new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=cell.get("execution_count")),
            ]
        return nb, resources
