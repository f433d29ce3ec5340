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
    assert "Total: 16 / 16 points" in out and "FAIL" not in out


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
    assert sorted(p.name for p in (course / "assignments").iterdir() if not p.name.startswith(".")) == ["01_pytorch_basics"]
    assert repo_release.stat().st_mtime_ns == before, "the repository's release was regenerated"
    monkeypatch.chdir(tmp_path)
    made.unlink()
    assert main(["release", "01_pytorch_basics", "--course-dir", str(course)]) == 0
    assert made.read_bytes() == repo_release.read_bytes()


def test_release_refuses_edited_work_with_exit_2_and_force_keeps_a_backup(tmp_path, monkeypatch, capsys):
    from autograder import release as release_module
    from autograder.release import write_course_config

    course = tmp_path / "course"
    (course / "solutions" / "hw").mkdir(parents=True)
    (course / "solutions" / "hw" / "hw.ipynb").write_text("source\n")
    write_course_config(course)

    def generate(root, ids):  # what nbgrader would write, without nbgrader's seconds
        for assignment_id in ids:
            (root / "assignments" / assignment_id).mkdir(parents=True)
            (root / "assignments" / assignment_id / "hw.ipynb").write_text("release\n")

    monkeypatch.setattr(release_module, "generate", generate)
    assert main(["release", "--course-dir", str(course)]) == 0
    released = course / "assignments" / "hw" / "hw.ipynb"
    released.write_text("release + my answers\n")
    assert main(["release", "--course-dir", str(course)]) == 2
    err = capsys.readouterr().err
    assert "holds work that is not the course's release" in err and str(released) in err
    assert released.read_text() == "release + my answers\n"
    assert main(["release", "--course-dir", str(course), "--force"]) == 0
    assert "kept a copy of the edited files" in capsys.readouterr().err
    assert released.read_text() == "release\n"


def test_fetch_says_what_it_copied_and_what_it_kept(tmp_path, capsys):
    from autograder.release import write_course_config

    course = tmp_path / "course"
    (course / "solutions" / "hw").mkdir(parents=True)
    (course / "assignments" / "hw").mkdir(parents=True)
    (course / "assignments" / "hw" / "hw.ipynb").write_text("release\n")
    write_course_config(course)
    assert main(["fetch", "hw", "--course-dir", str(course)]) == 0
    work = course / "work" / "hw" / "hw.ipynb"
    assert f"fetched {work}" in capsys.readouterr().out
    work.write_text("mine\n")
    assert main(["fetch", "hw", "--course-dir", str(course)]) == 0
    assert f"kept {work} as it is" in capsys.readouterr().out and work.read_text() == "mine\n"
    assert main(["fetch", "hw", "--course-dir", str(course), "--replace"]) == 0
    out = capsys.readouterr().out
    assert "your previous file is now" in out and work.read_text() == "release\n"
    assert main(["fetch", "other", "--course-dir", str(course)]) == 2
    assert "no released assignment 'other'" in capsys.readouterr().err


def test_exchange_init_creates_the_exchange_records_it_and_adds_students(tmp_path, capsys):
    import stat

    from nbgrader.api import Gradebook

    from autograder.exchange import course_settings
    from autograder.release import write_course_config

    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    write_course_config(course)
    root = tmp_path / "exchange"
    assert main(["exchange", "init", "--course-dir", str(course), "--root", str(root),
                 "--students", "alice,bob"]) == 0
    out = capsys.readouterr().out
    assert "simulated student alice" in out and "simulated student bob" in out
    assert stat.S_IMODE(root.stat().st_mode) == 0o1777
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root / "odl-pytorch").iterdir()}
    assert modes == {"outbound": 0o755, "inbound": 0o733, "feedback": 0o711}
    assert course_settings(course) == (course, "odl-pytorch", str(root))  # the course's config now names it
    for student in ("alice", "bob"):
        config = (course / ".work" / "students" / student / ".jupyter" / "nbgrader_config.py").read_text()
        assert f"c.CourseDirectory.student_id = {student!r}" in config and str(root) in config
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "odl-pytorch") as gb:
        assert sorted(s.id for s in gb.students) == ["alice", "bob"]
    assert main(["exchange", "init", "--course-dir", str(course), "--root", str(root), "--students", "a+b"]) == 2
    assert "nbgrader reserves '+'" in capsys.readouterr().err
    assert main(["exchange", "init", "--course-dir", str(tmp_path / "nowhere")]) == 2
    assert "not a course folder" in capsys.readouterr().err
