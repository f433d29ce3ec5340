"""The reference implementations agree with PyTorch wherever their conventions coincide."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.references import optimizers as ref
from autograder.references import pytorch_basics as basics
from course import RuleOptimizer

PAIRS = {
    "sgd": (ref.sgd, {"lr": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05)),
    "momentum": (ref.momentum, {"lr": 0.05, "mu": 0.8}, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8)),
    "nesterov": (ref.nesterov, {"lr": 0.05, "mu": 0.8},
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    "adagrad": (ref.adagrad, {"lr": 0.1, "eps": 0.1}, lambda p: torch.optim.Adagrad(p, lr=0.1, eps=0.1)),
    "rmsprop": (ref.rmsprop, {"lr": 0.01, "rho": 0.9, "eps": 0.1},
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.1)),
    "adam": (ref.adam, {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 0.1},
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), eps=0.1)),
    "adamw": (ref.adamw, {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.5},
              lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.9), eps=0.1, weight_decay=0.5)),
    "amsgrad": (ref.amsgrad, {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 0.1},
                lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), eps=0.1, amsgrad=True)),
}


@pytest.mark.parametrize("name", PAIRS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 25), shape=st.sampled_from([(3,), (2, 4), (2, 1, 3)]))
def test_reference_rule_matches_torch_optim(name, seed, steps, shape):
    rule, hyper, make_torch = PAIRS[name]
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(shape, generator=g, dtype=torch.float64)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_ours, opt_theirs = RuleOptimizer([ours], rule, **hyper), make_torch([theirs])
    for _ in range(steps):
        grad = torch.randn(shape, generator=g, dtype=torch.float64) * 3  # gradients change every step
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(tau=st.integers(1, 50), lr0=st.floats(1e-4, 1.0), fraction=st.floats(0.0, 0.5))
def test_linear_decay_matches_linear_lr(tau, lr0, fraction):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr0)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=fraction, total_iters=tau)
    for k in range(tau + 5):
        assert ref.linear_decay(k, lr0, tau, fraction) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()


def test_log_uniform_is_uniform_in_log_space():
    x = ref.log_uniform(20000, 1e-4, 1e-1, torch.Generator().manual_seed(0))
    logs = x.log10()
    assert logs.min() >= -4 and logs.max() <= -1
    assert abs(logs.mean().item() + 2.5) < 0.02
    counts = torch.histc(logs, bins=3, min=-4, max=-1)
    assert (counts - 20000 / 3).abs().max() < 300


def test_firstnet_reference_matches_a_sequential_network():
    torch.manual_seed(0)
    net = basics.FirstNet()
    seq = torch.nn.Sequential(torch.nn.Flatten(), net.fc0, torch.nn.ReLU(), net.fc1, torch.nn.ReLU(), net.fc2,
                              torch.nn.LogSoftmax(dim=1))
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(net(x), seq(x))


def test_mean_std_reference_matches_torch_over_uneven_batches():
    x = torch.rand(37, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    loader = [(x[i:i + 8], None) for i in range(0, 37, 8)]
    mean, std = basics.mean_std(loader)
    assert mean == pytest.approx(x.double().mean().item(), rel=1e-12)
    assert std == pytest.approx(x.double().std(correction=0).item(), rel=1e-10)
