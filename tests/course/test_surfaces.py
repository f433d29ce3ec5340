"""Tests for course.surfaces: test functions, their gradients and optimizer trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course import surfaces
from course.surfaces import MINIMA, ravine, rosenbrock, saddle, trajectory

FUNCTIONS = {"ravine": ravine, "rosenbrock": rosenbrock, "saddle": saddle}


def test_values():
    point = torch.tensor([1.0, 2.0])
    assert ravine(point).item() == pytest.approx(0.5 * (1 + 20 * 4))
    assert ravine(point, a=2.0, b=3.0).item() == pytest.approx(0.5 * (2 + 3 * 4))
    assert rosenbrock(point).item() == pytest.approx(0 + 100 * 1)
    assert rosenbrock(torch.tensor([2.0, 4.0]), a=2.0).item() == 0
    assert saddle(point).item() == -3


@pytest.mark.parametrize("name", sorted(MINIMA))
def test_minima(name: str):
    point = torch.tensor(MINIMA[name], dtype=torch.float64, requires_grad=True)
    value = FUNCTIONS[name](point)
    value.backward()
    assert value.item() == 0 and torch.equal(point.grad, torch.zeros(2, dtype=torch.float64))
    assert "saddle" not in MINIMA


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
