"""Reference augmentations and transfer-learning helpers for assignment 04_augmentation_transfer.

Conventions (the assignment states them in every docstring):

* images are float tensors of shape (N, C, H, W); every augmentation returns a new tensor of the same shape,
  dtype and device and leaves its input unchanged;
* randomness comes only from the ``generator`` argument, a CPU ``torch.Generator``: draw on the CPU with
  ``generator=generator`` and move the draws to ``x.device``, so the same seed gives the same output on every
  device; every sample gets its own draw (per-sample randomness);
* translate: integer shifts (dy, dx), each uniform on {-max_shift, ..., max_shift}, content moves down by dy and
  right by dx, what comes in from outside is 0 (zero padding);
* hflip: each sample is mirrored left-right (``x.flip(-1)``) with probability p, independently;
* rotate: by ``degrees`` counter-clockwise about the image center, bilinear, 0 outside, as
  ``torchvision.transforms.v2.functional.rotate`` with ``InterpolationMode.BILINEAR``; random_rotate draws
  one angle per sample uniformly from [-max_degrees, max_degrees];
* gaussian_noise: x + std * N(0, 1), an independent value for every element, not clamped;
* cutout: per sample one size x size square lying wholly inside the image (top-left corner uniform over the
  allowed positions) set to 0 in every channel;
* a *parameterized layer* is a module that owns parameters itself (``list(m.parameters(recurse=False))``
  non-empty), in the order of ``model.modules()``; BatchNorm counts; freezing the first ones sets
  ``requires_grad`` False, and a BatchNorm whose parameters are all frozen is kept in eval mode while
  training (``train_mode``) so its running statistics stay those of the pretraining data.

``MISTAKES`` (name: student-facing cause) lists typical mistakes; ``mistake=NAME`` in the functions makes one,
so a check can recognize it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from autograder.references import grader_defaults

MISTAKES = {
    "same_draw": "every sample of the batch got the same random draw; draw one value per sample (shape (N, ...)), "
                 "so each image is transformed differently",
    "labels_changed": "the labels changed; augment the images only: a transformed image keeps its label",
    "bn_drift": "the running statistics of a frozen BatchNorm changed; model.train() puts every BatchNorm in "
                "training mode, so put the frozen ones back in eval mode (their statistics are the pretraining "
                "data's)",
    "head_frozen": "the classification head is frozen (requires_grad False); the last k layers, and always a new "
                   "head, must train",
    "optimizer_all": "the optimizer holds frozen parameters too; build it over the trainable ones only "
                     "(p.requires_grad), as the assignment asks",
}


# --- augmentations ---------------------------------------------------------------------------------
def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError("expected a float tensor of shape (N, C, H, W)")


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """One image (C, H, W) or a batch moved down by dy and right by dx, zeros coming in."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def translate(x: torch.Tensor, max_shift: int, generator: torch.Generator, mistake: str | None = None) -> torch.Tensor:
    _check(x)
    n = 1 if mistake == "same_draw" else len(x)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).expand(len(x), 2)
    return torch.stack([shift(x[i], int(dy), int(dx)) for i, (dy, dx) in enumerate(shifts.tolist())]) \
        if len(x) else x.clone()


