"""odl-grade check: the self-study command, on good and bad input."""
from pathlib import Path

import pytest

from autograder.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_missing_notebook_is_a_clear_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "pytorch_basics.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_notebook_lists_the_known_ones(tmp_path, capsys):
    path = tmp_path / "homework.ipynb"
    path.write_text("{}")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not an assignment notebook" in err and "pytorch_basics.ipynb (01_pytorch_basics)" in err


def test_corrupt_notebook_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "pytorch_basics.ipynb"
    path.write_text('{"cells": [')
    assert main(["check", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_self_check_of_the_solution_prints_full_marks(capsys):
    assert main(["check", str(REPO / "solutions/01_pytorch_basics/pytorch_basics.ipynb")]) == 0
    out = capsys.readouterr().out
    assert "Total: 15 / 15 points" in out and "FAIL" not in out


def test_release_outside_a_course_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["release", "--course-dir", str(tmp_path)]) == 2
    assert "not a course folder (no nbgrader_config.py)" in capsys.readouterr().err


@pytest.mark.slow
def test_release_serves_the_course_folder_it_is_run_in(tmp_path, monkeypatch, capsys):
    """Not the repository's assignments/: the course's own, from its own solutions/ (here: one assignment)."""
    import shutil

    from autograder.release import write_course_config

    course = tmp_path / "course"
    course.mkdir()
    write_course_config(course)
    shutil.copytree(REPO / "solutions" / "01_pytorch_basics", course / "solutions" / "01_pytorch_basics")
    repo_release = REPO / "assignments" / "01_pytorch_basics" / "pytorch_basics.ipynb"
    before = repo_release.stat().st_mtime_ns
    monkeypatch.chdir(course)
    assert main(["release", "02_optimizers"]) == 2  # not in this course's solutions/
    assert "no assignment 02_optimizers" in capsys.readouterr().err
    assert main(["release"]) == 0
    made = course / "assignments" / "01_pytorch_basics" / "pytorch_basics.ipynb"
    assert f"released {made.parent}" in capsys.readouterr().out
    assert made.read_bytes() == repo_release.read_bytes()
    assert sorted(p.name for p in (course / "assignments").iterdir()) == ["01_pytorch_basics"]
    assert repo_release.stat().st_mtime_ns == before, "the repository's release was regenerated"
    monkeypatch.chdir(tmp_path)
    made.unlink()
    assert main(["release", "01_pytorch_basics", "--course-dir", str(course)]) == 0
    assert made.read_bytes() == repo_release.read_bytes()
