"""odl-grade autograde: a class graded in parallel, on local workers or a Dask cluster, on SQLite or PostgreSQL.

The fast tests use a tiny course whose gradebook is made with nbgrader's API and stand-in grading
commands (a success with notes, a crash, a hang); the slow ones run real nbgrader on the course's
first assignment and compare the gradebook with the one nbgrader alone produces, one submission
after another.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from autograder import parallel
from autograder.assignments import ASSIGNMENTS
from autograder.cli import main
from autograder.demo import demo_mistakes, place, prepare_course
from autograder.gradebook import BUSY_TIMEOUT_S
from autograder.release import generate, nbgrader, write_course_config
from autograder.submissions import make_submission

A = "01_pytorch_basics"
COURSE_ID = "odl-pytorch"  # the repository's nbgrader_config.py
TINY = "hw"  # the tiny course's assignment (nbgrader's default course id)
# nbgrader's add_submission makes SQLAlchemy warn about nbgrader's own autoflush (the rows are right)
pytestmark = pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning")


def auto_scores(db_url: str, course_id: str, assignment: str, students) -> dict[str, dict[str, float | None]]:
    """{student: {"notebook/cell": auto_score}} straight from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        return {s: {f"{nb.name}/{g.name}": g.auto_score for nb in gb.find_submission(assignment, s).notebooks
                    for g in nb.grades} for s in students}


def total(scores: dict[str, float | None]) -> float:
    """The automatic points of a submission (answers graded by hand have no automatic score)."""
    return sum(v for v in scores.values() if v is not None)


def sqlite_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def read_summary(course: Path, assignment: str) -> dict:
    data = json.loads((course / f"grading_summary_{assignment}.json").read_text())
    data["by_student"] = {r["student"]: r for r in data["results"]}
    return data


# ---------------------------------------------------------------- SQLite under concurrent writers


def test_sqlite_connections_use_wal_and_wait_for_a_busy_writer(tmp_path):
    """With the hook, a writer that finds the database locked waits its turn; SQLite's default fails."""
    db = tmp_path / "gradebook.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == int(BUSY_TIMEOUT_S * 1000) >= 60_000
        conn.execute(text("CREATE TABLE grade (id INTEGER PRIMARY KEY, score REAL)"))

    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    holder.execute("INSERT INTO grade (score) VALUES (1)")
    plain = sqlite3.connect(db, timeout=0.1)  # what a short busy timeout does
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        plain.execute("INSERT INTO grade (score) VALUES (2)")
    plain.close()

    release = threading.Timer(1.5, holder.execute, args=["COMMIT"])
    release.start()
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO grade (score) VALUES (3)"))
    waited = time.perf_counter() - started
    release.join()
    holder.close()
    assert waited >= 1.0
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT score FROM grade")).scalars()) == [1, 3]
    engine.dispose()


# ---------------------------------------------------------------- a tiny course and stand-in graders


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory):
    """A course folder without nbgrader_config.py: assignment 'hw', notebook 'nb' with two graded cells,
    students ok / crash / hang, each already holding full automatic scores from an earlier run."""
    from nbgrader.api import Gradebook

    course = tmp_path_factory.mktemp("tiny-template")
    parallel.ensure_tools_on_path()  # a new gradebook runs alembic
    with Gradebook(sqlite_url(course), "default_course") as gb:
        gb.add_assignment(TINY)
        gb.add_notebook("nb", TINY)
        gb.add_grade_cell("test_a", "nb", TINY, max_score=2, cell_type="code")
        gb.add_grade_cell("test_b", "nb", TINY, max_score=3, cell_type="code")
        for student in ("ok", "crash", "hang"):
            gb.add_student(student)
            gb.add_submission(TINY, student)
            for grade in gb.find_submission(TINY, student).notebooks[0].grades:
                grade.auto_score = grade.max_score
            gb.db.commit()
            folder = course / "submitted" / student / TINY
            folder.mkdir(parents=True)
            (folder / "nb.ipynb").write_text("{}")
    return course


@pytest.fixture
def tiny_course(tiny_template, tmp_path):
    return Path(shutil.copytree(tiny_template, tmp_path / "tiny"))


