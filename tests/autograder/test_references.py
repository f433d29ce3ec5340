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


# --- assignment 04_augmentation_transfer ----------------------------------------------------------
from autograder.references import augmentation_transfer as unit4  # noqa: E402


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (4, 2, 12, 20), (2, 3, 17, 9)], ids=str)
@settings(max_examples=10, deadline=None)
@given(angle=st.floats(-180, 180, allow_nan=False))
def test_rotate_reference_matches_torchvision(shape, angle):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    expected = TF.rotate(x, angle, interpolation=InterpolationMode.BILINEAR)
    torch.testing.assert_close(unit4.rotate(x, angle), expected, atol=2e-4, rtol=0)


@pytest.mark.parametrize("dy, dx", [(0, 0), (2, -1), (-3, 3), (5, 0), (30, 0)])
def test_shift_matches_torchvision_affine_translate(dy, dx):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(2, 1, 10, 12, generator=torch.Generator().manual_seed(1))
    expected = TF.affine(x, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0],
                         interpolation=InterpolationMode.NEAREST)
    torch.testing.assert_close(unit4.shift(x, dy, dx), expected)


def test_reference_augmentations_draw_per_sample_and_keep_the_contract():
    # 64 copies of one image: per-sample draws give different outputs, one draw for the batch identical ones.
    x = (torch.rand(1, 2, 12, 12, dtype=torch.float64) + 0.1).repeat(64, 1, 1, 1)
    for name, fn, args in [("translate", unit4.translate, (2,)), ("hflip", unit4.hflip, (0.5,)),
                           ("random_rotate", unit4.random_rotate, (20.0,)),
                           ("gaussian_noise", unit4.gaussian_noise, (0.3,)), ("cutout", unit4.cutout, (4,))]:
        a = fn(x, *args, generator=torch.Generator().manual_seed(0))
        b = fn(x, *args, generator=torch.Generator().manual_seed(0))
        c = fn(x, *args, generator=torch.Generator().manual_seed(1))
        assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b) and not torch.equal(a, c), name
        assert len({tuple(s.flatten().tolist()) for s in a}) >= 2, name  # not one draw for the whole batch
        wrong = fn(x, *args, generator=torch.Generator().manual_seed(0), mistake="same_draw")
        assert len({tuple(s.flatten().tolist()) for s in wrong}) == 1, name


def test_reference_cutout_zeroes_a_square_and_noise_has_its_std():
    x = torch.rand(200, 3, 10, 11) + 0.1
    out = unit4.cutout(x, 4, torch.Generator().manual_seed(0))
    zero = (out == 0).all(1)
    assert bool((zero.sum((1, 2)) == 16).all()) and torch.equal((out == 0).any(1), zero)
    noise = unit4.gaussian_noise(torch.zeros(100, 1, 50, 50), 0.3, torch.Generator().manual_seed(0))
    assert abs(noise.std().item() - 0.3) < 5 * 0.3 / (2 * noise.numel()) ** 0.5


def test_reference_freezing_and_frozen_batchnorm_follow_torch_semantics():
    torch.manual_seed(0)
    model = unit4.freeze_all_but_last(unit4.SmallCNN(), 2)
    assert [p.requires_grad for p in model.parameters()] == [False] * 8 + [True] * 4
    unit4.replace_head(model, 5)
    assert model.fc2.out_features == 5 and model.fc2.weight.requires_grad
    opt = unit4.make_optimizer(model, 0.01)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.parameters()
                                                                       if p.requires_grad}
    unit4.train_mode(model)
    assert model.training and not model.bn1.training and not model.bn2.training and model.fc1.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(40, 1, 28, 28), torch.randint(0, 5, (40,))
    unit4.fine_tune(model, x, y, 1, 0.01, 20, torch.Generator().manual_seed(0))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith(("fc1", "fc2")))
    assert not torch.equal(before["fc2.weight"], after["fc2.weight"])
    drifting = unit4.freeze_all_but_last(unit4.SmallCNN(), 2)
    unit4.fine_tune(drifting, x, y % 5, 1, 0.01, 20, torch.Generator().manual_seed(0), mistake="bn_drift")
    assert not torch.equal(drifting.bn1.running_mean, torch.zeros(16))


@pytest.mark.slow
def test_augmentation_experiment_target_separates_augmented_from_plain():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain, augmented = unit4.run_experiment(None), unit4.run_experiment(unit4.augment_batch)
    finally:
        torch.set_num_threads(threads)
    target = unit4.EXPERIMENT["target"]
    assert augmented >= target + 0.02 and plain < target - 0.015, (plain, augmented)
# --- assignment 2's predictions and experiment (issue 12) ------------------------------------------
def test_stable_lr_prediction_is_the_edge_of_divergence():
    """2 (1 + mu) / h, checked by running course-form momentum just below and just above it."""
    edge = ref.PREDICTIONS["predict_max_stable_lr"][0]
    h, mu = ref.STABLE["curvature"], ref.STABLE["mu"]
    assert edge == pytest.approx(0.95)
    assert not ref.momentum_diverges(0.99 * edge, h, mu) and ref.momentum_diverges(1.01 * edge, h, mu)


