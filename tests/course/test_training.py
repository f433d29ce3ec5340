"""Tests for course.training: fit, evaluate and History on a tiny linear model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course import History, TensorLoader, evaluate, fit


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well separated Gaussian blobs in 2-D."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=generator)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 2.0], [-2.0, -2.0]])
    return centers[y] + 0.5 * torch.randn(n, 2, generator=generator), y


@pytest.fixture
def loaders() -> tuple[TensorLoader, TensorLoader]:
    return TensorLoader(*_blobs(300, 0), batch_size=32), TensorLoader(*_blobs(200, 1), batch_size=100, shuffle=False)


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(2, 3)


def test_fit_learns_and_records(model, loaders):
    train_loader, test_loader = loaders
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before, _ = evaluate(model, test_loader)
    history = fit(model, train_loader, optimizer, epochs=4, val_loader=test_loader, progress=False)
    assert isinstance(history, History) and len(history) == 4
    assert history["epoch"] == [1, 2, 3, 4]
    assert set(history.last) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_loss"] < before
    assert history.last["val_accuracy"] > 0.95
    assert all(r["seconds"] >= 0 for r in history.records)
    assert len(history.batch_losses) == 4 * len(train_loader)
    assert (history.last["val_loss"], history.last["val_accuracy"]) == pytest.approx(evaluate(model, test_loader))
    assert model.training


def test_fit_train_loss_is_the_sample_weighted_mean(model):
    x, y = _blobs(10, 2)
    history = fit(model, TensorLoader(x, y, batch_size=4, shuffle=False), torch.optim.SGD(model.parameters(), lr=0.0))
    expected = (4 * history.batch_losses[0] + 4 * history.batch_losses[1] + 2 * history.batch_losses[2]) / 10
    assert history.last["train_loss"] == pytest.approx(expected)
    assert history.last["val_loss"] is None and history.last["val_accuracy"] is None
    assert history["val_accuracy"] == [None]


def test_fit_continues_a_history(model, loaders):
    train_loader, _ = loaders
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, train_loader, optimizer, epochs=2)
    same = fit(model, train_loader, optimizer, epochs=1, history=history)
    assert same is history and history["epoch"] == [1, 2, 3]
    assert len(history.batch_losses) == 3 * len(train_loader)


def test_fit_with_a_dataloader_and_scheduler(model):
    dataset = TensorDataset(*_blobs(64, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, DataLoader(dataset, batch_size=16, shuffle=True), optimizer, epochs=3, scheduler=scheduler,
                  val_loader=DataLoader(dataset, batch_size=64), device="cpu")
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    assert len(history) == 3 and 0.0 <= history.last["val_accuracy"] <= 1.0


def test_fit_with_reduce_lr_on_plateau(model, loaders):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    assert len(fit(model, loaders[0], optimizer, epochs=2, scheduler=scheduler)) == 2


def test_nan_loss_is_a_clear_error(model, loaders):
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = F.cross_entropy(output, target)
        return loss * math.nan if len(calls) == 3 else loss

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 3.*smaller learning rate") as error:
        fit(model, loaders[0], optimizer, loss_fn=loss_fn)
    assert "lr=0.1" in str(error.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_diverging_training_raises(model, loaders):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, loaders[0], optimizer, epochs=3, loss_fn=lambda out, y: (out**2).sum() * 1e30 + F.cross_entropy(out, y))


def test_progress_output(model, loaders, capsys, monkeypatch):
    fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, val_loader=loaders[1], progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: train_loss") and "val_accuracy" in lines[0]
    fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1))  # COURSE_PROGRESS=0 from conftest
    assert capsys.readouterr() == ("", "")
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1))
    assert capsys.readouterr().out.startswith("epoch 1/1")


def test_progress_bar_shows_the_running_loss_every_few_batches(model, monkeypatch):
    """The bar's loss is refreshed on the first batch and every _POSTFIX_EVERY batches (formatting it every
    batch cost a few per cent of a small model's time), and it is the running sample-weighted mean."""
    import tqdm.auto

    import course.training

    postfixes = []

    class RecordingBar(tqdm.auto.tqdm):
        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            postfixes.append(float(kwargs["loss"]))
            super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    x, y = _blobs(40 * 8, 4)
    history = fit(model, TensorLoader(x, y, batch_size=8), torch.optim.SGD(model.parameters(), lr=0.1), progress=True)
    every = course.training._POSTFIX_EVERY
    batches = [1] + list(range(every, 41, every))
    running = [sum(history.batch_losses[:b]) / b for b in batches]  # full batches: the sample-weighted mean
    assert postfixes == pytest.approx(running, abs=1e-4)