STAND_INS = {
    # writes an autograded notebook with two grader notes, like a successful nbgrader run
    "ok": """
        import json, os, sys
        out = os.path.join("autograded", "ok", "hw")
        os.makedirs(out, exist_ok=True)
        nb = {"cells": [], "nbformat": 4, "nbformat_minor": 5,
              "metadata": {"autograder": {"notes": ["Cells were out of order.", "Second note."]}}}
        json.dump(nb, open(os.path.join(out, "nb.ipynb"), "w"))
    """,
    "crash": """
        import sys
        print("[AutogradeApp | ERROR] boom: the kernel died", flush=True)
        sys.exit(3)
    """,
    # starts a grandchild in its own session (as Jupyter kernels are) and hangs
    "hang": """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        open("hang.pid", "w").write(str(child.pid))
        print("still grading...", flush=True)
        time.sleep(120)
    """,
}


# a grading that "succeeds" but leaves 7 of 2 points in the gradebook (as a bug or a tamperer could)
STAND_INS["over"] = STAND_INS["ok"].replace('"ok"', '"over"') + """
        from nbgrader.api import Gradebook
        with Gradebook("sqlite:///gradebook.db") as gb:
            grade = gb.find_grade("test_a", "nb", "hw", "over")
            grade.auto_score = 7
            gb.db.commit()
    """


def stand_in_command(job):
    return [sys.executable, "-c", textwrap.dedent(STAND_INS[job.student])]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_failures_and_hangs_do_not_stop_the_batch_and_leave_no_stale_score(tiny_course, monkeypatch, capsys):
    monkeypatch.setattr(parallel, "autograde_command", stand_in_command)
    started = time.perf_counter()
    rc = main(["autograde", TINY, "--course", str(tiny_course), "--workers", "2", "--timeout", "4"])
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert rc == 1
    assert elapsed < 30  # the hang was cut at 4 s

    summary = read_summary(tiny_course, TINY)
    by = summary["by_student"]
    assert {s: r["status"] for s, r in by.items()} == {"ok": "graded", "crash": "failed", "hang": "failed"}
    assert (summary["graded"], summary["failed"]) == (1, 2)
    assert by["ok"]["score"] == by["ok"]["max_score"] == 5 and by["ok"]["error"] == ""
    assert by["ok"]["notes"] == ["Cells were out of order.", "Second note."]
    assert by["crash"]["error"].startswith("nbgrader exited with status 3")
    assert "boom: the kernel died" in by["crash"]["error"]  # the last lines of its log
    assert by["hang"]["error"].startswith("timed out after 4 s") and "still grading..." in by["hang"]["error"]
    assert by["crash"]["score"] == by["hang"]["score"] == 0 and by["hang"]["max_score"] == 5

    scores = auto_scores(sqlite_url(tiny_course), "default_course", TINY, ["ok", "crash", "hang"])
    assert scores == {"ok": {"nb/test_a": 2, "nb/test_b": 3},
                      "crash": {"nb/test_a": 0, "nb/test_b": 0}, "hang": {"nb/test_a": 0, "nb/test_b": 0}}

    grandchild = int((tiny_course / "hang.pid").read_text())
    deadline = time.time() + 5
    while alive(grandchild) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(grandchild), "the hung grader's own child (another session) survived the time-out"

    csv_rows = (tiny_course / f"grading_summary_{TINY}.csv").read_text().splitlines()
    assert csv_rows[0].startswith("student,status,score,max_score,seconds,tampering,notes,error")
    assert any(r.startswith("ok,graded,5,5,") and "Cells were out of order. | Second note." in r for r in csv_rows)
    for line in ("ok", "crash", "hang"):
        assert line in out
    assert "1 of 3 graded, 2 failed" in out and "boom: the kernel died" in out


def test_only_the_chosen_students_are_graded(tiny_course, monkeypatch, capsys):
    monkeypatch.setattr(parallel, "autograde_command", stand_in_command)
    assert main(["autograde", TINY, "--course", str(tiny_course), "--students", "ok"]) == 0
    assert list(read_summary(tiny_course, TINY)["by_student"]) == ["ok"]
    assert auto_scores(sqlite_url(tiny_course), "default_course", TINY, ["crash"])["crash"] == {
        "nb/test_a": 2, "nb/test_b": 3}  # not touched