def test_adam_predictions_agree_with_the_reference_rule_and_torch():
    a = ref.ADAM_FIRST
    p = torch.tensor([a["theta0"]], dtype=torch.float64)
    ref.adam(p, torch.tensor([a["grad"]], dtype=torch.float64), {}, lr=a["lr"], beta1=a["beta1"],
             beta2=a["beta2"], eps=0.0)
    assert ref.adam_first_step(**a, correct_m=True, correct_v=True) == pytest.approx(p.item())
    answer, mistakes, _ = ref.PREDICTIONS["predict_adam_uncorrected"]
    assert answer == pytest.approx(1.02) and all(abs(v - answer) > 5e-3 for v in mistakes.values())


def test_step_after_drop_differs_between_the_course_and_torch_forms():
    d = ref.DROP
    p, opt_p = torch.zeros(1, dtype=torch.float64, requires_grad=True), None
    opt = torch.optim.SGD([p], lr=d["lrs"][0], momentum=d["mu"])
    for lr in d["lrs"]:
        before = p.detach().clone()
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.full_like(p, d["grad"])
        opt.step()
    torch_step = (p.detach() - before).item()
    answer, mistakes, _ = ref.PREDICTIONS["predict_step_after_drop"]
    assert answer == pytest.approx(-0.181)
    assert next(v for k, v in mistakes.items() if "PyTorch" in k) == pytest.approx(torch_step)


def test_split_reference_is_disjoint_and_covers_the_data():
    x, y = torch.arange(20.0), torch.arange(20)
    xt, yt, xv, yv = ref.split_train_val(x, y, 6, torch.Generator().manual_seed(0))
    assert len(yv) == 6 and sorted(yt.tolist() + yv.tolist()) == list(range(20))
    assert torch.equal(xv, yv.float()) and yv.tolist() != list(range(6))


def test_tuning_target_separates_good_rates_from_bad_ones():
    """The target (88%) is reached in a wide window of Adam rates and missed an order of magnitude outside it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        acc = {lr: ref.validation_accuracy(lr) for lr in (1e-4, 1e-3, 3.803e-3, 5e-2)}
    finally:
        torch.set_num_threads(threads)
    target = ref.EXPERIMENT["target"]
    assert acc[1e-3] >= target and acc[3.803e-3] >= target + 0.02, acc
    assert acc[1e-4] < target - 0.1 and acc[5e-2] < target - 0.2, acc
@pytest.mark.parametrize("dtype, device", [(torch.float64, "cpu"), (torch.float32, "meta")])
def test_experiment_protocol_ignores_the_students_torch_defaults(dtype, device):
    """A submission that changed torch's default dtype or device is measured like every other one, and its
    defaults are back afterwards (the checks that follow still see them)."""
    from autograder.references import grader_defaults

    expected = ref.validation_accuracy(1e-3)
    old_device = torch.get_default_device()
    torch.set_default_dtype(dtype)
    torch.set_default_device(device)
    try:
        assert ref.validation_accuracy(1e-3) == expected
        assert torch.get_default_dtype() == dtype and torch.get_default_device().type == device
        with grader_defaults():
            assert torch.empty(1).dtype == torch.float32 and torch.empty(1).device.type == "cpu"
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_default_device(old_device)


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


# --- assignment 1's predictions and experiment -------------------------------------------------------
def test_assignment1_predictions_agree_with_torch():
    answers = {name: entry[0] for name, entry in basics.PREDICTIONS.items()}
    assert answers["predict_shape"] == (5, 64)
    assert answers["predict_num_parameters"] == 3072 * 1000 + 1000 + 1000 * 50 + 50 + 50 * 10 + 10
    assert answers["predict_gradient"] == pytest.approx((0.1 - 1) / 2)
    # the loss at initialization: an untrained FirstNet's mean loss on real digits is close to ln 10
    import course

    x, y = course.to_tensors(course.load_mnist(train=True, root=basics_offline_root(), download=False).subset(500, seed=0))
    torch.manual_seed(0)
    with torch.no_grad():
        loss = torch.nn.functional.nll_loss(basics.FirstNet()(x), y).item()
    assert loss == pytest.approx(answers["predict_initial_loss"], rel=0.03)  # 2.35 on normalized digits
    for name, (answer, mistakes, _, tolerance) in basics.PREDICTIONS.items():  # no mistake is graded as right
        for value in mistakes.values():
            if isinstance(answer, tuple):
                assert tuple(value) != answer, name
            else:
                assert abs(value - answer) > max(tolerance.get("atol", 5e-4), tolerance.get("rtol", 1e-3) * abs(answer))


def basics_offline_root():
    from autograder.checks.test_pytorch_basics import OFFLINE_ROOT

    return OFFLINE_ROOT


def test_assignment1_target_separates_good_settings_from_bad_ones():
    """91% validation accuracy within 3 epochs of plain SGD: reached from lr 0.1 (3 epochs) to 0.3, missed by a
    tenth of that and by a rate that diverges."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        acc = {(lr, e): basics.validation_accuracy(lr, e) for lr, e in ((0.3, 3), (0.3, 2), (0.1, 3), (0.01, 3),
                                                                         (1.0, 1))}
    finally:
        torch.set_num_threads(threads)
    target = basics.EXPERIMENT["target"]
    assert acc[0.3, 3] >= target + 0.01 and acc[0.3, 2] >= target + 0.01 and acc[0.1, 3] >= target, acc
    assert acc[0.01, 3] < target - 0.1 and acc[1.0, 1] < target - 0.5, acc
