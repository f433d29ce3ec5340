"""Every variant of autograder/conventions_catalogue.py through the real hidden checks of its task.

A correct variant (another course's convention that the assignment accepts, equivalent algebra, a rule
that also returns a value) keeps every point; a wrong one loses points and every failing check's
message names its cause (the variant's expected phrases), so no message names a wrong cause.

The check functions are called here directly, in this process, with the reference answers as the
student's namespace and the variant in place of one name: the same functions, parameters and
messages the grader's checking process runs, without a process per variant.
"""
from __future__ import annotations

import inspect
import itertools
import types

import pytest
import torch
from _pytest.mark.structures import ParameterSet

from autograder.checks import test_optimizers, test_pytorch_basics
from autograder.conventions_catalogue import VARIANTS
from autograder.references import optimizers as ref_optimizers
from autograder.references import pytorch_basics as ref_basics

MODULES = {"02_optimizers": test_optimizers, "01_pytorch_basics": test_pytorch_basics}


def reference_namespace(assignment: str) -> dict:
    if assignment == "02_optimizers":
        names = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "amsgrad", "linear_decay",
                 "log_uniform"]
        return {n: getattr(ref_optimizers, n) for n in names}
    names = ["one_hot", "pairwise_sq_distances", "mean_std", "FirstNet", "train_epoch", "evaluate"]
    return {n: getattr(ref_basics, n) for n in names}


def checks_of(module, task: str):
    """(check name, function, keyword arguments) for every check of ``task``, as pytest would parametrize them."""
    for fname, fn in vars(module).items():
        if not fname.startswith("test_") or not inspect.isfunction(fn):
            continue
        marks = getattr(fn, "pytestmark", [])
        own = [m.args[0] for m in marks if m.name == "task"]
        combos = [({}, own[0] if own else None, [])]
        for mark in reversed([m for m in marks if m.name == "parametrize"]):
            argnames = [a.strip() for a in mark.args[0].split(",")]
            ids = mark.kwargs.get("ids")
            expanded = []
            for kwargs, t, labels in combos:
                for i, value in enumerate(mark.args[1]):
                    ptask = t
                    if isinstance(value, ParameterSet):
                        ptask = next((m.args[0] for m in value.marks if m.name == "task"), t)
                        value = value.values
                    else:
                        value = (value,) if len(argnames) == 1 else value
                    label = list(ids)[i] if ids is not None and not callable(ids) else str(value[0])
                    expanded.append(({**kwargs, **dict(zip(argnames, value))}, ptask, labels + [label]))
            combos = expanded
        params = inspect.signature(fn).parameters
        for kwargs, t, labels in combos:
            if t != task:
                continue
            if "device" in params:
                kwargs = {**kwargs, "device": "cpu"}
            yield f"{fname}[{'-'.join(labels)}]", fn, kwargs


def run_task(assignment: str, task: str, namespace: dict) -> dict[str, str | None]:
    """check -> None when it passed, else the message the student would read."""
    student = types.SimpleNamespace(**namespace)
    out = {}
    for check, fn, kwargs in checks_of(MODULES[assignment], task):
        torch.manual_seed(0)
        try:
            fn(student=student, **kwargs)
            out[check] = None
        except AssertionError as exc:
            out[check] = str(exc)
        except Exception as exc:  # what the grader reports for an error in student code
            out[check] = f"{type(exc).__name__}: {exc}"
    return out


CASES = [pytest.param(v, id=f"{v.assignment}-{v.label}") for v in VARIANTS]


@pytest.mark.parametrize("variant", CASES)
def test_variant_through_the_real_checks(variant):
    results = run_task(variant.assignment, variant.task, {**reference_namespace(variant.assignment),
                                                          variant.name: variant.value})
    assert results, f"no checks for task {variant.task}"
    failing = {check: message for check, message in results.items() if message is not None}
    if variant.expect is None:
        assert not failing, f"a correct variant lost points: {failing}"
        return
    assert failing, f"{variant.label} scored full marks"
    for check, message in failing.items():
        missing = [phrase for phrase in variant.expect if phrase not in message]
        assert not missing, f"{check}: the message does not name {missing}:\n{message}"


def test_catalogue_is_large_enough_and_covers_both_kinds():
    for assignment in MODULES:
        variants = [v for v in VARIANTS if v.assignment == assignment]
        assert len(variants) >= 40, (assignment, len(variants))
        assert any(v.expect is None for v in variants) and any(v.expect for v in variants)
    labels = [(v.assignment, v.label) for v in VARIANTS]
    assert len(labels) == len(set(labels))


def test_reference_answers_pass_every_task():
    for assignment, module in MODULES.items():
        tasks = {m.args[0] for fn in vars(module).values() for m in getattr(fn, "pytestmark", []) if m.name == "task"}
        tasks |= {m.args[0] for fn in vars(module).values() for p in getattr(fn, "pytestmark", [])
                  if p.name == "parametrize" for v in p.args[1] if isinstance(v, ParameterSet)
                  for m in v.marks if m.name == "task"}
        # Tasks that are not conventions of a rule (a trained network, predicted numbers, a chosen learning rate)
        # are checked against the solution notebook in test_checks.
        for task in sorted(tasks - {"predictions", "tuning"}):
            results = run_task(assignment, task, reference_namespace(assignment))
            assert results and not any(results.values()), (assignment, task, results)
