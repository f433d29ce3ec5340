"""Hidden checks for assignment 05_second_order: Newton, Gauss-Newton, Levenberg-Marquardt, the line search,
the predictions, the learning-rate experiment, the epoch instruments and the adaptive learning rate.

The steps are compared with reference implementations (autograder.references.second_order) on problems the
student does not see, in float32 and float64, on every device the grader has; wrong answers are compared with
what the typical mistakes give, so the feedback can name them. Whether a step was computed by solving or by
forming an inverse is seen directly: the inverse functions of torch are wrapped while the student's function
runs (the numbers alone cannot tell on well-conditioned problems). The instruments are replayed on a recorded
trajectory (the first epoch, a zero-length step, parameters in three tensors, a repeated epoch) and inside
course.fit next to the reference monitor; the scheduler on scripted sequences and inside course.fit.
"""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch import nn

from autograder.compare import check_number, check_tensor, check_true, describe, fail
from autograder.references import second_order as ref
from autograder.scoring import Part

DTYPES = {"float64": torch.float64, "float32": torch.float32}
TOL = {torch.float64: (1e-7, 1e-9), torch.float32: (2e-3, 1e-4)}  # (rtol, atol)
INVERTS = ("it forms an inverse ({calls}): solve the linear system with torch.linalg.solve(A, b) instead; "
           "inverting costs about three times as much and loses accuracy when the matrix is ill-conditioned")

SCORING = {
    "newton": [
        Part("the step", 3, ("test_newton_direction_matches_reference", "test_newton_step_minimizes_a_quadratic_in_one_step",
                             "test_newton_step_matches_reference_on_non_quadratics"),
             "H d = -g on several systems; one step to the minimum of a quadratic; the step elsewhere"),
        Part("solves, does not invert", 1, ("test_newton_solves_instead_of_inverting",)),
    ],
    "gauss_newton": [
        Part("the step", 3, ("test_gauss_newton_matches_reference", "test_gauss_newton_solves_linear_least_squares"),
             "several nonlinear fits, and lstsq in one step on a linear one"),
        Part("solves, does not invert", 1, ("test_gauss_newton_solves_instead_of_inverting",)),
    ],
    "levenberg_marquardt": [
        Part("the damped step", 2, ("test_lm_step_matches_reference",),
             "(J^T J + lam diag(J^T J)) d = -J^T r on several problems and dampings"),
        Part("accept, reject and the damping", 1.5, ("test_lm_rejects_a_step_that_raises_the_cost",
                                                     "test_lm_accepts_a_step_that_lowers_the_cost"),
             "a worse trial is rejected and lam grows; a better one is taken and lam shrinks, by factor"),
        Part("solves, does not invert", 0.5, ("test_lm_solves_instead_of_inverting",)),
    ],
    "line_search": [
        Part("the step", 3, ("test_backtracking_returns_the_specified_step",),
             "the first alpha of the sequence that satisfies Armijo's condition, on several functions"),
        Part("the edge cases", 1, ("test_backtracking_refuses_an_ascent_direction", "test_backtracking_gives_up"),
             "ValueError for g^T d >= 0, RuntimeError after max_iter tries"),
    ],
    "instruments": [
        Part("the norms and angles", 2, ("test_monitor_on_a_recorded_trajectory", "test_monitor_inside_course_fit"),
             "a replayed trajectory with three parameter tensors and a zero-length step; a real training run"),
        Part("the callback contract", 1, ("test_monitor_first_call_and_repeated_epoch",),
             "nothing recorded at the first call or for a repeated epoch, NaN angle first, returns None"),
    ],
    "scheduler": [
        Part("the rule", 2, ("test_scheduler_follows_its_rule", "test_scheduler_inside_course_fit"),
             "scripted losses and angles with several settings and parameter groups; a real training run"),
        Part("the callback contract", 1, ("test_scheduler_waits_for_the_first_epoch",)),
    ],
}


def student_function(student, name):
    fn = getattr(student, name)
    if not callable(fn):
        fail(f"`{name}` should be a function, got {describe(fn)}")
    return fn


@contextlib.contextmanager
def watch_inverses():
    """Record calls of torch's inverse functions (the student's function runs inside)."""
    calls: list[str] = []
    targets = [(torch.linalg, "inv"), (torch.linalg, "inv_ex"), (torch.linalg, "pinv"), (torch, "inverse"),
               (torch, "pinverse"), (torch, "cholesky_inverse"), (torch.linalg, "tensorinv")]
    methods = ["inverse", "pinverse", "cholesky_inverse"]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets if hasattr(owner, name)]
    saved_methods = [(name, vars(torch.Tensor).get(name)) for name in methods]

    def spy(label, original):
        def wrapper(*args, **kwargs):
            calls.append(label)
            return original(*args, **kwargs)
        return wrapper

    try:
        for owner, name, original in saved:
            setattr(owner, name, spy(f"{'torch.linalg' if owner is torch.linalg else 'torch'}.{name}", original))
        for name, _ in saved_methods:
            setattr(torch.Tensor, name, spy(f"Tensor.{name}", getattr(torch._C.TensorBase, name)))
        yield calls
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        for name, original in saved_methods:
            if original is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)


