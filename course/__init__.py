"""Helpers for the course notebooks: data, devices, training loops and plots.

    import course
    device = course.get_device()
    train_loader, test_loader = course.fast_loaders("mnist", device=device)

Lecture 01 (Tensors): :func:`get_device`, :func:`available_devices`, :func:`seed_everything`.
Assignments: :func:`grading` (true while nbgrader autogrades a notebook), :func:`self_check` (the grader's
report on the saved notebook, when the autograder is installed for self-study).
Lecture 02 (Loading MNIST, training and testing loops): :func:`load_mnist`,
:func:`load_fashion_mnist`, :class:`ImageSplit`, :func:`mnist_loaders`,
:class:`TensorLoader`, :func:`to_tensors`, :func:`fit`, :func:`evaluate`, :class:`History`,
:func:`plot_history`, :func:`show_images`.
Lecture 03 (Gradient descent): :func:`fast_loaders`, :mod:`course.surfaces`, :func:`plot_loss_surface`,
:class:`RuleOptimizer`; lectures 04-06 build on them.

matplotlib and torchvision are imported only when a function needs them.
"""

from . import surfaces
from .data import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
    DatasetUnavailable,
    ImageSplit,
    TensorLoader,
    fast_loaders,
    load_fashion_mnist,
    load_mnist,
    mnist_loaders,
    to_tensors,
)
from .optim import RuleOptimizer
from .devices import available_devices, get_device, grading, seed_everything
from .selfcheck import self_check
from .plots import plot_history, plot_loss_surface, show_images
from .training import History, evaluate, fit

__all__ = [
    "get_device",
    "available_devices",
    "seed_everything",
    "grading",
    "self_check",
    "load_mnist",
    "load_fashion_mnist",
    "DatasetUnavailable",
    "ImageSplit",
    "TensorLoader",
    "mnist_loaders",
    "fast_loaders",
    "to_tensors",
    "MNIST_MEAN",
    "MNIST_STD",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "fit",
    "evaluate",
    "History",
    "plot_history",
    "plot_loss_surface",
    "show_images",
    "surfaces",
    "RuleOptimizer",
]
