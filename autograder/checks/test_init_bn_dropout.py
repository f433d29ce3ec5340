"""Hidden checks for assignment 03_init_bn_dropout: initializers, BatchNorm, Dropout, the experiment, predictions.

Initializers are checked statistically on large tensors: every tolerance is five standard errors of the
statistic for that sample size, so a correct answer fails about once in a few million runs, while the
typical mistakes (a swapped fan, a missing gain, the wrong uniform bound) move the statistic by far
more than that. BatchNorm is compared with torch.nn.BatchNorm1d / BatchNorm2d holding the same gamma
and beta, forward and backward, in training and in eval, on every device the grader has. Dropout is
checked on its statistics and its contract (eval identity, the same mask in the backward pass,
reproducible under torch.manual_seed, p = 0 and p = 1).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autograder.compare import check_prediction, check_tensor, check_true, describe, fail
from autograder.references import init_bn_dropout as ref

OFFLINE_ROOT = ref.OFFLINE_ROOT  # the fixed offline MNIST split, the same for every grader
SIGMAS = 5.0

INITIALIZERS = {  # name: task
    "xavier_normal_": "xavier",
    "xavier_uniform_": "xavier",
    "kaiming_normal_": "kaiming",
}
INIT_PARAMS = [pytest.param(name, marks=pytest.mark.task(task), id=name) for name, task in INITIALIZERS.items()]
SWAPPED = ("fan_in and fan_out are swapped: a weight has shape (out, in, *kernel), so fan_in = shape[1] * "
           "(kernel elements) and fan_out = shape[0] * (kernel elements)")
NO_KERNEL = "the kernel is left out: for a Conv weight (out, in, kh, kw) both fans are multiplied by kh * kw"


def student_function(student, name):
    fn = getattr(student, name)
    if not callable(fn):
        fail(f"`{name}` should be a function, got {describe(fn)}")
    return fn


# --- fans ----------------------------------------------------------------------------------------
FAN_SHAPES = [(5, 7), (6, 3, 5), (16, 8, 3, 3), (4, 2, 3, 1, 2), (7, 1, 1, 1)]


@pytest.mark.task("fans")
def test_fans_of_linear_and_conv_weights(student):
    compute_fans = student_function(student, "compute_fans")
    for shape in FAN_SHAPES:
        t = torch.empty(shape)
        got = compute_fans(t)
        expected = ref.compute_fans(t)
        what = f"compute_fans of a weight of shape {shape}"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"{what}: expected a pair (fan_in, fan_out), got {describe(got)}")
        got = tuple(int(v) if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)
                    else v for v in got)
        if got == expected:
            continue
        hint = ""
        if got == expected[::-1]:
            hint = f"\n  Likely cause: {SWAPPED}"
        elif len(shape) > 2 and got in ((shape[1], shape[0]), (shape[0], shape[1])):
            hint = f"\n  Likely cause: {NO_KERNEL}"
        fail(f"{what}: expected (fan_in, fan_out) = {expected}, got {got}{hint}")


@pytest.mark.task("fans")
def test_fans_leave_the_tensor_alone(student):
    compute_fans = student_function(student, "compute_fans")
    t = torch.arange(24.0).reshape(2, 3, 4)
    compute_fans(t)
    check_true(torch.equal(t, torch.arange(24.0).reshape(2, 3, 4)),
               "compute_fans changed the tensor it was given; it only reads the shape")


# --- initializer statistics ----------------------------------------------------------------------
def _call_init(fn, name, t, gain):
    if name == "kaiming_normal_" or gain == 1.0:
        return fn(t)
    return fn(t, gain=gain)


def _std_candidates(name, fan_in, fan_out, gain):
    """Standard deviations that typical mistakes give, to name the one a result matches."""
    xavier = math.sqrt(2.0 / (fan_in + fan_out))
    out = {
        SWAPPED: math.sqrt(2.0 / fan_out) if name == "kaiming_normal_" else None,
        "the ReLU gain is missing: He's variance is 2 / fan_in (gain sqrt(2)), not 1 / fan_in": math.sqrt(1.0 / fan_in)
        if name == "kaiming_normal_" else None,
        "that is Xavier's variance 2 / (fan_in + fan_out); He's is 2 / fan_in": xavier
        if name == "kaiming_normal_" else None,
        "the slide's heuristic 4 / (fan_in + fan_out) is not He's variance; use 2 / fan_in":
            math.sqrt(4.0 / (fan_in + fan_out)) if name == "kaiming_normal_" else None,
        "the gain argument is ignored: multiply the standard deviation (or the bound) by gain":
            xavier if name != "kaiming_normal_" and gain != 1.0 else None,
        "the gain is applied to the variance; it multiplies the standard deviation (the bound), so the variance "
        "gets gain ** 2": math.sqrt(gain) * xavier if name != "kaiming_normal_" and gain != 1.0 else None,
        "the bound a of U(-a, a) is sqrt(6 / (fan_in + fan_out)) = sqrt(3) * std: U(-a, a) has variance a^2 / 3, "
        "so using the standard deviation as the bound gives a third of the variance":
            gain * xavier / math.sqrt(3.0) if name == "xavier_uniform_" else None,
        "Var(w) = 1 / fan_in is LeCun's; Xavier's is 2 / (fan_in + fan_out)":
            gain * math.sqrt(1.0 / fan_in) if name != "kaiming_normal_" else None,
    }
    return {cause: std for cause, std in out.items() if std is not None}


STAT_CASES = [  # (shape, gain); fans differ so swaps show, conv shapes check the kernel's part
    ((200, 600), 1.0),
    ((48, 24, 3, 3), 1.0),
    ((300, 150), 5.0 / 3.0),
]


@pytest.mark.parametrize("name", INIT_PARAMS)
def test_initializer_statistics(student, name, device):
    fn = student_function(student, name)
    for shape, gain in STAT_CASES:
        if name == "kaiming_normal_" and gain != 1.0:
            continue
        t = torch.full(shape, 7.0, device=device)
        fan_in, fan_out = ref.compute_fans(t)
        std = gain * ref.expected_std(name, fan_in, fan_out)
        call = f"{name}(torch.empty{shape}{'' if gain == 1.0 else f', gain={gain:.4g}'}) on {device}"
        result = _call_init(fn, name, t, gain)
        if result is not None and result is not t:
            fail(f"{call} returned a different tensor ({describe(result)}); fill the given tensor in place "
                 "(tensor.normal_(...), tensor.uniform_(...)) and return it")
        check_true(not bool((t == 7.0).any()), f"{call} left some elements unchanged: fill the tensor in place, "
                                               "every element")
        check_true(t.dtype == torch.float32 and t.device.type == torch.device(device).type,
                   f"{call}: the tensor is now {t.dtype} on {t.device}; keep its dtype and device")
        w = t.detach().double().flatten().cpu()
        n = w.numel()
        measured_mean, measured_std = w.mean().item(), w.std().item()
        uniform = name == "xavier_uniform_"
        # standard errors: mean sigma / sqrt(n); variance relative sqrt(2 / n) (normal), sqrt(0.8 / n) (uniform)
        if abs(measured_mean) > SIGMAS * std / math.sqrt(n):
            fail(f"{call}: the weights should have mean 0, measured {measured_mean:.4g} over {n:,} values "
                 f"(allowed within {SIGMAS * std / math.sqrt(n):.2g})")
        rel = SIGMAS * math.sqrt((0.8 if uniform else 2.0) / n)
        if abs(measured_std**2 / std**2 - 1) > rel:
            hint = ""
            for cause, wrong in _std_candidates(name, fan_in, fan_out, gain).items():
                if abs(measured_std**2 / wrong**2 - 1) <= rel:
                    hint = f"\n  Likely cause: {cause}"
                    break
            fail(f"{call}: fan_in = {fan_in}, fan_out = {fan_out}, so the standard deviation should be "
                 f"{std:.5g} (variance {std**2:.4g}); measured {measured_std:.5g} (variance {measured_std**2:.4g})"
                 f"{hint}")
        a = math.sqrt(3.0) * std
        beyond = (w.abs() > a * (1 + 1e-6)).double().mean().item()
        if uniform:
            check_true(beyond == 0, f"{call}: {beyond:.2%} of the values lie outside [-a, a] with a = {a:.5g}: "
                                    "draw from U(-a, a) with tensor.uniform_(-a, a)")
            check_true(w.abs().max().item() > a * (1 - 1e-3),
                       f"{call}: the largest |value| is {w.abs().max().item():.5g}, well inside the bound "
                       f"a = {a:.5g}; draw from U(-a, a)")
        else:
            p = math.erfc(math.sqrt(1.5))  # P(|z| > sqrt(3)) for a standard normal: 8.3%
            if abs(beyond - p) > SIGMAS * math.sqrt(p * (1 - p) / n):
                fail(f"{call}: {beyond:.2%} of the values are beyond sqrt(3) standard deviations; a normal "
                     f"distribution has {p:.1%} there" + (" (a uniform one has none: use tensor.normal_)"
                                                          if beyond < p / 4 else ""))


@pytest.mark.parametrize("name", INIT_PARAMS)
def test_initializer_works_in_place_on_parameters_and_views(student, name, device):
    fn = student_function(student, name)
    torch.manual_seed(0)
    layer = nn.Conv2d(4, 6, 3).to(device)
    bias, data_ptr = layer.bias.detach().clone(), layer.weight.data_ptr()
    before = layer.weight.detach().clone()
    fn(layer.weight)  # a Parameter that requires grad: the initializer must work under torch.no_grad()
    check_true(layer.weight.data_ptr() == data_ptr and isinstance(layer.weight, nn.Parameter),
               f"{name}(conv.weight) replaced the parameter; fill it in place")
    check_true(not torch.equal(layer.weight.detach(), before), f"{name}(conv.weight) did not change the weight")
    check_true(layer.weight.requires_grad, f"{name}(conv.weight): the weight no longer requires grad")
    check_true(layer.weight.grad is None, f"{name}(conv.weight) left a gradient on the weight: initialize under "
                                          "torch.no_grad()")
    check_true(torch.equal(layer.bias.detach(), bias), f"{name}(conv.weight) changed conv.bias; touch only the "
                                                       "tensor you are given")
    big = torch.full((12, 40), 7.0, device=device)
    fn(big[:, :20])
    check_true(bool((big[:, 20:] == 7.0).all()), f"{name}(big[:, :20]) changed columns outside the view it was "
                                                 "given; fill only that tensor")
    check_true(not bool((big[:, :20] == 7.0).any()), f"{name}(big[:, :20]) did not fill the view in place")


# --- BatchNorm -----------------------------------------------------------------------------------
RANKS = {"2d": (16, 5), "4d": (6, 3, 4, 5)}


def torch_bn(shape, device):
    cls = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
    return cls(shape[1]).to(device)


def make_student_bn(student, num_features, device):
    try:
        bn = student.BatchNorm(num_features)
    except TypeError as exc:
        fail(f"BatchNorm({num_features}) failed: {exc}; the signature is BatchNorm(num_features, eps=1e-5, "
             "momentum=0.1)")
    if not isinstance(bn, nn.Module):
        fail(f"BatchNorm({num_features}) should create an nn.Module, got {describe(bn)}")
    for pname in ("weight", "bias"):
        p = getattr(bn, pname, None)
        if not isinstance(p, nn.Parameter):
            fail(f"BatchNorm({num_features}).{pname} should be an nn.Parameter (gamma is `weight`, beta is `bias`, "
                 f"as in torch.nn.BatchNorm1d), got {describe(p)}. Likely cause: gamma/beta are missing or not "
                 "registered as learnable parameters")
    for bname in ("running_mean", "running_var"):
        b = getattr(bn, bname, None)
        if not isinstance(b, torch.Tensor) or isinstance(b, nn.Parameter) or bname not in dict(bn.named_buffers()):
            fail(f"BatchNorm({num_features}).{bname} should be a buffer (self.register_buffer({bname!r}, ...)), so "
                 f".to(device) moves it and the optimizer does not train it; got {describe(b)}")
    return bn.to(device)


def paired_bn(student, shape, device, seed=0, mistakes=True):
    """The student's BatchNorm, torch's, and the mistaken references, all with the same gamma and beta."""
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    gamma, beta = 1 + 0.5 * torch.randn(c, generator=g), 0.5 * torch.randn(c, generator=g)
    ours, theirs = make_student_bn(student, c, device), torch_bn(shape, device)
    wrong = {cause: ref.BatchNorm(c, mistake=m).to(device) for m, cause in ref.BN_MISTAKES.items()} if mistakes else {}
    with torch.no_grad():
        for m in [ours, theirs, *wrong.values()]:
            if tuple(m.weight.shape) != (c,) or tuple(m.bias.shape) != (c,):
                fail(f"BatchNorm({c}): weight and bias should have shape ({c},), got {tuple(m.weight.shape)} and "
                     f"{tuple(m.bias.shape)}")
            m.weight.copy_(gamma.to(device))
            m.bias.copy_(beta.to(device))
    return ours, theirs, wrong


def batch(shape, device, seed):
    g = torch.Generator().manual_seed(seed)
    scale = 1 + 2 * torch.rand((1, shape[1]) + (1,) * (len(shape) - 2), generator=g)
    return (torch.randn(shape, generator=g) * scale + 3 * torch.randn(scale.shape, generator=g)).to(device)


RANK_PARAMS = [pytest.param(s, id=k) for k, s in RANKS.items()]


@pytest.mark.task("batchnorm_train")
def test_batchnorm_parameters_and_buffers(student, device):
    bn = make_student_bn(student, 4, device)
    for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        t = getattr(bn, name)
        check_true(tuple(t.shape) == (4,), f"BatchNorm(4).{name} should have shape (4,), got {tuple(t.shape)}")
        check_true(bool((t.detach() == value).all()),
                   f"BatchNorm(4).{name} should start at {value:g} (as in torch.nn.BatchNorm1d), got {t.tolist()}")
        check_true(t.device.type == torch.device(device).type,
                   f"BatchNorm(4).to({device!r}) left {name} on {t.device}")
    check_true(len(list(bn.parameters())) == 2,
               f"BatchNorm should have exactly two parameters (weight, bias), found {len(list(bn.parameters()))}")


@pytest.mark.task("batchnorm_train")
@pytest.mark.parametrize("shape", RANK_PARAMS)
def test_batchnorm_training_forward_matches_torch(student, shape, device):
    ours, theirs, wrong = paired_bn(student, shape, device)
    x = batch(shape, device, 1)
    got = ours(x)
    what = (f"BatchNorm({shape[1]}) in training mode on input of shape {shape} on {device} "
            "(gamma and beta set to random values in both): the output")
    mistakes = {cause: m(x).detach() for cause, m in wrong.items()}
    check_tensor(got, theirs(x), what, rtol=1e-4, atol=1e-5, mistakes=mistakes)


@pytest.mark.task("batchnorm_train")
@pytest.mark.parametrize("shape", RANK_PARAMS)
def test_batchnorm_backward_matches_torch(student, shape, device):
    ours, theirs, _ = paired_bn(student, shape, device, mistakes=False)
    upstream = batch(shape, device, 2)
    grads = {}
    for label, m in (("yours", ours), ("torch", theirs)):
        x = batch(shape, device, 1).requires_grad_(True)
        y = m(x)
        if not isinstance(y, torch.Tensor) or not y.requires_grad:
            fail(f"BatchNorm on input of shape {shape}: the output does not depend on the input through autograd "
                 "(compute it with torch operations, no .detach(), .item() or numpy)")
        (y * upstream).sum().backward()
        grads[label] = {"the input": x.grad, "weight (gamma)": m.weight.grad, "bias (beta)": m.bias.grad}
    for key, expected in grads["torch"].items():
        got = grads["yours"][key]
        if got is None:
            fail(f"BatchNorm on input of shape {shape} on {device}: no gradient reached {key}. Likely cause: "
                 f"{ref.BN_MISTAKES['no_affine']}")
        check_tensor(got, expected, f"BatchNorm on input of shape {shape} on {device}, training mode: the gradient "
                                    f"of sum(output * upstream) with respect to {key}", rtol=1e-4, atol=1e-5)


@pytest.mark.task("batchnorm_running")
@pytest.mark.parametrize("shape", RANK_PARAMS)
def test_running_statistics_after_several_steps(student, shape, device):
    ours, theirs, wrong = paired_bn(student, shape, device)
    for step in range(1, 5):
        x = batch(shape, device, 10 + step)
        with torch.no_grad():
            for m in [ours, theirs, *wrong.values()]:
                m(x)
        for name in ("running_mean", "running_var"):
            check_tensor(getattr(ours, name), getattr(theirs, name),
                         f"BatchNorm({shape[1]}) on inputs of shape {shape} on {device}: {name} after training "
                         f"step {step} (momentum 0.1)", rtol=1e-4, atol=1e-5, check_dtype=False,
                         mistakes={cause: getattr(m, name) for cause, m in wrong.items()})


@pytest.mark.task("batchnorm_running")
@pytest.mark.parametrize("shape", RANK_PARAMS)
def test_eval_normalizes_with_running_statistics(student, shape, device):
    ours, theirs, wrong = paired_bn(student, shape, device)
    with torch.no_grad():
        for step in range(3):
            x = batch(shape, device, 20 + step)
            for m in [ours, theirs, *wrong.values()]:
                m(x)
    for m in [ours, theirs, *wrong.values()]:
        m.eval()
    x = batch(shape, device, 30)
    with torch.no_grad():
        mistakes = {cause: m(x) for cause, m in wrong.items()}
        got, expected = ours(x), theirs(x)
    check_tensor(got, expected, f"BatchNorm({shape[1]}) after 3 training steps, then in eval mode on a new input of "
                                f"shape {shape} on {device}: the output", rtol=1e-4, atol=1e-5, mistakes=mistakes)


@pytest.mark.task("batchnorm_running")
@pytest.mark.parametrize("shape", RANK_PARAMS)
def test_eval_does_not_change_running_statistics(student, shape, device):
    ours, _, _ = paired_bn(student, shape, device, mistakes=False)
    with torch.no_grad():
        ours(batch(shape, device, 40))
        ours.eval()
        before = {n: getattr(ours, n).clone() for n in ("running_mean", "running_var")}
        ours(batch(shape, device, 41))
        ours(batch(shape, device, 42))
    for name, value in before.items():
        check_true(torch.equal(getattr(ours, name), value),
                   f"BatchNorm in eval mode on inputs of shape {shape}: {name} changed. Likely cause: "
                   f"{ref.BN_MISTAKES['update_in_eval']}")


# --- Dropout -------------------------------------------------------------------------------------
def make_student_dropout(student, p):
    try:
        d = student.Dropout(p)
    except TypeError as exc:
        fail(f"Dropout({p}) failed: {exc}; the signature is Dropout(p=0.5)")
    if not isinstance(d, nn.Module):
        fail(f"Dropout({p}) should create an nn.Module, got {describe(d)}")
    return d


@pytest.mark.task("dropout")
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_zeroes_a_fraction_p_and_rescales(student, p, device):
    d = make_student_dropout(student, p).train()
    n = 200_000
    x = torch.full((n // 100, 100), 2.0, device=device)
    torch.manual_seed(0)
    y = d(x)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        fail(f"Dropout({p}) on a tensor of shape {tuple(x.shape)}: expected a tensor of that shape, got {describe(y)}")
    check_true(y.device == x.device and y.dtype == x.dtype,
               f"Dropout({p}): the output is {y.dtype} on {y.device}, the input {x.dtype} on {x.device}")
    check_true(bool(torch.equal(x, torch.full_like(x, 2.0))), f"Dropout({p}) changed its input in place")
    zeroed = (y == 0).double().mean().item()
    tol = SIGMAS * math.sqrt(p * (1 - p) / n)
    if abs(zeroed - p) > tol:
        hint = f"\n  Likely cause: {ref.DROPOUT_MISTAKES['keep_probability']}" if abs(zeroed - (1 - p)) <= tol else ""
        fail(f"Dropout({p}) in training mode zeroed {zeroed:.2%} of {n:,} elements; expected {p:.0%} "
             f"(within {tol:.2%}){hint}")
    kept = y[y != 0]
    expected = 2.0 / (1 - p)
    if not bool(torch.isclose(kept, torch.full_like(kept, expected), rtol=1e-5).all()):
        values = kept.unique()[:3].tolist()
        hint = f"\n  Likely cause: {ref.DROPOUT_MISTAKES['not_rescaled']}" if values == [2.0] else ""
        fail(f"Dropout({p}) on an input of 2.0 everywhere: every kept element should be 2.0 / (1 - p) = "
             f"{expected:.5g}; found {values}{hint}")


@pytest.mark.task("dropout")
def test_dropout_is_the_identity_in_eval(student, device):
    d = make_student_dropout(student, 0.5)
    d.eval()
    x = torch.randn(50, 40, device=device)
    torch.manual_seed(0)
    y = d(x)
    check_true(isinstance(y, torch.Tensor) and torch.equal(y, x),
               "Dropout(0.5) after .eval() changed its input. Likely cause: "
               f"{ref.DROPOUT_MISTAKES['active_in_eval']}")
    d.train()
    y = d(x)
    check_true(isinstance(y, torch.Tensor) and not torch.equal(y, x),
               "Dropout(0.5) after .train() returned its input unchanged; in training it zeroes elements")


@pytest.mark.task("dropout")
def test_dropout_gradient_uses_the_same_mask(student, device):
    p = 0.3
    d = make_student_dropout(student, p).train()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 30, generator=g) + 0.5).to(device).requires_grad_(True)
    upstream = torch.randn(64, 30, generator=g).to(device)
    torch.manual_seed(1)
    y = d(x)
    if not isinstance(y, torch.Tensor) or not y.requires_grad:
        fail("Dropout: the output does not depend on the input through autograd (no .detach(), numpy or .item())")
    (y * upstream).sum().backward()
    mask = (y.detach() != 0).to(x.dtype)
    check_tensor(x.grad, upstream * mask / (1 - p),
                 f"Dropout({p}): the gradient of sum(output * upstream) with respect to the input should be "
                 "upstream * mask / (1 - p), with the mask of the forward pass", rtol=1e-5, atol=1e-6)


@pytest.mark.task("dropout")
def test_dropout_is_reproducible_under_a_seed(student, device):
    d = make_student_dropout(student, 0.5).train()
    x = torch.randn(40, 50, device=device)
    torch.manual_seed(5)
    a = d(x)
    torch.manual_seed(5)
    b = d(x)
    check_true(torch.equal(a, b), "Dropout: the same torch.manual_seed gave different masks; draw the mask with "
                                  "torch's random functions (torch.rand_like, torch.bernoulli), not Python's or "
                                  "numpy's random module")
    torch.manual_seed(6)
    check_true(not torch.equal(d(x), a), "Dropout: two different seeds gave the same mask; draw a new random mask at "
                                         "every call")


@pytest.mark.task("dropout")
def test_dropout_edge_cases(student, device):
    x = (torch.rand(30, 20, device=device) + 0.5).requires_grad_(True)
    d0 = make_student_dropout(student, 0.0).train()
    y0 = d0(x)
    check_true(isinstance(y0, torch.Tensor) and torch.equal(y0.detach(), x.detach()),
               "Dropout(0.0) in training mode should return the input unchanged (nothing is dropped)")
    d1 = make_student_dropout(student, 1.0).train()
    y1 = d1(x)
    if not isinstance(y1, torch.Tensor) or tuple(y1.shape) != tuple(x.shape):
        fail(f"Dropout(1.0) should return a tensor of the input's shape, got {describe(y1)}")
    check_true(bool(torch.isfinite(y1).all()) and bool((y1 == 0).all()),
               "Dropout(1.0) in training mode should return zeros (every element dropped) with no NaN or inf; "
               "1 / (1 - p) divides by zero at p = 1, so handle p = 1 on its own")
    if y1.requires_grad:
        y1.sum().backward()
        check_true(x.grad is None or bool(torch.isfinite(x.grad).all()),
                   "Dropout(1.0): the gradient contains NaN or inf; handle p = 1 on its own")


# --- the experiment ------------------------------------------------------------------------------
EXPERIMENT = ref.EXPERIMENT


def student_mlp(student, *args, **kwargs):
    make_mlp = student_function(student, "make_mlp")
    model = make_mlp(*args, **kwargs)
    if not isinstance(model, nn.Module):
        fail(f"make_mlp{args} should return an nn.Module, got {describe(model)}")
    return model


@pytest.mark.task("bn_experiment")
def test_make_mlp_structure(student):
    torch.manual_seed(0)
    model = student_mlp(student, 3, 32, batchnorm=True)
    modules = [m for m in model.modules() if not list(m.children())]
    kinds = ["linear" if isinstance(m, nn.Linear) else "bn" if isinstance(m, student.BatchNorm)
             else "relu" if isinstance(m, nn.ReLU) else "dropout" if isinstance(m, student.Dropout)
             else "flatten" if isinstance(m, nn.Flatten) else type(m).__name__ for m in modules]
    layers = [k for k in kinds if k != "flatten"]
    check_true(layers == ["linear", "bn", "relu"] * 3 + ["linear"],
               f"make_mlp(3, 32, batchnorm=True): expected Linear, BatchNorm (yours), ReLU three times, then the "
               f"output Linear (batch norm after each hidden Linear, before its activation); got {layers}")
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    check_true(sizes == [(784, 32), (32, 32), (32, 32), (32, 10)],
               f"make_mlp(3, 32, ...) on 28x28 images with 10 classes: expected Linear sizes "
               f"[(784, 32), (32, 32), (32, 32), (32, 10)], got {sizes}")
    first = linears[0].weight.detach()
    # Compared with what the student's own kaiming_normal_ gives, so a mistake there costs points only in its task.
    std = student.kaiming_normal_(torch.empty(32, 784)).std().item()
    check_true(abs(first.std().item() / std - 1) < 0.1,
               f"make_mlp: the first Linear's weights have std {first.std().item():.4g}; initialized with your "
               f"kaiming_normal_ they would have about {std:.4g}")
    check_true(all(bool((m.bias == 0).all()) for m in linears), "make_mlp: start every Linear's bias at zero")
    plain = [m for m in student_mlp(student, 3, 32, batchnorm=False).modules() if not list(m.children())]
    check_true(not any(isinstance(m, student.BatchNorm) for m in plain),
               "make_mlp(3, 32, batchnorm=False) contains BatchNorm layers")
    dropped = [m for m in student_mlp(student, 3, 32, batchnorm=False, dropout=0.3).modules()
               if isinstance(m, student.Dropout)]
    check_true(len(dropped) == 3 and all(getattr(m, "p", None) == 0.3 for m in dropped),
               f"make_mlp(3, 32, batchnorm=False, dropout=0.3) should put one of your Dropout(0.3) after each "
               f"hidden ReLU; found {len(dropped)}")


@pytest.mark.task("bn_experiment")
def test_batchnorm_network_trains_at_a_high_learning_rate(student):
    import course

    e = EXPERIMENT
    train = course.load_mnist(train=True, root=OFFLINE_ROOT, download=False)
    test = course.load_mnist(train=False, root=OFFLINE_ROOT, download=False)
    x, y = course.to_tensors(train, device="cpu")
    xt, yt = course.to_tensors(test, device="cpu")
    torch.manual_seed(0)
    model = student_mlp(student, e["depth"], e["width"], batchnorm=True)
    # The experiment is about batch normalization: the Linear layers start from torch's He initialization, so a
    # mistake in the initializers is charged once, in their own tasks (with swapped fans the head's weights are
    # 2.2 times too large and whether 2 epochs at lr 0.2 reach the target became a matter of rounding).
    torch.manual_seed(0)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    opt = torch.optim.SGD(model.parameters(), lr=e["lr"])
    loader = course.TensorLoader(x, y, batch_size=e["batch_size"], shuffle=True, seed=0)
    model.train()
    for _ in range(e["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        out = model(xt)
    if not bool(torch.isfinite(out).all()):
        fail(f"make_mlp({e['depth']}, {e['width']}, batchnorm=True) trained with SGD at lr {e['lr']} diverged "
             "(NaN or inf outputs): with batch normalization after every hidden Linear it should not")
    acc = (out.argmax(1) == yt).double().mean().item()
    check_true(acc >= e["target"],
               f"make_mlp({e['depth']}, {e['width']}, batchnorm=True) after {e['epochs']} epochs of SGD at lr "
               f"{e['lr']} (batch {e['batch_size']}, {len(y):,} digits) reaches {acc:.1%} test accuracy in eval "
               f"mode; at least {e['target']:.0%} is needed")


# --- predictions ---------------------------------------------------------------------------------
PREDICTIONS = {  # variable: (answer, choices or None for a number, what it asks)
    "predict_tanh_small_init": ("d", "abcd", "a 20-layer tanh MLP with N(0, 0.01^2) weights"),
    "predict_relu_xavier": ("c", "abc", "a 20-layer ReLU MLP with Xavier weights"),
    "predict_relu_he": ("a", "abc", "a 20-layer ReLU MLP with He weights"),
    "predict_dropout_value": (2.0 / 0.75, None, "Dropout(p=0.25) on an input of 2.0"),
}


def _prediction(student, name):
    answer, choices, about = PREDICTIONS[name]
    check_prediction(getattr(student, name), answer, f"{name} ({about})", choices=choices, atol=1e-3, mistakes={
        "that is the input scaled by (1 - p), the slide's test-time rule; PyTorch's inverted dropout divides "
        "the kept elements by (1 - p) while training": 2.0 * 0.75,
        "the kept elements are rescaled by 1 / (1 - p), not left as they are": 2.0,
        "p is the probability of dropping: divide by 1 - p, not by p": 2.0 / 0.25,
    }, wrong_choice="run the experiment of the next section and see which it is")


@pytest.mark.task("predictions")
def test_predict_tanh_small_init(student):
    _prediction(student, "predict_tanh_small_init")


@pytest.mark.task("predictions")
def test_predict_relu_xavier(student):
    _prediction(student, "predict_relu_xavier")


@pytest.mark.task("predictions")
def test_predict_relu_he(student):
    _prediction(student, "predict_relu_he")


@pytest.mark.task("predictions")
def test_predict_dropout_value(student):
    _prediction(student, "predict_dropout_value")
