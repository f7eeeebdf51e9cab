"""A class's ways in: Binder installs exactly the lock, the README's links are the ones
`course.launch` makes, and every lesson sets itself up on Colab (run with a stand-in for
Colab's module)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat

from convscope.course.launch import (
    BRANCH,
    COLAB_SETUP,
    REPOSITORY,
    binder_url,
    colab_url,
    launch_table,
    nbgitpuller_url,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)( ;[^\\]*)? \\$", re.M)


def _pins(text: str) -> list[tuple[str, str, str]]:
    """(name, version, marker) of every pinned line: read here by its own pattern, not by the
    lock tool's parser."""
    return sorted(
        (name.lower(), version, marker.strip()) for name, version, marker in PIN.findall(text)
    )


def test_binder_installs_exactly_the_lock():
    lock = (ROOT / "requirements.lock").read_text()
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    assert len(_pins(lock)) > 150  # every package, torch twice (the CPU wheel, and PyPI's)
    assert _pins(binder) == _pins(lock)
    hashes = re.compile(r"--hash=sha256:([0-9a-f]{64})")
    assert sorted(hashes.findall(binder)) == sorted(hashes.findall(lock))
    # torch's CPU wheel (2.13.0+cpu) lives on PyPI's CPU index, which Binder must be told of
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder.splitlines()
    assert (
        "torch",
        "2.13.0+cpu",
        '; platform_machine == "x86_64" and sys_platform == "linux"',
    ) in (_pins(binder))
    # the Python the lock was resolved for, in Binder's, conda's and pip's words
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert "  - python=3.11" in (ROOT / "environment.yml").read_text().splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & stat.S_IXUSR  # repo2docker runs it only if executable
    commands = [line for line in post_build.read_text().splitlines() if "pip install" in line]
    assert commands == ["python -m pip install --no-deps --no-build-isolation -e ."]


def test_links_are_made_from_the_repository_that_pyproject_names():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == REPOSITORY
    owner, name = urlparse(REPOSITORY).path.strip("/").split("/")
    notebook = NOTEBOOKS[0]

    binder = urlparse(binder_url(notebook))
    assert (binder.netloc, binder.path) == ("mybinder.org", f"/v2/gh/{owner}/{name}/{BRANCH}")
    assert parse_qs(binder.query) == {"labpath": [f"notebooks/{notebook}"]}
    assert parse_qs(urlparse(binder_url()).query) == {"urlpath": ["lab/tree/notebooks"]}

    colab = urlparse(colab_url(notebook))
    assert colab.netloc == "colab.research.google.com"
    assert colab.path == f"/github/{owner}/{name}/blob/{BRANCH}/notebooks/{notebook}"

    puller = urlparse(nbgitpuller_url("https://hub.example.edu/", notebook))
    assert (puller.netloc, puller.path) == ("hub.example.edu", "/hub/user-redirect/git-pull")
    assert parse_qs(puller.query) == {
        "repo": [REPOSITORY],
        "branch": [BRANCH],
        "urlpath": [f"lab/tree/{name}/notebooks/{notebook}"],
    }


def test_the_readme_gives_every_lesson_its_links():
    readme = (ROOT / "README.md").read_text()
    assert launch_table(NOTEBOOKS) in readme
    assert len(NOTEBOOKS) == 7 and all(f"notebooks/{n}" in readme for n in NOTEBOOKS)
    assert binder_url() in readme
    assert nbgitpuller_url("https://hub.example.edu", NOTEBOOKS[0]) in readme


def test_every_lesson_sets_itself_up_on_colab_before_anything_else():
    for name in NOTEBOOKS:
        cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
        first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        setup = cells[first + 1]
        assert setup.metadata.get("tags") == ["colab-setup"], name
        assert setup.source == COLAB_SETUP and setup.outputs == [], name
        imports = [i for i, c in enumerate(cells) if "import convscope" in c.source]
        assert imports and imports[0] > first + 1, name


def test_on_colab_the_setup_cell_fetches_the_course_and_installs_the_pinned_packages(tmp_path):
    # Colab's kernel has imported google.colab; a stand-in module plays it here. git fetches
    # this repository (its committed main) where the cell names GitHub, and pip resolves the
    # install against the lock without changing this environment (PIP_DRY_RUN).
    stand_in = tmp_path / "stand_in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in.parent / "__init__.py").write_text("")
    (stand_in / "__init__.py").write_text('"""A stand-in for Google Colab\'s module."""\n')
    home = tmp_path / "home"
    home.mkdir()
    program = "\n".join(
        [
            "import google.colab",
            COLAB_SETUP,
            "import os, convscope as cs",
            "print('package:', cs.__file__)",
            "print('working folder:', os.getcwd())",
            "print('digits:', len(cs.load_digits('heldout')[0]))",
        ]
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "stand_in"),
        "HOME": str(home),
        "PIP_DRY_RUN": "1",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{ROOT}.insteadOf",
        "GIT_CONFIG_VALUE_0": REPOSITORY,
    }
    env.pop("CONVSCOPE_DATA", None)
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    course = home / "convscope"
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["package"] == str(course / "src" / "convscope" / "__init__.py")
    assert lines["working folder"] == str(course / "notebooks")
    assert int(lines["digits"]) > 0  # read from the fetched course's data/
    assert "convscope and its pinned packages are installed" in done.stdout
    assert (course / "requirements.lock").read_text() == (ROOT / "requirements.lock").read_text()
