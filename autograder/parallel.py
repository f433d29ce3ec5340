"""Grade every submission of an assignment in parallel: W local workers, or a Dask cluster.

``nbgrader autograde`` grades one submission after another. Here one unit of work is one
student: ``nbgrader autograde ASSIGNMENT --student=ID --force`` in its own process (run through
:mod:`autograder.gradebook`, so a SQLite gradebook takes concurrent writers), in the course folder,
with a time limit; W of them run at a time.

* Local (default): a pool of W threads, each driving one nbgrader process at a time. The
  gradebook can be the course's SQLite file: WAL mode and a long busy timeout make writers
  wait for each other instead of failing with "database is locked".
* Dask (``dask_address``): one task per student on a ``distributed`` cluster; every worker
  runs the same :func:`grade_student`. The workers must see the course folder at the same
  path (a shared filesystem), run the same environment, and reach the gradebook: a server
  database such as PostgreSQL (``db_url="postgresql://user@host:5432/db"``). SQLite is for
  one machine only (its locks do not work across machines or over NFS); a SQLite gradebook
  with workers on other hosts is refused.

Before the parallel part, a short sequential pass creates or updates every student and their
submission rows in the gradebook, so the workers only update existing rows.

A submission whose grading fails or runs out of time is reported as failed, with the last
lines of its nbgrader log (the whole log is in ``grading_logs/<assignment>/<student>.log``),
and every automatic score of that submission is set to 0: no stale score from an earlier
run survives. A grading that leaves a score above a cell's maximum in the gradebook is treated
the same way (no grading can earn more than the points; something wrote the gradebook that should
not have). The batch always goes on. The summary (score, max score, status, seconds, the
notes the grader recorded in each autograded notebook) is written to
``grading_summary_<assignment>.json`` and ``.csv`` in the course folder.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import autograder.gradebook  # noqa: F401  (WAL and a busy timeout for SQLite gradebooks in this process too)
from autograder.checkserver import ENV as CHECK_SERVER_ENV, CheckServer
from autograder.gradebook import CPUS_VARIABLE, parse_cpus
from autograder.release import NBGRADER_ENTRIES, tool_env

DEFAULT_TIMEOUT = 1800.0  # seconds per submission
DASK_CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler
LOG_TAIL_LINES = 15
LOG_FOLDER = "grading_logs"
SUMMARY_PREFIX = "grading_summary_"

GRADED, FAILED = "graded", "failed"


class GradingError(Exception):
    """Bad input (course folder, assignment, database, Dask address): the message says what, in one line."""


@dataclass(frozen=True)
class Course:
    """What grading needs to know of a course folder, read from its nbgrader_config.py."""

    root: Path  # CourseDirectory.root (the --course folder unless the config says otherwise)
    folder: Path  # the --course folder: nbgrader runs here, and reads its nbgrader_config.py here
    course_id: str
    db_url: str
    db_given: bool  # given on the command line or changed by normalize_db_url: nbgrader gets --db too
    directory_structure: str
    submitted: str
    autograded: str

    def path(self, step: str, student: str, assignment: str) -> Path:
        return self.root / self.directory_structure.format(
            nbgrader_step=step, student_id=student, assignment_id=assignment)


@dataclass(frozen=True)
class Job:
    """One student's grading: everything :func:`grade_student` needs, on this machine or a Dask worker."""

    folder: str
    assignment: str
    student: str
    course_id: str
    db_url: str
    db_given: bool
    autograded: str  # the student's autograded folder
    log: str
    timeout: float
    cpus: tuple[int, ...] = ()  # pin nbgrader and its kernels to these CPUs (empty: no pinning)
    check_server: str = ""  # socket of a warm check server on this machine (empty: fresh checking processes)


@dataclass
class StudentResult:
    student: str
    status: str  # GRADED or FAILED
    score: float | None  # from the gradebook after grading (0 for the automatic part of a failed one)
    max_score: float | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)  # interference found: the submission earned nothing
    error: str = ""  # why it failed, then the last lines of nbgrader's log
    log: str = ""
    host: str = ""


