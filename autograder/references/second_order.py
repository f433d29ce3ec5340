"""Reference answers for assignment 05_second_order, and the typical mistakes the checks recognize.

Conventions (the assignment states them in every docstring):

* ``newton_direction(g, H)``: the d that solves H d = -g (``torch.linalg.solve``, never an explicit inverse);
  ``newton_step(f, x)``: x + newton_direction(grad f(x), hess f(x)), as a new detached tensor;
* Gauss-Newton for residuals r(x) with Jacobian J (Nocedal & Wright, sec. 10.3): solve (J^T J) d = -J^T r and
  return x + d;
* Levenberg-Marquardt (Marquardt 1963; Nocedal & Wright sec. 10.3): solve (J^T J + lam diag(J^T J)) d = -J^T r;
  the trial x + d is accepted when it strictly lowers the cost 1/2 ||r||^2, and then lam is divided by
  ``factor``; otherwise x is kept and lam is multiplied by ``factor``. (Levenberg's 1944 form adds lam I
  instead of lam diag(J^T J).)
* backtracking line search (Armijo; Nocedal & Wright, Algorithm 3.1): the first alpha in alpha0, rho alpha0,
  rho^2 alpha0, ... with f(x + alpha d) <= f(x) + c alpha g^T d; a direction with g^T d >= 0 is refused
  (ValueError); no acceptable alpha in ``max_iter`` tries raises RuntimeError;
* the epoch instruments: all parameters flattened into one vector theta (in ``model.parameters()`` order);
  after each epoch the step theta_now - theta_prev, its L2 norm, and the angle in degrees between it and the
  previous step; the first step and any step next to a zero-length one have no angle (NaN);
* the adaptive learning rate: a loss above (1 + jump) times the previous epoch's multiplies every group's lr
  by ``shrink``; otherwise two consecutive steps less than ``max_angle`` degrees apart multiply it by
  ``grow``; otherwise it is unchanged.

The ``mistake=`` arguments make one of the named mistakes, so a check can compute what a wrong answer gives
and name it.
"""
from __future__ import annotations

import math

import torch
from torch.autograd.functional import hessian, jacobian

# --- Newton --------------------------------------------------------------------------------------
NEWTON_MISTAKES = {
    "sign": "the step has the wrong sign: Newton's step solves H d = -g (downhill), x_new = x + d",
}


def newton_direction(g: torch.Tensor, H: torch.Tensor, mistake: str | None = None) -> torch.Tensor:
    d = torch.linalg.solve(H, -g.unsqueeze(-1)).squeeze(-1)
    return -d if mistake == "sign" else d


def newton_step(f, x: torch.Tensor, mistake: str | None = None) -> torch.Tensor:
    x = x.detach()
    g = jacobian(f, x)
    H = hessian(f, x)
    return (x + newton_direction(g, H, mistake)).detach()


# --- Gauss-Newton and Levenberg-Marquardt --------------------------------------------------------
LSQ_MISTAKES = {
    "sign": "the step has the wrong sign: solve (J^T J) d = -J^T r and move to x + d",
    "levenberg": "that is Levenberg's damping lam * I; Marquardt's (this task's) scales it by the curvature: "
                 "lam * diag(J^T J)",
    "no_square": "J^T J is missing: the normal equations are (J^T J [+ damping]) d = -J^T r",
}


def cost(residual, x: torch.Tensor) -> float:
    r = residual(x)
    return 0.5 * float((r.double() ** 2).sum())


def gauss_newton_step(residual, x: torch.Tensor, mistake: str | None = None) -> torch.Tensor:
    x = x.detach()
    J, r = jacobian(residual, x), residual(x).detach()
    A = J.T @ J
    d = torch.linalg.solve(A, -(J.T @ r))
    return (x - d if mistake == "sign" else x + d).detach()