def spd(n, dtype, device, seed, condition=100.0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, math.log10(condition), n, dtype=torch.float64)
    return (q * eig @ q.T).to(device, dtype), torch.randn(n, generator=g, dtype=torch.float64).to(device, dtype)


def check_result_tensor(got, x, what):
    if not isinstance(got, torch.Tensor):
        fail(f"{what}: expected a tensor, got {describe(got)}")
    check_true(not got.requires_grad, f"{what}: the result requires grad; return a plain tensor (.detach())")
    check_true(got.device == x.device and got.dtype == x.dtype,
               f"{what}: the result is {got.dtype} on {got.device}, the input {x.dtype} on {x.device}")


# --- Newton --------------------------------------------------------------------------------------
@pytest.mark.task("newton")
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_newton_direction_matches_reference(student, dtype, device):
    newton_direction = student_function(student, "newton_direction")
    rtol, atol = TOL[dtype]
    for n, seed in ((1, 0), (3, 1), (8, 2)):
        H, g = spd(n, dtype, device, seed)
        got = newton_direction(g.clone(), H.clone())
        check_tensor(got, ref.newton_direction(g, H), f"newton_direction(g, H) with a {n}x{n} positive-definite H "
                     f"({dtype}, {device})", rtol=rtol, atol=atol,
                     mistakes={ref.NEWTON_MISTAKES["sign"]: ref.newton_direction(g, H, mistake="sign"),
                               "that is H g; the Newton direction solves H d = -g": -(H @ g)})


@pytest.mark.task("newton")
def test_newton_step_minimizes_a_quadratic_in_one_step(student, device):
    newton_step = student_function(student, "newton_step")
    for n, seed in ((2, 3), (5, 4), (12, 5)):
        A, b = spd(n, torch.float64, device, seed, condition=1e3)
        f = lambda x, A=A, b=b: 0.5 * x @ A @ x - b @ x  # noqa: E731
        x0 = torch.full((n,), 3.0, dtype=torch.float64, device=device)
        before = x0.clone()
        got = newton_step(f, x0)
        what = f"newton_step on 1/2 x^T A x - b^T x ({n} variables, {device}) from x = 3"
        check_result_tensor(got, x0, what)
        check_true(torch.equal(x0, before), f"{what}: x changed; return a new tensor and leave x alone")
        minimum = torch.linalg.solve(A, b)
        check_tensor(got, minimum, f"{what}: one step should land on the minimum A^-1 b", rtol=1e-6, atol=1e-8,
                     mistakes={ref.NEWTON_MISTAKES["sign"]: ref.newton_step(f, x0, mistake="sign")})


def _non_quadratic(device, dtype):
    c = torch.tensor([1.0, -0.5, 0.25], dtype=dtype, device=device)
    return {
        "log-sum-exp plus a quadratic": lambda x: torch.logsumexp(torch.stack([x[0] + x[1], x[1] - x[2], -x[0]]), 0)
        + 0.5 * (x**2).sum(),
        "a quartic bowl": lambda x: ((x - c) ** 4).sum() + 0.1 * (x**2).sum() + x[0] * x[2],
        "a logistic loss": lambda x: torch.nn.functional.softplus(-(x * c).sum() * 3) + 0.05 * (x @ x),
    }


@pytest.mark.task("newton")
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_newton_step_matches_reference_on_non_quadratics(student, dtype, device):
    newton_step = student_function(student, "newton_step")
    rtol, atol = TOL[dtype]
    x0 = torch.tensor([0.3, -0.8, 1.1], dtype=dtype, device=device)
    for label, f in _non_quadratic(device, dtype).items():
        got = newton_step(f, x0.clone())
        what = f"newton_step on {label} from {x0.tolist()} ({dtype}, {device})"
        check_result_tensor(got, x0, what)
        check_tensor(got, ref.newton_step(f, x0), what, rtol=rtol, atol=atol,
                     mistakes={ref.NEWTON_MISTAKES["sign"]: ref.newton_step(f, x0, mistake="sign")})


@pytest.mark.task("newton")
def test_newton_solves_instead_of_inverting(student, device):
    newton_direction = student_function(student, "newton_direction")
    newton_step = student_function(student, "newton_step")
    H, g = spd(4, torch.float64, device, 6)
    A, b = spd(3, torch.float64, device, 7)
    with watch_inverses() as calls:
        newton_direction(g, H)
        newton_step(lambda x: 0.5 * x @ A @ x - b @ x, torch.zeros(3, dtype=torch.float64, device=device))
    check_true(not calls, "newton_direction / newton_step: " + INVERTS.format(calls=", ".join(sorted(set(calls)))))