@dataclass
class Summary:
    assignment: str
    course: str
    db: str  # the gradebook's URL, password hidden
    runner: str  # "2 local workers" / "dask tcp://..."
    started: str
    seconds: float
    results: list[StudentResult]
    json_path: Path | None = None
    csv_path: Path | None = None

    @property
    def graded(self) -> int:
        return sum(r.status == GRADED for r in self.results)

    @property
    def tampered(self) -> int:
        return sum(bool(r.tampering) for r in self.results)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == GRADED for r in self.results)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


# ---------------------------------------------------------------- the course and the gradebook


def ensure_tools_on_path() -> None:
    """nbgrader's Gradebook runs ``alembic`` from PATH when it creates a database: this interpreter's bin first."""
    os.environ["PATH"] = tool_env()["PATH"]


def load_course(folder: str | Path, db_url: str | None = None) -> Course:
    """Read the course folder's nbgrader_config.py like nbgrader does; ``db_url`` overrides its gradebook."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise GradingError(f"course folder not found: {folder}")
    config = Config()
    config_file = folder / "nbgrader_config.py"
    if config_file.exists():
        try:
            config = PyFileConfigLoader(config_file.name, path=str(folder)).load_config()
        except Exception as exc:
            raise GradingError(f"cannot read {config_file}: {first_line(exc)}") from None
    coursedir = CourseDirectory(config=config)
    if "root" not in config.CourseDirectory:
        coursedir.root = str(folder)
    if db_url:
        coursedir.db_url = db_url
    url = normalize_db_url(coursedir.db_url, folder)
    return Course(root=Path(coursedir.root), folder=folder, course_id=coursedir.course_id, db_url=url,
                  db_given=bool(db_url) or url != coursedir.db_url, directory_structure=coursedir.directory_structure,
                  submitted=coursedir.submitted_directory, autograded=coursedir.autograded_directory)


def normalize_db_url(url: str, folder: Path) -> str:
    """The URL nbgrader and this module use for ``url``.

    * a relative SQLite path is relative to the course folder (where nbgrader runs): made absolute;
    * ``postgresql://`` names SQLAlchemy's default PostgreSQL driver, psycopg 3 since SQLAlchemy 2.1; the
      course installs psycopg2 (``psycopg2-binary``), so without psycopg 3 it becomes ``postgresql+psycopg2://``.
    """
    import importlib.util

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return url  # check_db_url says what is wrong
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not os.path.isabs(parsed.database):
        return parsed.set(database=str(folder / parsed.database)).render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return url


def check_db_url(url: str) -> None:
    """A clear error for a URL SQLAlchemy cannot use, or a SQLite gradebook that is not there."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise GradingError(f"not a database URL: {url!r} (expected e.g. sqlite:////path/to/gradebook.db "
                           f"or postgresql://user@host:5432/dbname)") from None
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise GradingError(f"unknown database type {parsed.drivername!r} in {hide_password(url)}") from None
    except ImportError as exc:
        raise GradingError(f"no driver for {hide_password(url)}: {first_line(exc)}") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise GradingError(f"{url!r}: a gradebook shared by several processes must be a SQLite file")
        if not Path(path).exists():
            raise GradingError(f"no gradebook at {path}: run 'nbgrader generate_assignment ASSIGNMENT' "
                               f"in the course folder first")


