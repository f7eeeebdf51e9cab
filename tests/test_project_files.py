"""The set-up files agree with each other."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
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


def _bare_path(tmp_path: Path) -> str:
    """A PATH with the few tools the browser finder needs, and no chromium, apt-get or sudo."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "id", "timeout", "cat", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bare / tool).symlink_to(found)
    return str(bare)


def test_make_test_finds_the_browser_before_the_suite():
    makefile = (ROOT / "Makefile").read_text()
    stages = re.search(r"for stage in ([a-z ]+); do", makefile).group(1).split()
    assert stages[:2] == ["env", "browser"] and stages.index("browser") < stages.index("unit")
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_browser_finder_without_any_way_to_a_browser_stops_in_seconds(tmp_path):
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "find_chromium.sh"), str(tmp_path / "found"),
         str(tmp_path / "no-python")],  # fmt: skip
        env={"PATH": _bare_path(tmp_path), "HOME": str(tmp_path)},
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert time.monotonic() - start < 10
    assert "sudo apt-get install chromium" in result.stderr
    assert "-m playwright install chromium" in result.stderr
    assert not (tmp_path / "found").exists()


def test_browser_finder_records_the_chromium_it_is_given(tmp_path):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "find_chromium.sh"), str(tmp_path / "found")],
        env={"PATH": _bare_path(tmp_path), "CONVSCOPE_CHROMIUM": str(fake)},
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "found").read_text().strip() == str(fake)


def test_every_file_the_lessons_and_readme_point_at_exists():
    """Paths like `bench/bench_saliency.py` or `data/digits.pt` in a notebook or the README."""
    texts = [(ROOT / "README.md").read_text()]
    texts += [p.read_text() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    pointed = set()
    for text in texts:
        pointed.update(re.findall(r"\b((?:bench|data|scripts|tests|src)/[\w./-]*\w\.\w+)", text))
    assert any(p.startswith("bench/") for p in pointed)
    missing = sorted(p for p in pointed if not (ROOT / p).exists())
    assert not missing, missing
