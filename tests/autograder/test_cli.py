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
