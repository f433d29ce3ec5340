"""The self-check: `odl-grade check --server --changed` and course.self_check() in a kernel."""
import json
import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import selfcheck
from autograder.notebook import gradable_code, read_notebook as full_read
from autograder.submissions import MISTAKES, make_submission

REPO = Path(__file__).resolve().parents[2]
OPTIMIZERS = REPO / "solutions" / "02_optimizers" / "optimizers.ipynb"
RELEASE = REPO / "assignments" / "02_optimizers" / "optimizers.ipynb"


def test_the_light_reader_reads_what_nbformat_reads():
    light, full = selfcheck.read_notebook(OPTIMIZERS), full_read(OPTIMIZERS)
    assert gradable_code(light) == gradable_code(full)
    assert [t for t, _ in selfcheck.graded_tasks(light)] == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                                             "adam", "linear_decay", "search", "adamw", "amsgrad",
                                                             "predictions", "tuning"]


def test_a_changed_answer_changes_its_task_and_the_later_ones_only():
    before = selfcheck.task_keys(make_submission(RELEASE, OPTIMIZERS, []))
    adagrad = next(m for m in MISTAKES["02_optimizers"] if m.name == "adagrad_decays")
    after = selfcheck.task_keys(make_submission(RELEASE, OPTIMIZERS, [adagrad]))
    changed = [t for t in before if before[t] != after[t]]
    order = list(before)
    assert changed == order[order.index("adagrad"):]


def test_unreadable_notebooks_are_reported(tmp_path):
    bad = tmp_path / "optimizers.ipynb"
    bad.write_text('{"cells": [')
    with pytest.raises(selfcheck.NotebookError, match="not valid JSON"):
        selfcheck.read_notebook(bad)


def test_course_says_when_the_autograder_is_not_installed(monkeypatch, tmp_path):
    import course.selfcheck as cs

    nb = tmp_path / "optimizers.ipynb"
    nb.write_text(OPTIMIZERS.read_text())
    monkeypatch.setattr(cs, "odl_grade_command", lambda: None)
    result = cs.self_check(nb, show=False)
    assert not result.ok and "not installed" in result.text


@pytest.fixture
def private_env(tmp_path):
    run = Path(tempfile.mkdtemp(prefix="odl-run-", dir="/tmp"))  # short: it holds a Unix socket
    yield dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_RUNTIME_DIR=str(run),
               ODL_GRADE_SERVER_IDLE="30", PYTHONPATH=str(REPO), COURSE_PROGRESS="0", MPLBACKEND="Agg")
    shutil.rmtree(run, ignore_errors=True)  # the server ends 30 s after its last check


def odl_grade(env, *args):
    done = subprocess.run([sys.executable, "-m", "autograder", "check", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_check_with_server_and_changed_runs_only_what_changed(tmp_path, private_env):
    nb = tmp_path / "optimizers.ipynb"
    nbformat.write(make_submission(RELEASE, OPTIMIZERS, []), str(nb))  # a student's: the release, answered
    first = odl_grade(private_env, nb, "--server", "--changed")
    assert "Total: 21 / 21 points" in first and "Unchanged" not in first
    assert "2 points: 1.5 for the steps, 0.5 for the state" in first
    assert list(Path(private_env["XDG_RUNTIME_DIR"], "odl-grade").glob("server-*/checks.sock")), "no server"
    again = odl_grade(private_env, nb, "--server", "--changed")
    assert "Total: 21 / 21 points" in again and "Unchanged since the last check" in again
    adagrad = next(m for m in MISTAKES["02_optimizers"] if m.name == "adagrad_decays")
    nbformat.write(make_submission(RELEASE, OPTIMIZERS, [adagrad]), str(nb))
    edited = odl_grade(private_env, nb, "--server", "--changed")
    unchanged = edited.split("Unchanged since the last check, results from then: ")[1].split(" (run")[0]
    assert unchanged == "sgd, momentum, nesterov"
    assert "checks passed. Score: 0.5 / 2\n  2 points: 1.5 for the steps" in edited
    assert "LOST 1.5 for the steps" in edited and "decays like RMSProp's" in edited
    assert "Total: 19.5 / 21 points" in edited
    full = odl_grade(private_env, nb)  # without --changed: everything again, the same scores
    assert "Unchanged" not in full and "Total: 19.5 / 21 points" in full


@pytest.mark.slow
def test_self_check_from_a_kernel(tmp_path, private_env):
    """course.self_check() in a Jupyter kernel started as JupyterLab starts it (JPY_SESSION_NAME)."""
    from jupyter_client.manager import start_new_kernel

    nb = tmp_path / "optimizers.ipynb"
    nb.write_text(OPTIMIZERS.read_text())
    env = dict(private_env, JPY_SESSION_NAME=str(nb))
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    outputs = []
    try:
        reply = kc.execute_interactive("import course\nr = course.self_check()\nprint('RC', r.returncode)",
                                       timeout=600, output_hook=outputs.append)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    html = "".join(o["content"].get("data", {}).get("text/html", "") for o in outputs
                   if o["msg_type"] == "display_data")
    text = "".join(o["content"].get("text", "") for o in outputs if o["msg_type"] == "stream")
    assert "Checked optimizers.ipynb as saved at" in html and "Total: 21 / 21 points" in html, (html, text)
    assert "RC 0" in text


def test_course_holds_no_checks_and_imports_no_autograder():
    source = (REPO / "course" / "selfcheck.py").read_text()
    assert "import autograder" not in source and "from autograder" not in source
    assert "checks" not in {p.name for p in (REPO / "course").iterdir()}
