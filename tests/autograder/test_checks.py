"""The hidden checks of every assignment, run the way the grader runs them (a fresh process per notebook)."""
from pathlib import Path

import pytest

from autograder.assignments import ASSIGNMENTS, Assignment
from autograder.notebook import read_notebook
from autograder.runner import format_task, run_checks
from autograder.submissions import MISTAKES, SEVERITY, make_submission

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def paths(assignment: Assignment):
    return (REPO / "assignments" / assignment.id / assignment.notebook,
            REPO / "solutions" / assignment.id / assignment.notebook)


@pytest.mark.parametrize("assignment", ASSIGNMENTS.values(), ids=lambda a: a.id)
def test_solution_passes_every_check(assignment):
    report = run_checks(read_notebook(paths(assignment)[1]), assignment)
    assert report.problem is None and not report.cell_errors
    failing = {t: [c.message for c in r.checks if not c.passed] for t, r in report.tasks.items() if r.fraction < 1}
    assert not failing
    assert report.tasks, "no checks ran"


@pytest.mark.parametrize("assignment", ASSIGNMENTS.values(), ids=lambda a: a.id)
def test_untouched_release_fails_every_check_with_a_readable_message(assignment):
    report = run_checks(read_notebook(paths(assignment)[0]), assignment)
    assert report.problem is None
    for task, result in report.tasks.items():
        assert result.fraction == 0, task
        for check in result.checks:
            assert "NotImplementedError" in check.message or "is not defined" in check.message, check.message


MUTANTS = [(a, m) for a in ASSIGNMENTS.values() for m in MISTAKES.get(a.id, [])]


@pytest.mark.parametrize("assignment, mistake", MUTANTS, ids=[m.name for _, m in MUTANTS])
def test_typical_mistake_costs_points_in_its_task_and_is_named(assignment, mistake):
    release, solution = paths(assignment)
    report = run_checks(make_submission(release, solution, [mistake]), assignment)
    assert report.problem is None
    assert report.task(mistake.task).fraction < 1, f"{mistake.name} was not caught"
    # The scoring policy (autograder.scoring): a wrong algorithm keeps at most a third of its task, the right
    # numbers with a slip in the state or the contract keep at least two thirds.
    if SEVERITY.get(mistake.name) == "wrong":
        assert report.task(mistake.task).fraction <= 1 / 3, (mistake.name, report.task(mistake.task))
    if SEVERITY.get(mistake.name) == "slip":
        assert report.task(mistake.task).fraction >= 2 / 3, (mistake.name, report.task(mistake.task))
    text, _ = format_task(report, mistake.task, 1)
    assert mistake.feedback in text, text
    # Every other task keeps its points, except answers that reuse this one (mistake.also): a mistake costs
    # points once (assignment 1's experiment re-runs the student's choice with the reference loop for that reason).
    exempt = {mistake.task, *mistake.also}
    others = {t: r.fraction for t, r in report.tasks.items() if t not in exempt}
    assert all(f == 1 for f in others.values()), others


def test_broken_cells_are_reported_and_do_not_stop_other_tasks():
    assignment = ASSIGNMENTS["01_pytorch_basics"]
    release, solution = paths(assignment)
    nb = make_submission(release, solution)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "tensors":
            cell.source = "def one_hot(labels, num_classes:\n    return None"
    report = run_checks(nb, assignment)
    assert report.cell_errors and "SyntaxError" in report.cell_errors[0]["error"]
    assert report.task("tensors").fraction == 0
    assert "`one_hot` is not defined" in report.task("tensors").checks[0].message
    assert report.task("firstnet").fraction == 1
