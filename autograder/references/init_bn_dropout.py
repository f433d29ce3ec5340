"""Reference initializers, BatchNorm and Dropout for assignment 03_init_bn_dropout, and typical mistakes.

Conventions (the assignment states them in every docstring):

* fans of a weight of shape (out, in, *kernel): fan_in = in * prod(kernel), fan_out = out * prod(kernel)
  (a Linear weight is (out, in); a Conv2d weight is (out, in, kh, kw)), as torch.nn.init computes them;
* Xavier/Glorot (Glorot & Bengio, 2010): Var(w) = 2 / (fan_in + fan_out); the uniform version draws from
  U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), whose variance a^2 / 3 is the same;
* He/Kaiming (He et al., 2015), fan-in mode with the ReLU gain sqrt(2): Var(w) = 2 / fan_in;
* every initializer fills the tensor it is given in place (under torch.no_grad()) and returns it;
* BatchNorm over (N, C) or (N, C, H, W), as torch.nn.BatchNorm1d / BatchNorm2d: in training the batch
  mean and the *biased* batch variance normalize (Ioffe & Szegedy, Algorithm 1); the running estimates
  are updated as running <- (1 - momentum) * running + momentum * new, momentum 0.1 on the *new* value,
  and the running variance takes the *unbiased* batch variance (m / (m - 1) times the biased one);
  in eval the running estimates normalize and nothing is updated; gamma and beta are the parameters
  ``weight`` (ones) and ``bias`` (zeros); buffers ``running_mean`` (zeros) and ``running_var`` (ones);
* Dropout (inverted, as torch.nn.Dropout): in training each element is zeroed with probability p and
  the survivors are multiplied by 1 / (1 - p), so the expectation is unchanged and eval is the identity.

``BatchNorm(..., mistake=NAME)`` and ``Dropout(..., mistake=NAME)`` make one of the mistakes in
``BN_MISTAKES`` / ``DROPOUT_MISTAKES`` (keys are the names, values the student-facing causes), so a
check can run them on the same inputs and recognize a wrong result.
"""
from __future__ import annotations

import math

import torch
from torch import nn


# --- initializers -----------------------------------------------------------------------------
def compute_fans(tensor: torch.Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError("fans need a weight with at least 2 dimensions (out, in, *kernel)")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    fan_in, fan_out = compute_fans(tensor)
    with torch.no_grad():
        return tensor.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    fan_in, fan_out = compute_fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-a, a)


def kaiming_normal_(tensor: torch.Tensor) -> torch.Tensor:
    fan_in, _ = compute_fans(tensor)
    with torch.no_grad():
        return tensor.normal_(0.0, math.sqrt(2.0 / fan_in))