# --- Gauss-Newton --------------------------------------------------------------------------------
def lsq_problems(dtype, device):
    """name: (residual function, start)."""
    kw = {"dtype": dtype, "device": device}
    t = torch.linspace(0, 3, 12, **kw)
    y = 1.5 * torch.exp(-0.7 * t) + 0.2 * torch.sin(5 * t)
    angle = torch.linspace(0, 5, 9, **kw)
    px, py = 2 + 1.5 * torch.cos(angle) + 0.05 * torch.sin(7 * angle), -1 + 1.5 * torch.sin(angle)
    s = torch.linspace(-1, 1, 15, **kw)
    z = torch.tanh(2 * s - 0.3) + 0.1 * s
    return {
        "an exponential fit a exp(-b t)": (lambda p: p[0] * torch.exp(-p[1] * t) - y, torch.tensor([1.0, 0.3], **kw)),
        "a circle fit (center and radius)": (lambda p: torch.sqrt((px - p[0]) ** 2 + (py - p[1]) ** 2) - p[2],
                                             torch.tensor([1.0, 0.0, 1.0], **kw)),
        "Rosenbrock's function as residuals (10 (x2 - x1^2), 1 - x1)":
            (lambda p: torch.stack([10 * (p[1] - p[0] ** 2), 1 - p[0]]), torch.tensor([-1.2, 1.0], **kw)),
        "a tanh fit a tanh(b s + c)": (lambda p: p[0] * torch.tanh(p[1] * s + p[2]) - z, torch.tensor([0.8, 1.0, 0.0], **kw)),
    }


def _lsq_mistakes(residual, x, lam=None):
    J, r = torch.autograd.functional.jacobian(residual, x), residual(x).detach()
    if lam is None:
        return {ref.LSQ_MISTAKES["sign"]: ref.gauss_newton_step(residual, x, mistake="sign"),
                ref.LSQ_MISTAKES["no_square"]: lambda: x + torch.linalg.lstsq(J.T, -r.unsqueeze(1)).solution.squeeze(1)
                if J.shape[0] == J.shape[1] else None}
    return {ref.LSQ_MISTAKES["levenberg"]: x + ref.lm_direction(J, r, lam, mistake="levenberg"),
            ref.LSQ_MISTAKES["sign"]: x + ref.lm_direction(J, r, lam, mistake="sign")}


@pytest.mark.task("gauss_newton")
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_gauss_newton_matches_reference(student, dtype, device):
    gauss_newton_step = student_function(student, "gauss_newton_step")
    rtol, atol = TOL[dtype]
    for label, (residual, x0) in lsq_problems(dtype, device).items():
        x = x0.clone()
        for step in range(1, 3):  # two steps: the second starts where the reference's first ended
            got = gauss_newton_step(residual, x.clone())
            what = f"gauss_newton_step on {label}, step {step} from {[round(v, 4) for v in x.tolist()]} ({dtype}, {device})"
            check_result_tensor(got, x, what)
            expected = ref.gauss_newton_step(residual, x)
            check_tensor(got, expected, what, rtol=rtol * 10, atol=atol * 10, mistakes=_lsq_mistakes(residual, x))
            x = expected


@pytest.mark.task("gauss_newton")
def test_gauss_newton_solves_linear_least_squares(student, device):
    gauss_newton_step = student_function(student, "gauss_newton_step")
    g = torch.Generator().manual_seed(8)
    A = torch.randn(30, 4, generator=g, dtype=torch.float64).to(device)
    y = torch.randn(30, generator=g, dtype=torch.float64).to(device)
    x0 = torch.randn(4, generator=g, dtype=torch.float64).to(device)
    before = x0.clone()
    got = gauss_newton_step(lambda x: A @ x - y, x0)
    what = f"gauss_newton_step on the linear residuals A x - y (30 x 4, {device})"
    check_result_tensor(got, x0, what)
    check_true(torch.equal(x0, before), f"{what}: x changed; return a new tensor and leave x alone")
    check_tensor(got, torch.linalg.lstsq(A.cpu(), y.cpu().unsqueeze(1)).solution.squeeze(1).to(device),
                 f"{what}: one step should give the least-squares solution (torch.linalg.lstsq)", rtol=1e-6,
                 atol=1e-8, mistakes={ref.LSQ_MISTAKES["sign"]: ref.gauss_newton_step(lambda x: A @ x - y, x0, "sign")})


@pytest.mark.task("gauss_newton")
def test_gauss_newton_solves_instead_of_inverting(student, device):
    gauss_newton_step = student_function(student, "gauss_newton_step")
    residual, x0 = lsq_problems(torch.float64, device)["an exponential fit a exp(-b t)"]
    with watch_inverses() as calls:
        gauss_newton_step(residual, x0)
    check_true(not calls, "gauss_newton_step: " + INVERTS.format(calls=", ".join(sorted(set(calls)))))


# --- Levenberg-Marquardt ---------------------------------------------------------------------------
DAMPING_BACKWARDS = ("the damping is updated the wrong way: after an accepted step (lower cost) divide lam by "
                     "factor (trust the Gauss-Newton model more); after a rejected one multiply it")


def _lm(student, residual, x, lam, **kwargs):
    fn = student_function(student, "levenberg_marquardt_step")
    out = fn(residual, x.clone(), lam, **kwargs)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"levenberg_marquardt_step should return a pair (new x, new lam), got {describe(out)}")
    new_x, new_lam = out
    if isinstance(new_lam, torch.Tensor) and new_lam.numel() == 1:
        new_lam = new_lam.item()
    if isinstance(new_lam, bool) or not isinstance(new_lam, (int, float)):
        fail(f"levenberg_marquardt_step: the new lam should be a Python float, got {describe(new_lam)}")
    return new_x, float(new_lam)


