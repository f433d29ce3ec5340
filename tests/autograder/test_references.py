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


# --- assignment 03_init_bn_dropout -------------------------------------------------------------
from autograder.references import init_bn_dropout as unit3  # noqa: E402

FAN_SHAPES = [(5, 7), (6, 3, 5), (16, 8, 3, 3), (4, 2, 3, 1, 2)]


@pytest.mark.parametrize("shape", FAN_SHAPES, ids=str)
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    assert unit3.compute_fans(t) == torch.nn.init._calculate_fan_in_and_fan_out(t)


@pytest.mark.parametrize("name, torch_init", [
    ("xavier_normal_", lambda t: torch.nn.init.xavier_normal_(t)),
    ("xavier_uniform_", lambda t: torch.nn.init.xavier_uniform_(t)),
    ("kaiming_normal_", lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu")),
])
@pytest.mark.parametrize("shape", [(300, 500), (64, 32, 3, 3)], ids=str)
def test_initializers_have_torch_statistics(name, torch_init, shape):
    torch.manual_seed(0)
    ours, theirs = getattr(unit3, name)(torch.empty(shape)), torch_init(torch.empty(shape))
    fan_in, fan_out = unit3.compute_fans(ours)
    std = unit3.expected_std(name, fan_in, fan_out)
    n = ours.numel()
    for w in (ours, theirs):
        assert abs(w.mean().item()) < 5 * std / n**0.5
        assert abs(w.var().item() / std**2 - 1) < 5 * (2 / n) ** 0.5
    if name == "xavier_uniform_":
        a = 3**0.5 * std
        assert ours.abs().max() <= a and theirs.abs().max() <= a and ours.abs().max() > 0.999 * a


def test_xavier_gain_multiplies_the_std_like_torch():
    torch.manual_seed(0)
    gain = torch.nn.init.calculate_gain("tanh")
    ours = unit3.xavier_uniform_(torch.empty(400, 200), gain=gain)
    theirs = torch.nn.init.xavier_uniform_(torch.empty(400, 200), gain=gain)
    assert abs(ours.std().item() / theirs.std().item() - 1) < 0.02


def _bn_pair(shape, momentum=0.1):
    torch.manual_seed(1)
    c = shape[1]
    ours = unit3.BatchNorm(c, momentum=momentum).double()
    theirs = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(c, momentum=momentum).double()
    with torch.no_grad():
        for m in (ours, theirs):
            m.weight.copy_(torch.linspace(0.5, 2.0, c))
            m.bias.copy_(torch.linspace(-1.0, 1.0, c))
    return ours, theirs


@pytest.mark.parametrize("shape", [(7, 3), (2, 4, 3, 5), (64, 16)], ids=str)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), momentum=st.sampled_from([0.1, 0.3, 1.0]))
def test_batchnorm_reference_matches_torch(shape, seed, momentum):
    ours, theirs = _bn_pair(shape, momentum)
    g = torch.Generator().manual_seed(seed)
    for _ in range(4):  # training: outputs, gradients and running statistics after every step
        x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 2)
        upstream = torch.randn(shape, generator=g, dtype=torch.float64)
        outs = []
        for m in (ours, theirs):
            xi = x.clone().requires_grad_(True)
            y = m(xi)
            (y * upstream).sum().backward()
            outs.append((y.detach(), xi.grad, m.weight.grad.clone(), m.bias.grad.clone()))
            m.zero_grad()
        for a, b in zip(*outs):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    before = ours.running_mean.clone(), ours.running_var.clone()
    torch.testing.assert_close(ours(x), theirs(x))
    assert torch.equal(ours.running_mean, before[0]) and torch.equal(ours.running_var, before[1])