def test_a_score_above_the_maximum_is_an_error_and_is_zeroed(tiny_course, monkeypatch, capsys):
    from nbgrader.api import Gradebook

    with Gradebook(sqlite_url(tiny_course), "default_course") as gb:
        gb.add_student("over")
        gb.add_submission(TINY, "over")
    folder = tiny_course / "submitted" / "over" / TINY
    folder.mkdir(parents=True)
    (folder / "nb.ipynb").write_text("{}")
    monkeypatch.setattr(parallel, "autograde_command", stand_in_command)
    assert main(["autograde", TINY, "--course", str(tiny_course), "--students", "ok,over"]) == 1
    out = capsys.readouterr().out
    by = read_summary(tiny_course, TINY)["by_student"]
    assert by["ok"]["status"] == "graded" and by["ok"]["score"] == 5
    assert by["over"]["status"] == "failed" and by["over"]["score"] == 0
    assert by["over"]["error"].startswith("impossible score (above the maximum): nb/test_a: automatic score 7 "
                                          "is outside 0..2")
    assert "impossible score" in out
    assert auto_scores(sqlite_url(tiny_course), "default_course", TINY, ["over"])["over"] == {
        "nb/test_a": 0, "nb/test_b": 0}


# ---------------------------------------------------------------- bad input: one line, no traceback