def open_gradebook(course: Course):
    """nbgrader's Gradebook on the course's database, or GradingError saying why it cannot be opened."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SQLAlchemyError

    check_db_url(course.db_url)
    ensure_tools_on_path()
    try:
        return Gradebook(course.db_url, course.course_id)
    except (SQLAlchemyError, ImportError, OSError, subprocess.CalledProcessError) as exc:
        raise GradingError(f"cannot open the gradebook {hide_password(course.db_url)}: "
                           f"{first_line(getattr(exc, 'orig', None) or exc)}") from None


def find_students(course: Course, assignment: str) -> list[str]:
    """Students with a submitted folder for ``assignment``, sorted (nbgrader's own glob and pattern)."""
    template = str(course.path(course.submitted, "\0", assignment))
    pattern = glob.escape(template).replace("\0", "*")
    student = "(?P<student_id>[^" + re.escape(os.sep) + "]+)"
    regex = re.compile(re.escape(template).replace(re.escape("\0"), student) + "$")
    students = []
    for path in glob.glob(pattern):
        match = regex.match(path)
        if match and os.path.isdir(path):
            students.append(match.group("student_id"))
    return sorted(students)


def read_timestamp(folder: Path):
    """The submission's timestamp.txt as a datetime; None when absent or unreadable (nbgrader then reports it)."""
    from nbgrader.utils import parse_utc

    from autograder.intake import read_timestamp_text

    text = (read_timestamp_text(str(folder)) or "").strip()  # a plain file only: a FIFO here would hang
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError):
        return None


def register_students(course: Course, assignment: str, students: list[str]) -> None:
    """The sequential pre-pass: every student and submission row exists before the workers start.

    ``nbgrader autograde`` creates them itself, but several processes creating rows at once can
    race (two inserts of one row); after this pass they only update rows that exist.
    """
    from nbgrader.api import MissingEntry
    from sqlalchemy.exc import SAWarning

    with open_gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's add_submission makes SQLAlchemy warn about its own autoflush; the rows are right
        warnings.simplefilter("ignore", SAWarning)
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(sorted(a.name for a in gb.assignments)) or "none"
            raise GradingError(f"unknown assignment {assignment!r}: not in the gradebook "
                               f"{hide_password(course.db_url)} (known: {known}); run 'nbgrader "
                               f"generate_assignment {assignment}' first") from None
        for student in students:
            gb.update_or_create_student(student)
            timestamp = read_timestamp(course.path(course.submitted, student, assignment))
            if timestamp is not None:
                gb.update_or_create_submission(assignment, student, timestamp=timestamp)
            else:
                gb.update_or_create_submission(assignment, student)


def zero_auto_scores(db_url: str, course_id: str, assignment: str, student: str) -> None:
    """Every automatic score of the submission to 0 (manual scores stay): nothing stale after a failure."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
        gb.db.commit()


def impossible_scores(db_url: str, course_id: str, assignment: str, student: str) -> list[str]:
    """Grades of the submission above their maximum (or below 0), as "notebook/cell: score > max" sentences.

    No grading can earn more than a cell's points: such a score means something wrote the gradebook
    that should not have (a bug in a check, or a submission that got at the database).
    """
    from nbgrader.api import Gradebook, MissingEntry

    found = []
    with Gradebook(db_url, course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return []
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                for kind, value in (("automatic", grade.auto_score), ("manual", grade.manual_score)):
                    if value is not None and grade.max_score is not None and (
                            value > grade.max_score + 1e-9 or value < 0):
                        found.append(f"{notebook.name}/{grade.name}: {kind} score {value:g} is outside "
                                     f"0..{grade.max_score:g}")
    return found


def read_score(db_url: str, course_id: str, assignment: str, student: str) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        submission = gb.find_submission(assignment, student)
        return float(submission.score), float(submission.max_score)


def read_metadata(autograded: Path, key: str) -> list[str]:
    """``metadata["autograder"][key]`` of each autograded notebook (named when there are several)."""
    paths = sorted(autograded.glob("*.ipynb"))
    found_all = []
    for path in paths:
        try:
            metadata = json.loads(path.read_text()).get("metadata", {})
        except (OSError, ValueError) as exc:
            if key == "notes":
                found_all.append(f"{path.name}: could not read the autograded notebook ({first_line(exc)})")
            continue
        found = (metadata.get("autograder") or {}).get(key) or []
        found_all.extend(f"{path.stem}: {n}" if len(paths) > 1 else str(n) for n in found)
    return found_all


def read_notes(autograded: Path) -> list[str]:
    """The grader's notes on each autograded notebook (a dead kernel, a repaired structure, ...)."""
    return read_metadata(autograded, "notes")