@pytest.mark.task("levenberg_marquardt")
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_lm_step_matches_reference(student, dtype, device):
    rtol, atol = TOL[dtype]
    for label, (residual, x0) in lsq_problems(dtype, device).items():
        for lam in (1e-3, 0.3, 5.0):
            J, r = torch.autograd.functional.jacobian(residual, x0), residual(x0).detach()
            trial = x0 + ref.lm_direction(J, r, lam)
            if not ref.cost(residual, trial) < ref.cost(residual, x0):
                continue  # rejected trials are checked below; here the step itself is compared
            new_x, _ = _lm(student, residual, x0, lam)
            what = (f"levenberg_marquardt_step on {label} from {[round(v, 4) for v in x0.tolist()]} with lam = {lam:g} "
                    f"({dtype}, {device}; the reference accepts this step)")
            check_result_tensor(new_x, x0, what)
            mistakes = _lsq_mistakes(residual, x0, lam)
            mistakes["the step was rejected although it lowers the cost 1/2 ||r||^2; compare the costs of x + d and "
                     "x"] = x0
            check_tensor(new_x, trial, what + ": the new x", rtol=rtol * 10, atol=atol * 10, mistakes=mistakes)


REJECT = {"x": [3.0, 4.0], "lams": (1e-8, 1e-2)}
ACCEPT = [([3.0, 4.0], 1.0), ([3.0, 4.0], 100.0), ([0.5, -1.0], 0.01)]


def _exp_fit(device):
    residual, _ = lsq_problems(torch.float64, device)["an exponential fit a exp(-b t)"]
    return residual


@pytest.mark.task("levenberg_marquardt")
def test_lm_rejects_a_step_that_raises_the_cost(student, device):
    residual = _exp_fit(device)
    x0 = torch.tensor(REJECT["x"], dtype=torch.float64, device=device)
    for lam in REJECT["lams"]:
        for factor in (10.0, 3.0):
            new_x, new_lam = _lm(student, residual, x0, lam, factor=factor)
            what = (f"levenberg_marquardt_step on the exponential fit from {REJECT['x']} with lam = {lam:g}, "
                    f"factor = {factor:g} (the damped step raises the cost from {ref.cost(residual, x0):.4g})")
            if not isinstance(new_x, torch.Tensor) or not torch.allclose(new_x.detach(), x0):
                fail(f"{what}: the step must be rejected and x returned unchanged; got {describe(new_x)}"
                     + ("" if not isinstance(new_x, torch.Tensor) else f" = {new_x.tolist()}")
                     + ". Likely cause: a trial step is accepted without comparing the costs 1/2 ||r||^2 of x + d "
                       "and x (accept only a strictly lower cost)")
            check_number(new_lam, lam * factor, f"{what}: the new lam", rtol=1e-9, atol=0,
                         mistakes={DAMPING_BACKWARDS: lam / factor,
                                   "factor is ignored: multiply lam by the given factor": lam * 10.0})


@pytest.mark.task("levenberg_marquardt")
def test_lm_accepts_a_step_that_lowers_the_cost(student, device):
    residual = _exp_fit(device)
    for x_start, lam in ACCEPT:
        x0 = torch.tensor(x_start, dtype=torch.float64, device=device)
        for factor in (10.0, 4.0):
            new_x, new_lam = _lm(student, residual, x0, lam, factor=factor)
            what = f"levenberg_marquardt_step on the exponential fit from {x_start} with lam = {lam:g}, factor = {factor:g}"
            check_result_tensor(new_x, x0, what)
            check_true(ref.cost(residual, new_x.detach()) < ref.cost(residual, x0),
                       f"{what}: the damped step lowers the cost, so it must be taken; the returned x has cost "
                       f"{ref.cost(residual, new_x.detach()):.6g}, x had {ref.cost(residual, x0):.6g}")
            check_number(new_lam, lam / factor, f"{what}: the step is accepted, so the new lam", rtol=1e-9, atol=0,
                         mistakes={DAMPING_BACKWARDS: lam * factor,
                                   "factor is ignored: divide lam by the given factor": lam / 10.0})


@pytest.mark.task("levenberg_marquardt")
def test_lm_solves_instead_of_inverting(student, device):
    residual = _exp_fit(device)
    with watch_inverses() as calls:
        _lm(student, residual, torch.tensor([3.0, 4.0], dtype=torch.float64, device=device), 1.0)
    check_true(not calls, "levenberg_marquardt_step: " + INVERTS.format(calls=", ".join(sorted(set(calls)))))


