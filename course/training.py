"""A reference training loop with progress bars and a per-epoch history.

Introduced in lecture 02 (Training and testing loops). From lecture 03 on it
is used to compare optimizers on the same model and data.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["History", "evaluate", "fit"]

LossFn = Callable[..., torch.Tensor]


@dataclass
class History:
    """What :func:`fit` recorded: one dict per epoch and the loss of every batch.

    Each record has ``epoch`` (1-based), ``train_loss``, ``val_loss``,
    ``val_accuracy`` (in [0, 1]) and ``seconds``; the ``val_*`` values are
    ``None`` when ``fit`` had no validation loader. ``history["train_loss"]`` is
    the list of that value over epochs. The keys ``test_loss`` and
    ``test_accuracy`` of earlier versions still work, with a ``FutureWarning``:
    what ``fit`` evaluates on while training is a validation set (it chooses
    when to stop and how to schedule), not the test set.

    Introduced in lecture 02 (Training and testing loops).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    batch_losses: list[float] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[Any]:
        if key in _RENAMED_KEYS and self.records and key not in self.records[0]:
            warnings.warn(f"History[{key!r}] is now History[{_RENAMED_KEYS[key]!r}]: fit evaluates on a validation "
                          "loader (val_loader=...)", FutureWarning, stacklevel=2)
            key = _RENAMED_KEYS[key]
        if self.records and key not in self.records[0]:
            raise KeyError(f"{key!r}; History records have {sorted(self.records[0])}")
        return [record[key] for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> dict[str, Any] | None:
        """The record of the last epoch, or ``None`` before any epoch."""
        return self.records[-1] if self.records else None

    def to_dict(self) -> dict[str, Any]:
        """``{"records": [...], "batch_losses": [...]}``, plain Python; ``History(**h.to_dict())`` rebuilds it."""
        return asdict(self)


_RENAMED_KEYS = {"test_loss": "val_loss", "test_accuracy": "val_accuracy"}

# What fit calls each epoch (see its docstring): callback(epoch, model, optimizer, history) -> stop?
Callback = Callable[[int, nn.Module, Any, "History"], Any]


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _summed_loss(loss_fn: LossFn, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss summed over the batch: ``reduction="sum"`` if ``loss_fn`` takes it, else mean times batch size."""
    try:
        return loss_fn(output, target, reduction="sum")
    except TypeError:  # e.g. an nn.CrossEntropyLoss() instance
        return loss_fn(output, target) * len(target)


def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn = F.cross_entropy,
    device: str | torch.device | None = None,
) -> tuple[float, float]:
    """Mean loss per sample and accuracy (in [0, 1]) of ``model`` on ``loader``.

    Runs in ``model.eval()`` mode under ``torch.no_grad()`` and restores the
    model's previous train/eval mode afterwards. ``F.cross_entropy`` (the
    default) applied to log-probabilities equals ``F.nll_loss``, so models that
    end in ``log_softmax`` work too. ``device`` defaults to the model's device.

    Introduced in lecture 02 (Training and testing loops).
    """
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        with torch.no_grad():
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                output = model(x)
                total_loss += _summed_loss(loss_fn, output, y).item()
                correct += (output.argmax(dim=1) == y).sum().item()
                count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got an empty loader")
    return total_loss / count, correct / count


# The bar's running loss is refreshed every this many batches, not every batch: formatting it costs
# about 4 us, a few per cent of a small model's batch, and the bar redraws at most ten times a second.
_POSTFIX_EVERY = 16


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("COURSE_PROGRESS", "1").strip().lower() not in {"0", "false", "no", "off"}


def _diverged(value: float, epoch: int, batch: int, optimizer: torch.optim.Optimizer) -> FloatingPointError:
    groups = getattr(optimizer, "param_groups", None) or [{}]
    lr = groups[0].get("lr")
    hint = f" (now lr={lr:g})" if isinstance(lr, (int, float)) else ""
    return FloatingPointError(
        f"the loss became {value} in epoch {epoch}, batch {batch}: training diverged. "
        f"Try a smaller learning rate{hint}, e.g. ten times smaller."
    )


def fit(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    *,
    loss_fn: LossFn = F.cross_entropy,
    val_loader: Iterable | None = None,
    device: str | torch.device | None = None,
    scheduler: Any | None = None,
    progress: bool | None = None,
    history: History | None = None,
    callbacks: Iterable[Callback] = (),
    test_loader: Iterable | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History`.

    Each batch: ``optimizer.zero_grad()``, forward, ``loss_fn``, ``backward()``,
    ``optimizer.step()``; ``scheduler.step()`` after each epoch (given the
    validation loss, or the train loss, for ``ReduceLROnPlateau``). With a
    ``val_loader`` every epoch ends with :func:`evaluate` on it: a validation
    split, never the test set, since what is seen during training (a schedule,
    early stopping, your own eye on the curve) tunes to it. ``test_loader=`` is
    the old name of ``val_loader`` and still works, with a ``FutureWarning``.
    The model is moved to ``device`` (default: where its first parameter is).
    Pass ``history`` to continue it.

    ``callbacks``: callables ``callback(epoch, model, optimizer, history)``,
    called in order once before the first epoch (``epoch`` is the number of
    epochs already in ``history``, 0 for a fresh one) and after every epoch
    (``epoch`` 1-based, after its record is in ``history`` and the scheduler
    has stepped). A callback that returns ``True`` stops training after that
    epoch (early stopping); any other return value is ignored. Lectures 04-05
    use one to watch the step an epoch takes; unit 5 builds instruments on it.

    ``progress`` shows a tqdm bar over the batches and prints one summary line
    per epoch; ``None`` means on unless ``COURSE_PROGRESS=0``. A NaN or infinite
    loss raises ``FloatingPointError`` naming the epoch and batch.

    Introduced in lecture 02 (Training and testing loops).
    """
    if test_loader is not None:
        if val_loader is not None:
            raise TypeError("fit() got both val_loader and its old name test_loader; pass val_loader only")
        warnings.warn("fit(test_loader=...) is now fit(val_loader=...): evaluate on a validation split while "
                      "training and on the test set once, at the end", FutureWarning, stacklevel=2)
        val_loader = test_loader
    callbacks = list(callbacks)
    device = _model_device(model) if device is None else torch.device(device)
    model.to(device)
    history = History() if history is None else history
    show = _progress_enabled(progress)
    first_epoch = len(history) + 1
    last_epoch = first_epoch + epochs - 1
    if show:
        from tqdm.auto import tqdm

        in_notebook = _is_notebook_bar(tqdm)
    if any([callback(first_epoch - 1, model, optimizer, history) is True for callback in callbacks]):
        return history
    for epoch in range(first_epoch, last_epoch + 1):
        start = time.perf_counter()
        model.train()
        total_loss, count = 0.0, 0
        batches, bar_display, batch = train_loader, None, 0
        if show:
            total = len(train_loader) if hasattr(train_loader, "__len__") else None
            description = f"epoch {epoch}/{last_epoch}"
            if in_notebook:
                batches, bar_display = _notebook_bar(tqdm, train_loader, total, description)
            else:
                batches = tqdm(train_loader, total=total, desc=description, leave=False)
        try:
            for batch, (x, y) in enumerate(batches, start=1):
                x, y = x.to(device), y.to(device)
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                value = loss.item()
                if not math.isfinite(value):
                    raise _diverged(value, epoch, batch, optimizer)
                loss.backward()
                optimizer.step()
                history.batch_losses.append(value)
                total_loss += value * len(y)
                count += len(y)
                if show and (batch == 1 or batch % _POSTFIX_EVERY == 0):
                    batches.set_postfix(loss=f"{total_loss / count:.4f}", refresh=False)
        except BaseException:
            if show:
                batches.close()
                if bar_display is not None:
                    _replace_bar(batches, bar_display, f"epoch {epoch}/{last_epoch}: stopped in batch {batch}")
            raise
        if count == 0:
            raise ValueError("fit() got an empty train_loader")
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / count,
            "val_loss": None,
            "val_accuracy": None,
        }
        if val_loader is not None:
            record["val_loss"], record["val_accuracy"] = evaluate(model, val_loader, loss_fn, device)
        record["seconds"] = time.perf_counter() - start
        history.records.append(record)
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(record["val_loss"] if record["val_loss"] is not None else record["train_loss"])
            else:
                scheduler.step()
        if bar_display is not None:    # the finished bar's place in the notebook now holds the summary line
            _replace_bar(batches, bar_display, _summary(record, last_epoch))
        elif show:
            print(_summary(record, last_epoch), flush=True)
        # Every callback sees every epoch (a list, not any() over a generator, which would stop at the first True).
        if any([callback(epoch, model, optimizer, history) is True for callback in callbacks]):
            break
    return history


