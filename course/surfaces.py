"""Two-dimensional test functions and optimizer trajectories on them.

Each function takes a tensor ``xy`` of shape ``(..., 2)`` (the last axis is
``(x, y)``) and returns a tensor of shape ``(...)``, so the same function
evaluates a single point for an optimizer and a whole grid for
:func:`course.plot_loss_surface`. All are differentiable with autograd.

Introduced in lecture 03 (Optimizers).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

__all__ = ["ravine", "rosenbrock", "saddle", "MINIMA", "trajectory"]


def ravine(xy: torch.Tensor, a: float = 1.0, b: float = 20.0) -> torch.Tensor:
    """Elongated quadratic bowl ``0.5 * (a x^2 + b y^2)``; minimum 0 at (0, 0).

    With ``b >> a`` the valley is narrow: plain gradient descent zig-zags across
    it, momentum helps. The condition number is ``b / a``.

    Introduced in lecture 03 (Optimizers).
    """
    x, y = xy[..., 0], xy[..., 1]
    return 0.5 * (a * x**2 + b * y**2)


def rosenbrock(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """Rosenbrock's banana ``(a - x)^2 + b (y - x^2)^2``; minimum 0 at (a, a^2).

    Introduced in lecture 03 (Optimizers).
    """
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def saddle(xy: torch.Tensor) -> torch.Tensor:
    """The saddle ``x^2 - y^2``: a stationary point at (0, 0) that is no minimum (unbounded below).

    Introduced in lecture 03 (Optimizers).
    """
    x, y = xy[..., 0], xy[..., 1]
    return x**2 - y**2


#: Location of the minimum of each function above with its default parameters
#: (``saddle`` has none).
MINIMA: dict[str, tuple[float, float]] = {"ravine": (0.0, 0.0), "rosenbrock": (1.0, 1.0)}


def _needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """True for ``torch.optim.LBFGS`` and any optimizer whose ``step`` requires a closure."""
    if isinstance(optimizer, torch.optim.LBFGS):
        return True
    try:
        parameters = inspect.signature(optimizer.step).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.default is inspect.Parameter.empty and p.kind in positional for p in parameters)


def trajectory(
    f: Callable[[torch.Tensor], torch.Tensor],
    start: Sequence[float] | torch.Tensor,
    make_optimizer: Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer],
    steps: int,
) -> np.ndarray:
    """Run an optimizer on ``f`` from ``start`` and return the visited points, shape ``(steps + 1, 2)``.

    ``make_optimizer`` gets the list ``[param]`` (float64, shape ``(2,)``) and
    returns a ``torch.optim``-style optimizer, e.g.
    ``lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9)``.
    Each step is ``zero_grad()``, ``f(param).backward()``, ``step()``; optimizers
    that need a closure (``torch.optim.LBFGS``, or a ``step(closure)`` without a
    default) get those three as a closure instead. Row 0 is ``start``.

    Introduced in lecture 03 (Optimizers).
    """
    param = torch.nn.Parameter(torch.as_tensor(start, dtype=torch.float64).detach().clone().reshape(2))
    optimizer = make_optimizer([param])

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = f(param)
        loss.backward()
        return loss

    use_closure = _needs_closure(optimizer)
    points = [param.detach().clone()]
    for _ in range(steps):
        if use_closure:
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        points.append(param.detach().clone())
    return torch.stack(points).numpy()
