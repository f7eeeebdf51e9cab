"""The set-up files agree with each other."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


LOCK = ROOT / "requirements.lock"


def requirement_name(requirement: str) -> str:
    return canonicalize_name(re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0])


def lock_entries() -> list[tuple[str, Version, Marker | None, list[str]]]:
    """(name, version, marker, hashes) of every entry of the lock, read here on its own."""
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        head = re.match(r"([A-Za-z0-9_.-]+)==(\S+?)(?: ; ([^\\]+?))? \\\n", block)
        if head is None:
            continue
        name, version, marker = head.groups()
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries.append(
            (canonicalize_name(name), Version(version), Marker(marker) if marker else None, hashes)
        )
    return entries


def test_the_lock_pins_every_requirement_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entries = lock_entries()
    assert len(entries) > 100 and all(hashes for *_, hashes in entries)
    pinned = {name: version for name, version, *_ in entries}
    for requirement in map(
        Requirement, project["dependencies"] + project["optional-dependencies"]["dev"]
    ):
        name = canonicalize_name(requirement.name)
        assert name in pinned, requirement
        assert requirement.specifier.contains(pinned[name], prereleases=True), requirement


def test_torch_is_the_cpu_build_on_every_platform():
    torch_entries = [
        (version, marker) for name, version, marker, _ in lock_entries() if name == "torch"
    ]
    assert {str(v) for v, _ in torch_entries} == {"2.13.0+cpu", "2.13.0"}
    platforms = [
        ("linux", "x86_64", "2.13.0+cpu"),
        ("linux", "aarch64", "2.13.0"),
        ("darwin", "arm64", "2.13.0"),
        ("win32", "AMD64", "2.13.0"),
    ]
    for system, machine, expected in platforms:
        chosen = [
            str(v)
            for v, m in torch_entries
            if m.evaluate({"sys_platform": system, "platform_machine": machine})
        ]
        assert chosen == [expected], (system, machine)


def test_this_environment_is_the_lock():
    """What `make` installed is exactly what the lock names, version for version."""
    for name, version, marker, _ in lock_entries():
        if marker is None or marker.evaluate():
            assert Version(metadata.version(name)) == version, name


def test_environment_yml_pins_the_same_versions():
    environment = (ROOT / "environment.yml").read_text()
    listed = dict(re.findall(r"^\s+- ([A-Za-z0-9_.-]+)==(\S+)$", environment, re.M))
    locked = {name: version.public for name, version, *_ in lock_entries()}
    assert {canonicalize_name(n): Version(v).public for n, v in listed.items()} == locked
    assert "      - -e ." in environment


def test_makefile_installs_from_the_lock_only():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("$(STAMP):") :].split("\n\n")[0]
    assert "requirements.lock" in recipe.splitlines()[0]  # a new lock reinstalls
    commands = re.split(r"\n|\|\|", recipe.replace("\\\n", " "))
    installs = [command for command in commands if "pip install" in command]
    assert len(installs) == 3 and all("--no-deps" in each for each in installs)
    from_lock, editable = installs[:2], installs[2]
    assert all("--require-hashes" in each and "-r requirements.lock" in each for each in from_lock)
    assert editable.strip().endswith("-e .")
    assert "lock:" in makefile and "scripts/lock.py" in makefile


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
        [
            "bash",
            str(ROOT / "scripts" / "find_chromium.sh"),
            str(tmp_path / "found"),
            str(tmp_path / "no-python"),
        ],
        env={"PATH": _bare_path(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
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
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
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
