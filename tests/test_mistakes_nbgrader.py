"""Every known typical mistake, submitted as its own student and autograded by real nbgrader,
loses exactly the expected points (tests/golden/mistake_scores.json), only where it was made, and
its feedback names it. Regenerate the golden file with UPDATE_GOLDEN=1 after a deliberate change."""
import html
import json
import os
from pathlib import Path

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.demo import grade, place, prepare_course
from autograder.release import generate
from autograder.submissions import MISTAKES, make_submission
from tests.test_pipeline import cell_scores_of

GOLDEN = Path(__file__).parent / "golden" / "mistake_scores.json"
CASES = [(a, m) for a in sorted(MISTAKES) for m in MISTAKES[a]]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mistakes")
    ids = prepare_course(workdir)
    generate(workdir, ids)
    for assignment_id, mistake in CASES:
        notebook = ASSIGNMENTS[assignment_id].notebook
        nb = make_submission(workdir / "assignments" / assignment_id / notebook,
                             workdir / "solutions" / assignment_id / notebook, [mistake])
        place(workdir, mistake.name, assignment_id, nb)
    grade(workdir, ids)
    return workdir, cell_scores_of(workdir, [(a, m.name) for a, m in CASES])


def test_scores_match_the_golden_file(course):
    _, scores = course
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    assert scores == json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("assignment_id, mistake", CASES, ids=[m.name for _, m in CASES])
def test_mistake_loses_points_only_where_made_and_feedback_names_it(course, assignment_id, mistake):
    workdir, scores = course
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}", "odl-pytorch") as gb:
        grades = [g for nb in gb.find_submission(assignment_id, mistake.name).notebooks for g in nb.grades]
        maxima = {g.name: g.max_score for g in grades}
        by_hand = {g.name for g in grades if g.auto_score is None}  # written answers: graded by hand, later
    got = scores[f"{mistake.name}/{assignment_id}"]
    assert got[f"test_{mistake.task}"] < maxima[f"test_{mistake.task}"]
    exempt = {f"test_{t}" for t in (mistake.task, *mistake.also)} | by_hand
    assert {k: v for k, v in got.items() if k not in exempt} == {k: v for k, v in maxima.items() if k not in exempt}
    feedback = next((workdir / "feedback" / mistake.name / assignment_id).glob("*.html")).read_text()
    assert mistake.feedback in html.unescape(feedback)
