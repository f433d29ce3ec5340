"""assignments/ is exactly what nbgrader generates from solutions/, gives nothing away, and never replaces a
student's work."""
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.release import ASSIGNMENTS as RELEASE_DIR, SOLUTIONS, assignment_ids, generate_release

REPO = Path(__file__).resolve().parent.parent


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_solution_folder_is_a_known_assignment():
    assert assignment_ids() == sorted(ASSIGNMENTS)
    for a in ASSIGNMENTS.values():
        assert (SOLUTIONS / a.id / a.notebook).exists()
        assert a.checks_path.exists()


@pytest.mark.slow
def test_committed_release_is_what_nbgrader_generates(tmp_path):
    generate_release(None, tmp_path)
    for assignment_id in assignment_ids():
        assert files(RELEASE_DIR / assignment_id) == files(tmp_path / assignment_id), (
            f"assignments/{assignment_id} is stale: run `odl-grade release` and commit the result"
        )
    # .released (git-ignored) is the record of what the last release wrote, not an assignment.
    assert sorted(p.name for p in RELEASE_DIR.iterdir() if p.is_dir() and not p.name.startswith(".")) == assignment_ids()


def significant_lines(text: str) -> set[str]:
    """Lines long and specific enough that finding one elsewhere means it was copied."""
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if len(line) >= 24 and not line.startswith(("#", '"""', "import ", "from ")):
            out.add(line)
    return out


def source_lines(folder: str) -> set[str]:
    lines = set()
    for path in (REPO / "autograder" / folder).glob("*.py"):
        lines |= significant_lines(path.read_text())
    return lines


def check_lines() -> set[str]:
    """Lines of the hidden checks: they must never reach a student."""
    return source_lines("checks")


def secret_lines() -> set[str]:
    """Lines of the hidden checks and of the reference implementations."""
    return check_lines() | source_lines("references")


def regions(source: str, begin: str, end: str) -> tuple[str, str]:
    """Split a cell's source into (outside, inside) the begin/end marked regions."""
    outside, inside, depth = [], [], 0
    for line in source.splitlines():
        if begin in line:
            depth += 1
        elif end in line:
            depth -= 1
        else:
            (inside if depth else outside).append(line)
    return "\n".join(outside), "\n".join(inside)


