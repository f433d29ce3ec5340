"""Hidden checks for assignment 02_optimizers: the update rules, the schedule and the search.

Inputs are chosen so that conventions are distinguishable: 4 steps with gradients that change in
size and sign, a learning rate that drops at step 3 (the course's momentum form and PyTorch's then
differ), eps = 0.1 (inside vs outside the square root differ), beta2 = 0.9 and a small gradient
after large ones (Adam's counter and AMSGrad's maximum show), several shapes, float32 and float64,
on every device the grader has.
"""
from __future__ import annotations

import inspect
import math

import pytest
import torch

from autograder import conventions
from autograder.compare import (CheckFailure, check_number, check_prediction, check_tensor, check_true, describe,
                                fail, learning_rate)
from autograder.references import optimizer_probes as probes
from autograder.references import optimizers as ref
from autograder.scoring import Part
from course import RuleOptimizer

SHAPES = [(3,), (2, 4), (2, 1, 3)]
LRS = [0.1, 0.1, 0.05, 0.05]
SCALES = [2.0, 1.0, 0.25, 0.5]
DTYPES = {"float32": torch.float32, "float64": torch.float64}

RULES = {  # task: (hyper-parameters besides lr, state keys the docstring asks for, matching torch.optim)
    "sgd": ({}, [], lambda p: torch.optim.SGD(p, lr=0.05)),
    "momentum": ({"mu": 0.8}, ["velocity"], lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8)),
    "nesterov": ({"mu": 0.8}, ["velocity"], lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adagrad": ({"eps": 0.1}, ["sum_sq"], lambda p: torch.optim.Adagrad(p, lr=0.05, eps=0.1)),
    "rmsprop": ({"rho": 0.9, "eps": 0.1}, ["avg_sq"], lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.9, eps=0.1)),
    "adam": ({"beta1": 0.8, "beta2": 0.9, "eps": 0.1}, ["step", "m", "v"],
             lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.9), eps=0.1)),
    "adamw": ({"beta1": 0.8, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.5}, ["step", "m", "v"],
              lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.9), eps=0.1, weight_decay=0.5)),
    "amsgrad": ({"beta1": 0.8, "beta2": 0.9, "eps": 0.1}, ["step", "m", "v", "v_max"],
                lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.9), eps=0.1, amsgrad=True)),
}
NO_UPDATE = ("the parameter did not change: update it in place (param.add_(...), param.sub_(...)); "
             "`param = param - ...` only rebinds a local name and the model never sees it")


RULE_PARAMS = [pytest.param(name, marks=pytest.mark.task(name), id=name) for name in RULES]

# What an update rule's points are for (autograder.scoring): most for the numbers, the rest for the contract.
# The comparison with torch.optim uses a constant learning rate, where the course's momentum form and
# PyTorch's agree, so it counts only together with the steps over a changing rate: a wrong algorithm that
# respects the contract keeps 1/4 of the points, a right one with a contract slip (state on the wrong device,
# a default changed) keeps 3/4.
SCORING = {
    **{name: [
        Part("the steps", 3, ("test_steps_match_reference", "test_trains_like_torch_optim"),
             "every step over a changing learning rate, for every hyper-parameter, and training like torch.optim"),
        Part("the state", 1, ("test_rule_contract",),
             "in place, gradient untouched, state kept between steps with the parameter's dtype and device"),
    ] for name in RULES},
    # The experiment: the split and the result of the student's choice are separate shares, so a right split
    # with a learning rate that misses the target keeps half, and so does a good rate found on a leaky split.
    "tuning": [
        Part("the validation split", 1, ("test_split_train_val",),
             "disjoint, carved from the training data by the generator's permutation"),
        Part("the chosen learning rate", 1, ("test_chosen_lr_reaches_the_target",),
             "re-run with torch.optim.Adam on the fixed split, it reaches the stated validation accuracy"),
    ],
}


