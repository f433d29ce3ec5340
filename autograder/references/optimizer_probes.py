"""Cheap probes of a student's update rule, and reference variants to compare it with.

A probe calls the rule on a tiny float64 tensor (5 elements, 4 steps, gradients that change in size
and sign, a learning rate that drops at step 3) and returns the parameter after every step. The
checks call these only when a comparison has already failed, to say *what* the rule does:

* :func:`ignored` -- which hyper-parameters (lr, mu, rho, eps, beta1, beta2, weight_decay) the rule
  does not react to (a hard-coded value, or a default used instead of the argument);
* :func:`identify` -- which combination of conventions (``AXES``) reproduces the rule: the
  momentum form, where eps sits, how the bias correction is applied, the counter, when the weight
  decay is applied, AMSGrad's maximum; the first value of every axis is the assignment's;
* :func:`default_mismatches` -- which hyper-parameters have a default other than the assignment's.

``variant(rule, **props)`` builds the reference rule with those conventions.
"""
from __future__ import annotations

import inspect
import itertools
import math

import torch

from autograder.references import optimizers as ref

PROBE_LRS = (0.1, 0.1, 0.05, 0.05)
PROBE_SCALES = (2.0, 1.0, 0.25, 0.5)
# The hyper-parameters each probe uses (those of the checks) and a second value for each.
PROBE_HYPER = {
    "sgd": {},
    "momentum": {"mu": 0.8},
    "nesterov": {"mu": 0.8},
    "adagrad": {"eps": 0.1},
    "rmsprop": {"rho": 0.9, "eps": 0.1},
    "adam": {"beta1": 0.8, "beta2": 0.9, "eps": 0.1},
    "adamw": {"beta1": 0.8, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.5},
    "amsgrad": {"beta1": 0.8, "beta2": 0.9, "eps": 0.1},
}
OTHER_VALUE = {"mu": 0.5, "rho": 0.6, "eps": 0.3, "beta1": 0.5, "beta2": 0.6, "weight_decay": 0.2}
# Values a rule that ignores its argument typically has hard-coded (the default first).
CONSTANTS = {
    "mu": (0.9, 0.5, 0.95, 0.99),
    "rho": (0.99, 0.9, 0.95, 0.999),
    "eps": (1e-8, 1e-7, 1e-10, 1e-6, 1e-5, 0.0),
    "beta1": (0.9, 0.95, 0.0),
    "beta2": (0.999, 0.99, 0.95),
    "weight_decay": (0.01, 0.0, 1e-4, 0.1),
}


