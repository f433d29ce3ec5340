"""Plumbing that turns a per-parameter update rule into a real ``torch.optim`` optimizer.

Introduced in lecture 03 (Gradient descent: an ``sgd`` rule), lecture 04 (Momentum:
PyTorch's momentum as a rule whose buffer lives in ``state``) and used in assignment 2,
where you write the course's rules yourself. A *rule* is a plain function

    rule(param, grad, state, **hyperparameters) -> None

that updates ``param`` **in place** (``param.add_(...)``, ``param.sub_(...)``),
reads the gradient ``grad`` without modifying it, and keeps whatever it must
remember between steps in the dict ``state`` (one dict per parameter, empty at
the first step). :class:`RuleOptimizer` calls it for every parameter that has a
gradient, under ``torch.no_grad()``, with the hyper-parameters of the
parameter's group, so learning-rate schedulers (which change ``group["lr"]``)
work unchanged.

No update rule lives here: the lectures and the assignment write them.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

Rule = Callable[..., None]


class RuleOptimizer(torch.optim.Optimizer):
    """Apply ``rule`` to every parameter with a gradient; hyper-parameters become the group defaults.

    >>> def my_sgd(param, grad, state, *, lr):
    ...     param.sub_(lr * grad)                                    # in place; no state needed
    >>> opt = RuleOptimizer(model.parameters(), my_sgd, lr=0.1)        # doctest: +SKIP
    >>> opt.zero_grad(); loss.backward(); opt.step()                   # doctest: +SKIP

    ``lr`` is required (schedulers need it); any other keyword is passed to the rule,
    by name, at every step: ``RuleOptimizer(params, rule, lr=0.01, mu=0.9)`` calls
    ``rule(param, grad, state, lr=0.01, mu=0.9)``. ``state`` is ``self.state[param]``, so
    whatever a rule stores there is saved by ``state_dict()``. A rule that replaces
    ``param`` (``param = param - ...``) instead of updating it in place changes nothing.
    """

    def __init__(self, params: Iterable, rule: Rule, **hyperparameters):
        if not callable(rule):
            raise TypeError(f"rule must be a function rule(param, grad, state, **hyperparameters), got {rule!r}")
        if "lr" not in hyperparameters:
            raise TypeError("RuleOptimizer needs a learning rate: RuleOptimizer(params, rule, lr=...)")
        if hyperparameters["lr"] < 0:
            raise ValueError(f"invalid learning rate {hyperparameters['lr']}")
        super().__init__(params, defaults=hyperparameters)
        self.rule = rule

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # Only the rule's own hyper-parameters: schedulers add keys such as "initial_lr".
            hyperparameters = {k: group[k] for k in self.defaults}
            for param in group["params"]:
                if param.grad is None:
                    continue
                self.rule(param, param.grad, self.state[param], **hyperparameters)
        return loss

    def __repr__(self) -> str:
        name = getattr(self.rule, "__name__", repr(self.rule))
        hyper = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"RuleOptimizer({name}, {hyper})"
