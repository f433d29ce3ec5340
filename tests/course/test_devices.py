"""Tests for course.devices: device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course import available_devices, get_device, grading, seed_everything


@pytest.fixture
def no_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_is_always_available():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_default_is_cpu_without_accelerators(no_accelerators):
    assert get_device() == torch.device("cpu")


def test_default_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("mps")


def test_environment_variable_and_argument(monkeypatch: pytest.MonkeyPatch, no_accelerators):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="cuda"):
        get_device()
    assert get_device("cpu") == torch.device("cpu")  # the argument wins over the environment


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cuda", r"cuda requested but torch\.cuda\.is_available\(\) is False"),
        ("cuda:1", r"torch\.cuda\.is_available\(\) is False"),
        ("mps", r"mps requested but torch\.backends\.mps\.is_available\(\) is False"),
        ("gpu", "invalid device 'gpu'"),
    ],
)
def test_unavailable_device_is_a_clear_error(no_accelerators, name: str, message: str):
    with pytest.raises(ValueError, match=message):
        get_device(name)


def test_available_devices_starts_with_cpu(monkeypatch: pytest.MonkeyPatch, no_accelerators):
    assert available_devices() == [torch.device("cpu")]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert available_devices() == [torch.device("cpu"), torch.device("cuda", 0), torch.device("mps")]


def test_available_devices_on_this_machine():
    devices = available_devices()
    assert devices[0] == torch.device("cpu")
    assert get_device() in devices or get_device().type in {d.type for d in devices}


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_is_reproducible():
    generator = seed_everything(123)
    first = _draws()
    from_generator = torch.rand(3, generator=generator).tolist()
    generator = seed_everything(123)
    assert _draws() == first
    assert torch.rand(3, generator=generator).tolist() == from_generator
    assert isinstance(generator, torch.Generator)
    assert generator.initial_seed() == 123
    assert generator.device == torch.device("cpu")
    seed_everything(124)
    assert _draws() != first


def test_seed_everything_deterministic():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device():
    assert get_device("cuda").type == "cuda"
    assert torch.device("cuda", 0) in available_devices()
    seed_everything(5)
    a = torch.rand(3, device="cuda")
    seed_everything(5)
    assert torch.equal(a, torch.rand(3, device="cuda"))


def test_grading_is_true_only_under_nbgrader_autograde(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert grading() is False
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert grading() is False
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading() is True