def shown_and_hidden(assignment_id: str) -> tuple[set[str], set[str]]:
    """Lines the instructor's notebook shows students, and lines it keeps to itself (answers, hidden tests)."""
    a = ASSIGNMENTS[assignment_id]
    shown, hidden = set(), set()
    for cell in nbformat.read(str(SOLUTIONS / a.id / a.notebook), as_version=4).cells:
        source = cell.source
        for begin, end in (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")):
            source, inside = regions(source, begin, end)
            hidden |= significant_lines(inside)
        shown |= significant_lines(source)
    return shown, hidden


def solution_lines(assignment_id: str) -> set[str]:
    shown, hidden = shown_and_hidden(assignment_id)
    return hidden - shown


def leaks(text: str, assignment_id: str) -> list[str]:
    """Markers, answer lines, and hidden check or reference lines that the release does not show on purpose."""
    shown, _ = shown_and_hidden(assignment_id)
    found = [m for m in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS") if m in text]
    found += [line for line in (solution_lines(assignment_id) | secret_lines()) - shown if line in text]
    return found


@pytest.mark.parametrize("assignment_id", sorted(ASSIGNMENTS))
def test_release_has_no_solution_and_no_hidden_checks(assignment_id):
    a = ASSIGNMENTS[assignment_id]
    text = (RELEASE_DIR / a.id / a.notebook).read_text()
    assert solution_lines(assignment_id), "the leak detector found no solution lines to look for"
    assert not leaks(text, assignment_id)
    assert not re.search(r"autograder\.(checks|references)", text)


def test_leak_detector_finds_planted_answers_and_check_source():
    a = ASSIGNMENTS["01_pytorch_basics"]
    text = (RELEASE_DIR / a.id / a.notebook).read_text()
    answer = sorted(solution_lines(a.id))[0]
    check = sorted(check_lines())[0]
    assert leaks(text + answer, a.id) == [answer]
    assert check in leaks(text + check, a.id)


# --- a student's work in the release folder is never replaced silently -------------------------------------------

from autograder import release as release_module  # noqa: E402
from autograder.release import (  # noqa: E402
    ReleaseHoldsEdits, edited_files, fetch, install_release_guard, manifest_path, write_course_config,
)


@pytest.fixture
def fake_course(tmp_path, monkeypatch):
    """A course folder (no git) with one assignment whose 'generated' release is the source's text, upper-cased:
    what nbgrader would generate, without the seconds nbgrader takes."""
    course = tmp_path / "course"
    (course / "solutions" / "hw").mkdir(parents=True)
    (course / "solutions" / "hw" / "hw.ipynb").write_text("version 1\n")
    write_course_config(course)

    def generate(root, ids):
        for assignment_id in ids:
            src, out = root / "solutions" / assignment_id, root / "assignments" / assignment_id
            out.mkdir(parents=True)
            for path in src.iterdir():
                (out / path.name).write_text(path.read_text().upper())

    monkeypatch.setattr(release_module, "generate", generate)
    return course


def test_release_replaces_its_own_files_and_records_them(fake_course):
    notebook = fake_course / "assignments" / "hw" / "hw.ipynb"
    release_module.release(course_dir=fake_course)
    assert notebook.read_text() == "VERSION 1\n"
    assert json.loads(manifest_path(notebook.parent).read_text())["files"] == {
        "hw.ipynb": hashlib.sha256(b"VERSION 1\n").hexdigest()}
    (fake_course / "solutions" / "hw" / "hw.ipynb").write_text("version 2\n")  # the instructor changes the source
    release_module.release(course_dir=fake_course)  # the old release is the course's own: replaced
    assert notebook.read_text() == "VERSION 2\n"


def test_release_refuses_to_replace_a_students_answers_and_added_files(fake_course):
    folder = fake_course / "assignments" / "hw"
    release_module.release(course_dir=fake_course)
    (folder / "hw.ipynb").write_text("VERSION 1 + my answers\n")  # a self-study learner worked in the release
    (folder / "notes.txt").write_text("mine\n")
    (fake_course / "solutions" / "hw" / "hw.ipynb").write_text("version 2\n")
    with pytest.raises(ReleaseHoldsEdits) as error:
        release_module.release(course_dir=fake_course)
    assert sorted(p.name for p in error.value.paths) == ["hw.ipynb", "notes.txt"]
    assert "odl-grade fetch hw" in str(error.value) and "--force" in str(error.value)
    assert (folder / "hw.ipynb").read_text() == "VERSION 1 + my answers\n"  # nothing changed
    assert (folder / "notes.txt").exists()

    release_module.release(course_dir=fake_course, force=True)  # --force: a backup first, then the release
    assert (folder / "hw.ipynb").read_text() == "VERSION 2\n" and not (folder / "notes.txt").exists()
    [backup] = (fake_course / ".work" / "release-backups").iterdir()
    assert (backup / "hw" / "hw.ipynb").read_text() == "VERSION 1 + my answers\n"
    assert (backup / "hw" / "notes.txt").read_text() == "mine\n"


def test_release_without_a_record_refuses_unknown_files_but_not_identical_ones(fake_course):
    folder = fake_course / "assignments" / "hw"
    folder.mkdir(parents=True)
    (folder / "hw.ipynb").write_text("VERSION 1\n")  # what the release writes anyway: no loss
    release_module.release(course_dir=fake_course)
    manifest_path(folder).unlink()
    (folder / "hw.ipynb").write_text("someone's file\n")  # no record, no git: nobody can tell it is the course's
    with pytest.raises(ReleaseHoldsEdits):
        release_module.release(course_dir=fake_course)


def test_a_committed_unchanged_release_counts_as_the_courses_own(tmp_path):
    """No manifest (a fresh clone): a file git tracks and that is unchanged is the course's; an edited one is not."""
    repo = tmp_path / "repo"
    folder = repo / "assignments" / "hw"
    folder.mkdir(parents=True)
    (folder / "hw.ipynb").write_text("release\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"],
                   check=True)
    assert edited_files(folder) == []
    (folder / "hw.ipynb").write_text("release + answers\n")
    assert edited_files(folder) == [folder / "hw.ipynb"]


@pytest.mark.slow
def test_nbgraders_generate_refuses_to_replace_edited_work(tmp_path):
    """formgrader's Generate runs nbgrader's generate_assignment --force: with the course's config it refuses too."""
    course = tmp_path / "course"
    course.mkdir()
    write_course_config(course)
    shutil.copytree(SOLUTIONS / "02_optimizers", course / "solutions" / "02_optimizers")
    release_module.nbgrader(["generate_assignment", "02_optimizers", "--force"], course)
    notebook = course / "assignments" / "02_optimizers" / "optimizers.ipynb"
    assert manifest_path(notebook.parent).exists()
    release_module.nbgrader(["generate_assignment", "02_optimizers", "--force"], course)  # its own: fine
    notebook.write_text(notebook.read_text().replace("raise NotImplementedError()", "return 42", 1))
    edited = notebook.read_text()
    out = release_module.nbgrader(["generate_assignment", "02_optimizers", "--force"], course, check=False)
    assert "holds work that is not the course's release" in out and str(notebook) in out
    assert notebook.read_text() == edited


def test_release_guard_is_installed_once():
    from nbgrader.converters.generate_assignment import GenerateAssignment

    install_release_guard()
    first = GenerateAssignment.init_destination
    install_release_guard()
    assert GenerateAssignment.init_destination is first


def test_fetch_makes_a_working_copy_and_never_overwrites(fake_course):
    release_module.release(course_dir=fake_course)
    got = fetch("hw", fake_course)
    work = fake_course / "work" / "hw" / "hw.ipynb"
    assert got.copied == [work] and work.read_text() == "VERSION 1\n"
    work.write_text("my answers\n")
    (fake_course / "solutions" / "hw" / "hw.ipynb").write_text("version 2\n")
    release_module.release(course_dir=fake_course)  # the release moves on; the working copy is the student's
    again = fetch("hw", fake_course)
    assert again.copied == [] and again.kept == [work] and work.read_text() == "my answers\n"
    replaced = fetch("hw", fake_course, replace=True)
    [saved] = replaced.backups
    assert saved.name.startswith("hw.backup-") and saved.suffix == ".ipynb" and saved.read_text() == "my answers\n"
    assert work.read_text() == "VERSION 2\n"


def test_fetch_of_an_unreleased_assignment_or_into_the_release_is_refused(fake_course):
    release_module.release(course_dir=fake_course)
    with pytest.raises(release_module.FetchError, match="no released assignment 'nope'.*released: hw"):
        fetch("nope", fake_course)
    with pytest.raises(release_module.FetchError, match="release folder itself"):
        fetch("hw", fake_course, into=fake_course / "assignments" / "hw")


def test_course_config_is_plain_data_so_formgrader_can_show_it():
    """formgrader's "Current configuration" shows json.dumps of the config; a class in it made it print the raw
    object, whose "<class '...'>" parts the browser swallowed as unknown HTML tags (blanks)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    text = json.dumps(config)
    assert "autograder.preprocessors.RunHiddenChecks" in text and "autograder.structure.NormalizeSubmission" in text
