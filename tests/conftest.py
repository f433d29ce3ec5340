"""Test-wide setup: the sandbox student code runs in (autograder.isolation).

CI installs bubblewrap (.ci/run) and sets AUTOGRADER_REQUIRE_SANDBOX=1: there, a machine that cannot sandbox fails
the run. Elsewhere, without bwrap, the suite runs student code unsandboxed (AUTOGRADER_UNSAFE_NO_SANDBOX=1) and
the tests of the sandbox itself are skipped, saying why.
"""
import os

import pytest

from autograder import isolation

SANDBOX, WHY_NOT = isolation.available()
if not SANDBOX:
    if os.environ.get("AUTOGRADER_REQUIRE_SANDBOX") == "1":
        raise pytest.UsageError(f"AUTOGRADER_REQUIRE_SANDBOX=1 but {WHY_NOT}. {isolation.INSTALL_HINT}")
    os.environ.setdefault(isolation.UNSAFE_ENV, "1")


def pytest_report_header(config):
    if SANDBOX and not isolation.unsafe():
        return "student code: in the bubblewrap sandbox"
    return f"student code: NOT sandboxed ({WHY_NOT or 'AUTOGRADER_UNSAFE_NO_SANDBOX is set'})"


