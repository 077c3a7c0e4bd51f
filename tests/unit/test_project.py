"""The repository's promises: one dependency set for pip and conda, pinned, and the
Makefile targets the README names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_names_the_pyproject_dependencies():
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_names = {d.split("=")[0] for d in env["dependencies"] if isinstance(d, str)}
    assert conda_names == {"python", "pip"}, "conda installs only Python and pip"
    assert "-e ." in pip_section, "the pip section installs this project"
    listed = {_name(r) for r in pip_section if not r.startswith("-")}
    assert listed == wanted


def test_every_dependency_is_pinned_in_constraints():
    project = _pyproject()["project"]
    pins = {
        _name(line): line.split("==", 1)[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert _name(requirement) in pins, f"{requirement} has no pin in constraints.txt"


def test_makefile_has_the_documented_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "lab", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_committed_notebooks_have_no_outputs():
    import json

    for path in (ROOT / "notebooks").glob("*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            assert not cell.get("outputs"), f"{path.name} has outputs committed"
            assert cell.get("execution_count") is None, f"{path.name} has execution counts"