def lm_direction(J: torch.Tensor, r: torch.Tensor, lam: float, mistake: str | None = None) -> torch.Tensor:
    A = J.T @ J
    damping = torch.eye(A.shape[0], dtype=A.dtype, device=A.device) if mistake == "levenberg" else torch.diag(
        torch.diagonal(A))
    d = torch.linalg.solve(A + lam * damping, -(J.T @ r))
    return -d if mistake == "sign" else d


def levenberg_marquardt_step(residual, x: torch.Tensor, lam: float, factor: float = 10.0,
                             mistake: str | None = None) -> tuple[torch.Tensor, float]:
    """One LM iteration: (new x, new lam). ``mistake``: a key of LSQ_MISTAKES, or "damping_backwards"
    (lam multiplied on success, divided on failure) or "accept_always"."""
    x = x.detach()
    J, r = jacobian(residual, x), residual(x).detach()
    trial = (x + lm_direction(J, r, lam, mistake)).detach()
    better = cost(residual, trial) < cost(residual, x)
    if mistake == "accept_always":
        return trial, lam / factor
    if mistake == "damping_backwards":
        return (trial, lam * factor) if better else (x.clone(), lam / factor)
    return (trial, lam / factor) if better else (x.clone(), lam * factor)


# --- line search ---------------------------------------------------------------------------------
def backtracking(f, x: torch.Tensor, g: torch.Tensor, d: torch.Tensor, alpha: float = 1.0, rho: float = 0.5,
                 c: float = 1e-4, max_iter: int = 30, mistake: str | None = None) -> float:
    slope = float((g.double() * d.double()).sum())
    if not slope < 0:
        raise ValueError(f"d is not a descent direction (g^T d = {slope:g} >= 0)")
    fx = float(f(x))
    for _ in range(max_iter):
        bound = fx - c * alpha * slope if mistake == "wrong_sign" else fx + c * alpha * slope
        if float(f(x + alpha * d)) <= bound:
            return alpha
        alpha *= rho
    raise RuntimeError(f"no step satisfied the Armijo condition in {max_iter} tries")


def armijo_holds(f, x, g, d, alpha, c=1e-4) -> bool:
    slope = float((g.double() * d.double()).sum())
    return float(f(x + alpha * d)) <= float(f(x)) + c * alpha * slope


# --- the epoch instruments -----------------------------------------------------------------------
INSTRUMENT_MISTAKES = {
    "per_tensor": "the angle is computed per parameter tensor (and averaged); the angle of an epoch step is "
                  "between the whole parameter vectors: flatten and concatenate all tensors first",
    "norm_sum": "the norm is summed over the parameter tensors; the step size is the L2 norm of the whole step "
                "vector, sqrt(sum over all tensors of their squared norms)",
    "radians": "the angle is in radians; report it in degrees (math.degrees)",
    "squared": "the squared norm is reported; report the L2 norm itself",
}


def flat_parameters(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()]).cpu()


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    if na == 0 or nb == 0:
        return math.nan
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb)))))


class StepMonitor:
    """Reference callback: records ``step_norms`` and ``step_angles`` (one per epoch, floats)."""

    def __init__(self, mistake: str | None = None):
        self.mistake = mistake
        self.step_norms: list[float] = []
        self.step_angles: list[float] = []
        self._prev = None
        self._prev_step = None
        self._epoch = None

    def __call__(self, epoch, model, optimizer, history):
        params = [p.detach().reshape(-1).double().cpu() for p in model.parameters()]
        theta = torch.cat(params)
        if self._prev is not None and epoch != self._epoch:
            step = theta - self._prev
            parts = list(torch.split(step, [p.numel() for p in params]))
            if self.mistake == "norm_sum":
                norm = sum(float(s.norm()) for s in parts)
            elif self.mistake == "squared":
                norm = float(step.norm()) ** 2
            else:
                norm = float(step.norm())
            angle = math.nan
            if self._prev_step is not None:
                if self.mistake == "per_tensor":
                    prev_parts = torch.split(self._prev_step, [p.numel() for p in params])
                    angles = [angle_degrees(a, b) for a, b in zip(parts, prev_parts)]
                    angles = [a for a in angles if not math.isnan(a)]
                    angle = sum(angles) / len(angles) if angles else math.nan
                else:
                    angle = angle_degrees(step, self._prev_step)
                    if self.mistake == "radians" and not math.isnan(angle):
                        angle = math.radians(angle)
            self.step_norms.append(norm)
            self.step_angles.append(angle)
            self._prev_step = step
        self._prev = theta
        self._epoch = epoch
        return None