def run_cli_error(capsys, *args) -> str:
    assert main(["autograde", *args]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("odl-grade autograde: ")
    return lines[0]


def test_missing_course_folder(tmp_path, capsys):
    assert "course folder not found" in run_cli_error(capsys, TINY, "--course", str(tmp_path / "nowhere"))


def test_unknown_assignment_lists_the_known_ones(tiny_course, capsys):
    err = run_cli_error(capsys, "hw9", "--course", str(tiny_course))
    assert "unknown assignment 'hw9'" in err and "known: hw" in err


def test_course_without_gradebook(tmp_path, capsys):
    assert "no gradebook at" in run_cli_error(capsys, TINY, "--course", str(tmp_path))
    assert not (tmp_path / "gradebook.db").exists()


@pytest.mark.parametrize("url, message", [
    ("not a url", "not a database URL"),
    ("nosuchdb://host/db", "unknown database type 'nosuchdb'"),
    # plain postgresql:// means psycopg 3 to SQLAlchemy 2.1: the course's psycopg2 is used instead
    ("postgresql://nobody@127.0.0.1:1/gradebook", "cannot open the gradebook postgresql+psycopg2://nobody@127.0.0.1:1"),
    ("mysql://nobody@127.0.0.1:1/gradebook", "no driver for mysql://nobody@127.0.0.1:1/gradebook"),
])
def test_bad_database_url(tiny_course, capsys, url, message):
    assert message in run_cli_error(capsys, TINY, "--course", str(tiny_course), "--db", url)


def test_unreachable_dask_scheduler(tiny_course, capsys, monkeypatch):
    monkeypatch.setattr(parallel, "DASK_CONNECT_TIMEOUT", 2)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = run_cli_error(capsys, TINY, "--course", str(tiny_course), "--dask", f"tcp://127.0.0.1:{port}")
    assert f"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'" in err


def test_dask_cluster_without_workers(tiny_course, capsys, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(parallel, "DASK_CONNECT_TIMEOUT", 1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        err = run_cli_error(capsys, TINY, "--course", str(tiny_course), "--dask", cluster.scheduler_address)
    assert "has no workers" in err


def test_unknown_student_and_bad_numbers(tiny_course, capsys):
    assert "no submission of 'hw' from zoe" in run_cli_error(
        capsys, TINY, "--course", str(tiny_course), "--students", "ok,zoe")
    assert "--workers must be at least 1" in run_cli_error(capsys, TINY, "--course", str(tiny_course), "--workers", "0")
    assert "--timeout must be a positive" in run_cli_error(capsys, TINY, "--course", str(tiny_course), "--timeout", "0")
    assert "exclude each other" in run_cli_error(
        capsys, TINY, "--course", str(tiny_course), "--workers", "2", "--dask", "tcp://127.0.0.1:1")


def test_unknown_or_bad_cpus(tiny_course, capsys):
    assert "--cpus: bad CPU range '3-1'" in run_cli_error(capsys, TINY, "--course", str(tiny_course), "--cpus", "3-1")
    assert "is not available here" in run_cli_error(capsys, TINY, "--course", str(tiny_course), "--cpus", "0,4096")
    assert "--cpus is for local workers" in run_cli_error(
        capsys, TINY, "--course", str(tiny_course), "--cpus", "0", "--dask", "tcp://127.0.0.1:1")


# ---------------------------------------------------------------- CPUs shared among workers


@pytest.mark.parametrize("cpus, workers, shares", [
    ([0, 1], 2, [(0,), (1,)]),
    ([0, 1, 2, 3, 4], 2, [(0, 1, 2), (3, 4)]),
    ([4, 5, 6, 7], 1, [(4, 5, 6, 7)]),
    ([0, 1], 3, [(0,), (1,), (0,)]),  # more workers than CPUs: they take turns
])
def test_split_cpus(cpus, workers, shares):
    assert parallel.split_cpus(cpus, workers) == shares


def test_pinning_limits_the_process_tree_and_its_threads():
    """What python -m autograder.gradebook does with ODL_GRADING_CPUS, seen from a grandchild (a kernel)."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    probe = ("import os, subprocess, sys; from autograder.gradebook import main, pin_to, parse_cpus; "
             "pin_to(parse_cpus(os.environ.pop('ODL_GRADING_CPUS'))); "
             "print(subprocess.run([sys.executable, '-c', 'import os, torch; print(sorted(os.sched_getaffinity(0)), "
             "os.environ[\"OMP_NUM_THREADS\"], torch.get_num_threads())'], capture_output=True, text=True).stdout)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "ODL_GRADING_CPUS": str(cpu)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"[{cpu}] 1 1"


def test_each_worker_gets_its_own_cpus(tiny_course, monkeypatch, capsys):
    seen = {}

    def record(job):
        seen[job.student] = job.cpus
        return [sys.executable, "-c", "import sys; sys.exit(0)"]

    monkeypatch.setattr(parallel, "autograde_command", record)
    monkeypatch.setattr(parallel, "available_cpus", lambda: [0, 1, 2, 3])
    main(["autograde", TINY, "--course", str(tiny_course), "--workers", "2"])
    assert sorted(seen) == ["crash", "hang", "ok"] and set(seen.values()) <= {(0, 1), (2, 3)}
    assert "2 local workers on CPUs 0,1,2,3 (2 each)" in capsys.readouterr().out
    seen.clear()
    main(["autograde", TINY, "--course", str(tiny_course), "--workers", "2", "--no-pin"])
    assert set(seen.values()) == {()}


# ---------------------------------------------------------------- real nbgrader


def copy_course(src: Path, dst: Path) -> Path:
    """A copy of a course folder, its nbgrader config re-rooted in the copy."""
    shutil.copytree(src, dst)
    write_course_config(dst)
    return dst


@pytest.fixture(scope="module")
def real_course(tmp_path_factory):
    """Assignment 1 released, four submissions (none graded yet), and the same class graded by nbgrader
    alone, one submission after another: (base folder, sequentially graded folder).

    solution: the instructor's answers; mistakes: two typical mistakes; garbled: a file that is not a
    notebook (graded as the unanswered release, with a note); broken: the instructor's answers.
    """
    root = tmp_path_factory.mktemp("parallel")
    base = root / "base"
    prepare_course(base)
    generate(base, [A])
    notebook = ASSIGNMENTS[A].notebook
    release, solution = base / "assignments" / A / notebook, base / "solutions" / A / notebook
    mistakes = demo_mistakes(A)[:2]
    place(base, "solution", A, make_submission(release, solution))
    place(base, "mistakes", A, make_submission(release, solution, mistakes))
    place(base, "broken", A, make_submission(release, solution))
    garbled = place(base, "garbled", A, make_submission(release, solution))
    garbled.write_text('{"cells": [')
    sequential = copy_course(base, root / "sequential")
    nbgrader(["autograde", A, "--force"], sequential)
    return base, sequential


STUDENTS = ["broken", "garbled", "mistakes", "solution"]


@pytest.mark.slow
def test_two_local_workers_grade_like_nbgrader_alone_and_a_failure_keeps_no_stale_score(real_course, tmp_path,
                                                                                        capsys):
    base, sequential = real_course
    expected = auto_scores(sqlite_url(sequential), COURSE_ID, A, STUDENTS)
    assert total(expected["solution"]) == 16 and total(expected["broken"]) == 16
    assert 0 < total(expected["mistakes"]) < 16 and total(expected["garbled"]) == 0

    course = copy_course(base, tmp_path / "parallel")
    # an earlier run gave 'broken' full marks; then nbgrader fails on that student (its autograded folder is a file,
    # so nbgrader cannot replace it; a corrupt timestamp.txt no longer does: it is graded without one)
    assert main(["autograde", A, "--course", str(course), "--students", "broken", "--workers", "1"]) == 0
    assert auto_scores(sqlite_url(course), COURSE_ID, A, ["broken"]) == {"broken": expected["broken"]}
    import shutil

    shutil.rmtree(course / "autograded" / "broken" / A)
    (course / "autograded" / "broken" / A).write_text("not a folder")
    capsys.readouterr()

    assert main(["autograde", A, "--course", str(course), "--workers", "2"]) == 1
    out = capsys.readouterr().out

    summary = read_summary(course, A)
    by = summary["by_student"]
    assert summary["runner"].startswith("2 local workers on CPUs ")  # each pinned to its own slice
    assert summary["runner"].endswith(", 2 warm check servers")  # 4 submissions for 2 workers: worth starting
    assert {s: r["status"] for s, r in by.items()} == {"broken": "failed", "garbled": "graded", "mistakes": "graded",
                                                       "solution": "graded"}
    got = auto_scores(sqlite_url(course), COURSE_ID, A, STUDENTS)
    for student in ("garbled", "mistakes", "solution"):
        assert got[student] == expected[student], student
        assert by[student]["score"] == total(expected[student])
        assert by[student]["max_score"] == 19  # 16 automatic points and 3 for the written answers, graded by hand
    assert got["broken"] and {v for v in got["broken"].values() if v is not None} == {0}  # no stale 16 points
    assert by["broken"]["score"] == 0 and by["broken"]["error"].startswith("nbgrader exited with status")
    assert "autograded/broken" in by["broken"]["error"]  # the log's last lines say what went wrong
    assert "broken" in out and "failed" in out and "3 of 4 graded, 1 failed" in out

    # the notes the grader put into each autograded notebook reach the summary
    garbled_nb = json.loads(next((course / "autograded" / "garbled" / A).glob("*.ipynb")).read_text())
    assert by["garbled"]["notes"] and by["garbled"]["notes"] == garbled_nb["metadata"]["autograder"]["notes"]
    assert by["solution"]["notes"] == []

    logs = "".join(p.read_text() for p in (course / "grading_logs" / A).glob("*.log"))
    assert "database is locked" not in logs
    with sqlite3.connect(course / "gradebook.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.slow
def test_a_local_dask_cluster_grades_the_class(real_course, tmp_path, capsys):
    from distributed import LocalCluster

    base, sequential = real_course
    course = copy_course(base, tmp_path / "dask")
    students = ["mistakes", "solution"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rc = main(["autograde", A, "--course", str(course), "--dask", cluster.scheduler_address,
                   "--students", ",".join(students)])
    assert rc == 0, capsys.readouterr()
    summary = read_summary(course, A)
    assert summary["runner"].startswith("dask tcp://")
    assert {s: r["status"] for s, r in summary["by_student"].items()} == {s: "graded" for s in students}
    assert auto_scores(sqlite_url(course), COURSE_ID, A, students) == auto_scores(
        sqlite_url(sequential), COURSE_ID, A, students)


# ---------------------------------------------------------------- a real PostgreSQL server


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server (initdb + pg_ctl) on a free port, with one empty database."""
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    as_user, owner = [], None
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="odl-postgres-"))
    if owner:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = base / "data", base / "server.log"

    def run(*cmd):
        proc = subprocess.run([*as_user, *map(str, cmd)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}{proc.stderr}{server_log}")

    run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
    run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        run(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "odl_grading")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/odl_grading"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_local_workers_on_a_postgresql_gradebook(real_course, postgres_url, tmp_path, capsys):
    base, sequential = real_course
    course = copy_course(base, tmp_path / "postgres")
    (course / "gradebook.db").unlink()  # everything goes to the server
    nbgrader(["generate_assignment", A, "--force", f"--db={postgres_url}"], course)
    students = ["mistakes", "solution"]
    plain_url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")  # what people write
    rc = main(["autograde", A, "--course", str(course), "--db", plain_url, "--workers", "2",
               "--students", ",".join(students)])
    assert rc == 0, capsys.readouterr()
    assert not (course / "gradebook.db").exists()
    summary = read_summary(course, A)
    assert summary["db"] == postgres_url
    assert {s: r["status"] for s, r in summary["by_student"].items()} == {s: "graded" for s in students}
    assert auto_scores(postgres_url, COURSE_ID, A, students) == auto_scores(
        sqlite_url(sequential), COURSE_ID, A, students)
