"""The conda environment and the pip path pin the same packages at the same versions."""
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def pip_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    return dict(r.split("==") for r in reqs)


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(r.split("==") for r in pip_section)


def test_every_requirement_is_pinned_exactly():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        assert req.count("==") == 1, f"{req} is not pinned with =="


def test_conda_and_pip_pin_the_same_versions():
    assert conda_pins() == pip_pins()


def test_python_version_agrees():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11,<3.12"


def test_required_torch_pair():
    pins = pip_pins()
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
