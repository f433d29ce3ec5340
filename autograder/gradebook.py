"""SQLite gradebooks that several nbgrader processes can write at the same time (on one machine).

nbgrader opens its SQLite gradebook with SQLite's defaults: a rollback journal, in which a writer locks
readers out, and a busy timeout of 5 s, after which a waiting connection fails with "database is locked".
Importing this module makes every SQLite connection SQLAlchemy opens in the process (nbgrader's
``Gradebook`` included) use

* WAL journal mode: readers never wait for the writer, and writers wait only for each other;
* a long busy timeout (:data:`BUSY_TIMEOUT_S`, ``ODL_SQLITE_BUSY_TIMEOUT`` seconds in the environment):
  a writer that finds the database locked waits for its turn instead of failing.

Other databases (PostgreSQL, ...) are left alone. WAL needs shared memory between the writers, so a SQLite
gradebook serves one machine only; graders on several machines share a server database (``--db``).

Two ways in:

* ``import autograder.gradebook`` in an nbgrader_config.py: every nbgrader command of the course;
* ``python -m autograder.gradebook ARGS...``: ``nbgrader ARGS...`` with the hook installed (what
  ``odl-grade autograde`` runs for each student).

``ODL_GRADING_CPUS`` (e.g. ``"2,3"``) in the environment of ``python -m autograder.gradebook`` pins nbgrader,
its kernels and check processes to those CPUs and caps OpenMP/MKL threads to their number, so W graders
sharing a machine do not fight over every core (``odl-grade autograde`` gives each worker its share).
"""
from __future__ import annotations

import os
import sqlite3
import sys

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_S = float(os.environ.get("ODL_SQLITE_BUSY_TIMEOUT", "600"))


def _on_connect(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        # The timeout first: switching to WAL takes a lock too, and must wait like everything else.
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")  # persistent in the file; a no-op once set
    finally:
        cursor.close()


def install() -> None:
    """Register the hook for every SQLAlchemy engine in this process (idempotent; done on import)."""
    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)


install()


CPUS_VARIABLE = "ODL_GRADING_CPUS"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def parse_cpus(text: str) -> set[int]:
    """``"0,2-3"`` -> {0, 2, 3}; ValueError with the reason for anything else."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        lo, hi = int(first), int(last or first)
        if lo < 0 or hi < lo:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(lo, hi + 1))
    if not cpus:
        raise ValueError(f"no CPUs in {text!r}")
    return cpus


def pin_to(cpus: set[int]) -> None:
    """This process and everything it starts: only ``cpus``, and that many threads in OpenMP/MKL pools."""
    os.sched_setaffinity(0, cpus)
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(len(cpus)))


def main(argv: list[str] | None = None) -> None:
    """Run nbgrader with ``argv`` (default: this process's arguments) under the hook."""
    # nbgrader imports nbformat, whose jsonschema format checkers import rfc3987_syntax when it is installed;
    # that compiles ~35 Earley parsers at import, about 1 s of nbgrader's 2 s start here, for the "iri" formats
    # that no notebook or Jupyter schema uses (python-jsonschema/jsonschema#1428). jsonschema skips a format
    # checker whose import fails, so this process does without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    from autograder.checkserver import ENV as CHECK_SERVER_ENV, process_server

    cpus = os.environ.pop(CPUS_VARIABLE, "")
    if cpus and hasattr(os, "sched_setaffinity"):
        pin_to(parse_cpus(cpus))

    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["autograde"] and not os.environ.get(CHECK_SERVER_ENV):
        # Start this grader's check server first: it warms up (torch, pytest, torch._dynamo: ~3 s of CPU) while
        # nbgrader starts (1 s) and the kernel runs, instead of after (autograder.checkserver.process_server).
        process_server()
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    sys.argv = ["nbgrader", *args]
    nbgrader_main()


if __name__ == "__main__":
    main()
