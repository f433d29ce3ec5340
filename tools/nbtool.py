"""Small helper for the lecture notebooks: build, execute, check and strip.

Usage (from the repository root, with the course virtual environment):

    python tools/nbtool.py build  SRC.py OUT.ipynb   # percent-format source -> notebook
    python tools/nbtool.py run    NB.ipynb [...]     # execute headless, report time/errors/stderr
    python tools/nbtool.py strip  NB.ipynb [...]     # remove outputs and execution counts
    python tools/nbtool.py check  NB.ipynb [...]     # fail if a notebook has outputs

Source format for ``build``: cells are separated by marker lines.
``# %%`` starts a code cell and ``# %% [markdown]`` starts a markdown cell;
markdown lines are taken verbatim (no comment prefix).  A marker may carry
``tags=a,b`` (e.g. ``# %% tags=hide-input``) which ends up in the cell metadata.

``run`` executes in a fresh ``python3`` kernel (the one of the interpreter that
runs this script) with the notebook's folder as working directory, prints the
wall time, the slowest cells, any error, and everything written to stderr that
is not a tqdm progress bar.  By default the executed copy is discarded; pass
``--save DIR`` to keep it (useful to look at plots), and ``--export-png DIR``
to write every image output as a PNG file.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from pathlib import Path

import nbformat

MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\S+))?\s*$")
TQDM = re.compile(r"(\d+%\|)|(it/s)|(s/it)|(\|\s*\d+/\d+ \[)")


def build(src: Path, out: Path) -> None:
    cells, kind, tags, buf = [], None, [], []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        cell = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = list(tags)
        cells.append(cell)

    for line in src.read_text().splitlines():
        m = MARKER.match(line)
        if m:
            flush()
            kind = "md" if m.group("md") else "code"
            tags = m.group("tags").split(",") if m.group("tags") else []
            buf = []
        else:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    strip_nb(nb)
    nbformat.validate(nb)
    nbformat.write(nb, out)
    print(f"wrote {out} ({len(cells)} cells)")


def strip_nb(nb) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    strip_nb(nb)
    nbformat.write(nb, path)
    print(f"stripped {path}")


def check(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    if dirty:
        print(f"{path}: cells with outputs: {dirty}")
    return not dirty


def run(path: Path, save: Path | None, export_png: Path | None, timeout: int) -> bool:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}},
                            record_timing=True)
    t0 = time.perf_counter()
    ok = True
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError and friends
        ok = False
        print(f"{path}: EXECUTION FAILED\n{exc}")
    wall = time.perf_counter() - t0
    timings, stderr = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ex = cell.metadata.get("execution", {})
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if start and end:
            from datetime import datetime
            f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
            timings.append(((f(end) - f(start)).total_seconds(), i))
        for out in cell.outputs:
            if out.output_type == "error":
                ok = False
                print(f"cell {i}: {out.ename}: {out.evalue}")
            if out.output_type == "stream" and out.name == "stderr":
                rest = [ln for ln in re.split(r"[\r\n]", out.text) if ln.strip() and not TQDM.search(ln)]
                if rest:
                    stderr.append((i, "\n".join(rest)))
    print(f"{path}: {'OK' if ok else 'FAILED'} in {wall:.1f} s wall")
    for secs, i in sorted(timings, reverse=True)[:6]:
        print(f"  cell {i:3d}: {secs:6.2f} s")
    for i, text in stderr:
        print(f"  stderr in cell {i}:\n    " + text.replace("\n", "\n    "))
    if stderr:
        ok = False
    if export_png:
        export_png.mkdir(parents=True, exist_ok=True)
        for i, cell in enumerate(nb.cells):
            for j, out in enumerate(cell.get("outputs", [])):
                data = out.get("data", {})
                if "image/png" in data:
                    (export_png / f"{path.stem}_cell{i:03d}_{j}.png").write_bytes(base64.b64decode(data["image/png"]))
    if save:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build"); b.add_argument("src", type=Path); b.add_argument("out", type=Path)
    r = sub.add_parser("run"); r.add_argument("nbs", type=Path, nargs="+")
    r.add_argument("--save", type=Path); r.add_argument("--export-png", type=Path)
    r.add_argument("--timeout", type=int, default=600)
    s = sub.add_parser("strip"); s.add_argument("nbs", type=Path, nargs="+")
    c = sub.add_parser("check"); c.add_argument("nbs", type=Path, nargs="+")
    a = p.parse_args(argv)
    if a.cmd == "build":
        build(a.src, a.out)
        return 0
    if a.cmd == "strip":
        for nb in a.nbs:
            strip(nb)
        return 0
    if a.cmd == "check":
        return 0 if all([check(nb) for nb in a.nbs]) else 1
    return 0 if all([run(nb, a.save, a.export_png, a.timeout) for nb in a.nbs]) else 1


if __name__ == "__main__":
    sys.exit(main())