def read_tampering(autograded: Path) -> list[str]:
    """What the grader found interfering with grading in each autograded notebook (it earned no points)."""
    return read_metadata(autograded, "tampering")


# ---------------------------------------------------------------- one student


_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()


def autograde_command(job: Job) -> list[str]:
    """nbgrader autograde for one student, with the SQLite hook (see autograder.gradebook)."""
    cmd = [sys.executable, "-m", NBGRADER_ENTRIES["course"], "autograde", job.assignment,
           f"--student={glob.escape(job.student)}", "--force"]  # nbgrader reads it as a glob
    if job.db_given:
        cmd.append(f"--db={job.db_url}")
    return cmd


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group and every process below it (Jupyter kernels start their own sessions)."""
    import psutil

    try:
        below = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        below = []
    own_group = os.getpgrp()
    for pid in [proc.pid] + [p.pid for p in below]:
        try:
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in below:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        proc.kill()


def kill_running() -> None:
    """Stop every grading process this process started (on Ctrl-C)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        kill_tree(proc)


def run_logged(cmd: list[str], cwd: str, log: Path, timeout: float,
               env: dict[str, str] | None = None) -> tuple[int, bool]:
    """Run ``cmd`` in a new session with its output in ``log``; return (exit status, timed out).

    On time-out it is killed with everything it started. ``env``: extra environment variables.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**tool_env(), **(env or {})}, start_new_session=True)
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
        try:
            try:
                return proc.wait(timeout=timeout), False
            except subprocess.TimeoutExpired:
                kill_tree(proc)
                return proc.wait(), True
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc)


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with log.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines)).rstrip()
    except OSError:
        return ""


def grade_student(job: Job) -> StudentResult:
    """Autograde one student's submission; never raises (a failure is a result, with its scores reset)."""
    host = socket.gethostname()
    log = Path(job.log)
    started = time.perf_counter()
    error, ran = "", False
    try:
        if not Path(job.folder).is_dir():
            error = f"course folder {job.folder} not found on {host} (workers need it on a shared filesystem)"
        else:
            shutil.rmtree(job.autograded, ignore_errors=True)  # what --force does: only this run's output counts
            ran = True
            env = {CPUS_VARIABLE: ",".join(map(str, job.cpus))} if job.cpus else {}
            if job.check_server:
                env[CHECK_SERVER_ENV] = job.check_server
            status, timed_out = run_logged(autograde_command(job), job.folder, log, job.timeout, env=env)
            if timed_out:
                error = f"timed out after {job.timeout:g} s (nbgrader and its kernels were killed)"
            elif status != 0:
                error = f"nbgrader exited with status {status}"
            elif not any(Path(job.autograded).glob("*.ipynb")):
                error = f"nbgrader wrote no autograded notebook into {job.autograded}"
    except Exception as exc:  # the batch goes on whatever happens to one student
        error = f"could not run nbgrader: {first_line(exc)}"
    if not error and ran:
        try:
            impossible = impossible_scores(job.db_url, job.course_id, job.assignment, job.student)
        except Exception as exc:
            impossible = []
            error = f"graded, but its grades could not be read from the gradebook: {first_line(exc)}"
        if impossible:
            error = f"impossible score (above the maximum): {'; '.join(impossible)}"
    seconds = time.perf_counter() - started
    notes = read_notes(Path(job.autograded))
    tampering = read_tampering(Path(job.autograded))
    if error:
        try:
            zero_auto_scores(job.db_url, job.course_id, job.assignment, job.student)
        except Exception as exc:
            error += f"; resetting its scores failed too: {first_line(exc)}"
    score = max_score = None
    try:
        score, max_score = read_score(job.db_url, job.course_id, job.assignment, job.student)
    except Exception as exc:
        if not error:
            error = f"graded, but its score could not be read from the gradebook: {first_line(exc)}"
    if error and ran:
        tail = log_tail(log)
        error += f"\n{tail}" if tail else ""
    return StudentResult(student=job.student, status=FAILED if error else GRADED, score=score, max_score=max_score,
                         seconds=round(seconds, 2), notes=notes, tampering=tampering, error=error, log=str(log),
                         host=host)


