"""Out-of-kernel autograder for the course (hidden checks, references, nbgrader pipeline)."""
