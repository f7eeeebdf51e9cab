"""The set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_lists_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = (ROOT / "environment.yml").read_text()
    listed = {
        requirement_name(line.strip(" -"))
        for line in environment.splitlines()
        if line.strip().startswith("- ")
    }
    for requirement in project["dependencies"]:
        assert requirement_name(requirement) in listed, requirement
    assert "torch==2.13.0" in environment and '-e ".[dev]"' in environment


def test_makefile_installs_cpu_torch_before_the_package():
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("torch==2.13.0") < makefile.index('-e ".[dev]"')


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