def test_evaluate_matches_a_manual_computation(model, loaders):
    _, test_loader = loaders
    x, y = test_loader.dataset.tensors
    with torch.no_grad():
        output = model(x)
    loss, accuracy = evaluate(model, test_loader)
    assert isinstance(loss, float) and isinstance(accuracy, float)
    assert loss == pytest.approx(F.cross_entropy(output, y).item(), rel=1e-5)
    assert accuracy == pytest.approx((output.argmax(1) == y).float().mean().item())
    assert evaluate(model, test_loader, loss_fn=nn.CrossEntropyLoss())[0] == pytest.approx(loss, rel=1e-5)


def test_evaluate_with_log_softmax_model(model, loaders):
    log_model = nn.Sequential(model, nn.LogSoftmax(dim=1))
    default = evaluate(log_model, loaders[1])
    nll = evaluate(log_model, loaders[1], loss_fn=F.nll_loss)
    assert default == pytest.approx(nll, rel=1e-5)
    assert default[0] == pytest.approx(evaluate(model, loaders[1])[0], rel=1e-5)


def test_evaluate_restores_the_mode(loaders):
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(module.training))
    model.train()
    evaluate(model, loaders[1])
    assert model.training and not any(seen) and all(m.training for m in model.modules())
    model.eval()
    evaluate(model, loaders[1])
    assert not model.training
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [])
    assert not model.training


def test_history_helpers():
    history = History()
    assert len(history) == 0 and history.last is None and history["train_loss"] == []
    history.records.append({"epoch": 1, "train_loss": 0.5, "val_loss": None, "val_accuracy": None, "seconds": 0.1})
    history.batch_losses.extend([0.7, 0.3])
    assert history["train_loss"] == [0.5] and history.last["epoch"] == 1
    data = history.to_dict()
    assert data == {"records": history.records, "batch_losses": [0.7, 0.3]}
    assert History(**data) == history
    with pytest.raises(KeyError, match="train_loss"):
        history["accuracy"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda(model):
    x, y = _blobs(256, 0)
    loader = TensorLoader(x.cuda(), y.cuda(), batch_size=64)
    history = fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, val_loader=loader, device="cuda")
    assert next(model.parameters()).is_cuda and history.last["val_accuracy"] > 0.9
    cpu_loader = TensorLoader(x, y, batch_size=64)  # batches are moved to the model's device
    assert 0.9 < evaluate(model, cpu_loader)[1] <= 1.0


def test_old_test_loader_name_still_works_with_a_warning(model, loaders):
    with pytest.warns(FutureWarning, match="val_loader"):
        history = fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1), test_loader=loaders[1],
                      progress=False)
    assert history.last["val_accuracy"] is not None
    with pytest.warns(FutureWarning, match="val_accuracy"):
        assert history["test_accuracy"] == history["val_accuracy"]
    with pytest.raises(TypeError, match="both val_loader and"):
        fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1), val_loader=loaders[1],
            test_loader=loaders[1], progress=False)


def test_callbacks_see_the_start_and_every_epoch(model, loaders):
    calls = []

    def record(epoch, model_, optimizer, history):
        calls.append((epoch, len(history), [p.detach().clone() for p in model_.parameters()]))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, loaders[0], optimizer, epochs=3, progress=False, callbacks=[record])
    assert [(e, n) for e, n, _ in calls] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert not torch.equal(calls[0][2][0], calls[1][2][0])  # the first call comes before any step
    # Continuing a history: the first call gets the epochs already done.
    calls.clear()
    fit(model, loaders[0], optimizer, epochs=1, progress=False, callbacks=[record], history=history)
    assert [(e, n) for e, n, _ in calls] == [(3, 3), (4, 4)]


def test_a_callback_returning_true_stops_training_and_all_callbacks_still_run(model, loaders):
    seen = []

    def stop_after_two(epoch, *_):
        return epoch == 2

    def watch(epoch, *_):
        seen.append(epoch)

    history = fit(model, loaders[0], torch.optim.SGD(model.parameters(), lr=0.1), epochs=5, progress=False,
                  callbacks=[stop_after_two, watch])
    assert len(history) == 2 and seen == [0, 1, 2]
