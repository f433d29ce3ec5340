import pytest
import torch

from course import RuleOptimizer


def plain_sgd(param, grad, state, *, lr):
    param.sub_(lr * grad)


def counting(param, grad, state, *, lr, beta=0.0):
    state["calls"] = state.get("calls", 0) + 1
    state["beta"] = beta
    param.sub_(lr * grad)


def model_and_loss(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    return model, lambda: torch.nn.functional.mse_loss(model(x), y)


def test_a_rule_trains_exactly_like_the_matching_torch_optimizer():
    ours, loss_ours = model_and_loss()
    theirs, loss_theirs = model_and_loss()
    opt_ours, opt_theirs = RuleOptimizer(ours.parameters(), plain_sgd, lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(5):
        for opt, loss in ((opt_ours, loss_ours), (opt_theirs, loss_theirs)):
            opt.zero_grad()
            loss().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b)


def test_state_is_per_parameter_and_hyperparameters_reach_the_rule():
    model, loss = model_and_loss()
    opt = RuleOptimizer(model.parameters(), counting, lr=0.01, beta=0.5)
    for _ in range(3):
        opt.zero_grad()
        loss().backward()
        opt.step()
    states = [opt.state[p] for p in model.parameters()]
    assert len(states) == 4 and all(s == {"calls": 3, "beta": 0.5} for s in states)


def test_schedulers_change_the_learning_rate_the_rule_sees():
    seen = []

    def record(param, grad, state, *, lr):
        seen.append(lr)

    p = torch.nn.Parameter(torch.ones(2))
    opt = RuleOptimizer([p], record, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
    assert seen == [1.0, 0.5, 0.25]


def test_rules_run_without_autograd_and_skip_parameters_without_gradients():
    modes = []

    def probe(param, grad, state, *, lr):
        modes.append(torch.is_grad_enabled())

    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    a.grad = torch.ones(1)
    RuleOptimizer([a, b], probe, lr=0.1).step()
    assert modes == [False]


def test_closure_and_state_dict_round_trip():
    model, loss = model_and_loss()
    opt = RuleOptimizer(model.parameters(), counting, lr=0.01)

    def closure():
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    assert opt.step(closure) is not None
    fresh = RuleOptimizer(model.parameters(), counting, lr=0.01)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.state[next(model.parameters())]["calls"] == 1


def test_bad_arguments_are_explained():
    p = [torch.nn.Parameter(torch.ones(1))]
    with pytest.raises(TypeError, match="needs a learning rate"):
        RuleOptimizer(p, plain_sgd)
    with pytest.raises(TypeError, match="rule must be a function"):
        RuleOptimizer(p, "sgd", lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate"):
        RuleOptimizer(p, plain_sgd, lr=-1)
