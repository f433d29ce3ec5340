"""nbgrader configuration for the course (instructors run nbgrader from this folder).

solutions/ holds the source notebooks, assignments/ the student release. Grading
runs the hidden checks in a fresh process (started by
autograder.preprocessors.StartHiddenChecks before nbgrader executes the notebook,
collected by RunHiddenChecks after it) and removes the hidden test regions from
the graded notebook, so feedback never shows them.
"""
from nbgrader.converters import Autograde
from nbgrader.preprocessors import ClearHiddenTests, Execute

from autograder.preprocessors import RunHiddenChecks, StartHiddenChecks

c = get_config()  # noqa: F821  (injected by nbgrader)

c.CourseDirectory.course_id = "odl-pytorch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# Student notebooks run their own cells under this limit per cell; the hidden
# checks have their own limits (c.HiddenChecks.timeout / .check_timeout).
c.Execute.timeout = 120

steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
at = steps.index(Execute)
c.Autograde.autograde_preprocessors = (
    steps[:at] + [StartHiddenChecks, Execute, RunHiddenChecks, ClearHiddenTests] + steps[at + 1:]
)

# The release keeps a short stub students replace.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