@pytest.mark.parametrize("mistake", sorted(unit3.BN_MISTAKES))
def test_every_batchnorm_mistake_differs_from_torch_on_the_checks_inputs(mistake):
    """Each mistaken reference gives a different result from torch where the hidden checks look."""
    differs = False
    for shape in [(16, 5), (6, 3, 4, 5)]:
        ours, theirs = _bn_pair(shape)
        wrong = unit3.BatchNorm(shape[1], mistake=mistake).double()
        wrong.load_state_dict(ours.state_dict())
        g = torch.Generator().manual_seed(0)
        for step in range(3):
            x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 1
            with torch.no_grad():
                differs |= not torch.allclose(wrong(x), theirs(x))
        wrong.eval(), theirs.eval()
        with torch.no_grad():
            differs |= not torch.allclose(wrong(x), theirs(x))
        differs |= not torch.allclose(wrong.running_mean, theirs.running_mean)
        differs |= not torch.allclose(wrong.running_var, theirs.running_var)
    assert differs


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_dropout_reference_has_torch_semantics(p):
    x = torch.full((400, 500), 3.0)
    torch.manual_seed(0)
    ours, theirs = unit3.Dropout(p)(x), torch.nn.Dropout(p)(x)
    for y in (ours, theirs):
        assert abs((y == 0).double().mean().item() - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-12
        kept = y[y != 0]
        if p < 1:
            torch.testing.assert_close(kept, torch.full_like(kept, 3.0 / (1 - p)))
        assert torch.isfinite(y).all()
    assert torch.equal(unit3.Dropout(p).eval()(x), x) and torch.equal(torch.nn.Dropout(p).eval()(x), x)


def test_dropout_reference_gradient_uses_the_forward_mask():
    x = (torch.rand(50, 40) + 0.5).requires_grad_(True)
    torch.manual_seed(3)
    y = unit3.Dropout(0.4)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y.detach() != 0).double().float() / 0.6)


def test_experiment_target_is_met_with_batchnorm_and_missed_without():
    """The hidden checks' experiment: the reference network with BatchNorm reaches the target, without it not."""
    import course
    e, OFFLINE_ROOT = unit3.EXPERIMENT, unit3.OFFLINE_ROOT

    x, y = course.to_tensors(course.load_mnist(train=True, root=OFFLINE_ROOT, download=False))
    xt, yt = course.to_tensors(course.load_mnist(train=False, root=OFFLINE_ROOT, download=False))
    accuracy, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # as the hidden checks run it (and far faster on a busy machine)
    for bn in (True, False):
        torch.manual_seed(0)
        model = unit3.make_mlp(e["depth"], e["width"], bn)
        opt = torch.optim.SGD(model.parameters(), lr=e["lr"])
        for _ in range(e["epochs"]):
            for xb, yb in course.TensorLoader(x, y, batch_size=e["batch_size"], seed=0):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xt)
        accuracy[bn] = (out.argmax(1) == yt).double().mean().item() if torch.isfinite(out).all() else 0.0
    torch.set_num_threads(threads)
    assert accuracy[True] >= e["target"] + 0.03 and accuracy[False] < e["target"] - 0.2, accuracy


# --- assignment 05_second_order ----------------------------------------------------------------
import math  # noqa: E402
from pathlib import Path  # noqa: E402

from torch.autograd.functional import hessian, jacobian  # noqa: E402

from autograder.references import second_order as unit5  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6))
@settings(max_examples=25, deadline=None)
def test_newton_direction_solves_and_one_step_minimizes_a_quadratic(seed, n):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = m @ m.T + n * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    grad = torch.randn(n, generator=g, dtype=torch.float64)
    torch.testing.assert_close(A @ unit5.newton_direction(grad, A), -grad)
    x1 = unit5.newton_step(lambda x: 0.5 * x @ A @ x - b @ x, torch.randn(n, generator=g, dtype=torch.float64))
    torch.testing.assert_close(x1, torch.linalg.solve(A, b))


