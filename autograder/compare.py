"""Comparisons that explain themselves.

Every hidden check fails by raising :class:`CheckFailure` with a message written
for the student: what was checked, on which input, what was expected and what
came back (the first differing element for tensors), and, when the wrong value
matches a known mistake, the likely cause. Messages never quote check source.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import torch

# Taken before any student code runs, so a submission that patches torch
# cannot change how answers are compared.
_isclose = torch.isclose
_tensor_type = torch.Tensor
_size_type = torch.Size


class CheckFailure(AssertionError):
    """A check failed; ``str(exc)`` is the feedback shown to the student."""


def fail(message: str) -> None:
    raise CheckFailure(message)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def describe(value) -> str:
    """A short description of any value, for 'got ...' messages."""
    if isinstance(value, _tensor_type):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}, device {value.device}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 80 else text[:77] + '...'}"


def _matches(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, equal_nan: bool = False) -> bool:
    if got.shape != expected.shape:
        return False
    got = got.detach().to("cpu", torch.float64)
    expected = expected.detach().to("cpu", torch.float64)
    return bool(_isclose(got, expected, rtol=rtol, atol=atol, equal_nan=equal_nan).all())


def first_difference(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str:
    g = got.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    bad = ~_isclose(g, e, rtol=rtol, atol=atol)
    count = int(bad.sum())
    index = tuple(int(i) for i in bad.nonzero()[0]) if g.dim() else ()
    where = f"at index {list(index)}" if index else ""
    gv, ev = float(g[index]), float(e[index])
    return (
        f"{count} of {g.numel()} elements differ; first {where}: expected {_fmt(ev)}, got {_fmt(gv)}"
        f" (max abs difference {_fmt(float((g - e).abs().nan_to_num(math.inf).max()))})"
    )


def diagnose(got, mistakes: Mapping[str, object] | None, rtol: float, atol: float) -> str:
    """Name the known mistake whose result equals ``got``, if any."""
    for cause, wrong in (mistakes or {}).items():
        try:
            value = wrong() if callable(wrong) else wrong
        except Exception:
            continue
        if isinstance(got, _tensor_type) and isinstance(value, _tensor_type):
            # NaN where the mistake gives NaN counts as a match: some mistakes divide by zero.
            if _matches(got, value, rtol, atol, equal_nan=True):
                if got.numel() and not bool(torch.isfinite(got).any()):
                    return f"\n  One known mistake that gives this (nothing but NaN/inf is weak evidence): {cause}"
                return f"\n  Likely cause: {cause}"
        elif isinstance(value, (int, float)) and isinstance(got, (int, float)):
            if math.isclose(float(got), float(value), rel_tol=rtol, abs_tol=atol):
                return f"\n  Likely cause: {cause}"
    return ""


def check_tensor(
    got,
    expected: torch.Tensor,
    what: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    mistakes: Mapping[str, object] | None = None,
    check_dtype: bool = True,
    check_device: bool = True,
) -> None:
    """Fail unless ``got`` is a tensor equal to ``expected`` (shape, dtype, device, values)."""
    if not isinstance(got, _tensor_type):
        fail(f"{what}: expected a tensor, got {describe(got)}")
    if tuple(got.shape) != tuple(expected.shape):
        fail(
            f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
            + diagnose(got, mistakes, rtol, atol)
        )
    if check_dtype and got.dtype != expected.dtype:
        fail(f"{what}: expected dtype {expected.dtype}, got {got.dtype}")
    if check_device and got.device != expected.device:
        fail(f"{what}: expected the result on {expected.device}, got it on {got.device}")
    if not bool(torch.isfinite(got.detach().to(torch.float64)).all()) and bool(
        torch.isfinite(expected.detach().to(torch.float64)).all()
    ):
        fail(f"{what}: the result contains NaN or inf values" + diagnose(got, mistakes, rtol, atol))
    if not _matches(got, expected, rtol, atol):
        fail(f"{what}: {first_difference(got, expected, rtol, atol)}" + diagnose(got, mistakes, rtol, atol))


def check_number(
    got,
    expected: float,
    what: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    mistakes: Mapping[str, object] | None = None,
) -> None:
    """Fail unless ``got`` is a real number (or a one-element tensor) close to ``expected``."""
    if isinstance(got, _tensor_type):
        if got.numel() != 1:
            fail(f"{what}: expected a single number, got {describe(got)}")
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(f"{what}: expected a number, got {describe(got)}")
    got = float(got)
    if math.isnan(got) or not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        fail(f"{what}: expected {_fmt(expected)}, got {_fmt(got)}" + diagnose(got, mistakes, rtol, atol))


def check_prediction(
    got,
    expected,
    what: str,
    *,
    choices: Iterable[str] | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    mistakes: Mapping[str, object] | None = None,
    wrong_choice: str = "run the experiment and see which it is",
    why: str = "",
) -> None:
    """A "predict first" answer of the assignments: a number within the tolerance (three significant digits by
    default); when ``expected`` is a tuple, that exact shape (a tuple, list or torch.Size of ints); when
    ``choices`` are given, one of those letters (any case, surrounding spaces ignored). A wrong answer gets the
    known mistake it matches (``mistakes``: cause -> that wrong answer) and the reasoning ``why``."""
    try:
        if choices is not None:
            choices = tuple(choices)
            if not isinstance(got, str) or got.strip().lower() not in choices:
                fail(f"{what.split(' (')[0]} should be one of the letters {', '.join(repr(c) for c in choices)}, "
                     f"got {describe(got)}")
            check_true(got.strip().lower() == expected,
                       f"{what}: {got.strip().lower()!r} is not what happens; {wrong_choice}")
        elif isinstance(expected, tuple):
            ints = isinstance(got, (tuple, list, _size_type)) and all(
                isinstance(d, int) and not isinstance(d, bool) for d in got)
            if not ints:
                fail(f"{what}: expected a shape, a tuple of ints such as {expected}, got {describe(got)}")
            if tuple(got) != expected:
                cause = next((c for c, v in (mistakes or {}).items() if tuple(v) == tuple(got)), None)
                fail(f"{what}: expected {expected}, got {tuple(got)}" + (f"\n  Likely cause: {cause}" if cause else ""))
        else:
            check_number(got, expected, what, rtol=rtol, atol=atol, mistakes=mistakes)
    except CheckFailure as exc:
        if not why:
            raise
        raise CheckFailure(f"{exc}\n  Reasoning: {why}") from None


def learning_rate(value, what: str) -> float:
    """A student's chosen learning rate as a float (a one-element tensor is accepted), or a failure that says
    what was expected: a finite number in (0, 10)."""
    if isinstance(value, _tensor_type) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value < 10:
        fail(f"{what} should be a positive float; got {describe(value)}")
    return float(value)


def check_true(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def first_mismatch(got: Iterable, expected: Iterable, what: str, compare: Callable[[object, object], None]) -> None:
    """Compare two sequences step by step and report the first step that differs."""
    got, expected = list(got), list(expected)
    if len(got) != len(expected):
        fail(f"{what}: expected {len(expected)} steps, got {len(got)}")
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        compare(g, e, f"{what}, step {step}")