# ---------------------------------------------------------------- many students


def available_cpus() -> list[int]:
    """The CPUs this process may run on, sorted."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def split_cpus(cpus: list[int], workers: int) -> list[tuple[int, ...]]:
    """``cpus`` in ``workers`` disjoint, contiguous shares as even as possible (fewer CPUs: shared round-robin)."""
    if workers <= len(cpus):
        size, extra = divmod(len(cpus), workers)
        shares, at = [], 0
        for i in range(workers):
            n = size + (i < extra)
            shares.append(tuple(cpus[at:at + n]))
            at += n
        return shares
    return [(cpus[i % len(cpus)],) for i in range(workers)]


def start_check_servers(shares: list[tuple[int, ...]], log_folder: Path | None = None) -> list[CheckServer]:
    """One warm check server per worker slot (pinned like the slot), started at once and waited for together."""
    servers = [CheckServer(cpus=share, log=log_folder / f"check-server-{i}.log" if log_folder else None)
               for i, share in enumerate(shares)]
    if log_folder:
        log_folder.mkdir(parents=True, exist_ok=True)
    for server in servers:
        server.start()
    for server in servers:
        server.wait_ready()
    return servers


def run_local(jobs: list[Job], workers: int, on_result: Callable[[StudentResult], None],
              shares: list[tuple[int, ...]] | None = None,
              servers: list[CheckServer] | None = None) -> list[StudentResult]:
    """Grade ``jobs`` with ``workers`` threads; with ``shares``, worker slot i pins its grading to ``shares[i]``;
    with ``servers``, slot i's checking processes are forked by ``servers[i]``."""
    slots: queue.Queue = queue.Queue()
    for i, share in enumerate(shares or [()] * workers):
        server = servers[i].address if servers and servers[i].address else ""
        slots.put((share, server))

    def in_a_slot(job: Job) -> StudentResult:
        share, server = slots.get()
        try:
            return grade_student(dataclasses.replace(job, cpus=share or job.cpus, check_server=server))
        finally:
            slots.put((share, server))

    results = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="autograde")
    try:
        futures = [pool.submit(in_a_slot, job) for job in jobs]
        for future in as_completed(futures):
            results.append(future.result())
            on_result(results[-1])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_running()
        raise
    pool.shutdown()
    return results