def test_gauss_newton_is_lstsq_on_a_linear_problem_and_lm_interpolates():
    g = torch.Generator().manual_seed(0)
    A, y = torch.randn(25, 3, generator=g, dtype=torch.float64), torch.randn(25, generator=g, dtype=torch.float64)
    residual = lambda x: A @ x - y  # noqa: E731
    x0 = torch.zeros(3, dtype=torch.float64)
    torch.testing.assert_close(unit5.gauss_newton_step(residual, x0), torch.linalg.lstsq(A, y.unsqueeze(1)).solution.squeeze(1))
    J, r = jacobian(residual, x0), residual(x0)
    gn = unit5.lm_direction(J, r, 0.0)
    torch.testing.assert_close(unit5.lm_direction(J, r, 1e-12), gn)  # no damping: Gauss-Newton
    big = 1e8  # large damping: the scaled gradient step -(1/lam) diag(J^T J)^-1 J^T r
    torch.testing.assert_close(unit5.lm_direction(J, r, big) * big, -(J.T @ r) / torch.diagonal(J.T @ J), rtol=1e-6,
                               atol=1e-9)
    torch.testing.assert_close(unit5.lm_direction(J, r, big, mistake="levenberg") * big, -(J.T @ r), rtol=1e-6, atol=1e-9)


def test_lm_accepts_and_rejects_as_specified_and_fits_the_exponential():
    t = torch.linspace(0, 4, 30, dtype=torch.float64)
    y = 2.0 * torch.exp(-1.3 * t)
    residual = lambda p: p[0] * torch.exp(-p[1] * t) - y  # noqa: E731
    p, lam = torch.tensor([1.0, 0.1], dtype=torch.float64), 1.0
    lams = []
    for _ in range(40):
        new_p, new_lam = unit5.levenberg_marquardt_step(residual, p, lam)
        if new_lam < lam:
            assert unit5.cost(residual, new_p) < unit5.cost(residual, p) and new_lam == lam / 10
        else:
            assert torch.equal(new_p, p) and new_lam == lam * 10
        p, lam = new_p, new_lam
        lams.append(lam)
    torch.testing.assert_close(p, torch.tensor([2.0, 1.3], dtype=torch.float64))


def test_backtracking_is_nocedal_wright_algorithm_3_1():
    f = lambda x: (x**2).sum()  # noqa: E731
    x = torch.tensor([1.0], dtype=torch.float64)
    assert unit5.backtracking(f, x, 2 * x, -2 * x) == 0.5  # alpha = 1 reaches -1: no decrease
    # the returned alpha satisfies Armijo and alpha / rho does not (it is the first of the sequence)
    rosen = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2  # noqa: E731
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(rosen(x0), x0)
    x0 = x0.detach()
    alpha = unit5.backtracking(rosen, x0, g, -g)
    assert unit5.armijo_holds(rosen, x0, g, -g, alpha) and not unit5.armijo_holds(rosen, x0, g, -g, alpha / 0.5)
    with pytest.raises(ValueError):
        unit5.backtracking(f, x, 2 * x, 2 * x)
    with pytest.raises(RuntimeError):
        unit5.backtracking(lambda z: torch.tensor(math.nan) if not torch.equal(z, x) else f(z), x, 2 * x, -2 * x)


def test_monitor_matches_a_hand_computation_and_torch_cosine():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    steps = [torch.randn(9, dtype=torch.float64) for _ in range(3)] + [torch.zeros(9, dtype=torch.float64)]
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).double()
    monitor = unit5.StepMonitor()
    monitor(0, model, None, None)
    for epoch, s in enumerate(steps, start=1):
        theta = theta + s
        torch.nn.utils.vector_to_parameters(theta.float(), model.parameters())
        monitor(epoch, model, None, None)
    # parameters are float32: the recorded step is the float32 difference
    assert monitor.step_norms[:3] == pytest.approx([float(s.norm()) for s in steps[:3]], rel=1e-5)
    assert monitor.step_norms[3] == 0.0
    assert math.isnan(monitor.step_angles[0]) and math.isnan(monitor.step_angles[3])
    for k in (1, 2):
        cos = torch.nn.functional.cosine_similarity(steps[k - 1], steps[k], dim=0)
        assert monitor.step_angles[k] == pytest.approx(math.degrees(math.acos(float(cos))), abs=1e-3)


