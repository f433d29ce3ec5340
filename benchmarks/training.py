"""FirstNet training throughput for one epoch, against the matmul-bound limit of this machine.

    python benchmarks/training.py [--repeats 5] [--threads 1,2] [--quick] [--profile]

Model: FirstNet (784 -> 1000 -> 50 -> 10, ReLU between layers, log_softmax on the logits; 835,560
parameters), batch 64, SGD(lr=0.01, momentum=0.9), one epoch over the 60,000 training images (MNIST
when it can be loaded in full, else the full Fashion-MNIST: the same shapes). Variants, run
interleaved (one epoch of each in turn, per thread count, repeated) so that load on a shared machine
hits them alike:

(a)  the seed's pipeline: a torchvision-style dataset (PIL image -> ToTensor -> Normalize, one sample
     at a time) + DataLoader(batch_size=64, shuffle=True) + a plain training loop;
     also the DataLoader alone (no model), which is the pipeline's own cost;
     an in-memory tensor loop: x, y tensors, randperm indexing, a hand-written loop (reference);
(b)  the course's fast path that students use: course.fast_loaders + course.fit(progress=False);
     also with the progress bar, and with SGD(fused=True) (the optimizer is the caller's choice);
(c)  the matmul-bound limit: 6 * parameters * samples FLOPs divided by the GEMM rate measured at the
     shapes this model runs (forward, and both backward products of every layer); (c') counts only
     the GEMMs autograd really runs (no input gradient for the first layer).

Prints, per device and thread count: median wall seconds per epoch, min/max, ratio to (c), the
median CPU seconds of this process and its ratio to (c)'s (steadier than wall time when other jobs
share the cores), test accuracy after the epoch; then the GEMM rates (a large square product and
each of the model's products) and the verdicts on the targets (b) <= 1.3 x (c), (a)/(b) >= 3.5.
--profile adds a breakdown of (b)'s epoch into its phases (gather, forward, backward, step, ...).
On CUDA, when torch.cuda.is_available(), the same variants run on the GPU too (--devices).
Always exits 0: a benchmark reports, it does not fail.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import course  # noqa: E402
from course.data import _STATS  # noqa: E402

BATCH, LR, MOMENTUM, SEED = 64, 0.01, 0.9, 0
TARGET_B_OVER_C, TARGET_A_OVER_B = 1.3, 3.5
ENV_OF_NOTE = ["OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD"]


from autograder.references.pytorch_basics import FirstNet  # noqa: E402  (the one reference FirstNet)


LAYERS = [(784, 1000), (1000, 50), (50, 10)]  # (in, out) of each nn.Linear
PARAMETERS = sum(i * o + o for i, o in LAYERS)
assert PARAMETERS == 835_560


# --------------------------------------------------------------------------- machine


def load_now() -> float:
    return os.getloadavg()[0]


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_lines(threads: list[int]) -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    one, five, fifteen = os.getloadavg()
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return [
        f"machine: {cores} CPU cores ({cpu_name()}), torch {torch.__version__}, "
        f"default threads {torch.get_num_threads()}, measured with threads {threads}, CUDA: {cuda}",
        f"load average at start: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min); environment: "
        + (", ".join(f"{k}={os.environ[k]}" for k in ENV_OF_NOTE if k in os.environ) or "no OMP_/MALLOC_ settings"),
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    name: str
    train: course.ImageSplit
    test: course.ImageSplit
    mean: float
    std: float
    limit: int | None = None
    test_limit: int | None = None
    per_device: dict = field(default_factory=dict)  # device -> tensors and loaders

    def on(self, device: torch.device) -> dict:
        if device not in self.per_device:  # built once, outside the timings, as a notebook builds them once
            train_loader, test_loader = course.fast_loaders(
                self.name, batch_size=BATCH, test_batch_size=1000, device=device,
                limit=self.limit, test_limit=self.test_limit, seed=SEED,
            )
            x, y = train_loader.dataset.tensors
            self.per_device[device] = {"x": x, "y": y, "fast_train": train_loader, "test": test_loader}
        return self.per_device[device]


def load_data(which: str, limit: int | None, test_limit: int | None) -> Data:
    name = which
    if which == "auto":  # MNIST when the full 60,000 can be had (online or already downloaded)
        name = "mnist" if len(course.load_mnist(train=True)) == 60_000 else "fashion-mnist"
    load = course.load_mnist if name == "mnist" else course.load_fashion_mnist
    train, test = load(train=True), load(train=False)
    if limit is not None:  # the subsets course.fast_loaders(limit=..., seed=SEED) takes
        train = train.subset(limit, seed=SEED)
    if test_limit is not None:
        test = test.subset(test_limit, seed=SEED)
    mean, std = _STATS[name]
    return Data(name, train, test, mean, std, limit, test_limit)


# --------------------------------------------------------------------------- variants


def new_model(device: torch.device, fused: bool = False) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(SEED)
    model = FirstNet().to(device)
    extra = {"fused": True} if fused else {}
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, **extra)


def seed_loader(data: Data) -> DataLoader:
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((data.mean,), (data.std,))])
    generator = torch.Generator().manual_seed(SEED)
    return DataLoader(data.train.to_dataset(transform), batch_size=BATCH, shuffle=True, generator=generator)


def plain_loop(model, optimizer, batches, device) -> None:
    model.train()
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()


def run_seed(data: Data, device: torch.device) -> nn.Module:
    model, optimizer = new_model(device)
    plain_loop(model, optimizer, seed_loader(data), device)
    return model


def run_dataloader_only(data: Data, device: torch.device) -> None:
    for x, y in seed_loader(data):
        x, y = x.to(device), y.to(device)


def run_tensor_loop(data: Data, device: torch.device) -> nn.Module:
    tensors = data.on(device)
    x, y = tensors["x"], tensors["y"]
    model, optimizer = new_model(device)
    model.train()
    order = torch.randperm(len(x), device=device)
    for start in range(0, len(x), BATCH):
        index = order[start : start + BATCH]
        xb, yb = x[index], y[index]
        optimizer.zero_grad()
        loss = F.nll_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
    return model


def run_fit(data: Data, device: torch.device, progress: bool = False, fused: bool = False) -> nn.Module:
    model, optimizer = new_model(device, fused=fused)
    loader = data.on(device)["fast_train"]
    if progress:  # the bar and the summary line are drawn, into a sink so they do not garble the table
        sink = io.StringIO()
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            course.fit(model, loader, optimizer, progress=True)
    else:
        course.fit(model, loader, optimizer, progress=False)
    return model


@dataclass
class Variant:
    key: str
    label: str
    run: Callable[[Data, torch.device], nn.Module | None]
    samples: list[float] = field(default_factory=list)  # wall seconds per epoch
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process per epoch
    accuracy: list[float] = field(default_factory=list)


def variants() -> list[Variant]:
    return [
        Variant("a", "(a) seed: PIL+ToTensor+Normalize, DataLoader, loop", run_seed),
        Variant("a_data", "    (a)'s DataLoader alone, no model", run_dataloader_only),
        Variant("loop", "in-memory tensor loop (randperm, hand loop)", run_tensor_loop),
        Variant("b", "(b) course.fast_loaders + course.fit", run_fit),
        Variant("b_bar", "    (b) with the progress bar", lambda d, dev: run_fit(d, dev, progress=True)),
        Variant("b_fused", "    (b) with SGD(fused=True)", lambda d, dev: run_fit(d, dev, fused=True)),
    ]


def timed(variant: Variant, data: Data, device: torch.device) -> None:
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    model = variant.run(data, device)
    synchronize(device)
    variant.samples.append(time.perf_counter() - start)
    variant.cpu.append(time.process_time() - cpu)
    if model is not None:
        variant.accuracy.append(course.evaluate(model, data.on(device)["test"])[1])


# --------------------------------------------------------------------------- GEMM rates and the limit


@dataclass
class Gemm:
    """One matrix product of a training step: (m x k) @ (k x n), as autograd calls it."""

    name: str
    m: int
    k: int
    n: int
    kind: str  # "forward" (addmm with W.t()), "grad_input" (dY @ W), "grad_weight" (dY.t() @ X)
    executed: bool  # False: counted by 6*P*N, but autograd skips it (the input needs no gradient)

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def step_gemms(batch: int) -> list[Gemm]:
    gemms = []
    for layer, (fan_in, fan_out) in enumerate(LAYERS):
        gemms += [
            Gemm(f"fc{layer} forward   ({batch}x{fan_in})@({fan_in}x{fan_out})", batch, fan_in, fan_out, "forward", True),
            Gemm(f"fc{layer} grad input ({batch}x{fan_out})@({fan_out}x{fan_in})", batch, fan_out, fan_in,
                 "grad_input", layer > 0),
            Gemm(f"fc{layer} grad weight ({fan_out}x{batch})@({batch}x{fan_in})", fan_out, batch, fan_in,
                 "grad_weight", True),
        ]
    return gemms


def gemm_call(gemm: Gemm, device: torch.device) -> Callable[[], torch.Tensor]:
    """The call autograd makes for this product, with the same memory layouts (transposed views)."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device)

    if gemm.kind == "forward":  # nn.Linear: addmm(bias, X, W.t()), W stored (out, in)
        x, w, b = rand(gemm.m, gemm.k), rand(gemm.n, gemm.k), rand(gemm.n)
        return lambda: torch.addmm(b, x, w.t())
    if gemm.kind == "grad_input":  # dX = dY @ W, W stored (out, in)
        dy, w = rand(gemm.m, gemm.k), rand(gemm.k, gemm.n)
        return lambda: torch.mm(dy, w)
    dy, x = rand(gemm.k, gemm.m), rand(gemm.k, gemm.n)  # dW = dY.t() @ X, dY stored (batch, out)
    return lambda: torch.mm(dy.t(), x)


