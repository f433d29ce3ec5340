"""assignments/ is exactly what nbgrader generates from solutions/, and gives nothing away."""
import re
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
    assert sorted(p.name for p in RELEASE_DIR.iterdir() if p.is_dir()) == assignment_ids()


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
