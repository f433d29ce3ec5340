"""Shared fixtures for the tests of the ``course`` package: no network, no progress bars, fresh caches."""

from __future__ import annotations

import gzip
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import course.data


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Offline, quiet, with an empty data root and forgotten data caches."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.delenv("COURSE_FASHION_MNIST_DIR", raising=False)

    def no_network(*args, **kwargs):
        raise OSError("network access is disabled in the course tests")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    course.data._clear_caches()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    course.data._clear_caches()
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


@pytest.fixture
def idx_writer():
    """The function ``write_idx(path, array, gz=False)``."""
    return write_idx


@pytest.fixture
def idx_dataset():
    """The function ``write_idx_dataset(folder, n_train=30, n_test=20, gz=False)``."""
    return write_idx_dataset


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped if ``gz``; returns the path written."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 28x28 images with labels 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def write_idx_dataset(folder: Path, n_train: int = 30, n_test: int = 20, gz: bool = False) -> dict[bool, tuple]:
    """Write the four MNIST-style IDX files into ``folder``; returns {train: (images, labels)}."""
    arrays = {True: synthetic_images(n_train, seed=1), False: synthetic_images(n_test, seed=2)}
    for train, (images, labels) in arrays.items():
        prefix = "train" if train else "t10k"
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return arrays
