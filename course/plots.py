"""Plots for the notebooks: learning curves, loss surfaces with optimizer paths, image grids.

matplotlib is imported inside each function, so ``import course`` stays light.
Every function works with the non-interactive ``Agg`` backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .training import History

__all__ = ["plot_history", "plot_loss_surface", "show_images"]


def _numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _recorded(histories: Mapping[str, History]) -> set[str]:
    return {key for history in histories.values() for record in history.records for key in record}


def plot_history(
    histories: History | Mapping[str, History],
    metrics: Sequence[str] = ("train_loss", "val_loss", "val_accuracy"),
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Figure:
    """Learning curves: one subplot per metric, one line per named history, epochs on x.

    ``histories`` is one :class:`~course.History` or a dict such as
    ``{"SGD": h1, "Adam": h2}``. Metrics a history did not record (``None``,
    e.g. ``val_loss`` without a validation loader) are left out. The old names
    ``test_loss`` and ``test_accuracy`` mean ``val_loss`` and ``val_accuracy``.

    Introduced in lecture 02 (Training and testing loops).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .training import _RENAMED_KEYS

    named = dict(histories) if isinstance(histories, Mapping) else {"": histories}
    metrics = [_RENAMED_KEYS.get(m, m) if m not in _recorded(named) else m for m in metrics]
    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.ravel(axes))
        if len(axes) != len(metrics):
            raise ValueError(f"got {len(axes)} axes for {len(metrics)} metrics")
        fig = axes[0].figure
    for ax, metric in zip(axes, metrics):
        plotted = False
        for name, history in named.items():
            points = [(r["epoch"], r[metric]) for r in history.records if r.get(metric) is not None]
            if points:
                epochs, values = zip(*points)
                ax.plot(epochs, values, marker="o", markersize=3, label=name or None)
                plotted = True
        if not plotted:
            ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric.replace("_", " "))
        ax.grid(True, alpha=0.3)
        if plotted and any(named):
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_loss_surface(
    f: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-2, 2),
    ylim: tuple[float, float] = (-1, 3),
    trajectories: Mapping[str, Any] | None = None,
    levels: int = 30,
    log_scale: bool = True,
    ax: Axes | None = None,
    resolution: int = 200,
    minimum: tuple[float, float] | None = None,
) -> Axes:
    """Filled contour plot of a 2-D function with optimizer trajectories on top.

    ``f`` maps a tensor of shape ``(..., 2)`` to shape ``(...)`` (see
    :mod:`course.surfaces`). ``trajectories`` maps a name to an array-like of
    shape ``(T, 2)``, e.g. from :func:`course.surfaces.trajectory`; each is drawn
    as a line with markers, a square at the start and a cross at the end.
    ``log_scale`` colors by ``log10(f - min f)``, which shows narrow valleys
    better. ``minimum`` adds a star.

    Introduced in lecture 03 (Gradient descent).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    xs = torch.linspace(xlim[0], xlim[1], resolution, dtype=torch.float64)
    ys = torch.linspace(ylim[0], ylim[1], resolution, dtype=torch.float64)
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        z = _numpy(f(torch.stack([grid_x, grid_y], dim=-1))).astype(float)
    if log_scale:
        shifted = z - np.nanmin(z)
        top = np.nanmax(shifted)
        z = np.log10(shifted + (top * 1e-6 if top > 0 else 1e-12))
    ax.contourf(grid_x.numpy(), grid_y.numpy(), z, levels=levels, cmap="viridis", alpha=0.85)
    ax.contour(grid_x.numpy(), grid_y.numpy(), z, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
    for name, path in (trajectories or {}).items():
        path = _numpy(path).astype(float).reshape(-1, 2)
        (line,) = ax.plot(path[:, 0], path[:, 1], marker="o", markersize=2.5, linewidth=1.2, label=name)
        ax.plot(*path[0], marker="s", markersize=7, color=line.get_color(), markeredgecolor="black")
        ax.plot(*path[-1], marker="X", markersize=9, color=line.get_color(), markeredgecolor="black")
    if minimum is not None:
        ax.plot(*minimum, marker="*", markersize=15, color="gold", markeredgecolor="black", ls="", label="minimum")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if trajectories or minimum is not None:
        ax.legend(loc="best", fontsize="small")
    return ax


def show_images(
    images: Any,
    labels: Any | None = None,
    predictions: Any | None = None,
    ncols: int = 8,
    class_names: Sequence[str] | None = None,
    mean: float | None = None,
    std: float | None = None,
    ax_size: float = 1.2,
) -> Figure:
    """A grid of grayscale images titled with their labels and, if given, predictions.

    ``images`` is uint8 of shape ``(N, 28, 28)`` or float of shape ``(N, 1, 28, 28)``
    or ``(N, 28, 28)``; normalized images are mapped back with ``x * std + mean``
    when both are given. A wrong prediction is titled in red.

    Introduced in lecture 02 (Loading MNIST).
    """
    import matplotlib.pyplot as plt

    array = _numpy(images)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or len(array) == 0:
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 1, 28, 28), got {tuple(_numpy(images).shape)}")
    if array.dtype == np.uint8:
        vmin, vmax = 0, 255
    elif mean is not None and std is not None:
        array, vmin, vmax = array * std + mean, 0.0, 1.0
    else:
        vmin = vmax = None
    labels = None if labels is None else _numpy(labels).reshape(-1)
    predictions = None if predictions is None else _numpy(predictions).reshape(-1)

    def name(k: Any) -> str:
        return str(class_names[int(k)]) if class_names is not None else str(int(k))

    n = len(array)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    titled = labels is not None or predictions is not None
    height = ax_size * (1.35 if predictions is not None and labels is not None else 1.2 if titled else 1.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * ax_size, nrows * height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(array[i], cmap="gray", vmin=vmin, vmax=vmax)
        parts, color = [], "black"
        if labels is not None:
            parts.append(name(labels[i]))
        if predictions is not None:
            parts.append(f"pred {name(predictions[i])}")
            if labels is not None and int(predictions[i]) != int(labels[i]):
                color = "red"
        if parts:
            ax.set_title("\n".join(parts), fontsize=8, color=color)
    fig.tight_layout()
    return fig
