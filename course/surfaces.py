"""Two-dimensional test functions and optimizer trajectories on them.

Each function takes a tensor ``xy`` of shape ``(..., 2)`` (the last axis is
``(x, y)``) and returns a tensor of shape ``(...)``, so the same function
evaluates a single point for an optimizer and a whole grid for
:func:`course.plot_loss_surface`. All are differentiable with autograd.

Introduced in lecture 03 (Gradient descent): :func:`ravine`, :func:`trajectory`, the
convexity section's :func:`double_well` and :func:`steep_optima`, and the playground's
:func:`rosenbrock` and :func:`saddle`. Lecture 04 (Momentum) adds :func:`with_gradient_noise`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

__all__ = ["ravine", "rosenbrock", "saddle", "double_well", "steep_optima", "with_gradient_noise", "MINIMA", "trajectory"]


def ravine(xy: torch.Tensor, a: float = 1.0, b: float = 20.0) -> torch.Tensor:
    """Elongated quadratic bowl ``0.5 * (a x^2 + b y^2)``; minimum 0 at (0, 0).

    With ``b >> a`` the valley is narrow: plain gradient descent zig-zags across
    it, momentum helps. The condition number is ``b / a``.

    Introduced in lecture 03 (Gradient descent).
    """
    x, y = xy[..., 0], xy[..., 1]
    return 0.5 * (a * x**2 + b * y**2)


def rosenbrock(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """Rosenbrock's banana ``(a - x)^2 + b (y - x^2)^2``; minimum 0 at (a, a^2).

    Introduced in lecture 03 (Gradient descent, playground); lectures 04-05 race optimizers on it.
    """
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def saddle(xy: torch.Tensor) -> torch.Tensor:
    """The saddle ``x^2 - y^2``: a stationary point at (0, 0) that is no minimum (unbounded below).

    Introduced in lecture 03 (Gradient descent, playground); lecture 05 times the escape from it.
    """
    x, y = xy[..., 0], xy[..., 1]
    return x**2 - y**2


def double_well(xy: torch.Tensor, tilt: float = 0.25, b: float = 1.0) -> torch.Tensor:
    """Two basins along x: ``(x^2 - 1)^2 + tilt * x + 0.5 * b * y^2``; not convex.

    The stationary points lie on the x-axis at the roots of ``4 x^3 - 4 x + tilt``. For
    ``0 < tilt < 8 / (3 sqrt(3))`` (about 1.54) there are three: the global minimum near
    ``x = -1`` (the deep basin), a maximum near ``x = tilt / 4`` (the barrier) and a local
    minimum near ``x = +1`` (the shallow basin, higher by about ``2 * tilt``). With ``y = 0``
    it is a 1-D function of ``x``. ``MINIMA["double_well"]`` is the global minimum for the
    default parameters.

    Introduced in lecture 03 (Gradient descent: convexity, local and global minima); lecture 04
    asks whether momentum rolls out of the shallow basin.
    """
    x, y = xy[..., 0], xy[..., 1]
    return (x**2 - 1) ** 2 + tilt * x + 0.5 * b * y**2


def steep_optima(xy: torch.Tensor, width: float = 0.1) -> torch.Tensor:
    """A wide, shallow basin and a narrow, deep one in a gentle bowl; not convex.

    ``0.05 |p|^2 - 0.6 exp(-|p - (-1, 0)|^2 / 2) - exp(-|p - (1, 0.5)|^2 / (2 width^2))``.
    The narrow basin near (1, 0.5) is the global minimum (about -1.01); its curvature is about
    ``1 / width^2`` (100 by default), so gradient descent can settle there only with a
    learning rate below about ``2 width^2``. The wide basin near (-0.86, 0) is a local minimum
    (about -0.56) with curvature below 1, stable for learning rates up to about 2.9. Far from
    both the bowl pulls every start back towards the middle.

    Introduced in lecture 03 (Gradient descent: which minimum a learning rate can find).
    """
    x, y = xy[..., 0], xy[..., 1]
    wide = torch.exp(-((x + 1.0) ** 2 + y**2) / 2)
    narrow = torch.exp(-((x - 1.0) ** 2 + (y - 0.5) ** 2) / (2 * width**2))
    return 0.05 * (x**2 + y**2) - 0.6 * wide - narrow


def with_gradient_noise(
    f: Callable[[torch.Tensor], torch.Tensor], std: float, seed: int = 0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f`` whose gradient, when an optimizer asks for one, carries fresh Gaussian noise.

    The returned function adds ``(noise * xy).sum(-1)`` with a new ``noise ~ N(0, std^2)`` of
    ``xy``'s shape at every call on a tensor that requires a gradient, so each ``backward()``
    gives ``grad f + noise``: an unbiased gradient whose spread does not vanish at the
    minimum, like a minibatch gradient (lecture 03). Called on a tensor that does not require
    a gradient (a grid for :func:`course.plot_loss_surface`, or a path to evaluate) it is
    exactly ``f``, so pictures and loss curves show the noiseless function. ``seed`` makes the
    noise sequence reproducible; each returned function has its own generator.

    Introduced in lecture 04 (Momentum on noisy gradients); lecture 05 uses it for Adam.
    """
    if not std >= 0:
        raise ValueError(f"std must be a non-negative number, got {std!r}")
    generator = torch.Generator().manual_seed(seed)

    def noisy(xy: torch.Tensor) -> torch.Tensor:
        value = f(xy)
        if not xy.requires_grad or std == 0:
            return value
        noise = torch.randn(xy.shape, generator=generator, dtype=xy.dtype).to(xy.device) * std
        return value + (noise * xy).sum(-1)

    return noisy


#: Location of the (global) minimum of each function above with its default parameters
#: (``saddle`` has none; ``double_well``: the root of 4 x^3 - 4 x + 0.25 near -1;
#: ``steep_optima``: the bottom of the narrow basin, found numerically).
MINIMA: dict[str, tuple[float, float]] = {
    "ravine": (0.0, 0.0),
    "rosenbrock": (1.0, 1.0),
    "double_well": (-1.0298959850506608, 0.0),
    "steep_optima": (0.99756257, 0.49914099),
}


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

    Introduced in lecture 03 (Gradient descent).
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
