"""Reference answers for assignment 01_pytorch_basics, and the known mistakes.

The mistake functions reproduce what typical wrong answers compute, so that a
check can tell a student not only that a value is wrong but why it probably is.
"""
from __future__ import annotations

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