def snapshot(state: dict) -> dict:
    return {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


def trajectory(rule, hyper, shape, dtype, device, seed=0):
    """(parameter, state) after each of the steps, for the same start and gradients every time."""
    g = torch.Generator().manual_seed(seed)
    param = torch.nn.Parameter(torch.randn(shape, generator=g, dtype=dtype).to(device))
    state, out = {}, []
    for lr, scale in zip(LRS, SCALES):
        grad = (torch.randn(shape, generator=g, dtype=dtype) * scale).to(device)
        with torch.no_grad():
            rule(param, grad, state, lr=lr, **hyper)
        out.append((param.detach().clone(), snapshot(state)))
    return out


def mistake_runs(name, hyper, shape, dtype, device):
    runs = {NO_UPDATE: trajectory(lambda p, g, s, **h: None, hyper, shape, dtype, device)}
    for cause, wrong in ref.MISTAKES.get(name, {}).items():
        try:
            runs[cause] = trajectory(wrong, hyper, shape, dtype, device)
        except Exception:
            continue
    return runs


def student_rule(student, name):
    rule = getattr(student, name)
    if not callable(rule):
        fail(f"`{name}` should be a function rule(param, grad, state, *, lr, ...), got {describe(rule)}")
    return rule


@pytest.mark.parametrize("name", RULE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_steps_match_reference(student, name, device, dtype):
    hyper, keys, _ = RULES[name]
    rule = student_rule(student, name)
    settings = ", ".join(f"{k}={v}" for k, v in hyper.items())
    for shape in SHAPES:
        got = trajectory(rule, hyper, shape, dtype, device)
        expected = trajectory(getattr(ref, name), hyper, shape, dtype, device)
        mistakes = None
        for step, ((p, s), (p_ref, s_ref)) in enumerate(zip(got, expected), start=1):
            where = (f"{name} on a {dtype} parameter of shape {shape} on {device}"
                     f"{', ' + settings if settings else ''}, learning rates {LRS}, after step {step} of {len(LRS)}")
            if mistakes is None:
                mistakes = mistake_runs(name, hyper, shape, dtype, device)
            try:
                check_tensor(p, p_ref, f"{where}: the parameter", rtol=1e-4, atol=1e-6,
                             mistakes={cause: run[step - 1][0] for cause, run in mistakes.items()})
                for key in keys:
                    if key not in s:
                        fail(f"{where}: state has no entry {key!r} (keys found: {sorted(s)}); "
                             f"the docstring asks to keep it in state[{key!r}]")
                    if key == "step":
                        continue  # the counter itself is checked in test_rule_contract, where the parameter is right
                    check_tensor(s[key], s_ref[key], f"{where}: state[{key!r}]", rtol=1e-4, atol=1e-6,
                                 check_dtype=False, check_device=False,
                                 mistakes={cause: run[step - 1][1][key] for cause, run in mistakes.items()
                                           if key in run[step - 1][1]})
            except CheckFailure as exc:
                raise conventions.explain(exc, name, rule) from None
    # A hyper-parameter the rule ignores (a hard-coded rho that equals the one used above): the numbers are
    # wrong for every other value, so this belongs with the steps, not with the contract.
    ignored = conventions.ignored_message(name, rule)
    check_true(ignored is None, ignored or "")


@pytest.mark.parametrize("name", RULE_PARAMS)
def test_rule_contract(student, name, device):
    """In place, gradient untouched, state kept in the dict with the parameter's dtype and device."""
    hyper, keys, _ = RULES[name]
    rule = student_rule(student, name)
    param = torch.nn.Parameter(torch.linspace(-1, 1, 6, dtype=torch.float64, device=device).reshape(2, 3))
    before = param.detach().clone()
    grad = torch.linspace(0.5, -0.7, 6, dtype=torch.float64, device=device).reshape(2, 3)
    grad_before = grad.clone()
    state = {}
    with torch.no_grad():
        result = rule(param, grad, state, lr=0.1, **hyper)
    # A rule may also return something (the new value, say): only the update in place counts.
    returned = (f" (it returned a {describe(result)}: returning the new value is fine, but the parameter itself must "
                "change)") if isinstance(result, torch.Tensor) and result is not param else ""
    check_true(not torch.equal(param.detach(), before), f"{name}: {NO_UPDATE}{returned}")
    check_true(torch.equal(grad, grad_before),
               f"{name} modified the gradient it was given; read grad, never change it (no grad.mul_(...), grad += ...)")
    for key in keys:
        check_true(key in state, f"{name}: after the first step state has no entry {key!r} (found {sorted(state)})")
        value = state[key]
        if key == "step":
            continue
        if not isinstance(value, torch.Tensor):
            fail(f"{name}: state[{key!r}] should be a tensor, got {describe(value)}")
        if value.dtype != param.dtype or value.device != param.device:
            fail(f"{name}: state[{key!r}] is {value.dtype} on {value.device}, the parameter is {param.dtype} on "
                 f"{param.device}; {ref.WRONG_DEVICE}")
        check_true(tuple(value.shape) == tuple(param.shape),
                   f"{name}: state[{key!r}] has shape {tuple(value.shape)}, the parameter {tuple(param.shape)}")
    with torch.no_grad():
        rule(param, grad, state, lr=0.1, **hyper)
    missing = [key for key in keys if key not in state]
    check_true(not missing, f"{name}: state lost {missing} at the second step; keep the state between steps")
    if "step" in keys:  # the counter, where the parameters are right (otherwise the step checks say why)
        twin, twin_state = param.detach().clone().copy_(before), {}
        for _ in range(2):
            getattr(ref, name)(twin, grad, twin_state, lr=0.1, **hyper)
        counter = state["step"]
        if isinstance(counter, torch.Tensor) and counter.numel() == 1:
            counter = counter.item()
        if torch.allclose(param.detach(), twin, rtol=1e-6, atol=1e-9) and not (
                isinstance(counter, (int, float)) and not isinstance(counter, bool) and counter == 2):
            fail(conventions.counter_message(name, counter, 2))
    defaults = probes.default_mismatches(rule, name)
    check_true(not defaults, conventions.default_message(name, defaults) if defaults else "")


@pytest.mark.parametrize("name", RULE_PARAMS)
def test_trains_like_torch_optim(student, name, device):
    """Through course.RuleOptimizer on a small network, the rule follows torch.optim step for step."""
    hyper, _, make_torch = RULES[name]
    rule = student_rule(student, name)
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double().to(device)
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double().to(device)
    theirs.load_state_dict(ours.state_dict())
    opt_ours, opt_theirs = RuleOptimizer(ours.parameters(), rule, lr=0.05, **hyper), make_torch(theirs.parameters())
    g = torch.Generator().manual_seed(1)
    for step in range(1, 7):
        x = torch.randn(8, 5, generator=g, dtype=torch.float64).to(device)
        y = torch.randn(8, 2, generator=g, dtype=torch.float64).to(device)
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        for (pname, a), b in zip(ours.named_parameters(), theirs.parameters()):
            try:
                check_tensor(a.detach(), b.detach(),
                             f"training a small network with RuleOptimizer({name}) vs the matching torch.optim "
                             f"(constant lr 0.05), parameter {pname} after step {step}", rtol=1e-6, atol=1e-8)
            except CheckFailure as exc:
                raise conventions.explain(exc, name, rule) from None


# --- the schedule ------------------------------------------------------------------------------
def check_decay_default(decay):
    try:
        default = inspect.signature(decay).parameters["final_fraction"].default
    except (KeyError, TypeError, ValueError):
        return
    if isinstance(default, (int, float)) and not math.isclose(default, 0.01):
        fail(f"linear_decay: final_fraction defaults to {default!r}, the assignment's signature has final_fraction=0.01 "
             "(the default values are part of the signature: a call without it must use the assignment's)")


@pytest.mark.task("linear_decay")
def test_linear_decay_values(student):
    decay = student_rule(student, "linear_decay")
    lr0, tau = 0.5, 10
    check_decay_default(decay)
    for final in (0.01, 0.2):
        for k in [0, 1, 5, 9, 10, 11, 50]:
            expected = ref.linear_decay(k, lr0, tau, final)
            got = decay(k, lr0, tau, final) if final != 0.01 else decay(k, lr0, tau)
            check_number(got, expected, f"linear_decay(step={k}, lr0={lr0}, tau={tau}, final_fraction={final})",
                         rtol=1e-9, atol=1e-12, mistakes={
                             "off by one: step k uses alpha = k / tau, so step 0 gives exactly lr0":
                                 ref.linear_decay(k + 1, lr0, tau, final),
                             "off by one: alpha = k / tau, not k / (tau - 1)":
                                 ref.linear_decay(k, lr0, tau - 1, final),
                             "after step tau the rate must stay at final_fraction * lr0 (clamp alpha at 1)":
                                 (1 - k / tau) * lr0 + (k / tau) * final * lr0,
                             "the rate decays to 0; it must end at final_fraction * lr0":
                                 (1 - min(k, tau) / tau) * lr0,
                         })


@pytest.mark.task("linear_decay")
def test_linear_decay_drives_lambda_lr(student):
    decay = student_rule(student, "linear_decay")
    check_decay_default(decay)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: decay(k, 1.0, 20))
    reference = torch.optim.lr_scheduler.LinearLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3),
                                                  start_factor=1.0, end_factor=0.01, total_iters=20)
    for k in range(25):
        check_number(opt.param_groups[0]["lr"], reference.get_last_lr()[0],
                     f"LambdaLR(optimizer, lambda k: linear_decay(k, 1.0, 20)) at step {k}, compared with "
                     "torch.optim.lr_scheduler.LinearLR(end_factor=0.01, total_iters=20)", rtol=1e-9)
        opt.step()
        sched.step()
        reference.optimizer.step()
        reference.step()