def expected_std(name: str, fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """The standard deviation each initializer must give."""
    if name == "kaiming_normal_":
        return math.sqrt(2.0 / fan_in)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


# --- batch normalization ----------------------------------------------------------------------
BN_MISTAKES = {
    "unbiased_normalize": "the batch is normalized with the unbiased (N-1) variance; normalize with the biased "
                          "variance (divide by N), keep the unbiased one for running_var only",
    "momentum_swapped": "momentum is applied to the wrong term: running <- (1 - momentum) * running + "
                        "momentum * batch value (momentum 0.1 weighs the new value, as in PyTorch)",
    "running_var_biased": "running_var is updated with the biased variance; PyTorch keeps the unbiased "
                          "(N-1) batch variance in the running estimate",
    "no_affine": "the output does not use gamma and beta (self.weight and self.bias): y = weight * x_hat + bias",
    "all_dims": "the statistics are over the wrong dimensions: for (N, C, H, W) input each channel gets its own "
                "mean and variance, over dims (0, 2, 3)",
    "update_in_eval": "the running statistics change in eval mode; update them only while training",
    "batch_stats_in_eval": "eval mode normalizes with the batch's statistics; in eval use running_mean and "
                           "running_var",
}


class BatchNorm(nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, mistake: str | None = None):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.mistake = num_features, eps, momentum, mistake
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _dims(self, x):
        if x.dim() == 4 and self.mistake == "all_dims":
            return (0, 1, 2, 3)
        return (0,) if x.dim() == 2 else (0, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 4):
            raise ValueError(f"expected (N, C) or (N, C, H, W) input, got {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.dim() - 2)
        use_batch = self.training or self.mistake == "batch_stats_in_eval"
        if use_batch:
            dims = self._dims(x)
            mean = x.mean(dim=dims, keepdim=True)
            var = x.var(dim=dims, keepdim=True, unbiased=self.mistake == "unbiased_normalize")
            if self.training or self.mistake == "update_in_eval":
                self._update(x, dims, mean, var)
        else:
            if self.mistake == "update_in_eval":
                dims = self._dims(x)
                self._update(x, dims, x.mean(dim=dims, keepdim=True), x.var(dim=dims, keepdim=True, unbiased=False))
            mean, var = self.running_mean.reshape(shape), self.running_var.reshape(shape)
        x_hat = (x - mean) / torch.sqrt(var + self.eps)
        if self.mistake == "no_affine":
            return x_hat
        return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)

    def _update(self, x, dims, mean, var):
        m = math.prod(x.shape[d] for d in dims)
        var = var.detach()
        if self.mistake not in ("running_var_biased", "unbiased_normalize"):  # the latter's var is unbiased already
            var = var * m / max(m - 1, 1)
        k = 1 - self.momentum if self.mistake == "momentum_swapped" else self.momentum
        with torch.no_grad():  # a one-element statistic (all_dims) broadcasts over the channels
            self.running_mean.mul_(1 - k).add_(mean.detach().reshape(-1), alpha=k)
            self.running_var.mul_(1 - k).add_(var.reshape(-1), alpha=k)


# --- dropout ---------------------------------------------------------------------------------
DROPOUT_MISTAKES = {
    "not_rescaled": "the kept elements are not rescaled: inverted dropout multiplies them by 1 / (1 - p), so "
                    "the expected output equals the input and eval needs no correction",
    "active_in_eval": "dropout is active in eval mode; in eval (model.eval(), self.training False) it must return "
                      "the input unchanged",
    "keep_probability": "p is used as the probability of keeping an element; in PyTorch's convention p is the "
                        "probability of zeroing it",
}


class Dropout(nn.Module):
    def __init__(self, p: float = 0.5, mistake: str | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p, self.mistake = p, mistake

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.training and self.mistake != "active_in_eval") or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0
        drop = 1 - self.p if self.mistake == "keep_probability" else self.p
        mask = (torch.rand_like(x) >= drop).to(x.dtype)
        scale = 1.0 if self.mistake == "not_rescaled" else 1.0 / (1.0 - drop)
        return x * mask * scale


# --- the experiment ---------------------------------------------------------------------------
# The hidden checks' experiment: make_mlp(depth, width, batchnorm=True) trained with plain SGD at a learning rate
# where the same network without batch normalization fails, on the fixed offline MNIST split, evaluated in eval mode.
EXPERIMENT = {"depth": 10, "width": 64, "lr": 0.2, "batch_size": 64, "epochs": 2, "target": 0.80}
OFFLINE_ROOT = "/nonexistent-so-the-fixed-offline-split-is-used"  # course.load_mnist then uses its offline split


def make_mlp(depth: int, width: int, batchnorm: bool, dropout: float = 0.0, n_in: int = 784, n_out: int = 10,
             bn_class=BatchNorm, dropout_class=Dropout, init=kaiming_normal_) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    size = n_in
    for _ in range(depth):
        linear = nn.Linear(size, width)
        init(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if batchnorm:
            layers.append(bn_class(width))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(dropout_class(dropout))
        size = width
    head = nn.Linear(size, n_out)
    init(head.weight)
    nn.init.zeros_(head.bias)
    layers.append(head)
    return nn.Sequential(*layers)
