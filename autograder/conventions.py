"""What a wrong update rule does, in one sentence per property, from the probes.

Called by the checks of assignment 2 when a comparison has failed: :func:`diagnose` probes the
student's rule (``references.optimizer_probes``) and names what it does and what the assignment
asks, whatever course or textbook the code came from. :func:`explain` puts that in place of the
catalogue's guess in a check's message. Results are cached per rule, since every failing check of a
task asks about the same function.
"""
from __future__ import annotations

from autograder.compare import CheckFailure
from autograder.references import optimizer_probes as probes
from autograder.references.optimizers import RESET

MOMENTUM = "v <- mu v - lr g, theta <- theta + v"
NESTEROV = "v <- mu v - lr g, theta <- theta + mu v - lr g with the new v"
BIAS = "the assignment divides m by (1 - beta1^t) and v by (1 - beta2^t)"
ADAM_DENOM = "m_hat / (sqrt(v_hat) + eps)"


def _eps_inside(acc: str) -> str:
    return (f"eps is inside the square root, sqrt({acc} + eps) (as d2l and ML-From-Scratch write it); "
            f"the assignment puts it outside: sqrt({acc}) + eps")


_ADAM = {
    ("bias", "none"): "the bias correction is missing (your step is m / (sqrt(v) + eps)): " + BIAS,
    ("bias", "m"): "only m is bias-corrected, v is not: " + BIAS,
    ("bias", "v"): "only v is bias-corrected, m is not: " + BIAS,
    ("bias", "stuck"): ("the bias correction uses 1 - beta, not 1 - beta^t (t never changes, as in ML-From-Scratch's "
                        "Adam): " + BIAS + " with t the number of updates so far"),
    ("bias", "efficient"): (
        "your code folds the bias correction into the step size (Kingma & Ba's \"efficient\" form, "
        "lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t), as in CS336 and \"Deep Learning from Scratch\") and adds eps to "
        "the uncorrected sqrt(v): that is the assignment's formula with eps replaced by eps * sqrt(1 - beta2^t), equal "
        "only if eps is scaled that way (or negligible, which eps=0.1 in this check is not); the assignment asks for "
        + ADAM_DENOM),
    ("eps", "inside"): _eps_inside("v_hat"),
    ("t_offset", 1): ("the step counter is off by one: your first update uses t = 2; the first update must use t = 1 "
                      "(start at 0, increment before use)"),
    ("t_offset", -1): ("the step counter is 0 at the first update (incremented after use): 1 - beta^0 = 0 divides by "
                       "zero; the first update must use t = 1"),
    ("moments", "v_from_grad"): "v averages the gradient, not the squared gradient: v <- beta2 v + (1 - beta2) g^2",
    ("betas", "swapped"): "beta1 and beta2 are swapped: m must decay with beta1, v (the squared gradients) with beta2",
    ("moments", "m_from_sq"): "m averages the squared gradient, not the gradient: m <- beta1 m + (1 - beta1) g",
    ("reset", True): RESET,
}