def _inputs(shape=(5,), seed=7, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    param = torch.randn(shape, generator=g, dtype=torch.float64)
    grads = [torch.randn(shape, generator=g, dtype=torch.float64) * s * scale for s in PROBE_SCALES]
    return param, grads


def run(rule, hyper: dict, *, lrs=PROBE_LRS, scale=1.0, with_state=False):
    """The parameter after each step (and the state at the end), or None if the rule raised."""
    param, grads = _inputs(scale=scale)
    param = torch.nn.Parameter(param)
    state, out = {}, []
    try:
        for lr, grad in zip(lrs, grads):
            with torch.no_grad():
                rule(param, grad.clone(), state, lr=lr, **hyper)
            out.append(param.detach().clone())
    except Exception:
        return None
    return (out, state) if with_state else out


def same(a, b, rtol=1e-6, atol=1e-10) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return False
        if not bool(torch.isclose(x.to(torch.float64), y.to(torch.float64), rtol=rtol, atol=atol, equal_nan=True).all()):
            return False
    return True


# --- reference variants ------------------------------------------------------------------------
def _zeros(state, key, param, reset):
    if reset or key not in state:
        state[key] = torch.zeros_like(param)
    return state[key]


def _momentum(form, reset):
    def rule(param, grad, state, *, lr, mu=0.9):
        v = _zeros(state, "velocity", param, reset)
        if form == "course":
            v.mul_(mu).add_(grad, alpha=-lr)
            param.add_(v)
        elif form == "torch":
            v.mul_(mu).add_(grad)
            param.add_(v, alpha=-lr)
        elif form == "dampened":
            v.mul_(mu).add_(grad, alpha=1 - mu)
            param.add_(v, alpha=-lr)
        elif form == "uphill":
            v.mul_(mu).add_(grad, alpha=lr)
            param.add_(v)
        elif form == "plain_sgd":
            param.add_(grad, alpha=-lr)
    return rule


def _nesterov(form, reset):
    def rule(param, grad, state, *, lr, mu=0.9):
        v = _zeros(state, "velocity", param, reset)
        if form == "course":
            v.mul_(mu).add_(grad, alpha=-lr)
            param.add_(v, alpha=mu).add_(grad, alpha=-lr)
        elif form == "plain":  # the same as a look-ahead with the old velocity: theta += mu v_old - lr g
            v.mul_(mu).add_(grad, alpha=-lr)
            param.add_(v)
        elif form == "torch":
            v.mul_(mu).add_(grad)
            param.add_(grad + mu * v, alpha=-lr)
        elif form == "dampened":
            v.mul_(mu).add_(grad, alpha=1 - mu)
            param.add_(grad + mu * v, alpha=-lr)
        elif form == "squared_mu":  # "Deep Learning from Scratch": theta += mu^2 v - (1 + mu) lr g
            v.mul_(mu).add_(grad, alpha=-lr)
            param.add_(v, alpha=mu * mu).add_(grad, alpha=-(1 + mu) * lr)
    return rule


def _adagrad(eps_at, accumulate, init, reset):
    def rule(param, grad, state, *, lr, eps=1e-10):
        if reset or "sum_sq" not in state:
            state["sum_sq"] = torch.full_like(param, init)
        s = state["sum_sq"]
        if accumulate == "sum":
            s.addcmul_(grad, grad)
        elif accumulate == "decay":
            s.mul_(0.9).addcmul_(grad, grad, value=0.1)
        else:  # the gradients summed, not their squares
            s.add_(grad)
        if accumulate == "square_of_sum":
            root = s.abs()  # sqrt((sum g)^2)
        elif accumulate == "sum_of_grads":
            root = s.abs().sqrt()
        else:
            root = s.sqrt()
        denom = (root * root + eps).sqrt() if eps_at == "inside" else root + eps
        param.addcdiv_(grad, denom, value=-lr)
    return rule


def _rmsprop(eps_at, average, centered, reset):
    def rule(param, grad, state, *, lr, rho=0.99, eps=1e-8):
        a = _zeros(state, "avg_sq", param, reset)
        if average == "ema":
            a.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        elif average == "no_one_minus_rho":
            a.mul_(rho).addcmul_(grad, grad)
        elif average == "accumulate":
            a.addcmul_(grad, grad)
        elif average == "rho_swapped":
            a.mul_(1 - rho).addcmul_(grad, grad, value=rho)
        var = a
        if centered:
            g = _zeros(state, "avg_g", param, reset)
            g.mul_(rho).add_(grad, alpha=1 - rho)
            var = a - g * g
        denom = (var + eps).sqrt() if eps_at == "inside" else var.sqrt() + eps
        param.addcdiv_(grad, denom, value=-lr)
    return rule


def _adam_core(param, grad, state, lr, beta1, beta2, eps, props, amsgrad=False):
    bias, eps_at, t_offset = props["bias"], props["eps"], props["t_offset"]
    if props.get("betas") == "swapped":
        beta1, beta2 = beta2, beta1
    if props["reset"] or "step" not in state:
        state["step"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
        if amsgrad:
            state["v_max"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"] + t_offset
    if bias == "stuck":  # the counter never advances: 1 - beta instead of 1 - beta^t
        t = 1
    m, v = state["m"], state["v"]
    moments = props.get("moments", "ok")
    m.mul_(beta1).add_(grad * grad if moments == "m_from_sq" else grad, alpha=1 - beta1)
    if moments == "v_from_grad":
        v.mul_(beta2).add_(grad, alpha=1 - beta2)
    else:
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if amsgrad:
        kind = props["max"]
        if kind == "v":
            torch.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        elif kind == "v_hat":
            v_hat = v / (1 - beta2**t)
            torch.maximum(state["v_max"], v_hat, out=state["v_max"])
            m_hat = m / (1 - beta1**t) if bias != "none" else m
            param.addcdiv_(m_hat, state["v_max"].sqrt().add_(eps), value=-lr)
            return
    c1 = 1 - beta1**t
    c2 = 1 - beta2**t
    if bias == "efficient":  # Kingma & Ba's "efficient" order: corrections folded into the step size
        step = lr * math.sqrt(c2) / c1
        denom = (v + eps).sqrt() if eps_at == "inside" else v.sqrt() + eps
        param.addcdiv_(m, denom, value=-step)
        return
    m_hat = m / c1 if bias in ("both", "m", "stuck") else m
    v_hat = v / c2 if bias in ("both", "v", "stuck") else v
    denom = (v_hat + eps).sqrt() if eps_at == "inside" else v_hat.sqrt() + eps
    param.addcdiv_(m_hat, denom, value=-lr)


def _adam(props):
    def rule(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        _adam_core(param, grad, state, lr, beta1, beta2, eps, props)
    return rule


def _adamw(props):
    def rule(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        decay = props["decay"]
        if decay == "before":
            param.mul_(1 - lr * weight_decay)
        elif decay == "without_lr":
            param.mul_(1 - weight_decay)
        elif decay == "l2":
            grad = grad + weight_decay * param
        _adam_core(param, grad, state, lr, beta1, beta2, eps, props)
        if decay == "after":
            param.mul_(1 - lr * weight_decay)
    return rule


def _amsgrad(props):
    def rule(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        _adam_core(param, grad, state, lr, beta1, beta2, eps, props, amsgrad=True)
    return rule


_ADAM_AXES = [("bias", ("both", "none", "efficient", "m", "v", "stuck")), ("eps", ("outside", "inside")),
              ("t_offset", (0, 1, -1)), ("moments", ("ok", "v_from_grad", "m_from_sq")), ("betas", ("ok", "swapped")), ("reset", (False, True))]
# Axis values, the assignment's first.
AXES: dict[str, list[tuple[str, tuple]]] = {
    "sgd": [("sign", ("down", "up"))],
    "momentum": [("form", ("course", "torch", "dampened", "uphill", "plain_sgd")), ("reset", (False, True))],
    "nesterov": [("form", ("course", "torch", "plain", "dampened", "squared_mu")),
                 ("reset", (False, True))],
    "adagrad": [("eps", ("outside", "inside")), ("accumulate", ("sum", "decay", "sum_of_grads", "square_of_sum")),
                ("init", (0.0, 0.1)), ("reset", (False, True))],
    "rmsprop": [("eps", ("outside", "inside")), ("average", ("ema", "no_one_minus_rho", "accumulate", "rho_swapped")),
                ("centered", (False, True)), ("reset", (False, True))],
    "adam": _ADAM_AXES,
    "adamw": [("decay", ("before", "after", "l2", "without_lr", "none"))] + _ADAM_AXES,
    "amsgrad": [("max", ("v", "v_hat", "none"))] + _ADAM_AXES,
}


def variant(name: str, **props):
    """The reference rule ``name`` with the given conventions (unnamed axes: the assignment's)."""
    props = {axis: props.get(axis, values[0]) for axis, values in AXES[name]}
    if name == "sgd":
        return ref.sgd if props["sign"] == "down" else (lambda param, grad, state, *, lr: param.add_(grad, alpha=lr))
    if name == "momentum":
        return _momentum(props["form"], props["reset"])
    if name == "nesterov":
        return _nesterov(props["form"], props["reset"])
    if name == "adagrad":
        return _adagrad(props["eps"], props["accumulate"], props["init"], props["reset"])
    if name == "rmsprop":
        return _rmsprop(props["eps"], props["average"], props["centered"], props["reset"])
    if name == "adam":
        return _adam(props)
    if name == "adamw":
        return _adamw(props)
    if name == "amsgrad":
        if props["max"] == "none":
            return _adam(props)
        return _amsgrad(props)
    raise KeyError(name)


# --- probes --------------------------------------------------------------------------------------
def ignored(rule, name: str) -> list[str]:
    """The hyper-parameters (lr included) whose value does not change the rule's steps."""
    hyper = PROBE_HYPER[name]
    base = run(rule, hyper)
    if base is None:
        return []
    out = []
    half = tuple(lr / 2 for lr in PROBE_LRS)
    if same(base, run(rule, hyper, lrs=half), rtol=1e-9, atol=0):
        out.append("lr")
    for key in hyper:
        other = run(rule, {**hyper, key: OTHER_VALUE[key]})
        if other is not None and same(base, other, rtol=1e-9, atol=0):
            out.append(key)
    return out


def _grid(name: str, max_changes: int):
    """Every combination of conventions with at most ``max_changes`` axes off the assignment's, fewest first."""
    axes = AXES[name]
    combos = []
    for values in itertools.product(*(vals for _, vals in axes)):
        props = {axis: value for (axis, vals), value in zip(axes, values)}
        changed = [axis for (axis, vals), value in zip(axes, values) if value != vals[0]]
        if len(changed) <= max_changes:
            combos.append((len(changed), props, changed))
    combos.sort(key=lambda c: c[0])
    return combos


def identify(rule, name: str, hard_coded: list[str] = (), max_changes: int = 2):
    """(props that differ from the assignment's, {hyper: constant the rule behaves as if it used}) or None."""
    hyper = PROBE_HYPER[name]
    target = run(rule, hyper)
    if target is None:
        return None
    fixed = [k for k in hard_coded if k in hyper]
    choices = [CONSTANTS[k] for k in fixed]
    for n, props, changed in _grid(name, max_changes):
        candidate = variant(name, **props)
        for constants in itertools.product(*choices):
            used = {**hyper, **dict(zip(fixed, constants))}
            if same(target, run(candidate, used)):
                return {axis: props[axis] for axis in changed}, dict(zip(fixed, constants))
    return None


def default_mismatches(rule, name: str) -> dict[str, tuple[object, object]]:
    """{hyper: (the student's default, the assignment's)} for every default that differs.

    Read from the signature where it names the default; a rule that takes ``**kwargs`` is probed:
    called with only lr and with each assignment default passed explicitly, on large and tiny
    gradients (a default eps of 1e-8 only shows on gradients of that size)."""
    expected = {k: p.default for k, p in inspect.signature(getattr(ref, name)).parameters.items()
                if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    try:
        params = inspect.signature(rule).parameters
    except (TypeError, ValueError):
        params = {}
    out = {}
    for key, default in expected.items():
        p = params.get(key)
        if p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.default is p.empty:
                out[key] = ("nothing (it has no default)", default)
            elif not (isinstance(p.default, (int, float)) and math.isclose(p.default, default, rel_tol=1e-12)):
                out[key] = (p.default, default)
            continue
        for scale in (1.0, 1e-7):  # taken from **kwargs: probe what a call without it does
            implicit = run(rule, {}, scale=scale)
            explicit = run(rule, {key: default}, scale=scale)
            if implicit is not None and explicit is not None and not same(implicit, explicit, rtol=1e-9, atol=0):
                out[key] = ("another value", default)
                break
    return out
