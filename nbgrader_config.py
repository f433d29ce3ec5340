"""nbgrader configuration for the course (instructors run nbgrader from this folder).

solutions/ holds the source notebooks, assignments/ the student release. Grading
adds two steps after nbgrader executes a submission: the hidden checks run in a
fresh process (autograder.preprocessors.RunHiddenChecks) and the hidden test
regions are removed from the graded notebook, so feedback never shows them.
"""
from nbgrader.converters import Autograde
from nbgrader.preprocessors import ClearHiddenTests, Execute

from autograder.preprocessors import RunHiddenChecks

c = get_config()  # noqa: F821  (injected by nbgrader)

c.CourseDirectory.course_id = "odl-pytorch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"

# Student notebooks run their own cells under this limit per cell; the hidden
# checks have their own limits (RunHiddenChecks.timeout / .check_timeout).
c.Execute.timeout = 120

steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
at = steps.index(Execute) + 1
c.Autograde.autograde_preprocessors = steps[:at] + [RunHiddenChecks, ClearHiddenTests] + steps[at:]

# The release keeps a short stub students replace.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