# --- the search ------------------------------------------------------------------------------
@pytest.mark.task("search")
def test_log_uniform_samples(student):
    sample = student_rule(student, "log_uniform")
    low, high, n = 1e-4, 1e-1, 30000
    x = sample(n, low, high, torch.Generator().manual_seed(0))
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != (n,):
        fail(f"log_uniform({n}, {low}, {high}, generator) should return a tensor of shape ({n},), got {describe(x)}")
    if x.dtype != torch.float64:
        fail(f"log_uniform should return float64 samples (as its docstring says), got {x.dtype}: float32 keeps "
             f"about 7 digits, too few for a search over decades")
    check_true(bool(((x >= low) & (x <= high)).all()),
               f"log_uniform({n}, {low}, {high}, ...) returned values outside [{low}, {high}]: "
               f"min {x.min().item():.3g}, max {x.max().item():.3g}")
    lowest_decade = (x < 1e-3).double().mean().item()
    if abs(lowest_decade - 1 / 3) > 0.03:
        linear = "; the samples look uniform in linear space: sample the exponent uniformly, 10 ** U(log10 low, log10 high)" \
            if lowest_decade < 0.05 else ""
        fail(f"log_uniform({n}, 1e-4, 1e-1, ...): each decade should get a third of the samples; "
             f"[1e-4, 1e-3) got {lowest_decade:.1%}{linear}")
    again = sample(n, low, high, torch.Generator().manual_seed(0))
    check_true(torch.equal(torch.as_tensor(again).double(), x),
               "log_uniform is not reproducible: draw the random numbers from the generator argument")
    other = sample(n, low, high, torch.Generator().manual_seed(1))
    check_true(not torch.equal(torch.as_tensor(other).double(), x),
               "log_uniform ignores its generator: two different seeds gave the same samples")
    check_true(not math.isclose(x.mean().item(), (low + high) / 2, rel_tol=0.05),
               "the mean is that of a linear uniform distribution; sample uniformly in log space")
    # Other ranges than the public example's: a rule that hard-codes its range or its number of decades
    # passes that one only.
    for low, high in ((0.5, 50.0), (1e-6, 1e-5), (3e-3, 3e-1)):
        x = torch.as_tensor(sample(n, low, high, torch.Generator().manual_seed(2))).double()
        what = f"log_uniform({n}, {low:g}, {high:g}, generator)"
        if tuple(x.shape) != (n,):
            fail(f"{what} should return a tensor of shape ({n},), got {describe(x)}")
        inside = bool(((x >= low * (1 - 1e-12)) & (x <= high * (1 + 1e-12))).all())
        if not inside:
            public = bool(((x >= 1e-4) & (x <= 1e-1)).all())
            decades = bool(((x >= low * (1 - 1e-12)) & (x <= low * 1e3 * (1 + 1e-12))).all())
            fail(f"{what} returned values outside [{low:g}, {high:g}]: min {x.min().item():.3g}, max "
                 f"{x.max().item():.3g}" + ("; they lie in [1e-4, 1e-1], the public example's range: the range is "
                                            "hard-coded, use the low and high arguments" if public else
                                            "; they span three decades from low: the number of decades is "
                                            "hard-coded, use log10(high) - log10(low)" if decades else ""))
        lower_half = (x < math.sqrt(low * high)).double().mean().item()
        if abs(lower_half - 0.5) > 0.03:
            fail(f"{what}: half of the samples should lie below the geometric middle sqrt(low * high) = "
                 f"{math.sqrt(low * high):.3g}, {lower_half:.1%} do: the exponent must be uniform on "
                 f"[log10 low, log10 high] for every range (is the number of decades hard-coded?)")


