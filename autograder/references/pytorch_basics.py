"""Reference answers for assignment 01_pytorch_basics, and the known mistakes.

The mistake functions reproduce what typical wrong answers compute, so that a
check can tell a student not only that a value is wrong but why it probably is.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# --- Task "tensors" -----------------------------------------------------------
def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    out = torch.zeros(labels.shape[0], num_classes, dtype=torch.float32, device=labels.device)
    out[torch.arange(labels.shape[0], device=labels.device), labels] = 1.0
    return out


def pairwise_sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)


def pairwise_distances_not_squared(a, b):
    return pairwise_sq_distances(a, b).sqrt()


# --- Task "mean_std" ------------------------------------------------------------
def mean_std(loader) -> tuple[float, float]:
    total = total_sq = 0.0
    count = 0
    for images, _ in loader:
        x = images.to(torch.float64)
        total += x.sum().item()
        total_sq += (x * x).sum().item()
        count += x.numel()
    mean = total / count
    return mean, (total_sq / count - mean * mean) ** 0.5


def mean_std_mistakes(loader) -> dict[str, tuple[float, float]]:
    """(mean, std) pairs that typical wrong answers return."""
    batches = [images.to(torch.float64) for images, _ in loader]
    allx = torch.cat([b.reshape(-1) for b in batches])
    return {
        "the mean and std of each batch were averaged; batches differ in size (the last one is smaller), "
        "so average over all pixels instead": (
            torch.stack([b.mean() for b in batches]).mean().item(),
            torch.stack([b.std(correction=0) for b in batches]).mean().item(),
        ),
        "the std of each image was averaged; the statistic is the std over all pixels of all images": (
            allx.mean().item(),
            torch.cat([b.reshape(b.shape[0], -1).std(dim=1, correction=0) for b in batches]).mean().item(),
        ),
        "the unbiased (N-1) std was used; the course asks for the population std (divide by N)": (
            allx.mean().item(),
            allx.std(correction=1).item(),
        ),
        "the variance was returned instead of the standard deviation (take the square root)": (
            allx.mean().item(),
            allx.var(correction=0).item(),
        ),
        "the root mean square was returned, sqrt(mean(x^2)): subtract the squared mean, sqrt(mean(x^2) - mean^2)": (
            allx.mean().item(),
            (allx * allx).mean().sqrt().item(),
        ),
    }


# --- Task "firstnet" --------------------------------------------------------------
class FirstNet(nn.Module):
    def __init__(self, image_size: int = 28 * 28):
        super().__init__()
        self.image_size = image_size
        self.fc0 = nn.Linear(image_size, 1000)
        self.fc1 = nn.Linear(1000, 50)
        self.fc2 = nn.Linear(50, 10)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.image_size)
        return F.relu(self.fc1(F.relu(self.fc0(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc2(self.hidden(x)), dim=1)


def firstnet_mistakes(model: FirstNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        flat = x.reshape(-1, model.image_size)
        h = model.hidden(x)
        logits = model.fc2(h)
        no_hidden_relu = model.fc2(model.fc1(model.fc0(flat)))
        return {
            "ReLU applied to the logits before log_softmax (the slide's bug): "
            "the last layer must output raw scores": F.log_softmax(F.relu(logits), dim=1),
            "the raw logits were returned; apply F.log_softmax(..., dim=1)": logits,
            "softmax probabilities were returned; return log-probabilities with F.log_softmax(..., dim=1)":
                F.softmax(logits, dim=1),
            "log_softmax over the wrong dimension (dim=0 normalises across the batch); use dim=1":
                F.log_softmax(logits, dim=0),
            "the ReLU between the hidden layers is missing":
                F.log_softmax(model.fc2(F.relu(model.fc1(model.fc0(flat)))), dim=1),
            "no ReLU at all between the layers": F.log_softmax(no_hidden_relu, dim=1),
            "sigmoid is used between the layers; the assignment asks for ReLU after fc0 and after fc1":
                F.log_softmax(model.fc2(torch.sigmoid(model.fc1(torch.sigmoid(model.fc0(flat))))), dim=1),
        }


# --- Task "train_epoch" -----------------------------------------------------------
def train_epoch(model, loader, optimizer, device, *, zero_grad=True, reduction="mean", report="weighted",
                order="zero_backward_step"):
    """One epoch of training; returns the sample-weighted mean loss.

    The keyword arguments reproduce typical mistakes for diagnosis only.
    """
    model.train()
    total, count, last, batch_means = 0.0, 0, 0.0, []
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        if zero_grad and order == "zero_backward_step":
            optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target, reduction=reduction)
        loss.backward()
        if order == "backward_zero_step":
            optimizer.zero_grad()
        optimizer.step()
        batch_loss = loss.item() / (len(target) if reduction == "sum" else 1)
        total += batch_loss * len(target)
        count += len(target)
        last = batch_loss
        batch_means.append(batch_loss)
    if report == "last":
        return last
    if report == "batch_mean":
        return sum(batch_means) / len(batch_means)
    return total / count


# --- Task "evaluate" ---------------------------------------------------------------
@torch.no_grad()
def evaluate(model, loader, device, num_classes: int = 10) -> dict:
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        output = model(data)
        total_loss += F.nll_loss(output, target, reduction="sum").item()
        pred = output.argmax(dim=1)
        correct += (pred == target).sum().item()
        count += len(target)
        idx = (target * num_classes + pred).cpu()
        confusion += torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    return {"loss": total_loss / count, "accuracy": correct / count, "confusion": confusion}


def evaluate_batch_mean_loss(model, loader, device) -> float:
    """What averaging the per-batch mean losses gives (wrong when batches differ in size)."""
    model.eval()
    with torch.no_grad():
        losses = [F.nll_loss(model(x.to(device)), y.to(device)).item() for x, y in loader]
    return sum(losses) / len(losses)


# --- predictions (Task 6): computed with torch, not typed in ---------------------------------------
def chain_shape() -> tuple[int, ...]:
    """The chain of tensor operations of the first prediction, run on zeros."""
    x = torch.zeros(64, 1, 28, 28)
    h = x.flatten(1)
    s = (h @ torch.zeros(784, 1000)).unsqueeze(1)
    t = s + torch.zeros(5, 1)
    return tuple(t.sum(dim=-1).T.shape)


def parameter_count(image_size: int, biases: bool = True) -> int:
    model = FirstNet(image_size)
    return sum(p.numel() for name, p in model.named_parameters() if biases or not name.endswith("bias"))


def logit_gradient(targets=(3, 7), num_classes: int = 10, reduction: str = "mean") -> float:
    """d loss / d z[0, targets[0]] for all-zero logits z of shape (len(targets), num_classes)."""
    z = torch.zeros(len(targets), num_classes, dtype=torch.float64, requires_grad=True)
    F.nll_loss(F.log_softmax(z, dim=1), torch.tensor(targets), reduction=reduction).backward()
    return z.grad[0, targets[0]].item()


CIFAR_SIZE = 3 * 32 * 32
PREDICTIONS = {  # name: (answer, {likely cause: the value that mistake gives}, what the question asks, tolerance)
    "predict_shape": (
        chain_shape(),
        {"that is the shape before .T, which swaps the two dimensions": chain_shape()[::-1],
         "s + torch.zeros(5, 1) broadcasts: shapes align from the right, (64, 1, 1000) with (5, 1), so the "
         "size-1 dimension of s becomes 5 and t is (64, 5, 1000)": (1, 64)},
        "the shape of out at the end of the chain", {}),
    "predict_num_parameters": (
        parameter_count(CIFAR_SIZE),
        {"the biases are missing: each nn.Linear(n_in, n_out) has n_in * n_out weights and n_out biases":
             parameter_count(CIFAR_SIZE, biases=False),
         "that is FirstNet for 28 x 28 gray images; with image_size = 3 * 32 * 32 = 3072 only fc0 changes":
             parameter_count(28 * 28)},
        "the number of parameters of FirstNet(image_size=3 * 32 * 32)", {"rtol": 0.0, "atol": 0.5}),
    "predict_initial_loss": (
        math.log(10),
        {"the logarithm is natural (ln): -ln(1/10) = ln 10, not log10(10)": 1.0,
         "that is the probability of the right class; the loss is -ln of it": 0.1,
         "the loss is the negative log-probability: -ln(1/10) is positive": -math.log(10),
         "that is the loss for 2 classes (ln 2); there are 10": math.log(2)},
        "the mean nll_loss of a network that gives each of the 10 classes probability 1/10", {"rtol": 1e-2}),
    "predict_gradient": (
        logit_gradient(),
        {"the loss is the mean over a batch of 2, so each sample's gradient is divided by 2":
             logit_gradient(reduction="sum"),
         "the gradient of -log softmax(z)[y] with respect to z is softmax(z) - one_hot(y): for the target "
         "class 1/10 - 1, halved by the mean": 0.1 / 2,
         "the sign: increasing the target's logit lowers the loss, so its gradient is negative":
             -logit_gradient(),
         "the softmax part is missing: d/dz_y of -(z_y - log sum exp z) is softmax(z)_y - 1, not -1":
             -1.0 / 2},
        "z.grad[0, 3] after F.nll_loss(F.log_softmax(z, dim=1), tensor([3, 7])).backward() with z = zeros(2, 10)",
        {}),
}


# --- the experiment (Task 7): assignment 2's protocol with plain SGD and a budget of epochs ------------------
EXPERIMENT = {"target": 0.91, "max_epochs": 3, "optimizer": "torch.optim.SGD (no momentum)"}


def validation_accuracy(lr: float, epochs: int) -> float:
    """FirstNet (seed 0) trained ``epochs`` epochs of plain SGD at ``lr`` (batch 64, TensorLoader seed 0) on the
    4,000 offline training digits less assignment 2's validation split of 1,000, then its validation accuracy."""
    from autograder.references import optimizers

    return optimizers.validation_accuracy(lr, lambda params: torch.optim.SGD(params, lr=lr), epochs=epochs)
