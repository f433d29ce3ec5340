"""The scoring model (autograder/scoring.py): parts, shares, the feedback line, and the check modules'
declarations (every check of a declared task in exactly one part)."""
import importlib

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.runner import CheckResult, Report, TaskResult, format_task
from autograder.scoring import Part, default_parts, earned_fraction, part_points, validate

STEPS = Part("the steps", 3, ("test_steps", "test_torch"))
STATE = Part("the state", 1, ("test_contract",))


def result(**passed) -> TaskResult:
    return TaskResult("adam", [CheckResult(f, ok, "" if ok else f"{f} failed") for f, ok in passed.items()],
                      declared=[STEPS, STATE])


def test_a_part_needs_all_its_checks():
    assert earned_fraction([STEPS, STATE], {"test_steps": True, "test_torch": True, "test_contract": True}) == 1
    # PyTorch's momentum form: right at a constant learning rate (torch), wrong over a changing one (steps)
    assert earned_fraction([STEPS, STATE], {"test_steps": False, "test_torch": True, "test_contract": True}) == 0.25
    assert earned_fraction([STEPS, STATE], {"test_steps": True, "test_torch": True, "test_contract": False}) == 0.75
    assert earned_fraction([STEPS, STATE], {"test_steps": True, "test_contract": True}) == 0.25  # a check missing


def test_scores_are_rounded_and_the_same_whatever_the_order():
    a = result(test_steps=True, test_torch=True, test_contract=False)
    b = TaskResult("adam", list(reversed(a.checks)), declared=[STATE, STEPS])
    assert a.score(3) == b.score(3) == 2.25
    assert a.score(2) == 1.5 and a.score(1) == 0.75


def test_undeclared_tasks_score_each_check_equally():
    parts = default_parts(["test_one_hot", "test_pairwise"])
    assert [p.name for p in parts] == ["one hot", "pairwise"]
    plain = TaskResult("tensors", [CheckResult("test_one_hot", True), CheckResult("test_pairwise", False, "x")])
    assert plain.fraction == 0.5 and plain.score(2) == 1
    three = TaskResult("t", [CheckResult("a", True), CheckResult("b", False), CheckResult("c", False)])
    assert three.score(2) == 0.67  # as before the scoring model


def test_part_points_and_the_feedback_say_what_the_points_are_for():
    assert part_points([STEPS, STATE], 3) == [2.25, 0.75]
    report = Report({"adam": result(test_steps=True, test_torch=True, test_contract=False)}, [])
    text, score = format_task(report, "adam", 3)
    assert score == 2.25
    assert "3 points: 2.25 for the steps, 0.75 for the state" in text
    assert "EARNED 2.25 for the steps" in text and "LOST 0.75 for the state" in text
    assert "FAIL contract" in text and "test_contract failed" in text


def _checks_by_task(module) -> dict[str, set[str]]:
    """task -> check functions, from the ``task`` marks (on the function or on its parametrize values)."""
    found: dict[str, set[str]] = {}
    for name in dir(module):
        fn = getattr(module, name)
        if not name.startswith("test_") or not callable(fn):
            continue
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "task":
                found.setdefault(mark.args[0], set()).add(name)
            if mark.name == "parametrize":
                for value in mark.args[1]:
                    for m in getattr(value, "marks", ()):
                        if m.name == "task":
                            found.setdefault(m.args[0], set()).add(name)
    return found


@pytest.mark.parametrize("assignment", ASSIGNMENTS.values(), ids=lambda a: a.id)
def test_declarations_cover_every_check_of_their_tasks(assignment):
    module = importlib.import_module(f"autograder.checks.{assignment.checks.removesuffix('.py')}")
    scoring = getattr(module, "SCORING", {})
    assert validate(scoring, _checks_by_task(module)) == []


def test_validate_names_instructor_errors():
    problems = validate({"adam": [STEPS], "nope": [STATE]}, {"adam": {"test_steps", "test_torch", "test_contract"}})
    assert any("nope" in p for p in problems) and any("test_contract is in no part" in p for p in problems)
    assert validate({"adam": [STEPS, Part("x", 0, ("test_contract",))]},
                    {"adam": {"test_steps", "test_torch", "test_contract"}}) == ["adam: part 'x' has weight 0"]


def test_the_optimizer_policy():
    """Every update rule: a wrong algorithm keeps at most 1/3, a contract slip with right numbers at least 2/3."""
    module = importlib.import_module("autograder.checks.test_optimizers")
    for task, parts in module.SCORING.items():
        if task not in module.RULES:  # the experiment's parts are not an update rule's
            continue
        functions = {c for p in parts for c in p.checks}
        wrong = {f: f != "test_steps_match_reference" for f in functions}
        slip = {f: f != "test_rule_contract" for f in functions}
        assert earned_fraction(parts, wrong) <= 1 / 3, task
        assert earned_fraction(parts, slip) >= 2 / 3, task


def test_the_experiments_split_and_choice_are_separate_shares():
    """Assignment 2's experiment: a leaky split with a good rate keeps half, and so does a right split with a
    rate that misses the target."""
    module = importlib.import_module("autograder.checks.test_optimizers")
    parts = module.SCORING["tuning"]
    assert earned_fraction(parts, {"test_split_train_val": False, "test_chosen_lr_reaches_the_target": True}) == 0.5
    assert earned_fraction(parts, {"test_split_train_val": True, "test_chosen_lr_reaches_the_target": False}) == 0.5
