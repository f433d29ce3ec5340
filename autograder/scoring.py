"""What a task's points are for: its scoring model, declared next to the checks.

A check module may define ``SCORING = {task: [Part(...), ...]}``. Each part names what it gives points
for, its weight, and the check functions it needs: a part earns its share only when every one of its
checks passes (on every device and dtype of its parametrization: a check counts once, as before). A task's
score is ``points * (weights of the parts earned) / (all its weights)``, rounded to 2 decimals, so it is
the same on every grader. A task without a declaration scores each check as its own part of weight 1.

For the update rules, for example, 3 of 4 shares are for the update being right over a changing learning
rate and through ``torch.optim``'s loop, 1 for the contract (in place, state keys, dtype and device): a
wrong algorithm that respects the contract keeps 1/4 of the points, a right one that keeps its state on
the wrong device keeps 3/4.

This module is imported by the check modules (in the checking process) and by the runner (in the grader);
it holds no checks and no reference answers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Part:
    name: str  # what the share is for, in the student's words ("the steps", "the state")
    weight: float  # relative to the task's other parts
    checks: tuple[str, ...]  # check functions (test_...) that must all pass for this share
    about: str = ""  # one line: what these checks look at

    def to_json(self) -> dict:
        return asdict(self) | {"checks": list(self.checks)}

    @classmethod
    def from_json(cls, data: dict) -> "Part":
        return cls(str(data["name"]), float(data["weight"]), tuple(data["checks"]), str(data.get("about", "")))


def default_parts(functions: list[str]) -> list[Part]:
    """One part of weight 1 per check: what a task without a declared scoring model gets."""
    return [Part(f.removeprefix("test_").replace("_", " "), 1.0, (f,)) for f in functions]


def earned_fraction(parts: list[Part], passed: dict[str, bool]) -> float:
    """The share of the task earned: parts whose checks all ran and passed, by weight."""
    total = sum(p.weight for p in parts)
    if total <= 0:
        return 0.0
    earned = sum(p.weight for p in parts if p.checks and all(passed.get(c, False) for c in p.checks))
    return earned / total


def part_points(parts: list[Part], points: float) -> list[float]:
    """The points each part is worth out of ``points`` (rounded to 2 decimals, for the feedback)."""
    total = sum(p.weight for p in parts) or 1.0
    return [round(points * p.weight / total, 2) for p in parts]


def validate(scoring: dict[str, list[Part]], checks_by_task: dict[str, set[str]]) -> list[str]:
    """Instructor errors in a declaration: every check of a declared task in exactly one part, no unknown
    check, positive weights."""
    problems = []
    for task, parts in scoring.items():
        if task not in checks_by_task:
            problems.append(f"SCORING declares task {task!r}, which has no checks")
            continue
        listed = [c for p in parts for c in p.checks]
        for c in sorted(set(listed)):
            if listed.count(c) > 1:
                problems.append(f"{task}: {c} is in more than one part")
        for c in sorted(set(listed) - checks_by_task[task]):
            problems.append(f"{task}: part lists {c}, which is not a check of this task")
        for c in sorted(checks_by_task[task] - set(listed)):
            problems.append(f"{task}: check {c} is in no part, so it would not count")
        problems += [f"{task}: part {p.name!r} has weight {p.weight}" for p in parts if not p.weight > 0]
    return problems