DESCRIPTIONS: dict[str, dict[tuple[str, object], str]] = {
    "sgd": {("sign", "up"): "the step goes uphill: subtract lr * grad (param <- param - lr * grad)"},
    "momentum": {
        ("form", "torch"): ("your momentum follows PyTorch's form (v <- mu v + g, theta <- theta - lr v), the same as "
                            "the course's only while lr is constant; the assignment asks for " + MOMENTUM),
        ("form", "dampened"): ("your momentum is dampened, an average of the gradients (v <- mu v + (1 - mu) g, "
                               "theta <- theta - lr v, as in UvA's and ML-From-Scratch's code), so its steps are "
                               "(1 - mu) times smaller; the assignment asks for " + MOMENTUM),
        ("form", "uphill"): "the velocity has the wrong sign (v <- mu v + lr g climbs the loss): v <- mu v - lr g, then theta <- theta + v",
        ("form", "plain_sgd"): "your momentum never uses the velocity: its steps are plain SGD; the assignment asks for " + MOMENTUM,
        ("reset", True): RESET,
    },
    "nesterov": {
        ("form", "torch"): ("your Nesterov follows PyTorch's form (v <- mu v + g, theta <- theta - lr (g + mu v)), the "
                            "same as the course's only while lr is constant; the assignment asks for " + NESTEROV),
        ("form", "plain"): ("this is plain momentum: Nesterov adds mu * v_new - lr * g to theta, not v_new (a look-ahead "
                            "with the old velocity, theta += mu v_old - lr g before v is updated, is the same thing); "
                            "the assignment asks for " + NESTEROV),
        ("form", "dampened"): ("your Nesterov is dampened (v <- mu v + (1 - mu) g, theta <- theta - lr (g + mu v)), so "
                               "its steps are smaller; the assignment asks for " + NESTEROV),
        ("form", "squared_mu"): ("your Nesterov moves theta by mu^2 v - (1 + mu) lr g (the form of \"Deep Learning "
                                 "from Scratch\"), which is not the course's; the assignment asks for " + NESTEROV),
        ("reset", True): RESET,
    },
    "adagrad": {
        ("eps", "inside"): _eps_inside("sum_sq"),
        ("accumulate", "decay"): "the accumulator decays like RMSProp's; AdaGrad adds every squared gradient (no decay)",
        ("accumulate", "sum_of_grads"): ("the gradients are summed without squaring them; AdaGrad sums the squared "
                                         "gradients: sum_sq <- sum_sq + g^2"),
        ("accumulate", "square_of_sum"): ("the sum of gradients is squared (the slide's bug); AdaGrad sums the squared "
                                          "gradients"),
        ("init", 0.1): ("the accumulator starts at 0.1 (TensorFlow's initial_accumulator_value); the assignment starts "
                        "it at zero: torch.zeros_like(param)"),
        ("reset", True): RESET,
    },
    "rmsprop": {
        ("eps", "inside"): _eps_inside("avg_sq"),
        ("average", "no_one_minus_rho"): ("the new squared gradient is not weighted by (1 - rho); the assignment asks "
                                          "for avg_sq <- rho avg_sq + (1 - rho) g^2"),
        ("average", "accumulate"): ("the average accumulates like AdaGrad's; RMSProp decays it: avg <- rho avg + "
                                    "(1 - rho) g^2"),
        ("average", "rho_swapped"): ("rho and 1 - rho are swapped (your average keeps 1 - rho of the old value); the "
                                     "assignment asks for avg_sq <- rho avg_sq + (1 - rho) g^2"),
        ("centered", True): ("your RMSProp is centered (it divides by sqrt(avg_sq - avg_g^2), like Graves' and "
                             "TensorFlow's centered=True); the assignment asks for the plain form, sqrt(avg_sq) + eps"),
        ("reset", True): RESET,
    },
    "adam": _ADAM,
    "adamw": {
        **_ADAM,
        ("decay", "after"): ("the weight decay is applied after the Adam step (as in CS336's AdamW), so it also "
                             "shrinks the step; the assignment, like torch.optim.AdamW, decays first: theta <- theta - "
                             "lr * weight_decay * theta, then the Adam step"),
        ("decay", "l2"): ("the weight decay is added to the gradient (L2, as in Adam); AdamW decays the weights "
                          "directly: theta <- theta - lr * weight_decay * theta"),
        ("decay", "without_lr"): ("the weight decay is not multiplied by lr (theta <- theta - weight_decay * theta, "
                                  "Loshchilov & Hutter's form with its own schedule multiplier); the assignment decays "
                                  "by lr * weight_decay: theta <- theta - lr * weight_decay * theta"),
        ("decay", "none"): "no weight decay is applied; AdamW first decays theta <- theta - lr * weight_decay * theta",
    },
    "amsgrad": {
        **_ADAM,
        ("bias", "none"): ("the bias correction is missing (Reddi et al.'s algorithm has none; PyTorch's AMSGrad, "
                           "which the assignment follows, has it): " + BIAS.replace("v by", "v_max by")),
        ("max", "v_hat"): ("your code keeps the maximum of the bias-corrected v_hat; the assignment, like PyTorch, keeps "
                           "the maximum of v and corrects that: v_max <- max(v_max, v), v_hat = v_max / (1 - beta2^t)"),
        ("max", "none"): "this is plain Adam: AMSGrad divides by the running maximum of v",
    },
}


def _ignored_sentence(name: str, key: str, constant=None) -> str:
    if key == "lr":
        return (f"your {name} ignores the learning rate it is given (its steps do not change when lr does); the "
                "assignment asks to step by the lr argument")
    value = probes.PROBE_HYPER[name][key]
    other = probes.OTHER_VALUE[key]
    like = f"it behaves as if {key} were always {constant:g}" if constant is not None and key != "eps" else \
        "a hard-coded value or a default used instead of the argument"
    return (f"your {name} ignores the {key} it is given (its steps are the same for {key}={value:g} and "
            f"{key}={other:g}: {like}); the assignment asks to use the argument, {key}={value:g} in this check")


