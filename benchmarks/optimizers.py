"""Time of one optimizer.step() on a 10M-parameter MLP: torch.optim against course.RuleOptimizer.

    python benchmarks/optimizers.py [--repeats 30] [--threads 1] [--quick]

The model is an MLP of ten 1000 x 1000 layers (10,010,000 float32 parameters in 20 tensors) on the CPU.
Gradients are pre-filled with fixed random tensors, so only optimizer.step() is timed: each optimizer
takes a few warm-up steps, then one timed step each in turn (A B C ... A B C ...) so that load on a
shared machine hits them alike; the figure is the median over --repeats steps (at least 20).

Adam: torch.optim.Adam with foreach=True, foreach=False and fused=True, and course.RuleOptimizer with
the reference rule of assignment 2 (autograder/references/optimizers.py). SGD with momentum 0.9: the
same with torch.optim.SGD and the reference `momentum` rule. Two extra rows separate the plumbing from
the rule: RuleOptimizer with a rule that does nothing (the plumbing alone: the loop over parameters),
and with Adam written without temporaries (torch's own single-tensor arithmetic): the reference rule's
`m / (1 - beta1**t)` and `v / (1 - beta2**t)` allocate and fill two extra 10M-element tensors a step,
a cost of the rule, not of RuleOptimizer. After the timed steps every optimizer has seen the same
gradients from the same start, so the parameters are compared with torch's: speed never costs
correctness. Always exits 0.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autograder.references.optimizers import adam, momentum  # noqa: E402
from course import RuleOptimizer  # noqa: E402

LR, MU, SEED, WARMUP = 1e-3, 0.9, 0, 3


def mlp(width: int, layers: int) -> nn.Module:
    torch.manual_seed(SEED)
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)])


def noop(param, grad, state, *, lr, **hyperparameters):
    """The plumbing alone: RuleOptimizer calls this for every parameter and nothing happens."""


def adam_in_place(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """The reference Adam with the bias corrections folded into scalars, as torch's single-tensor Adam
    does: one temporary (the denominator) instead of three. Same numbers up to rounding."""
    if "step" not in state:
        state["step"] = 0
        state["m"] = torch.zeros_like(param)
        state["v"] = torch.zeros_like(param)
    state["step"] += 1
    t, m, v = state["step"], state["m"], state["v"]
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = v.sqrt().div_(math.sqrt(1 - beta2**t)).add_(eps)
    param.addcdiv_(m, denom, value=-lr / (1 - beta1**t))


@dataclass
class Entry:
    label: str
    make: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    family: str  # "adam" or "sgd": which torch.optim optimizer its parameters are compared with
    kind: str  # "foreach", "for-loop", "fused", "rule", "plumbing"
    params: list[nn.Parameter] = field(default_factory=list)
    optimizer: torch.optim.Optimizer | None = None
    times: list[float] = field(default_factory=list)


def entries() -> list[Entry]:
    return [
        Entry("torch Adam(foreach=True)", lambda p: torch.optim.Adam(p, lr=LR, foreach=True), "adam", "foreach"),
        Entry("torch Adam(foreach=False)", lambda p: torch.optim.Adam(p, lr=LR, foreach=False), "adam", "for-loop"),
        Entry("torch Adam(fused=True)", lambda p: torch.optim.Adam(p, lr=LR, fused=True), "adam", "fused"),
        Entry("RuleOptimizer(reference adam)", lambda p: RuleOptimizer(p, adam, lr=LR), "adam", "rule"),
        Entry("RuleOptimizer(adam without temporaries)", lambda p: RuleOptimizer(p, adam_in_place, lr=LR),
              "adam", "rule"),
        Entry("torch SGD(momentum=0.9, foreach=True)",
              lambda p: torch.optim.SGD(p, lr=LR, momentum=MU, foreach=True), "sgd", "foreach"),
        Entry("torch SGD(momentum=0.9, foreach=False)",
              lambda p: torch.optim.SGD(p, lr=LR, momentum=MU, foreach=False), "sgd", "for-loop"),
        Entry("torch SGD(momentum=0.9, fused=True)",
              lambda p: torch.optim.SGD(p, lr=LR, momentum=MU, fused=True), "sgd", "fused"),
        Entry("RuleOptimizer(reference momentum)", lambda p: RuleOptimizer(p, momentum, lr=LR, mu=MU), "sgd", "rule"),
        Entry("RuleOptimizer(no-op rule): the plumbing alone", lambda p: RuleOptimizer(p, noop, lr=LR),
              "none", "plumbing"),
    ]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(width: int, layers: int, repeats: int, threads: int) -> None:
    torch.set_num_threads(threads)
    table = entries()
    reference = mlp(width, layers)
    generator = torch.Generator().manual_seed(1)
    grads = [torch.randn(p.shape, generator=generator) for p in reference.parameters()]
    n = sum(p.numel() for p in reference.parameters())
    for entry in table:
        entry.params = [nn.Parameter(p.detach().clone()) for p in reference.parameters()]
        for p, g in zip(entry.params, grads):
            p.grad = g.clone()
        entry.optimizer = entry.make(entry.params)
    for _ in range(WARMUP):  # state allocation, first-touch page faults, lazy init out of the timings
        for entry in table:
            entry.optimizer.step()
    loads = [os.getloadavg()[0]]
    for _ in range(repeats):
        for entry in table:
            start = time.perf_counter()
            entry.optimizer.step()
            entry.times.append(time.perf_counter() - start)
        loads.append(os.getloadavg()[0])

    print(f"\n== {n:,} parameters in {2 * layers} tensors (MLP of {layers} {width}x{width} layers), float32, CPU, "
          f"{threads} thread(s); median of {repeats} steps after {WARMUP} warm-up, interleaved; "
          f"1-min load {min(loads):.1f}-{max(loads):.1f}")
    med = {e.label: statistics.median(e.times) for e in table}
    base = {(e.family, e.kind): med[e.label] for e in table if e.kind in {"foreach", "for-loop"}}
    compare = {e.family: e for e in table if e.kind == "foreach"}
    print(f"{'optimizer':<48}{'median ms':>10}{'min':>8}{'max':>8}{'/ foreach':>10}{'/ for-loop':>11}  "
          f"{'GB/s':>5}  {'max |p - torch foreach|':>24}")
    state_tensors = {"adam": 2, "sgd": 1, "none": 0}
    for entry in table:
        m = med[entry.label]
        family = entry.family if entry.family != "none" else "adam"
        ratio_f = m / base[(family, "foreach")]
        ratio_l = m / base[(family, "for-loop")]
        # the least memory traffic of the update: read param, grad and state, write param and state
        traffic = (2 + 1 + 2 * state_tensors[entry.family]) * 4 * n if entry.family != "none" else 0
        gbs = f"{traffic / m / 1e9:5.1f}" if traffic else f"{'':>5}"
        if entry.family in compare and entry is not compare[entry.family]:
            diff = max((a - b).abs().max().item() for a, b in zip(entry.params, compare[entry.family].params))
            agree = f"{diff:24.1e}"
        else:
            agree = f"{'(reference)' if entry.family in compare else '':>24}"
        print(f"{entry.label:<48}{1e3 * m:>10.2f}{1e3 * min(entry.times):>8.2f}{1e3 * max(entry.times):>8.2f}"
              f"{ratio_f:>10.2f}{ratio_l:>11.2f}  {gbs}  {agree}")
    adam_rule = med["RuleOptimizer(reference adam)"]
    adam_fast = med["RuleOptimizer(adam without temporaries)"]
    plumbing = med["RuleOptimizer(no-op rule): the plumbing alone"]
    print(f"RuleOptimizer / torch foreach: Adam {adam_rule / base[('adam', 'foreach')]:.2f}, "
          f"SGD+momentum {med['RuleOptimizer(reference momentum)'] / base[('sgd', 'foreach')]:.2f}; "
          f"RuleOptimizer / torch for-loop: Adam {adam_rule / base[('adam', 'for-loop')]:.2f}, "
          f"SGD+momentum {med['RuleOptimizer(reference momentum)'] / base[('sgd', 'for-loop')]:.2f}")
    print(f"of the reference Adam rule's {1e3 * adam_rule:.1f} ms: plumbing {1e3 * plumbing:.2f} ms, "
          f"the rule's temporaries {1e3 * (adam_rule - adam_fast):.1f} ms, the update itself {1e3 * (adam_fast - plumbing):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per optimizer (default 30, at least 20)")
    parser.add_argument("--threads", default="1", help="comma-separated CPU thread counts (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: ten 300x300 layers (0.9M parameters)")
    args = parser.parse_args()
    repeats = max(20, args.repeats or 30)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    one, five, fifteen = os.getloadavg()
    print(f"machine: {cores} CPU cores ({cpu_name()}), torch {torch.__version__}, default threads "
          f"{torch.get_num_threads()}, measured with threads {threads}")
    print(f"load average at start: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)")
    width = 300 if args.quick else 1000
    for n in threads:
        run(width, 10, repeats, n)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
