"""On Google Colab: install convscope with every dependency at the lock's version.

Each lesson's first code cell (`convscope.course.launch.COLAB_SETUP`) clones the repository
and runs this script, which needs nothing but the standard library and pip. Every package
convscope needs is constrained to its version in `requirements.lock`; torch's local label
(`+cpu`) is dropped, so Colab gets PyPI's torch 2.13.0, the CUDA build its GPUs run. The
packages Colab has at the lock's versions already are left alone; others are replaced.
convscope itself is installed editable, so that it reads the repository's `data/`.

pip's own environment variables apply (`PIP_DRY_RUN=1` resolves without installing: the
tests run this script that way, with a stand-in for Colab's module).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from lock import LOCK, ROOT, pins  # scripts/lock.py, beside this file


def constraints(lock_text: str) -> str:
    """pip constraints, one `name==version` a line, from the lock (local labels dropped)."""
    return "".join(
        f"{name}=={version.split('+')[0]}\n" for name, version in sorted(pins(lock_text).items())
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        pinned = Path(folder) / "constraints.txt"
        pinned.write_text(constraints(LOCK.read_text()))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(pinned)]
        # the build uses the environment's own setuptools (Colab has it), as `make env` does
        subprocess.run([*command, "--no-build-isolation", "-e", str(ROOT)], check=True)
    print("convscope and its pinned packages are installed")


if __name__ == "__main__":
    main()
