"""Time to execute each lecture and solution notebook on this machine, and the kernel's peak memory.

    python benchmarks/notebooks.py [--repeats 3] [NOTEBOOK ...]    # default: every lecture and solution notebook

Targets (issue: lectures run fast on 2 CPU cores): each notebook <= 60 s, all together <= 10 min.
Prints one row per notebook: median wall time over the repeats, min/max, peak kernel RSS, and the verdict.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
TARGET_S, TOTAL_TARGET_S = 60.0, 600.0


def run_once(path: Path) -> tuple[float, float]:
    """Execute one notebook; return (seconds, peak kernel RSS in MiB)."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            km = client.km
            pid = getattr(getattr(km, "provisioner", None), "pid", None) if km else None
            if pid:
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                    peak[0] = max(peak[0], rss)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    return seconds, peak[0] / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("COURSE_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    paths = args.notebooks or sorted((REPO / "lectures").glob("*.ipynb")) + sorted((REPO / "solutions").glob("*/*.ipynb"))
    print(f"{len(paths)} notebooks, {args.repeats} runs each, {os.cpu_count()} CPU cores, offline data, "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min)")
    print(f"{'notebook':<52}{'median s':>10}{'min':>8}{'max':>8}{'peak MiB':>10}  target {TARGET_S:.0f} s")
    total, ok = 0.0, True
    for path in paths:
        runs = [run_once(path) for _ in range(args.repeats)]
        times = [t for t, _ in runs]
        med = statistics.median(times)
        total += med
        ok &= med <= TARGET_S
        name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
        print(f"{name:<52}{med:>10.1f}{min(times):>8.1f}{max(times):>8.1f}{max(m for _, m in runs):>10.0f}  "
              f"{'ok' if med <= TARGET_S else 'OVER'}", flush=True)
    print(f"{'total (medians)':<52}{total:>10.1f}{'':>26}  target {TOTAL_TARGET_S:.0f} s: "
          f"{'ok' if total <= TOTAL_TARGET_S else 'OVER'}; load after {os.getloadavg()[0]:.1f}")
    return 0 if ok and total <= TOTAL_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
