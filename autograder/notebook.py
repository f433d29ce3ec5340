"""Read a submitted notebook and pull out the code the hidden checks run on.

The checks never run inside the student's kernel. They run in a fresh process on
the code of the notebook's cells, taken from the notebook file:

* ``setup`` cells: read-only cells the instructor wrote (imports, constants);
  nbgrader restores their source from the gradebook before grading;
* ``solution`` cells: the student's answers.

Test cells, free-form scratch cells and markdown are left out, so demo runs and
plots in the notebook cost nothing at grading time.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, asdict
from pathlib import Path

# nbformat is imported where a notebook is read, not here: the checking process imports this module to load
# cells from JSON, and importing nbformat pulls in jsonschema's format checkers, among them rfc3987_syntax,
# which compiles ~35 Earley parsers at import (about 1 s here; python-jsonschema/jsonschema#1428).


class NotebookError(ValueError):
    """The file is not a notebook the grader can read (its message says why)."""


@dataclass(frozen=True)
class CodeCell:
    index: int  # position in the notebook, counting every cell from 0
    kind: str  # "setup" | "solution" | "test" | "other"
    grade_id: str | None
    source: str

    @property
    def label(self) -> str:
        """How feedback names the cell: its position and, if known, its id."""
        name = f"cell {self.index + 1}"
        return f"{name} ({self.grade_id})" if self.grade_id else name


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def strip_magics(source: str) -> str:
    """Turn IPython magics and shell escapes into comments (plain Python can't run them)."""
    if source.lstrip().startswith("%%"):
        return "\n".join("# " + line for line in source.splitlines())
    return "\n".join(_MAGIC.sub(r"\1pass  # \2", line) for line in source.splitlines())


def _kind(cell) -> tuple[str, str | None]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id = meta.get("grade_id")
    if meta.get("solution"):
        return "solution", grade_id
    if meta.get("grade"):
        return "test", grade_id
    if meta.get("locked"):
        return "setup", grade_id
    return "other", grade_id


def read_notebook(path: str | Path):
    """Load a notebook, or raise NotebookError with a message a person can act on."""
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path}: no such file")
    return parse_notebook(path.read_bytes(), str(path))


def parse_notebook(data: bytes, name: str):
    """A notebook from the bytes of a file called ``name``, or NotebookError saying what is wrong with it."""
    if not data:
        raise NotebookError(f"{name}: the file is empty")
    import nbformat
    import nbformat.reader

    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{name}: not a Jupyter notebook (not UTF-8 text: {exc})") from exc
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        raise NotebookError(f"{name}: not valid JSON ({exc}); was the notebook saved completely?") from exc
    except Exception as exc:  # nbformat raises several types for non-notebooks
        raise NotebookError(f"{name}: not a Jupyter notebook ({exc})") from exc
    if "cells" not in nb:
        raise NotebookError(f"{name}: not a Jupyter notebook (no cells)")
    return nb


def code_cells(nb) -> list[CodeCell]:
    """Every code cell with its nbgrader role, in notebook order."""
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        kind, grade_id = _kind(cell)
        cells.append(CodeCell(index, kind, grade_id, cell.get("source", "")))
    return cells


def gradable_code(nb) -> list[CodeCell]:
    """The cells the checks execute: setup and solution cells, magics neutralised."""
    return [
        CodeCell(c.index, c.kind, c.grade_id, strip_magics(c.source))
        for c in code_cells(nb)
        if c.kind in ("setup", "solution")
    ]


def dump_cells(cells: list[CodeCell], path: str | Path) -> None:
    Path(path).write_text(json.dumps([asdict(c) for c in cells]))


def load_cells(path: str | Path) -> list[CodeCell]:
    return [CodeCell(**d) for d in json.loads(Path(path).read_text())]