_cache: dict[str, tuple[object, str | None]] = {}


def diagnose(name: str, rule) -> str | None:
    """One sentence per property in which ``rule`` differs from the assignment, or None if none is recognized."""
    cached = _cache.get(name)
    if cached is not None and cached[0] is rule:
        return cached[1]
    text = _diagnose(name, rule)
    _cache[name] = (rule, text)
    return text


def _diagnose(name: str, rule) -> str | None:
    if name not in probes.AXES:
        return None
    base = probes.run(rule, probes.PROBE_HYPER[name])
    if base is None:
        return None
    start, _ = probes._inputs()
    if all(bool((p == start).all()) for p in base):
        return None  # the parameter never changes: the checks say so themselves
    found = probes.identify(rule, name)
    ignored = []
    if found is None:
        finite = all(bool(p.isfinite().all()) for p in base)
        ignored = probes.ignored(rule, name) if finite else []
        found = probes.identify(rule, name, hard_coded=ignored) if ignored else None
    if found is None and not ignored:
        return None
    props, constants = found if found is not None else ({}, {})
    parts = [_ignored_sentence(name, key, constants.get(key)) for key in ignored]
    table = DESCRIPTIONS.get(name, {})
    for axis, value in props.items():
        text = table.get((axis, value))
        if text == RESET:  # name the rule's own state key
            key = {"momentum": "velocity", "nesterov": "velocity", "adagrad": "sum_sq", "rmsprop": "avg_sq"}.get(name, "step")
            text = RESET.replace("'velocity'", repr(key))
        if text is None:
            return None if not parts else "; ".join(parts)
        parts.append(text)
    if not parts:
        return None
    if not any(bool(p.isfinite().any()) for p in base):
        return "nothing but NaN/inf came back, which is weak evidence; one convention that gives this: " + ". Also, ".join(parts)
    return ". Also, ".join(parts)


def ignored_message(name: str, rule) -> str | None:
    """The hyper-parameters the rule does not react to, unless a convention explains it (state re-created
    every step makes mu irrelevant, say): the checks use one value each, which a hard-coded one may equal."""
    if name not in probes.AXES:
        return None
    base = probes.run(rule, probes.PROBE_HYPER[name])
    if base is None or not all(bool(p.isfinite().all()) for p in base):
        return None
    ignored = probes.ignored(rule, name)
    if not ignored:
        return None
    found = probes.identify(rule, name)
    if found is not None and found[0]:
        return None
    if found is None:  # wrong with the checks' values too: say everything the probes found
        text = diagnose(name, rule)
        if text:
            return f"{name}: {text}"
    return f"{name}: " + ". Also, ".join(_ignored_sentence(name, key) for key in ignored)


def explain(exc: CheckFailure, name: str, rule) -> CheckFailure:
    """``exc`` with the probes' diagnosis in place of the catalogue's guess (kept when the probes say nothing)."""
    message = str(exc)
    try:
        text = diagnose(name, rule)
    except Exception:  # student code may do anything; a diagnosis is a bonus
        text = None
    if not text:
        return exc
    for marker in ("\n  Likely cause: ", "\n  One known mistake"):
        if marker in message:
            message = message[: message.index(marker)]
    return CheckFailure(f"{message}\n  Likely cause: {text}")


def counter_message(name: str, got, steps: int) -> str:
    """What a wrong state['step'] means when the parameters are right."""
    try:
        diff = float(got) - steps
    except (TypeError, ValueError):
        return (f"{name}: after {steps} updates state['step'] is {got!r}; the parameters are right, but the docstring "
                f"asks state['step'] to count the updates (0 before the first, {steps} after {steps})")
    where = "ahead" if diff > 0 else "behind"
    return (f"{name}: the parameters are right, but state['step'] is {where} by {abs(diff):g}: it is {float(got):g} "
            f"after {steps} updates; the docstring asks it to count the updates (0 before the first, incremented "
            f"before use, so {steps} after {steps}), so only this check costs")


def default_message(name: str, mismatches: dict) -> str:
    parts = []
    for key, (got, expected) in mismatches.items():
        shown = got if isinstance(got, str) else f"{got!r}"
        parts.append(f"{key} defaults to {shown}, the assignment's signature has {key}={expected!r}")
    return (f"{name}: " + "; ".join(parts) + " (the default values are part of the signature: a call without "
            "them must use the assignment's)")
