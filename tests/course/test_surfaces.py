"""Tests for course.surfaces: test functions, their gradients and optimizer trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course import surfaces
from course.surfaces import (
    MINIMA,
    double_well,
    ravine,
    rosenbrock,
    saddle,
    steep_optima,
    trajectory,
    with_gradient_noise,
)

FUNCTIONS = {"ravine": ravine, "rosenbrock": rosenbrock, "saddle": saddle, "double_well": double_well,
             "steep_optima": steep_optima}


def test_values():
    point = torch.tensor([1.0, 2.0])
    assert ravine(point).item() == pytest.approx(0.5 * (1 + 20 * 4))
    assert ravine(point, a=2.0, b=3.0).item() == pytest.approx(0.5 * (2 + 3 * 4))
    assert rosenbrock(point).item() == pytest.approx(0 + 100 * 1)
    assert rosenbrock(torch.tensor([2.0, 4.0]), a=2.0).item() == 0
    assert saddle(point).item() == -3


@pytest.mark.parametrize("name", ["ravine", "rosenbrock"])
def test_minima(name: str):
    point = torch.tensor(MINIMA[name], dtype=torch.float64, requires_grad=True)
    value = FUNCTIONS[name](point)
    value.backward()
    assert value.item() == 0 and torch.equal(point.grad, torch.zeros(2, dtype=torch.float64))
    assert "saddle" not in MINIMA
    assert set(MINIMA) <= set(FUNCTIONS)


@pytest.mark.parametrize("name", ["double_well", "steep_optima"])
def test_non_convex_minima_are_stationary_strict_and_global(name: str):
    f = FUNCTIONS[name]
    point = torch.tensor(MINIMA[name], dtype=torch.float64, requires_grad=True)
    value = f(point)
    value.backward()
    assert point.grad.abs().max().item() < 1e-6
    assert torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, point.detach())).min() > 0
    # global: no point of a fine grid over the region that holds both basins is lower
    xs = torch.linspace(-3, 3, 601, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1)
    assert f(grid).min().item() >= value.item() - 1e-9


def test_double_well_has_a_shallow_local_minimum_and_a_barrier():
    roots = np.sort(np.roots([4, 0, -4, 0.25]).real)
    assert roots[0] == pytest.approx(MINIMA["double_well"][0])
    f1 = lambda x: double_well(torch.tensor([x, 0.0], dtype=torch.float64)).item()   # noqa: E731
    deep, barrier, shallow = (f1(r) for r in roots)
    assert deep < shallow < barrier
    assert shallow - deep == pytest.approx(2 * 0.25, rel=0.05)
    # gradient descent from inside each basin stays in it
    for start, root in ((1.5, roots[2]), (-1.5, roots[0])):
        path = trajectory(double_well, (start, 0.0), lambda p: torch.optim.SGD(p, lr=0.02), 500)
        assert path[-1, 0] == pytest.approx(root, abs=1e-6)
    # with tilt 0 both minima are equally deep (at +-1)
    assert double_well(torch.tensor([1.0, 0.0]), tilt=0.0).item() == double_well(torch.tensor([-1.0, 0.0]), tilt=0.0).item() == 0


def test_steep_optima_needs_a_small_learning_rate():
    start = (0.9, 0.45)                    # inside the narrow basin
    small = trajectory(steep_optima, start, lambda p: torch.optim.SGD(p, lr=0.005), 400)
    assert np.allclose(small[-1], MINIMA["steep_optima"], atol=1e-4)
    large = trajectory(steep_optima, start, lambda p: torch.optim.SGD(p, lr=0.3), 400)
    assert np.linalg.norm(large[-1] - np.array(MINIMA["steep_optima"])) > 0.5    # thrown out of it
    assert steep_optima(torch.from_numpy(large[-1])).item() > steep_optima(torch.tensor(MINIMA["steep_optima"])).item()


def test_with_gradient_noise_is_unbiased_and_exact_without_grad():
    noisy = with_gradient_noise(ravine, std=0.5, seed=1)
    grid = torch.randn(4, 3, 2, dtype=torch.float64)
    assert torch.equal(noisy(grid), ravine(grid))                    # pictures show the true function
    point = torch.tensor([0.3, -0.2], dtype=torch.float64)
    grads = []
    for _ in range(4000):
        p = point.clone().requires_grad_(True)
        noisy(p).backward()
        grads.append(p.grad)
    grads = torch.stack(grads)
    exact = torch.tensor([0.3, -0.2 * 20], dtype=torch.float64)
    assert torch.allclose(grads.mean(0), exact, atol=4 * 0.5 / 4000**0.5)
    assert torch.allclose(grads.std(0), torch.full((2,), 0.5, dtype=torch.float64), rtol=0.05)
    # reproducible per seed, different between seeds
    a = trajectory(with_gradient_noise(ravine, 0.5, seed=3), (1.0, 1.0), lambda p: torch.optim.SGD(p, lr=0.01), 20)
    b = trajectory(with_gradient_noise(ravine, 0.5, seed=3), (1.0, 1.0), lambda p: torch.optim.SGD(p, lr=0.01), 20)
    c = trajectory(with_gradient_noise(ravine, 0.5, seed=4), (1.0, 1.0), lambda p: torch.optim.SGD(p, lr=0.01), 20)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(trajectory(with_gradient_noise(ravine, 0.0), (1.0, 1.0), lambda p: torch.optim.SGD(p, lr=0.01), 5),
                          trajectory(ravine, (1.0, 1.0), lambda p: torch.optim.SGD(p, lr=0.01), 5))
    with pytest.raises(ValueError, match="std"):
        with_gradient_noise(ravine, std=-1.0)
    with pytest.raises(ValueError, match="std"):
        with_gradient_noise(ravine, std=float("nan"))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradcheck(name: str):
    xy = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(FUNCTIONS[name], (xy,))
    assert torch.autograd.gradgradcheck(FUNCTIONS[name], (xy,))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_batched_shapes(name: str):
    f = FUNCTIONS[name]
    grid = torch.randn(3, 4, 2)
    values = f(grid)
    assert values.shape == (3, 4)
    assert torch.allclose(values[1, 2], f(grid[1, 2]))


def test_trajectory_sgd_converges_on_the_ravine():
    start = torch.tensor([1.5, 1.0])
    path = trajectory(ravine, start, lambda params: torch.optim.SGD(params, lr=0.05), steps=200)
    assert isinstance(path, np.ndarray) and path.shape == (201, 2) and path.dtype == np.float64
    assert np.array_equal(path[0], [1.5, 1.0]) and torch.equal(start, torch.tensor([1.5, 1.0]))
    distances = np.linalg.norm(path, axis=1)
    assert distances[-1] < 1e-3 and np.all(np.diff(distances) <= 1e-12)
    # gradient descent on a quadratic: x_{t+1} = (1 - lr a) x_t, y_{t+1} = (1 - lr b) y_t
    assert np.allclose(path[1], [1.5 * (1 - 0.05), 1.0 * (1 - 0.05 * 20)])


@settings(max_examples=25, deadline=None)
@given(x=st.floats(-2, 2), y=st.floats(-2, 2), lr=st.floats(1e-3, 0.09))
def test_trajectory_sgd_never_increases_the_ravine(x: float, y: float, lr: float):
    path = trajectory(ravine, (x, y), lambda params: torch.optim.SGD(params, lr=lr), steps=10)
    values = ravine(torch.from_numpy(path)).numpy()
    assert np.all(np.diff(values) <= 1e-12)


OPTIMIZERS = {
    "SGD": lambda p: torch.optim.SGD(p, lr=1e-3),
    "SGD-nesterov": lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True),
    "Adam": lambda p: torch.optim.Adam(p, lr=0.05),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.05),
    "Adamax": lambda p: torch.optim.Adamax(p, lr=0.05),
    "NAdam": lambda p: torch.optim.NAdam(p, lr=0.05),
    "RAdam": lambda p: torch.optim.RAdam(p, lr=1e-3),
    "RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),
    "Adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0),
    "ASGD": lambda p: torch.optim.ASGD(p, lr=1e-3),
    "Rprop": lambda p: torch.optim.Rprop(p, lr=0.01),
    "LBFGS": lambda p: torch.optim.LBFGS(p, lr=1, max_iter=5, line_search_fn="strong_wolfe"),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_trajectory_works_with_torch_optimizers(name: str):
    start = (-1.5, 2.0)
    path = trajectory(rosenbrock, start, OPTIMIZERS[name], steps=30)
    assert path.shape == (31, 2) and np.isfinite(path).all()
    values = rosenbrock(torch.from_numpy(path))
    assert values[-1] < values[0]


class PlainGD(torch.optim.Optimizer):
    """A hand-written optimizer whose step takes no closure, as students may write."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p -= group["lr"] * p.grad


class NeedsClosure(PlainGD):
    """A hand-written optimizer whose step requires a closure."""

    @torch.no_grad()
    def step(self, closure) -> None:
        with torch.enable_grad():
            closure()
        super().step()


@pytest.mark.parametrize("cls", [PlainGD, NeedsClosure])
def test_trajectory_with_hand_written_optimizers(cls):
    path = trajectory(ravine, (1.0, 1.0), lambda params: cls(params, lr=0.04), steps=50)
    sgd = trajectory(ravine, (1.0, 1.0), lambda params: torch.optim.SGD(params, lr=0.04), steps=50)
    assert np.allclose(path, sgd)


def test_module_is_exported():
    import course

    assert course.surfaces is surfaces