# --- the adaptive learning rate ------------------------------------------------------------------
SCHEDULER_MISTAKES = {
    "angle_reversed": "the rate grows when consecutive steps point apart; it grows when they point the same way "
                      "(angle below max_angle)",
    "jump_ignored": "the rate did not shrink after the loss jumped above (1 + jump) x the previous epoch's loss",
    "grow_after_jump": "the rate grew in an epoch whose loss jumped: a jump shrinks the rate, whatever the angle",
}


class AdaptiveLR:
    def __init__(self, optimizer, monitor=None, grow=1.1, shrink=0.5, max_angle=60.0, jump=0.05,
                 mistake: str | None = None):
        self.optimizer, self.monitor = optimizer, monitor
        self.grow, self.shrink, self.max_angle, self.jump = grow, shrink, max_angle, jump
        self.mistake = mistake
        self.last_loss = None

    def step(self, loss, angle):
        loss = float(loss)
        angle = math.nan if angle is None else float(angle)
        jumped = self.last_loss is not None and loss > (1 + self.jump) * self.last_loss
        same_way = not math.isnan(angle) and angle < self.max_angle
        if self.mistake == "angle_reversed":
            same_way = not math.isnan(angle) and angle > self.max_angle
        if self.mistake == "jump_ignored":
            jumped = False
        factor = 1.0
        if jumped:
            factor = self.shrink
            if self.mistake == "grow_after_jump" and same_way:
                factor = self.grow
        elif same_way:
            factor = self.grow
        for group in self.optimizer.param_groups:
            group["lr"] *= factor
        self.last_loss = loss

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def __call__(self, epoch, model, optimizer, history):
        if epoch == 0 or not len(history):
            return None
        angles = self.monitor.step_angles if self.monitor is not None else []
        self.step(history.records[-1]["train_loss"], angles[-1] if angles else math.nan)
        return None


# --- the experiment: gradient descent on an ill-conditioned least-squares problem --------------------
# The same data as the notebook's locked cell (tests/autograder/test_references.py checks that they agree).
EXPERIMENT = {"n": 200, "scales": (1.0, 2.0, 4.0, 7.0, 10.0), "seed": 5, "steps": 300, "target": 0.005}


def regression_problem():
    g = torch.Generator().manual_seed(EXPERIMENT["seed"])
    n, scales = EXPERIMENT["n"], torch.tensor(EXPERIMENT["scales"], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(n, len(scales), generator=g, dtype=torch.float64))
    X = q * scales * math.sqrt(n)  # X^T X / n has eigenvalues scales**2 exactly
    w_true = torch.ones(len(scales), dtype=torch.float64)
    y = X @ w_true + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y


def regression_loss(w, X, y):
    return 0.5 * ((X @ w - y) ** 2).mean()


def gd_error_ratio(lr: float, steps: int | None = None) -> float:
    """||w - w*|| / ||w*|| after ``steps`` steps of gradient descent from w = 0 (w* the least-squares solution)."""
    X, y = regression_problem()
    steps = EXPERIMENT["steps"] if steps is None else steps
    w_star = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    H, b = X.T @ X / len(y), X.T @ y / len(y)
    w = torch.zeros(X.shape[1], dtype=torch.float64)
    for _ in range(steps):
        w = w - lr * (H @ w - b)
        if not bool(torch.isfinite(w).all()):
            return math.inf
    return float((w - w_star).norm() / w_star.norm())