def connect_dask(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise GradingError("--dask needs the 'distributed' package (pip install distributed)") from None
    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:
        raise GradingError(f"cannot reach the Dask scheduler at {address!r}: {first_line(exc)}") from None


def run_dask(jobs: list[Job], client, on_result: Callable[[StudentResult], None]) -> list[StudentResult]:
    from distributed import as_completed as completed

    run = uuid.uuid4().hex[:8]
    futures = {client.submit(grade_student, job, key=f"autograde-{job.assignment}-{job.student}-{run}", pure=False):
               job for job in jobs}
    results = []
    try:
        for future in completed(list(futures), loop=client.loop):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the task itself failed (a worker died, ...): grade_student never raises
                error = f"the Dask task failed: {first_line(exc)}"
                try:
                    zero_auto_scores(job.db_url, job.course_id, job.assignment, job.student)
                except Exception as reset:
                    error += f"; resetting its scores failed too: {first_line(reset)}"
                result = StudentResult(job.student, FAILED, None, None, 0.0, error=error, log=job.log)
            results.append(result)
            on_result(result)
    except BaseException:
        client.cancel(list(futures))
        raise
    return results


def describe_cluster(client, address: str) -> str:
    """'dask ADDRESS (W workers, T threads)'; GradingError when no worker joins in time."""
    try:
        client.wait_for_workers(1, timeout=DASK_CONNECT_TIMEOUT)
    except Exception:
        raise GradingError(f"the Dask cluster at {address!r} has no workers (start some with "
                           f"'dask worker {address}')") from None
    threads = client.nthreads()
    return f"dask {address} ({len(threads)} workers, {sum(threads.values())} threads)"


def check_sqlite_on_one_machine(client, course: Course) -> None:
    from sqlalchemy.engine import make_url

    if make_url(course.db_url).get_backend_name() != "sqlite":
        return
    hosts = set(client.run(socket.gethostname).values())
    if hosts != {socket.gethostname()}:
        raise GradingError(f"the gradebook is SQLite ({course.db_url}), which works on one machine only, but the "
                           f"Dask workers run on {', '.join(sorted(hosts))}: pass --db postgresql://user@host:port/db")


def grade_class(
    folder: str | Path,
    assignment: str,
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    db_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    students: list[str] | None = None,
    on_result: Callable[[StudentResult], None] | None = None,
    cpus: str | None = None,
    pin: bool = True,
    check_servers: bool = True,
) -> Summary:
    """Autograde every submission of ``assignment`` (or only ``students``) and write the summary files.

    Local workers share ``cpus`` (``"0-3,6"``; default: every CPU this process may use) and, with ``pin``,
    each worker's nbgrader, kernel and checks are pinned to its own share (threads capped to match), so W
    graders do not oversubscribe the machine. The default worker count is one per CPU in ``cpus``.
    With ``check_servers`` and more submissions than workers, each local worker gets a warm check server
    (:mod:`autograder.checkserver`) that forks its checking processes, saving 3-4 s of CPU per submission.

    Raises GradingError for bad input; a submission that fails is a failed result, never an exception.
    """
    if workers is not None and workers < 1:
        raise GradingError(f"--workers must be at least 1 (got {workers})")
    if not timeout > 0:
        raise GradingError(f"--timeout must be a positive number of seconds (got {timeout:g})")
    if workers is not None and dask_address:
        raise GradingError("--workers and --dask exclude each other (a Dask cluster has its own workers)")
    if cpus is not None and dask_address:
        raise GradingError("--cpus is for local workers (Dask workers have their own resources)")
    allowed = available_cpus()
    if cpus is not None:
        try:
            chosen_cpus = sorted(parse_cpus(cpus))
        except ValueError as exc:
            raise GradingError(f"--cpus: {exc} (expected e.g. 0-3 or 0,2,4)") from None
        unavailable = [c for c in chosen_cpus if c not in allowed]
        if unavailable:
            raise GradingError(f"--cpus: CPU {unavailable[0]} is not available here (available: "
                               f"{', '.join(map(str, allowed))})")
    else:
        chosen_cpus = allowed
    course = load_course(folder, db_url)
    check_db_url(course.db_url)
    found = find_students(course, assignment)
    if students:
        missing = [s for s in students if s not in found]
        if missing:
            raise GradingError(f"no submission of {assignment!r} from {', '.join(missing)} in "
                               f"{course.path(course.submitted, '<student>', assignment)}")
        chosen = list(dict.fromkeys(students))
    else:
        chosen = found
    register_students(course, assignment, chosen)  # also: the database opens and knows the assignment
    if not chosen:
        raise GradingError(f"no submissions of {assignment!r} in "
                           f"{course.path(course.submitted, '<student>', assignment)}")
    client = connect_dask(dask_address) if dask_address else None
    try:
        if client is not None:
            runner = describe_cluster(client, dask_address)
            check_sqlite_on_one_machine(client, course)
        jobs = [Job(folder=str(course.folder), assignment=assignment, student=s, course_id=course.course_id,
                    db_url=course.db_url, db_given=course.db_given,
                    autograded=str(course.path(course.autograded, s, assignment)),
                    log=str(course.root / LOG_FOLDER / assignment / f"{s}.log"), timeout=float(timeout))
                for s in chosen]
        on_result = on_result or (lambda result: None)
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        started = time.perf_counter()
        if client is not None:
            results = run_dask(jobs, client, on_result)
        else:
            w = min(workers or len(chosen_cpus), len(jobs))
            shares = split_cpus(chosen_cpus, w)
            pinned = pin and (w > 1 or cpus is not None)  # one worker on every CPU: nothing to pin
            runner = f"{w} local worker{'s' if w > 1 else ''}"
            if pinned:
                runner += f" on CPUs {','.join(map(str, chosen_cpus))}" + (
                    f" ({len(shares[0])} each)" if w > 1 and len(chosen_cpus) >= w else "")
            servers = []
            if check_servers and len(jobs) > w:  # one submission per worker: a server would not pay for itself
                servers = start_check_servers(shares if pinned else [()] * w, course.root / LOG_FOLDER / assignment)
                ready = sum(1 for server in servers if server.address)
                runner += f", {ready} warm check server{'s' if ready != 1 else ''}"
                if ready < len(servers):
                    failed = next(server for server in servers if not server.address)
                    runner += f" ({len(servers) - ready} failed to start: {failed.error})"
            try:
                results = run_local(jobs, w, on_result, shares if pinned else None, servers)
            finally:
                for server in servers:
                    server.stop()
    finally:
        if client is not None:
            client.close()
    summary = Summary(assignment=assignment, course=str(course.root), db=hide_password(course.db_url), runner=runner,
                      started=started_at, seconds=round(time.perf_counter() - started, 2),
                      results=sorted(results, key=lambda r: r.student))
    write_summary(summary, course.root)
    return summary


# ---------------------------------------------------------------- the summary


def write_summary(summary: Summary, root: Path) -> None:
    summary.json_path = root / f"{SUMMARY_PREFIX}{summary.assignment}.json"
    summary.csv_path = root / f"{SUMMARY_PREFIX}{summary.assignment}.csv"
    data = {k: v for k, v in asdict(summary).items() if k not in ("json_path", "csv_path")}
    data.update(graded=summary.graded, failed=len(summary.results) - summary.graded, tampering=summary.tampered)
    summary.json_path.write_text(json.dumps(data, indent=2) + "\n")
    with summary.csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", "score", "max_score", "seconds", "tampering", "notes", "error", "log",
                         "host"])
        for r in summary.results:
            writer.writerow([r.student, r.status, "" if r.score is None else f"{r.score:g}",
                             "" if r.max_score is None else f"{r.max_score:g}", f"{r.seconds:.1f}",
                             " | ".join(r.tampering), " | ".join(r.notes), r.error, r.log, r.host])


