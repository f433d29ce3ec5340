"""autograder.intake: a submission folder is surveyed without following links or opening anything."""
import os
import time

import pytest

from autograder.corpus import Tripwire
from autograder.intake import RefusedFile, copy_plain, open_plain, plan, read_timestamp_text, survey


@pytest.fixture
def tripwire(tmp_path):
    wire = Tripwire(tmp_path / "tripwire")
    yield wire
    wire.stop()


def submission(tmp_path):
    folder = tmp_path / "submitted" / "alice" / "hw"
    folder.mkdir(parents=True)
    return folder


def test_links_pipes_and_outside_hard_links_are_refused_without_being_opened(tmp_path, tripwire):
    folder = submission(tmp_path)
    outside = tmp_path / "elsewhere.ipynb"
    outside.write_text("{}")
    (folder / "data.csv").write_text("1,2")
    os.link(folder / "data.csv", folder / "same.csv")  # both names inside: fine
    (folder / "nb.ipynb").symlink_to(tripwire.path)
    os.link(outside, folder / "other.ipynb")
    os.mkfifo(folder / "pipe")
    (folder / "sub").mkdir()
    (folder / "sub" / "link").symlink_to(tmp_path)
    found = survey(str(folder))
    assert found.files == {"data.csv": 2, "same.csv": 2}
    assert found.refused == {"nb.ipynb": "a symbolic link", "other.ipynb": "a hard link to a file outside your "
                             "submission", "pipe": "a named pipe (FIFO)", os.path.join("sub", "link"): "a symbolic link"}
    p = plan(str(folder), ["nb"])
    assert p.notebooks["nb"].source is None and "is a symbolic link" in p.notebooks["nb"].notes[0]
    assert p.copy == ["data.csv", "same.csv"]
    assert any("'pipe' (a named pipe (FIFO))" in n for n in p.notes)
    for path in (folder / "nb.ipynb", folder / "pipe", folder / "other.ipynb"):
        with pytest.raises(RefusedFile):
            open_plain(str(path))
    with pytest.raises(RefusedFile):
        copy_plain(str(folder / "nb.ipynb"), str(tmp_path / "copy"))
    (folder / "timestamp.txt").symlink_to(tripwire.path)
    assert read_timestamp_text(str(folder)) is None
    time.sleep(0.1)
    assert tripwire.opened == 0


def test_a_renamed_notebook_is_graded_as_the_expected_one_when_it_is_the_only_one(tmp_path):
    folder = submission(tmp_path)
    (folder / "optimizers – Kopie (1).ipynb").write_text("{}")
    p = plan(str(folder), ["optimizers"])
    assert p.notebooks["optimizers"].source == str(folder / "optimizers – Kopie (1).ipynb")
    assert "submitted as 'optimizers – Kopie (1).ipynb'" in p.notebooks["optimizers"].notes[0]
    assert p.notes == []


def test_several_notebooks_without_the_expected_one_are_not_guessed(tmp_path):
    folder = submission(tmp_path)
    (folder / "a.ipynb").write_text("{}")
    (folder / "b.ipynb").write_text("{}")
    p = plan(str(folder), ["optimizers"])
    assert p.notebooks["optimizers"].source is None
    note = p.notebooks["optimizers"].notes[0]
    assert "expected a notebook named 'optimizers.ipynb'" in note and "'a.ipynb', 'b.ipynb'" in note
    assert "not graded: 'a.ipynb', 'b.ipynb'" in p.notes[0]


def test_extra_notebooks_are_noted_and_not_copied(tmp_path):
    folder = submission(tmp_path)
    (folder / "optimizers.ipynb").write_text("{}")
    (folder / "scratch.ipynb").write_text("{}")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "x.txt").write_text("")
    p = plan(str(folder), ["optimizers"], ignore=[".ipynb_checkpoints"])
    assert p.notebooks["optimizers"].source == str(folder / "optimizers.ipynb") and not p.notebooks["optimizers"].notes
    assert p.notes == ["Notebooks this assignment does not have were not graded: 'scratch.ipynb'."]
    assert p.copy == []


def test_glob_characters_in_the_folder_name_are_plain_characters(tmp_path):
    folder = tmp_path / "submitted" / "x[1]" / "hw"
    folder.mkdir(parents=True)
    (folder / "optimizers.ipynb").write_text("{}")
    (folder / "notes.txt").write_text("")
    p = plan(str(folder), ["optimizers"], ignore=["*.pyc"])
    assert p.notebooks["optimizers"].source == str(folder / "optimizers.ipynb")
    assert p.copy == ["notes.txt"]


def test_a_linked_student_folder_is_found(tmp_path):
    from autograder.intake import _linked_below

    (tmp_path / "elsewhere" / "hw").mkdir(parents=True)
    (tmp_path / "submitted").mkdir()
    (tmp_path / "submitted" / "bob").symlink_to(tmp_path / "elsewhere")
    assert _linked_below(str(tmp_path), str(tmp_path / "submitted" / "bob" / "hw")) == str(tmp_path / "submitted" / "bob")
    assert _linked_below(str(tmp_path), str(tmp_path / "elsewhere" / "hw")) is None
