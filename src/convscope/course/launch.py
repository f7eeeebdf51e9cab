"""Where a class opens the lessons: a Binder, a Colab and a JupyterHub (nbgitpuller) link each.

Every link is made here from the repository's address and branch, so a fork changes two
constants (and `[project.urls]` in pyproject.toml, which a test holds equal). The README's
table of links is `launch_table()` as Markdown, and a test holds it equal too.

- Binder (mybinder.org) builds the repository with repo2docker from `binder/`: the lock,
  then convscope; `labpath` opens one notebook in JupyterLab.
- Colab opens a notebook straight from GitHub; the notebook's setup cell then fetches the
  repository and installs the lock's versions (`COLAB_SETUP`).
- nbgitpuller, on a course's JupyterHub, pulls the repository into each student's home
  (merging, never overwriting a student's changes) and opens the notebook.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote, urlencode

REPOSITORY = "https://github.com/convscope/convscope"
BRANCH = "main"

# The first code cell of every lesson. Outside Colab it does nothing; on Colab it fetches the
# repository at `BRANCH` (the lessons, data/ and the lock) and installs convscope with every
# dependency at the lock's version, torch included (2.13.0 from PyPI: its CUDA build, which
# Colab's GPUs run). `scripts/colab_setup.py` holds the steps; the cell only fetches them.
COLAB_SETUP = f"""\
# On Google Colab only: fetch the course, install its pinned packages (elsewhere: nothing)
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    COURSE = os.path.expanduser("~/convscope")
    if not os.path.isdir(COURSE):
        subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", "{BRANCH}",
             "{REPOSITORY}", COURSE],
            check=True,
        )
    subprocess.run([sys.executable, os.path.join(COURSE, "scripts", "colab_setup.py")], check=True)
    sys.path.insert(0, os.path.join(COURSE, "src"))
    os.chdir(os.path.join(COURSE, "notebooks"))"""


def _owner_and_name() -> str:
    """`owner/name` of the GitHub repository."""
    return REPOSITORY.removeprefix("https://github.com/")


def binder_url(notebook: str | None = None) -> str:
    """mybinder.org's launch link: JupyterLab on `notebooks/` or on one notebook's file name."""
    base = f"https://mybinder.org/v2/gh/{_owner_and_name()}/{BRANCH}"
    if notebook is None:
        return f"{base}?urlpath={quote('lab/tree/notebooks', safe='')}"
    return f"{base}?labpath={quote(f'notebooks/{notebook}', safe='')}"


def colab_url(notebook: str) -> str:
    """Colab's link that opens `notebooks/<notebook>` from GitHub."""
    return (
        f"https://colab.research.google.com/github/{_owner_and_name()}/blob/{BRANCH}/"
        f"notebooks/{notebook}"
    )


def nbgitpuller_url(
    hub: str, notebook: str | None = None, repository: str = REPOSITORY, branch: str = BRANCH
) -> str:
    """A JupyterHub link that pulls the repository into the student's home (the folder takes
    the repository's name) and opens JupyterLab there, on one notebook when given.

    Args:
        hub: the hub's address, `https://hub.example.edu`.
        repository, branch: where the lessons come from (a class's release of them, say).
    """
    folder = PurePosixPath(repository.rstrip("/")).name
    path = f"lab/tree/{folder}/notebooks" + (f"/{notebook}" if notebook else "")
    query = urlencode({"repo": repository, "branch": branch, "urlpath": path})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def launch_table(notebooks: list[str]) -> str:
    """The README's table: each notebook with its Binder and Colab links (Markdown)."""
    rows = ["| lesson | Binder | Colab |", "|---|---|---|"]
    for notebook in notebooks:
        rows.append(
            f"| `{PurePosixPath(notebook).stem}` | [launch]({binder_url(notebook)}) "
            f"| [open]({colab_url(notebook)}) |"
        )
    return "\n".join(rows)