def format_points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def format_table(summary: Summary) -> str:
    width = max([7] + [len(r.student) for r in summary.results]) + 2
    lines = [f"{'student':<{width}}{'status':<8}{'score':>7}{'max':>6}{'seconds':>9}  notes / error"]
    for r in summary.results:
        detail = (r.error.splitlines()[0] if r.error else
                  f"TAMPERING: {'; '.join(r.tampering)}" if r.tampering else "; ".join(r.notes) or "-")
        lines.append(f"{r.student:<{width}}{r.status:<8}{format_points(r.score):>7}{format_points(r.max_score):>6}"
                     f"{r.seconds:>9.1f}  {detail}")
    failed = [r for r in summary.results if r.status == FAILED]
    for r in failed:
        lines.append(f"\n{r.student}: {r.error.splitlines()[0]}  (full log: {r.log})")
        lines.extend(f"  | {line}" for line in r.error.splitlines()[1:])
    rate = len(summary.results) / summary.seconds * 60 if summary.seconds else 0
    tampered = [r for r in summary.results if r.tampering]
    if tampered:
        lines.append(f"\nInterference with grading found (these earned no points; see the feedback): "
                     f"{', '.join(r.student for r in tampered)}")
    lines.append(f"\n{summary.graded} of {len(summary.results)} graded, {len(failed)} failed; {summary.seconds:.1f} s "
                 f"with {summary.runner} ({rate:.1f} submissions/min); gradebook {summary.db}")
    if summary.json_path:
        lines.append(f"Summary: {summary.json_path} and {summary.csv_path.name}")
    return "\n".join(lines)
