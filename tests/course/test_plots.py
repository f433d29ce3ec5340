"""Tests for course.plots under the non-interactive Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course import History, plot_history, plot_loss_surface, show_images, surfaces  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(offset: float, with_test: bool = True) -> History:
    records = [
        {
            "epoch": e,
            "train_loss": 1 / e + offset,
            "val_loss": 1.1 / e + offset if with_test else None,
            "val_accuracy": 0.8 + 0.05 * e if with_test else None,
            "seconds": 0.1,
        }
        for e in (1, 2, 3)
    ]
    return History(records=records)


def test_plot_history_single_and_named():
    fig = plot_history(_history(0.0), title="one run")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3]
    fig = plot_history({"SGD": _history(0.0), "Adam": _history(0.1)}, metrics=("train_loss", "val_accuracy"))
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["SGD", "Adam"]


def test_plot_history_on_given_axes_and_without_test_metrics():
    fig, axes = plt.subplots(1, 2)
    out = plot_history({"no test": _history(0.0, with_test=False)}, metrics=("train_loss", "val_loss"), axes=axes)
    assert out is fig
    assert len(axes[0].lines) == 1 and len(axes[1].lines) == 0
    assert "no val_loss recorded" in [t.get_text() for t in axes[1].texts]
    with pytest.raises(ValueError, match="axes"):
        plot_history(_history(0.0), axes=axes)


def test_plot_loss_surface():
    paths = {
        "SGD": surfaces.trajectory(surfaces.ravine, (1.5, 1.0), lambda p: torch.optim.SGD(p, lr=0.05), 20),
        "given as a tensor": torch.tensor([[0.0, 0.0], [0.5, 0.5]]),
    }
    ax = plot_loss_surface(surfaces.ravine, trajectories=paths, minimum=surfaces.MINIMA["ravine"], resolution=50)
    assert isinstance(ax, Axes)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["SGD", "given as a tensor", "minimum"]
    sgd_line = next(line for line in ax.lines if line.get_label() == "SGD")
    assert np.allclose(sgd_line.get_xydata(), paths["SGD"])
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 3)


@pytest.mark.parametrize("log_scale", [True, False])
def test_plot_loss_surface_on_given_axes(log_scale: bool):
    _, ax = plt.subplots()
    out = plot_loss_surface(surfaces.saddle, xlim=(-1, 1), ylim=(-1, 1), log_scale=log_scale, ax=ax, resolution=30)
    assert out is ax and ax.get_legend() is None
    plot_loss_surface(surfaces.rosenbrock, ax=ax, levels=10, resolution=30)


def test_show_images_uint8_with_predictions():
    images = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    labels, predictions = torch.arange(10), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 0])
    fig = show_images(images, labels, predictions, ncols=4, class_names=[f"c{i}" for i in range(10)])
    assert isinstance(fig, Figure) and len(fig.axes) == 12  # 3 rows of 4
    titles = [ax.title for ax in fig.axes[:10]]
    assert titles[1].get_text() == "c1\npred c1" and to_rgba(titles[1].get_color()) == to_rgba("black")
    assert titles[9].get_text() == "c9\npred c0" and to_rgba(titles[9].get_color()) == to_rgba("red")
    assert fig.axes[0].images[0].get_clim() == (0, 255)


def test_show_images_normalized():
    images = torch.rand(3, 1, 28, 28)
    fig = show_images((images - 0.1307) / 0.3081, mean=0.1307, std=0.3081)
    shown = fig.axes[0].images[0].get_array()
    assert np.allclose(shown, images[0, 0].numpy(), atol=1e-6)
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    assert fig.axes[0].title.get_text() == ""
    fig = show_images(images.numpy(), predictions=[1, 2, 3])
    assert fig.axes[2].title.get_text() == "pred 3"
    with pytest.raises(ValueError, match="shape"):
        show_images(torch.zeros(2, 3, 28, 28))