def _is_notebook_bar(bar_class: type) -> bool:
    """Whether ``tqdm.auto`` chose the Jupyter widget bar (``tqdm.notebook``)."""
    import sys

    notebook = sys.modules.get("tqdm.notebook")
    return notebook is not None and isinstance(bar_class, type) and issubclass(bar_class, notebook.tqdm)


def _notebook_bar(bar_class: type, iterable: Iterable, total: int | None, description: str):
    """A widget bar shown through a display handle, so that it can be replaced by text when the epoch ends.

    tqdm's own notebook bar with ``leave=False`` closes its widget when done but leaves the output that
    displayed it; a saved notebook then refers to a widget model that no longer exists, and JupyterLab
    shows "Error displaying widget: model not found" once per epoch when the notebook is reopened.
    """
    from IPython.display import display

    bar = bar_class(iterable, total=total, desc=description, leave=False, display=False)
    return bar, display(bar.container, display_id=True)


def _replace_bar(bar: Any, bar_display: Any, text: str) -> None:
    bar.close()                                   # idempotent; closes the widget model (leave=False)
    container = getattr(bar, "container", None)
    if container is not None:
        container.close()                         # also a bar stopped by an error (tqdm keeps those open)
    bar_display.update({"text/plain": text}, raw=True)


def _summary(record: dict[str, Any], last_epoch: int) -> str:
    line = f"epoch {record['epoch']}/{last_epoch}: train_loss {record['train_loss']:.4f}"
    if record["val_loss"] is not None:
        line += f", val_loss {record['val_loss']:.4f}, val_accuracy {100 * record['val_accuracy']:.2f}%"
    return line + f" ({record['seconds']:.1f} s)"