def seconds_per_call(call: Callable[[], torch.Tensor], flops: int, device: torch.device, budget_s: float) -> float:
    """Median of 5 timings of a loop of calls sized to take about ``budget_s`` in all (after a warm-up)."""
    for _ in range(3):
        call()
    synchronize(device)
    start = time.perf_counter()
    call()
    synchronize(device)
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, int(budget_s / 5 / once))
    times = []
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            call()
        synchronize(device)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


@dataclass
class GemmRates:
    per_gemm: dict[str, list[float]] = field(default_factory=dict)  # name -> GFLOP/s per round (micro-benchmark)
    peak: list[float] = field(default_factory=list)  # square GEMM GFLOP/s per round
    limit: list[tuple[float, float]] = field(default_factory=list)  # (c): (wall s, CPU s) per round
    executed: list[tuple[float, float]] = field(default_factory=list)  # (c'): (wall s, CPU s) per round
    at_shapes: list[float] = field(default_factory=list)  # GFLOP/s per round: 6*P*N / wall time of (c)
    square: int = 0


def gemm_epoch(calls: list[Callable[[], torch.Tensor]], samples: int, device: torch.device) -> tuple[float, float]:
    """Wall and CPU seconds to run the step's products for every batch of an epoch, timed as one block
    like the epochs themselves (so that load on a shared machine affects both alike)."""
    steps = -(-samples // BATCH)
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        for call in calls:
            call()
    synchronize(device)
    scale = samples / (steps * BATCH)  # the last batch is partial; 6*P*N counts exactly N samples
    return (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale


def measure_gemms(rates: GemmRates, samples: int, square: int, device: torch.device, budget_s: float) -> None:
    gemms = step_gemms(BATCH)
    calls = [gemm_call(gemm, device) for gemm in gemms]
    for call in calls:
        call()
    # (c): the 9 products of a step (6*P*batch FLOPs, the biases aside) for every batch, as one timed block.
    wall, cpu = gemm_epoch(calls, samples, device)
    rates.limit.append((wall, cpu))
    rates.at_shapes.append(6 * PARAMETERS * samples / wall / 1e9)
    # Per-product rates (median of short loops); their times split (c) into what autograd runs and what it skips.
    seconds = {}
    for gemm, call in zip(gemms, calls):
        seconds[gemm.name] = seconds_per_call(call, gemm.flops, device, budget_s)
        rates.per_gemm.setdefault(gemm.name, []).append(gemm.flops / seconds[gemm.name] / 1e9)
    share = sum(seconds[g.name] for g in gemms if g.executed) / sum(seconds.values())
    rates.executed.append((wall * share, cpu * share))
    a = torch.randn(square, square, device=device)
    b = torch.randn(square, square, device=device)
    s = seconds_per_call(lambda: torch.mm(a, b), 2 * square**3, device, 4 * budget_s)
    rates.peak.append(2 * square**3 / s / 1e9)
    rates.square = square


# --------------------------------------------------------------------------- report


def fmt_row(label: str, wall: list[float], cpu: list[float], limit: tuple[float, float], accuracy) -> str:
    med, med_cpu = statistics.median(wall), statistics.median(cpu)
    acc = f"{100 * statistics.median(accuracy):7.2f}%" if accuracy else f"{'':>8}"
    return (f"{label:<54}{med:>8.2f}{min(wall):>7.2f}{max(wall):>7.2f}{med / limit[0]:>7.2f}"
            f"{med_cpu:>8.2f}{med_cpu / limit[1]:>7.2f}  {acc}")


def report(title: str, table: list[Variant], rates: GemmRates, samples: int, loads: list[float]) -> dict:
    limit = (statistics.median(w for w, _ in rates.limit), statistics.median(c for _, c in rates.limit))
    print(f"\n== {title}: one epoch of {samples:,} samples, batch {BATCH}; {len(table[0].samples)} runs each, "
          f"interleaved; 1-min load {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'variant':<54}{'median s':>8}{'min':>7}{'max':>7}{'x (c)':>7}{'CPU s':>8}{'x (c)':>7}  {'test acc':>8}")
    for v in table:
        print(fmt_row(v.label, v.samples, v.cpu, limit, v.accuracy))
    for label, runs in (("(c) matmul-bound limit: 6*P*N FLOPs at the at-shapes rate", rates.limit),
                        ("(c') the part of (c) autograd runs (no fc0 grad input)", rates.executed)):
        print(fmt_row(label, [w for w, _ in runs], [c for _, c in runs], limit, None))
    med = {v.key: statistics.median(v.samples) for v in table}
    cpu = {v.key: statistics.median(v.cpu) for v in table}
    b_over_c, b_over_c_cpu = med["b"] / limit[0], cpu["b"] / limit[1]
    a_over_b, a_over_b_cpu = med["a"] / med["b"], cpu["a"] / cpu["b"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(f"targets (wall; CPU time): (b)/(c) = {b_over_c:.2f}; {b_over_c_cpu:.2f} "
          f"(<= {TARGET_B_OVER_C}: {verdict(b_over_c <= TARGET_B_OVER_C)}; {verdict(b_over_c_cpu <= TARGET_B_OVER_C)}), "
          f"(a)/(b) = {a_over_b:.2f}; {a_over_b_cpu:.2f} "
          f"(>= {TARGET_A_OVER_B}: {verdict(a_over_b >= TARGET_A_OVER_B)}; {verdict(a_over_b_cpu >= TARGET_A_OVER_B)}); "
          f"(b)/tensor loop = {med['b'] / med['loop']:.2f}")
    print(f"GEMM rates, GFLOP/s (median over rounds): {rates.square}x{rates.square} square "
          f"{statistics.median(rates.peak):.1f}; at the model's shapes {statistics.median(rates.at_shapes):.1f} "
          f"(6*P*N / wall time of (c)); each product alone:")
    for name, values in rates.per_gemm.items():
        print(f"    {name:<50}{statistics.median(values):>8.1f}")
    return {"limit": limit[0], **med}


def profile_phases(data: Data, device: torch.device, threads: int, budget_s: float) -> None:
    """Where one epoch of (b) goes: fit's per-batch steps timed with perf_counter (about 1 us a timer).

    torch.profiler is not used: on this workload it slowed the GEMMs about 5x (a 3 s epoch took 15 s),
    so its shares are wrong. The GEMM part of the forward and backward phases comes from the
    per-product rates measured here, the rest is element-wise work, autograd and Python."""
    torch.set_num_threads(threads)
    loader = data.on(device)["fast_train"]
    phases = dict.fromkeys(["gather", "zero_grad", "forward+loss", "backward", "optimizer.step", "bookkeeping"], 0.0)
    for _ in range(2):  # the first epoch warms up
        model, optimizer = new_model(device)
        totals = dict.fromkeys(phases, 0.0)
        losses, batches = [], iter(loader)
        t0 = time.perf_counter()
        while True:
            try:
                x, y = next(batches)
            except StopIteration:
                break
            t1 = time.perf_counter()
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            t2 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            synchronize(device)
            t3 = time.perf_counter()
            value = loss.item()  # fit reads it before the step: the NaN check
            loss.backward()
            synchronize(device)
            t4 = time.perf_counter()
            optimizer.step()
            synchronize(device)
            t5 = time.perf_counter()
            if value != value or value in (float("inf"), float("-inf")):
                raise FloatingPointError(value)
            losses.append(value)
            t6 = time.perf_counter()
            for key, (a, b) in zip(totals, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6)]):
                totals[key] += b - a
            t0 = time.perf_counter()
        phases = totals
    gemms = step_gemms(BATCH)
    per_batch = {g.name: seconds_per_call(gemm_call(g, device), g.flops, device, budget_s) for g in gemms}
    steps = len(loader)
    gemm_time = {
        "forward+loss": steps * sum(per_batch[g.name] for g in gemms if g.kind == "forward"),
        "backward": steps * sum(per_batch[g.name] for g in gemms if g.kind != "forward" and g.executed),
    }
    total = sum(phases.values())
    print(f"\n== where (b)'s epoch goes, {device}, {threads} thread(s), 1-min load {load_now():.1f} "
          f"(the same steps as course.fit, timed per batch; GEMM part from the products' own rates)")
    print(f"{'phase':<18}{'s/epoch':>9}{'share':>8}{'GEMMs s':>9}{'rest s':>8}")
    for key, seconds in phases.items():
        g = gemm_time.get(key)
        extra = f"{g:>9.2f}{seconds - g:>8.2f}" if g is not None else ""
        print(f"{key:<18}{seconds:>9.2f}{100 * seconds / total:>7.0f}%{extra}")
    print(f"{'total':<18}{total:>9.2f}{'':>8}{sum(gemm_time.values()):>9.2f}{total - sum(gemm_time.values()):>8.2f}")
    p = sum(par.numel() for par in new_model(device)[0].parameters())
    print(f"optimizer.step() streams at least 5 x {4 * p / 1e6:.1f} MB a batch (read param, grad, momentum; "
          f"write param, momentum): {5 * 4 * p * steps / phases['optimizer.step'] / 1e9:.1f} GB/s here")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="epochs per variant (default 5, --quick 2)")
    parser.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts (default 1,2)")
    parser.add_argument("--dataset", default="auto", choices=["auto", "mnist", "fashion-mnist"])
    parser.add_argument("--devices", default="cpu,cuda", help="cpu and/or cuda (cuda is skipped when unavailable)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6,000 training samples, 2 repeats")
    parser.add_argument("--profile", action="store_true", help="also break one epoch of (b) down into its phases")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]

    for line in machine_lines(threads):
        print(line)
    limit, test_limit = (6_000, 2_000) if args.quick else (None, None)
    data = load_data(args.dataset, limit, test_limit)
    samples = len(data.train)
    print(f"data: {data.name}, {samples:,} train / {len(data.test):,} test images"
          f"{' (--quick subset)' if args.quick else ''}; {repeats} runs per variant, interleaved")

    devices = []
    for name in [d.strip() for d in args.devices.split(",") if d.strip()]:
        if name == "cuda" and not torch.cuda.is_available():
            print("cuda: not available on this machine (torch.cuda.is_available() is False) - skipped")
            continue
        devices.append(torch.device(name))
    # CPU: one table per thread count. CUDA: the CPU thread count only matters for (a)'s decoding; use the largest.
    settings = [(d, t) for d in devices for t in (threads if d.type == "cpu" else [max(threads)])]
    tables = {s: variants() for s in settings}
    gemms = {s: GemmRates() for s in settings}
    loads = {s: [] for s in settings}
    square = 1024 if args.quick else 2048
    budget = 0.1 if args.quick else 0.3

    warm = Data(data.name, data.train.subset(20 * BATCH), data.test.subset(500), data.mean, data.std, 20 * BATCH, 500)
    for device, n in settings:  # first-call costs (MKL/cuBLAS init, imports, allocator) out of the timings
        torch.set_num_threads(n)
        data.on(device)  # the tensors and loaders, built once as a notebook builds them once
        for variant in tables[(device, n)]:
            variant.run(warm, device)
        synchronize(device)
    for _ in range(repeats):
        for setting in settings:
            device, n = setting
            torch.set_num_threads(n)
            loads[setting].append(load_now())
            for variant in tables[setting]:
                timed(variant, data, device)
            measure_gemms(gemms[setting], samples, square, device, budget)
            loads[setting].append(load_now())
        print(f"  round done, 1-min load {load_now():.2f}", flush=True)

    summary = {}
    for setting in settings:
        device, n = setting
        title = f"{device}, {n} thread(s)" if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name()})"
        summary[setting] = report(title, tables[setting], gemms[setting], samples, loads[setting])
    cpu = [s for s in settings if s[0].type == "cpu"]
    if len(cpu) > 1:
        print("\nthreads side by side (median s per epoch): "
              + "; ".join(f"{n} thread(s): (a) {summary[(d, n)]['a']:.2f}, (b) {summary[(d, n)]['b']:.2f}, "
                          f"(c) {summary[(d, n)]['limit']:.2f}" for d, n in cpu))
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.profile:
        for device, n in settings:
            profile_phases(data, device, n, budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
