"""The assignments the grader knows: one entry per folder of solutions/.

Points live in the solution notebooks (nbgrader grade cells); the checks live in
``autograder/checks/<checks>``, one ``@pytest.mark.task(name)`` per graded test
cell whose grade_id is ``test_<name>``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKS_DIR = Path(__file__).parent / "checks"


@dataclass(frozen=True)
class Assignment:
    id: str  # the nbgrader assignment id (folder name under solutions/)
    notebook: str  # the notebook file inside that folder
    checks: str  # the pytest module in autograder/checks/

    @property
    def checks_path(self) -> Path:
        return CHECKS_DIR / self.checks


ASSIGNMENTS: dict[str, Assignment] = {
    a.id: a
    for a in [
        Assignment("01_pytorch_basics", "pytorch_basics.ipynb", "test_pytorch_basics.py"),
        Assignment("02_optimizers", "optimizers.ipynb", "test_optimizers.py"),
        Assignment("03_init_bn_dropout", "init_bn_dropout.ipynb", "test_init_bn_dropout.py"),
        Assignment("04_augmentation_transfer", "augmentation_transfer.ipynb", "test_augmentation_transfer.py"),
        Assignment("05_second_order", "second_order.ipynb", "test_second_order.py"),
    ]
}


def find_assignment(notebook_path: str | Path, assignment_id: str | None = None) -> Assignment:
    """The assignment a notebook belongs to: by id if given, else by its file name."""
    if assignment_id is not None:
        try:
            return ASSIGNMENTS[assignment_id]
        except KeyError:
            raise KeyError(f"unknown assignment {assignment_id!r}; known: {', '.join(ASSIGNMENTS)}") from None
    name = Path(notebook_path).name
    matches = [a for a in ASSIGNMENTS.values() if a.notebook == name]
    if not matches:
        known = ", ".join(f"{a.notebook} ({a.id})" for a in ASSIGNMENTS.values())
        raise KeyError(f"{name} is not an assignment notebook the grader knows; known: {known}")
    return matches[0]