# --- predictions (Task 10) -----------------------------------------------------------------------
WHY = {  # the reasoning the feedback gives when a prediction is wrong
    "predict_max_stable_lr":
        "on f = h/2 theta^2 course-form momentum is theta_{k+1} = theta_k + mu (theta_k - theta_{k-1}) - lr h "
        "theta_k; it converges iff both roots of z^2 - (1 + mu - lr h) z + mu = 0 lie inside the unit circle, "
        "which for 0 <= mu < 1 means 0 < lr h < 2 (1 + mu): lr < 2 * 1.9 / 4 = 0.95 (plain gradient descent, "
        "mu = 0: lr < 2 / h = 0.5)",
    "predict_adam_uncorrected":
        "at t = 1, m = (1 - beta1) g and v = (1 - beta2) g^2, so m / sqrt(v) = (1 - beta1) / sqrt(1 - beta2) * "
        "sign(g) = 0.2 / 0.1 = 2 (with eps = 0): the uncorrected step is 2 lr against the gradient, "
        "theta = 1.0 + 0.02, twice the corrected step lr * sign(g). Dropping both corrections makes the first "
        "steps larger, not smaller",
    "predict_step_after_drop":
        "with a constant g the course's v is -0.1, then 0.9 * (-0.1) - 0.1 = -0.19, and at step 3 "
        "0.9 * (-0.19) - 0.01 * 1 = -0.181, which is the step theta_3 - theta_2: v keeps what the old rate put "
        "into it and the drop acts gradually. PyTorch's buffer b = 2.71 is multiplied by the new lr at once: "
        "-0.0271",
}