# --- line search ---------------------------------------------------------------------------------
def line_search_cases(device):
    """(label, f, x, g, d, keyword arguments)."""
    kw = {"dtype": torch.float64, "device": device}
    rosen = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
    xr = torch.tensor([-1.2, 1.0], **kw)
    gr = torch.tensor([-215.6, -88.0], **kw)
    quad_a = torch.tensor([1.0, 10.0], **kw)
    quad = lambda x: 0.5 * (quad_a * x * x).sum()  # noqa: E731
    xq = torch.tensor([1.0, 1.0], **kw)
    cliff = lambda x: torch.where(x.abs().max() > 0.6, torch.tensor(math.nan, **kw), (x * x).sum())  # noqa: E731
    xc = torch.tensor([0.5, -0.2], **kw)
    return [
        ("Rosenbrock's function at (-1.2, 1) along the negative gradient", rosen, xr, gr, -gr, {}),
        ("Rosenbrock's function, rho = 0.3, c = 0.1", rosen, xr, gr, -gr, {"rho": 0.3, "c": 0.1}),
        ("1/2 (x^2 + 10 y^2) along the negative gradient, alpha = 1", quad, xq, quad_a * xq, -quad_a * xq, {}),
        ("1/2 (x^2 + 10 y^2) along the negative gradient, c = 0.5", quad, xq, quad_a * xq, -quad_a * xq, {"c": 0.5}),
        ("1/2 (x^2 + 10 y^2) along the Newton direction (alpha = 1 is accepted)", quad, xq, quad_a * xq, -xq, {}),
        ("1/2 (x^2 + 10 y^2) from alpha = 0.05 (accepted at once)", quad, xq, quad_a * xq, -quad_a * xq,
         {"alpha": 0.05}),
        ("a function that is NaN beyond |x| > 0.6, alpha = 4", cliff, xc, 2 * xc, -2 * xc, {"alpha": 4.0}),
    ]


@pytest.mark.task("line_search")
def test_backtracking_returns_the_specified_step(student, device):
    backtracking = student_function(student, "backtracking")
    for label, f, x, g, d, kwargs in line_search_cases(device):
        expected = ref.backtracking(f, x, g, d, **kwargs)
        got = backtracking(f, x.clone(), g.clone(), d.clone(), **kwargs)
        what = f"backtracking on {label}"
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            fail(f"{what}: expected a Python float alpha, got {describe(got)}")
        mistakes = {"the sufficient-decrease condition has the wrong sign: accept when f(x + alpha d) <= f(x) + c alpha "
                    "g^T d (g^T d < 0, so the right side is below f(x))": _try(ref.backtracking, f, x, g, d,
                                                                               mistake="wrong_sign", **kwargs)}
        if not math.isfinite(float(got)) or not ref.armijo_holds(f, x, g, d, float(got), kwargs.get("c", 1e-4)):
            fail(f"{what}: alpha = {float(got):.6g} does not satisfy the Armijo condition f(x + alpha d) <= f(x) + c "
                 f"alpha g^T d; expected alpha = {expected:.6g}" + _diagnosis(float(got), mistakes))
        check_number(got, expected, f"{what}: the first alpha of alpha0, rho alpha0, rho^2 alpha0, ... that satisfies "
                     "the Armijo condition", rtol=1e-9, atol=0, mistakes=mistakes)