def hflip(x: torch.Tensor, p: float, generator: torch.Generator, mistake: str | None = None) -> torch.Tensor:
    _check(x)
    n = 1 if mistake == "same_draw" else len(x)
    flip = (torch.rand(n, generator=generator) < p).expand(len(x)).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def rotate(x: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Each sample i by degrees[i] counter-clockwise about the center, bilinear, zeros outside."""
    _check(x)
    n, _, h, w = x.shape
    angle = torch.as_tensor(degrees, dtype=torch.float64).reshape(-1).expand(n) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output coordinates (normalized, x right, y down) to input coordinates: the inverse
    # rotation. Counter-clockwise on screen (y down) by a: input = [[cos, -sin], [sin, cos]] @ output, with the
    # aspect ratio accounted for (normalized coordinates scale x by 2/w and y by 2/h).
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False).to(x.device)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator,
                  mistake: str | None = None) -> torch.Tensor:
    _check(x)
    n = 1 if mistake == "same_draw" else len(x)
    angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * max_degrees
    return rotate(x, angles.expand(len(x)))


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator, mistake: str | None = None) -> torch.Tensor:
    _check(x)
    shape = (1, *x.shape[1:]) if mistake == "same_draw" else x.shape
    noise = torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + std * noise


def cutout(x: torch.Tensor, size: int, generator: torch.Generator, mistake: str | None = None) -> torch.Tensor:
    _check(x)
    n, _, h, w = x.shape
    if not 0 <= size <= min(h, w):
        raise ValueError(f"cutout size must be between 0 and {min(h, w)}, got {size}")
    m = 1 if mistake == "same_draw" else n
    top = torch.randint(0, h - size + 1, (m,), generator=generator).expand(n)
    left = torch.randint(0, w - size + 1, (m,), generator=generator).expand(n)
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + size)
              & (cols >= left[:, None, None]) & (cols < left[:, None, None] + size))
    return x.masked_fill(inside[:, None].to(x.device), 0.0)


def augment_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's choice for digits: small translations and rotations (no flips: a mirrored digit is not one)."""
    return random_rotate(translate(x, 2, generator), 10.0, generator), y


# --- the model the assignment uses ------------------------------------------------------------------
class SmallCNN(nn.Module):
    """conv(1->16) BN ReLU pool, conv(16->32) BN ReLU pool, fc1 (32*7*7 -> 64) ReLU, fc2 (64 -> classes)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


# --- transfer learning ------------------------------------------------------------------------------
def parameterized_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if list(m.parameters(recurse=False))]


def freeze_all_but_last(model: nn.Module, k: int, mistake: str | None = None) -> nn.Module:
    layers = parameterized_layers(model)
    if not 0 <= k <= len(layers):
        raise ValueError(f"k must be between 0 and {len(layers)}, got {k}")
    for i, layer in enumerate(layers):
        trainable = i >= len(layers) - k
        if mistake == "head_frozen" and i == len(layers) - 1:
            trainable = False
        for p in layer.parameters(recurse=False):
            p.requires_grad_(trainable)
    return model


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    parent, name, old = None, None, None
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Linear):
                parent, name, old = module, child_name, child
    if old is None:
        raise ValueError("the model has no nn.Linear to replace")
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                    device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, name, new)
    return model


def train_mode(model: nn.Module, mistake: str | None = None) -> nn.Module:
    model.train()
    if mistake == "bn_drift":
        return model
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()
    return model


def make_optimizer(model: nn.Module, lr: float, mistake: str | None = None) -> torch.optim.Optimizer:
    params = list(model.parameters()) if mistake == "optimizer_all" else \
        [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr)


def fine_tune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int,
              generator: torch.Generator, augment=None, mistake: str | None = None) -> nn.Module:
    opt = make_optimizer(model, lr, mistake=mistake)
    for _ in range(epochs):
        train_mode(model, mistake=mistake)
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb, yb = augment(xb, yb, generator)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    model.eval()
    return model


# --- the experiment ---------------------------------------------------------------------------------
# The hidden checks' experiment: SmallCNN trained from scratch (torch.manual_seed(0)) on the first N_TRAIN digits
# of the fixed offline MNIST split, pixels in [0, 1], with the student's augment_batch, by fine_tune's loop (the
# reference's), evaluated in eval mode on the offline test split.
EXPERIMENT = {"n_train": 300, "epochs": 30, "lr": 2e-3, "batch_size": 50, "target": 0.92}
OFFLINE_ROOT = "/nonexistent-so-the-fixed-offline-split-is-used"


def experiment_data(device="cpu"):
    import course

    train = course.load_mnist(train=True, root=OFFLINE_ROOT, download=False)
    test = course.load_mnist(train=False, root=OFFLINE_ROOT, download=False)
    x, y = course.to_tensors(train, mean=0.0, std=1.0, device=device)
    xt, yt = course.to_tensors(test, mean=0.0, std=1.0, device=device)
    n = EXPERIMENT["n_train"]
    return x[:n], y[:n], xt, yt


def run_experiment(augment, device="cpu", seed=0) -> float:
    with grader_defaults():
        return _run_experiment(augment, device, seed)


def _run_experiment(augment, device="cpu", seed=0) -> float:
    e = EXPERIMENT
    x, y, xt, yt = experiment_data(device)
    torch.manual_seed(seed)
    model = SmallCNN().to(device)
    g = torch.Generator().manual_seed(seed)
    fine_tune(model, x, y, e["epochs"], e["lr"], e["batch_size"], g, augment=augment)
    with torch.no_grad():
        return (model(xt).argmax(1) == yt).double().mean().item()