def test_instrument_mistakes_differ_from_the_reference_on_the_checks_trajectory():
    from autograder.checks import test_second_order as checks

    model = checks.ThreeTensors()
    monitors = {m: unit5.StepMonitor(mistake=m) for m in [None, *unit5.INSTRUMENT_MISTAKES]}
    for epoch, theta in enumerate(checks.recorded_trajectory()):
        checks.load(model, theta, "cpu")
        for mon in monitors.values():
            mon(epoch, model, None, None)
    right = monitors.pop(None)
    assert math.isnan(right.step_angles[0]) and right.step_norms[3] == 0.0
    assert math.isnan(right.step_angles[3]) and math.isnan(right.step_angles[4])
    for name, mon in monitors.items():
        values = mon.step_norms if name in ("norm_sum", "squared") else mon.step_angles
        expected = right.step_norms if name in ("norm_sum", "squared") else right.step_angles
        assert any(not math.isnan(a) and abs(a - b) > 1e-2 for a, b in zip(values, expected)), name


def test_scheduler_rule_and_that_the_checks_run_changes_the_rate():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = unit5.AdaptiveLR(opt, None, grow=2.0, shrink=0.25, max_angle=60.0, jump=0.1)
    expected = []
    for loss, angle, factor in [(1.0, 10.0, 2.0), (1.05, 10.0, 2.0), (1.2, 10.0, 0.25), (1.1, math.nan, 1.0),
                                (1.0, 60.0, 1.0), (0.9, 59.9, 2.0)]:
        sched.step(loss, angle)
        expected.append(factor)
        assert sched.get_last_lr() == [math.prod(expected)]
    from autograder.checks import test_second_order as checks
    import course

    torch.manual_seed(0)
    model = checks.ThreeTensors()
    with torch.no_grad():
        model.scale.copy_(torch.eye(2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = unit5.StepMonitor()
    sched = unit5.AdaptiveLR(opt, monitor, grow=1.5, shrink=0.5, max_angle=80.0, jump=0.01)
    seen = []
    course.fit(model, checks._tiny_data("cpu"), opt, 6, progress=False,
               callbacks=[monitor, sched, lambda e, m, o, h: seen.append(o.param_groups[0]["lr"])])
    assert len(set(seen)) > 2, seen  # the scheduler check's run both grows and keeps (or shrinks) the rate


def test_experiment_window_needs_the_hessian():
    e = unit5.EXPERIMENT
    X, y = unit5.regression_problem()
    eig = torch.linalg.eigvalsh(hessian(lambda w: unit5.regression_loss(w, X, y), torch.zeros(X.shape[1],
                                                                                             dtype=torch.float64)))
    lo, hi = float(eig.min()), float(eig.max())
    assert unit5.gd_error_ratio(2 / (lo + hi)) < e["target"] / 2  # the solution's choice, with a margin
    assert unit5.gd_error_ratio(1 / hi) > 2 * e["target"]  # the "safe" 1 / L misses
    assert unit5.gd_error_ratio(2 / hi) > 10 * e["target"]  # 2 / L does not converge along the steepest direction


def test_the_notebooks_data_is_the_references():
    """The solution's locked experiment cell builds exactly the data the hidden check re-runs on."""
    import nbformat

    nb = nbformat.read(str(REPO / "solutions" / "05_second_order" / "second_order.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "experiment_data")
    namespace = {"torch": torch, "math": math}
    exec(cell.source, namespace)
    X, y = unit5.regression_problem()
    assert torch.equal(namespace["X"], X) and torch.equal(namespace["y"], y)
    w = torch.randn(5, dtype=torch.float64)
    assert torch.equal(namespace["regression_loss"](w), unit5.regression_loss(w, X, y))