def _try(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception:
        return None


def _diagnosis(got, mistakes):
    for cause, value in mistakes.items():
        if value is not None and math.isclose(got, value, rel_tol=1e-9):
            return f"\n  Likely cause: {cause}"
    return ""


@pytest.mark.task("line_search")
def test_backtracking_refuses_an_ascent_direction(student, device):
    backtracking = student_function(student, "backtracking")
    x = torch.tensor([1.0, -1.0], dtype=torch.float64, device=device)
    f = lambda x: (x**2).sum()  # noqa: E731
    for label, d in (("uphill (d = g)", 2 * x), ("orthogonal to g", torch.tensor([1.0, 1.0], dtype=torch.float64,
                                                                                     device=device))):
        try:
            got = backtracking(f, x, 2 * x, d)
        except ValueError:
            continue
        fail(f"backtracking with a direction {label}: g^T d >= 0, so it must raise ValueError; it returned "
             f"{describe(got)}")


@pytest.mark.task("line_search")
def test_backtracking_gives_up(student, device):
    backtracking = student_function(student, "backtracking")
    x = torch.tensor([1.0], dtype=torch.float64, device=device)
    calls = []

    def f(z):
        calls.append(1)
        return torch.tensor(math.nan if not torch.equal(z, x) else 1.0, dtype=torch.float64)

    try:
        got = backtracking(f, x, torch.tensor([1.0], dtype=torch.float64, device=device),
                           torch.tensor([-1.0], dtype=torch.float64, device=device), max_iter=7)
    except NotImplementedError:
        raise
    except RuntimeError:  # (NotImplementedError is a RuntimeError: it is not giving up)
        check_true(len(calls) <= 7 + 2, f"backtracking(max_iter=7) evaluated f {len(calls)} times before giving up; "
                                        "try at most max_iter step lengths")
        return
    fail(f"backtracking on a function that is NaN at every trial point (max_iter=7) should raise RuntimeError; it "
         f"returned {describe(got)}")


# --- predictions ---------------------------------------------------------------------------------
def _letter(student, name, answer, choices, about):
    got = getattr(student, name)
    if not isinstance(got, str) or got.strip().lower() not in choices:
        fail(f"{name} should be one of the letters {', '.join(repr(c) for c in choices)}, got {describe(got)}")
    check_true(got.strip().lower() == answer, f"{name} ({about}): {got.strip().lower()!r} is not what happens; try it "
                                              "with your functions and see")


@pytest.mark.task("predictions")
def test_predict_newton_iterations(student):
    check_number(student.predict_newton_iterations, 1, "predict_newton_iterations (Newton on a quadratic)", rtol=0,
                 atol=1e-9, mistakes={"Newton's method is not iterative on a quadratic: its quadratic model is the "
                                      "function itself, so the first step lands on the minimum": 100})


@pytest.mark.task("predictions")
def test_predict_gd_max_lr(student):
    check_number(student.predict_gd_max_lr, 2 / 50, "predict_gd_max_lr (eigenvalues between 1 and 50)", rtol=1e-3,
                 atol=1e-6, mistakes={
                     "1 / lambda_max is a safe rate, not the largest: along the steepest direction the error is "
                     "multiplied by 1 - lr * lambda_max, which stays inside (-1, 1) up to lr = 2 / lambda_max": 1 / 50,
                     "the flattest direction (lambda = 1) does not limit the rate; the steepest one does": 2.0,
                     "2 / (lambda_min + lambda_max) is the best constant rate, not the largest that converges": 2 / 51})


@pytest.mark.task("predictions")
def test_predict_lm_large_damping(student):
    _letter(student, "predict_lm_large_damping", "b", "abcd", "the LM step as lam grows")


@pytest.mark.task("predictions")
def test_predict_oscillation_angle(student):
    _letter(student, "predict_oscillation_angle", "c", "abc", "gradient descent at lr 0.019 on x^2 + 100 y^2")


# --- the experiment --------------------------------------------------------------------------------
@pytest.mark.task("lr_experiment")
def test_experiment_lr_reaches_the_target(student):
    lr = student.experiment_lr
    if isinstance(lr, torch.Tensor) and lr.numel() == 1:
        lr = lr.item()
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        fail(f"experiment_lr should be a positive number, got {describe(lr)}")
    e = ref.EXPERIMENT
    error = ref.gd_error_ratio(float(lr))
    if error <= e["target"]:
        return
    X, _ = ref.regression_problem()
    eig = torch.linalg.eigvalsh(X.T @ X / X.shape[0])
    lo, hi = float(eig.min()), float(eig.max())
    factor = max(abs(1 - lr * lo), abs(1 - lr * hi))
    hint = (f" The Hessian's eigenvalues run from {lo:.3g} to {hi:.3g}; along eigenvector i the error is multiplied "
            f"by |1 - lr * lambda_i| every step, and your lr's worst factor is {factor:.4f}.")
    if math.isclose(lr, 1 / hi, rel_tol=0.02):
        hint += (" Likely cause: lr = 1 / lambda_max is safe but slow: the flattest direction shrinks only by "
                 "1 - lambda_min / lambda_max per step; the rate that makes the worst factor smallest balances the "
                 "flattest and the steepest direction")
    elif lr * hi >= 2:
        hint += " At lr >= 2 / lambda_max the steepest direction does not converge (it oscillates or diverges)."
    fail(f"gradient descent with experiment_lr = {lr:.6g} for {e['steps']} steps from w = 0 ends at "
         f"||w - w*|| / ||w*|| = {error:.3g}; the target is {e['target']:g}.{hint}")


# --- the instruments -----------------------------------------------------------------------------
class ThreeTensors(nn.Module):
    """Parameters in three tensors of different shapes, and a buffer (not a parameter) that changes."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.zeros(2, 2))
        self.register_buffer("counter", torch.zeros(1))

    def forward(self, x):
        return self.linear(x) @ self.scale


def recorded_trajectory():
    """theta_0 .. theta_7 (12 numbers each: weight 6, bias 2, scale 4); epoch 4 repeats epoch 3's
    parameters (a zero-length step); every other step moves every tensor."""
    g = torch.Generator().manual_seed(11)
    thetas = [torch.randn(12, generator=g, dtype=torch.float64)]
    steps = [torch.randn(12, generator=g, dtype=torch.float64) for _ in range(7)]
    steps[1] = -0.7 * steps[0] + 0.1 * steps[1]  # nearly reversed
    steps[2] = 1.3 * steps[1] + 0.05 * steps[2]  # nearly the same way
    steps[3] = torch.zeros(12, dtype=torch.float64)  # a zero-length epoch
    steps[5] = torch.cat([steps[4][:6], -steps[4][6:]])  # a per-tensor angle differs from the whole vector's
    for s in steps:
        thetas.append(thetas[-1] + s)
    return thetas


def load(model, theta, device):
    with torch.no_grad():
        offset = 0
        for p in model.parameters():
            p.copy_(theta[offset:offset + p.numel()].reshape(p.shape).to(device, p.dtype))
            offset += p.numel()
        model.counter.add_(1)


def make_monitor(student):
    cls = getattr(student, "StepMonitor")
    monitor = cls()
    if not callable(monitor):
        fail(f"StepMonitor() should be callable as monitor(epoch, model, optimizer, history), got {describe(monitor)}")
    return monitor


def compare_instruments(ours, theirs, what, wrong=None):
    wrong = wrong or {}
    for name in ("step_norms", "step_angles"):
        got = getattr(ours, name, None)
        expected = getattr(theirs, name)
        if not isinstance(got, list):
            fail(f"{what}: monitor.{name} should be a list of floats, got {describe(got)}")
        if len(got) != len(expected):
            fail(f"{what}: monitor.{name} has {len(got)} entries, expected {len(expected)} (one per epoch; nothing "
                 "for the call before the first epoch)")
        for k, (a, b) in enumerate(zip(got, expected), start=1):
            if isinstance(a, torch.Tensor) and a.numel() == 1:
                a = a.item()
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                fail(f"{what}: monitor.{name}[{k - 1}] should be a Python float, got {describe(a)}")
            a = float(a)
            label = f"{what}: monitor.{name}[{k - 1}] (epoch {k})"
            if math.isnan(b):
                check_true(math.isnan(a), f"{label} should be nan: " + (
                    "the first epoch step has no previous step to make an angle with" if k == 1 else
                    "the angle with a zero-length step is undefined") + f"; got {a:.6g}")
                continue
            if math.isnan(a):
                fail(f"{label}: expected {b:.6g}, got nan")
            tol = 1e-6 * max(1.0, abs(b)) if name == "step_norms" else 1e-3
            if abs(a - b) > tol:
                cause = ""
                for text, monitor in wrong.items():
                    values = getattr(monitor, name)
                    if len(values) == len(expected) and not math.isnan(values[k - 1]) and abs(values[k - 1] - a) <= tol:
                        cause = f"\n  Likely cause: {text}"
                        break
                fail(f"{label}: expected {b:.6g}, got {a:.6g}{cause}")


@pytest.mark.task("instruments")
def test_monitor_on_a_recorded_trajectory(student, device):
    model = ThreeTensors().to(device)
    ours = make_monitor(student)
    theirs = ref.StepMonitor()
    wrong = {cause: ref.StepMonitor(mistake=m) for m, cause in ref.INSTRUMENT_MISTAKES.items()}
    for epoch, theta in enumerate(recorded_trajectory()):
        load(model, theta, device)
        out = ours(epoch, model, None, None)
        check_true(out is not True, f"StepMonitor returned True at epoch {epoch}, which stops course.fit; return None")
        for m in [theirs, *wrong.values()]:
            m(epoch, model, None, None)
    compare_instruments(ours, theirs, f"StepMonitor on a recorded trajectory of 7 epochs (parameters in three tensors, "
                                      f"a zero-length step in epoch 4, {device})", wrong)


@pytest.mark.task("instruments")
def test_monitor_first_call_and_repeated_epoch(student, device):
    model = ThreeTensors().to(device)
    thetas = recorded_trajectory()
    ours = make_monitor(student)
    load(model, thetas[0], device)
    check_true(ours(0, model, None, None) is None, "StepMonitor should return None (it never stops training)")
    norms, angles = getattr(ours, "step_norms", None), getattr(ours, "step_angles", None)
    check_true(norms == [] and angles == [], f"StepMonitor: after the call before the first epoch step_norms and "
                                             f"step_angles should be empty lists, got {norms!r} and {angles!r}")
    load(model, thetas[1], device)
    ours(1, model, None, None)
    check_true(len(ours.step_norms) == 1 and len(ours.step_angles) == 1 and math.isnan(float(ours.step_angles[0])),
               f"StepMonitor after epoch 1: one norm and a nan angle expected (no previous step), got "
               f"{ours.step_norms!r} and {ours.step_angles!r}")
    # a second course.fit continuing the history calls again with epoch 1, with the same parameters
    ours(1, model, None, None)
    check_true(len(ours.step_norms) == 1 and len(ours.step_angles) == 1,
               "StepMonitor called twice with epoch 1 (a second course.fit continuing the same history calls before "
               "its first epoch) recorded a step for the repeated call; a repeated epoch only takes the snapshot")
    load(model, thetas[2], device)
    ours(2, model, None, None)
    theirs = ref.StepMonitor()
    for epoch in (0, 1, 1, 2):
        load(model, thetas[epoch], device)
        theirs(epoch, model, None, None)
    compare_instruments(ours, theirs, "StepMonitor over epochs 0, 1, 1 (repeated), 2")


def _tiny_data(device):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(96, 3, generator=g)
    y = (x @ torch.tensor([[1.0, -1.0], [0.5, 0.3], [-0.2, 0.8]])).argmax(1)
    import course

    return course.TensorLoader(x.to(device), y.to(device), batch_size=16, shuffle=True, seed=0)


@pytest.mark.task("instruments")
def test_monitor_inside_course_fit(student, device):
    import course

    torch.manual_seed(0)
    model = ThreeTensors().to(device)
    with torch.no_grad():
        model.scale.copy_(torch.eye(2))
    ours, theirs = make_monitor(student), ref.StepMonitor()
    wrong = {cause: ref.StepMonitor(mistake=m) for m, cause in ref.INSTRUMENT_MISTAKES.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    history = course.fit(model, _tiny_data(device), opt, 4, callbacks=[ours, theirs, *wrong.values()], progress=False)
    check_true(len(history) == 4, f"course.fit with StepMonitor stopped after {len(history)} of 4 epochs: the callback "
                                  "must return None")
    compare_instruments(ours, theirs, f"StepMonitor in course.fit (4 epochs of SGD with momentum, {device})", wrong)


# --- the scheduler -------------------------------------------------------------------------------
SEQUENCES = [  # (settings, [(loss, angle), ...])
    ({}, [(1.0, math.nan), (0.9, 10.0), (0.85, 59.0), (0.84, 60.0), (0.8, 120.0), (0.9, 5.0), (0.86, 30.0)]),
    ({"grow": 1.5, "shrink": 0.3, "max_angle": 90.0, "jump": 0.2},
     [(2.0, 80.0), (2.3, 10.0), (2.5, 100.0), (3.5, 20.0), (1.0, math.nan), (1.1, 45.0)]),
    ({"grow": 2.0, "shrink": 0.5, "max_angle": 30.0, "jump": 0.0},
     [(1.0, 10.0), (1.0, 10.0), (1.0000001, 10.0), (0.5, 29.0), (0.5, 31.0)]),
]


def make_scheduler(student, optimizer, monitor, **settings):
    cls = getattr(student, "AdaptiveLR")
    try:
        return cls(optimizer, monitor, **settings)
    except TypeError as exc:
        fail(f"AdaptiveLR(optimizer, monitor, **{settings}) failed: {exc}; the signature is AdaptiveLR(optimizer, "
             "monitor, grow=1.1, shrink=0.5, max_angle=60.0, jump=0.05)")


def _two_groups():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    return [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.02}]


@pytest.mark.task("scheduler")
def test_scheduler_follows_its_rule(student):
    for settings, sequence in SEQUENCES:
        opt = torch.optim.SGD(_two_groups(), lr=0.1)
        ref_opt = torch.optim.SGD(_two_groups(), lr=0.1)
        wrong_opts = {m: torch.optim.SGD(_two_groups(), lr=0.1) for m in ref.SCHEDULER_MISTAKES}
        ours = make_scheduler(student, opt, None, **settings)
        theirs = ref.AdaptiveLR(ref_opt, None, **settings)
        wrong = {m: ref.AdaptiveLR(o, None, mistake=m, **settings) for m, o in wrong_opts.items()}
        for k, (loss, angle) in enumerate(sequence, start=1):
            ours.step(loss, angle)
            theirs.step(loss, angle)
            for w in wrong.values():
                w.step(loss, angle)
            got = ours.get_last_lr()
            expected = theirs.get_last_lr()
            what = (f"AdaptiveLR({', '.join(f'{k2}={v}' for k2, v in settings.items()) or 'defaults'}) with two "
                    f"parameter groups (lr 0.1 and 0.02), after step {k} of {sequence[:k]}: get_last_lr()")
            if not isinstance(got, (list, tuple)) or len(got) != 2:
                fail(f"{what} should be a list of the 2 groups' rates, got {describe(got)}")
            check_true([g["lr"] for g in opt.param_groups] == list(got),
                       f"{what} = {list(got)} but the optimizer's groups have "
                       f"{[g['lr'] for g in opt.param_groups]}; set group['lr'] in optimizer.param_groups")
            if not all(math.isclose(float(a), b, rel_tol=1e-9) for a, b in zip(got, expected)):
                cause = ""
                for m, w in wrong.items():
                    if all(math.isclose(float(a), b, rel_tol=1e-9) for a, b in zip(got, w.get_last_lr())):
                        cause = f"\n  Likely cause: {ref.SCHEDULER_MISTAKES[m]}"
                        break
                fail(f"{what}: expected {expected}, got {list(got)}{cause}")


@pytest.mark.task("scheduler")
def test_scheduler_waits_for_the_first_epoch(student):
    import course

    opt = torch.optim.SGD(_two_groups(), lr=0.1)
    monitor = ref.StepMonitor()
    ours = make_scheduler(student, opt, monitor)
    out = ours(0, nn.Linear(1, 1), opt, course.History())
    check_true(out is None, f"AdaptiveLR called before the first epoch returned {describe(out)}; return None")
    check_true([g["lr"] for g in opt.param_groups] == [0.1, 0.02],
               "AdaptiveLR called before the first epoch (epoch 0, empty history) changed the learning rates; "
               "it should do nothing until an epoch has run")


@pytest.mark.task("scheduler")
def test_scheduler_inside_course_fit(student, device):
    import course

    rates = {}
    for label in ("yours", "reference"):
        torch.manual_seed(0)
        model = ThreeTensors().to(device)
        with torch.no_grad():
            model.scale.copy_(torch.eye(2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        monitor = ref.StepMonitor()
        settings = {"grow": 1.5, "shrink": 0.5, "max_angle": 80.0, "jump": 0.01}
        sched = (make_scheduler(student, opt, monitor, **settings) if label == "yours"
                 else ref.AdaptiveLR(opt, monitor, **settings))
        seen = []
        course.fit(model, _tiny_data(device), opt, 6, progress=False,
                   callbacks=[monitor, sched, lambda e, m, o, h: seen.append(o.param_groups[0]["lr"])])
        rates[label] = seen
    what = (f"AdaptiveLR as a course.fit callback after StepMonitor (6 epochs of SGD from lr 0.05, {device}): the "
            "learning rate before the first epoch and after each epoch")
    check_true(len(rates["yours"]) == len(rates["reference"]),
               f"{what}: training stopped early ({len(rates['yours']) - 1} epochs); return None from the callback")
    if not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(rates["yours"], rates["reference"])):
        fail(f"{what}: expected {[round(v, 6) for v in rates['reference']]}, got {[round(v, 6) for v in rates['yours']]}")