def _prediction(student, name):
    answer, mistakes, about = ref.PREDICTIONS[name]
    check_prediction(getattr(student, name), answer, f"{name} ({about})", atol=5e-4, mistakes=mistakes,
                     why=WHY[name])


@pytest.mark.task("predictions")
def test_predict_max_stable_lr(student):
    _prediction(student, "predict_max_stable_lr")


@pytest.mark.task("predictions")
def test_predict_adam_uncorrected(student):
    _prediction(student, "predict_adam_uncorrected")


@pytest.mark.task("predictions")
def test_predict_step_after_drop(student):
    _prediction(student, "predict_step_after_drop")


# --- the experiment (Task 11) --------------------------------------------------------------------
@pytest.mark.task("tuning")
def test_split_train_val(student, device):
    split = student_rule(student, "split_train_val")
    n, n_val = 50, 12
    y = torch.arange(n, device=device) * 3  # distinct labels identify the examples
    x = (torch.arange(n, dtype=torch.float32, device=device) * 3).reshape(n, 1, 1).expand(n, 2, 2).contiguous()
    what = f"split_train_val(x, y, n_val={n_val}, torch.Generator().manual_seed(5)) on {n} examples on {device}"
    got = split(x, y, n_val, torch.Generator().manual_seed(5))
    if not isinstance(got, (tuple, list)) or len(got) != 4 or not all(isinstance(t, torch.Tensor) for t in got):
        fail(f"{what} should return four tensors (x_train, y_train, x_val, y_val), got {describe(got)}")
    x_tr, y_tr, x_val, y_val = got
    train_ids, val_ids = set(y_tr.tolist()), set(y_val.tolist())
    overlap = train_ids & val_ids
    check_true(not overlap, f"{what}: {len(overlap)} validation examples are also training examples: a validation "
                            "set must be held out, never trained on, or its accuracy says nothing about new data")
    check_true(len(x_val) == len(y_val) == n_val and len(x_tr) == len(y_tr) == n - n_val,
               f"{what}: expected {n - n_val} training and {n_val} validation examples, got {len(x_tr)} / "
               f"{len(y_tr)} and {len(x_val)} / {len(y_val)}")
    check_true(tuple(x_tr.shape[1:]) == (2, 2) and x_tr.device == x.device and y_tr.device == y.device,
               f"{what}: keep each example's shape (2, 2) and the inputs' device {x.device}; got x_train "
               f"{describe(x_tr)}")
    check_true(train_ids | val_ids == set(y.tolist()),
               f"{what}: training and validation together should be all {n} examples, once each")
    check_true(torch.equal(x_tr[:, 0, 0], y_tr.float()) and torch.equal(x_val[:, 0, 0], y_val.float()),
               f"{what}: images and labels no longer belong together: index x and y with the same indices")
    expected = ref.split_train_val(x, y, n_val, torch.Generator().manual_seed(5))
    if not torch.equal(y_val, expected[3]):
        hint = ""
        if y_val.tolist() == y[:n_val].tolist() or y_val.tolist() == y[-n_val:].tolist():
            hint = (" (you took the first or last n_val examples: if the data is sorted, by class or by time, that "
                    "validation set is not like the rest)")
        fail(f"{what}: the validation examples should be the first n_val of torch.randperm(len(x), "
             f"generator=generator), in that order{hint}; got labels {y_val.tolist()[:6]}..., expected "
             f"{expected[3].tolist()[:6]}...")
    check_true(torch.equal(y_tr, expected[1]),
               f"{what}: the training examples should be the rest of that permutation, in its order")
    again = split(x, y, n_val, torch.Generator().manual_seed(5))
    check_true(torch.equal(again[3], y_val), f"{what}: not reproducible: draw the permutation from the generator")


@pytest.mark.task("tuning")
def test_chosen_lr_reaches_the_target(student):
    e = ref.EXPERIMENT
    lr = learning_rate(getattr(student, "chosen_lr"), "chosen_lr, the learning rate your search selected,")
    acc = ref.validation_accuracy(lr)
    check_true(acc >= e["target"],
               f"chosen_lr = {lr:.3g}: FirstNet (torch.manual_seed({e['model_seed']})) trained {e['epochs']} epoch with "
               f"torch.optim.Adam at that rate (batch {e['batch_size']}, TensorLoader seed {e['loader_seed']}) on the "
               f"training digits less the validation split reaches {acc:.1%} validation accuracy; the target is "
               f"{e['target']:.0%}. Too small a rate has not got far in one epoch, too large a one is unstable: "
               "look at your search's results and, if the best value is at the edge of the range, widen it")
