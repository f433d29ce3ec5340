"""nbgrader configuration for the course (instructors run nbgrader from this folder).

solutions/ holds the source notebooks, assignments/ the student release.

Autograding, step by step (nbgrader's defaults plus the course's own steps):

* collecting: ``autograder.intake`` (installed below) lists each submission folder without
  following links: symbolic links, FIFOs, devices and hard links to files outside the submission
  are refused (never read, a note says so), a renamed notebook ("optimizers – Kopie (1).ipynb")
  is graded as the one expected, a missing one as unanswered with a note naming the file, and
  student ids with glob characters (x[1], a*b) are found; ``generate_feedback`` skips notebooks
  the gradebook does not know instead of failing;
* reading: ``TolerantExporter`` grades a file that is not a notebook as the unanswered
  release, with a note, instead of failing the submission (and keeping an old score);
* sanitize: ``NormalizeSubmission`` first puts the notebook back into the release's
  structure (deleted, duplicated, reordered, retyped cells) and resets the submission's
  automatic scores, then nbgrader's own steps restore the instructor cells;
* autograde: ``StartHiddenChecks`` starts the hidden checks in a fresh, guarded process
  on the notebook's setup and answer cells; ``GuardedExecute`` (nbgrader's Execute, with
  a guarded kernel and a graded notebook even when the kernel dies) runs the notebook;
  ``RunHiddenChecks`` writes feedback and points into each graded test cell;
  ``ClearHiddenTests`` removes hidden regions; ``LimitOutputSize`` cuts huge outputs;
  ``ShowGraderNotes`` puts what the grader found at the top of the feedback.

``odl-grade autograde`` runs this for a class with several workers and a summary.

Every step is named by its import path (a string), not given as a class: nbgrader imports it
either way, and formgrader's "Current configuration" panel can then show the configuration
(with classes in it the configuration is not JSON, formgrader prints the raw object instead, and
the browser swallows every ``<class '...'>`` in it as an unknown HTML tag: blanks).

Releasing: ``autograder.release.install_release_guard()`` makes ``generate_assignment``
(formgrader's Generate) refuse to replace a release folder that holds someone's edits.

The exchange (release_assignment, fetch_assignment, submit, collect, release_feedback,
fetch_feedback): ``odl-grade exchange init [--root DIR]`` creates it and records its root in
``nbgrader_exchange_config.py`` next to this file (git-ignored, loaded at the end);
without it nbgrader's default root /srv/nbgrader/exchange applies.
Importing ``autograder.gradebook`` puts a SQLite gradebook in WAL mode with a long busy
timeout, so nbgrader commands that overlap (formgrader, autograde) wait instead of failing.
"""
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute

import autograder.gradebook  # noqa: F401  (SQLite: WAL and a busy timeout for overlapping nbgrader commands)
from autograder import intake, release

c = get_config()  # noqa: F821  (injected by nbgrader)

intake.install()  # nbgrader autograde / generate_feedback collect submissions through autograder.intake
release.install_release_guard()  # generate_assignment never replaces edited work in assignments/


def name(cls) -> str:
    """A preprocessor's import path: nbgrader imports it; formgrader can display it."""
    return f"{cls.__module__}.{cls.__qualname__}"


c.CourseDirectory.course_id = "odl-pytorch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# Student notebooks run their own cells under this limit per cell (the notebooks skip their
# demo training while grading: NBGRADER_EXECUTION=autograde); the hidden checks have their
# own limits (c.HiddenChecks.timeout / .check_timeout / .memory_limit_mb).
c.Execute.timeout = 60

c.Autograde.exporter_class = "autograder.structure.TolerantExporter"
c.Autograde.sanitize_preprocessors = ["autograder.structure.NormalizeSubmission"] + [
    name(step) for step in Autograde.class_traits()["sanitize_preprocessors"].default()]

steps = [name(step) for step in Autograde.class_traits()["autograde_preprocessors"].default()]
at = steps.index(name(Execute))
c.Autograde.autograde_preprocessors = (
    steps[:at]
    + ["autograder.preprocessors.StartHiddenChecks", "autograder.execute.GuardedExecute",
       "autograder.preprocessors.RunHiddenChecks", "nbgrader.preprocessors.ClearHiddenTests",
       "autograder.preprocessors.LimitOutputSize", "autograder.preprocessors.ShowGraderNotes"]
    + steps[at + 1:]
)

# The release keeps a short stub students replace.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# The exchange root written by `odl-grade exchange init` (absent: nbgrader's default, /srv/nbgrader/exchange).
load_subconfig("nbgrader_exchange_config.py")  # noqa: F821  (injected by nbgrader; a missing file is skipped)
