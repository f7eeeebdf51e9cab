"""Refresh the lock file and the conda environment from pyproject.toml: `make lock`.

- `requirements.lock`: every package `make` installs, exact versions and sha256 hashes of
  every file PyPI offers for them (pip-compile), resolved for Python 3.11. torch is the CPU
  wheel, 2.13.0+cpu, on x86-64 Linux; elsewhere (ARM64 Linux, macOS, Windows) PyPI's
  torch 2.13.0 is itself a CPU build, so the lock names it with its own hashes, by platform.
- `environment.yml`: the same versions for conda users (pip installs them all inside the
  conda environment, so conda's own builds never differ from the lock).
- `binder/requirements.txt`: the lock itself for Binder (repo2docker installs it, hashes
  checked, with PyTorch's CPU index for torch's CPU wheel); `binder/postBuild` then installs
  convscope.

After a refresh, `make test` must pass before the new lock is committed.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
BINDER = ROOT / "binder" / "requirements.txt"
TOOLS = ROOT / "build" / "lock-tools"
PIP_TOOLS = "pip-tools==7.6.2"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # where torch's +cpu wheels live
TORCH = "2.13.0"
CPU_WHEEL_MARKER = 'platform_machine == "x86_64" and sys_platform == "linux"'
PYPI_WHEEL_MARKER = 'platform_machine != "x86_64" or sys_platform != "linux"'
# PyPI's CPU-only torch wheels for Python 3.11 (Linux ARM64, macOS ARM64, Windows)
PYPI_CPU_WHEELS = re.compile(
    rf"torch-{re.escape(TORCH)}-cp311-cp311-"
    r"(manylinux_2_28_aarch64|macosx_\d+_\d+_arm64|win_amd64)\.whl#sha256=([0-9a-f]{64})"
)


def _torch_index() -> list[str]:
    """PyTorch's CPU index as an extra index, when its host resolves; where it does not (a
    closed network), pip's own configuration must offer the wheel (a find-links folder)."""
    host = TORCH_INDEX.split("/")[2]
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        print(f"{host} is out of reach: torch's CPU wheel must come from pip's configuration")
        return []
    return ["--extra-index-url", TORCH_INDEX]


def _compile(out: Path) -> None:
    if not (TOOLS / "bin" / "pip-compile").exists():
        venv.create(TOOLS, with_pip=True)
        subprocess.run([TOOLS / "bin" / "pip", "install", "--quiet", PIP_TOOLS], check=True)
    constraints = TOOLS / "constraints.txt"
    constraints.write_text(f"torch=={TORCH}+cpu\n")
    constraints = constraints.relative_to(ROOT)  # relative paths in the lock's comments
    subprocess.run(
        [
            TOOLS / "bin" / "pip-compile",
            "--quiet",
            "--extra",
            "dev",
            "--generate-hashes",
            "--allow-unsafe",
            "--strip-extras",
            "--all-build-deps",
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--no-header",
            *_torch_index(),
            "--constraint",
            constraints,
            "--output-file",
            out,
            "pyproject.toml",
        ],
        check=True,
        cwd=ROOT,
    )


def _pypi_torch_hashes() -> list[str]:
    with urllib.request.urlopen("https://pypi.org/simple/torch/", timeout=60) as page:
        found = PYPI_CPU_WHEELS.findall(page.read().decode())
    if not found:
        sys.exit(f"no CPU wheel of torch {TORCH} for Python 3.11 on PyPI's torch page")
    return sorted({digest for _, digest in found})


def _split_torch(text: str) -> str:
    """The torch entry, once for x86-64 Linux (the CPU wheel) and once for everything else."""
    hashes = r"((?:    --hash=\S+(?: \\)?\n)+)"
    block = re.compile(rf"^torch=={re.escape(TORCH)}\+cpu \\\n{hashes}", re.M)
    match = block.search(text)
    if match is None:
        sys.exit("pip-compile did not lock torch's CPU wheel")
    hashes = " \\\n".join(f"    --hash=sha256:{h}" for h in _pypi_torch_hashes())
    both = (
        f"torch=={TORCH}+cpu ; {CPU_WHEEL_MARKER} \\\n{match.group(1)}"
        f"torch=={TORCH} ; {PYPI_WHEEL_MARKER} \\\n{hashes}\n"
    )
    return text[: match.start()] + both + text[match.end() :]


def _one_torch(text: str) -> str:
    """The lock as pip-compile wrote it: the entry for other platforms' torch taken out, the
    x86-64 Linux entry without its marker."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(f"torch=={TORCH} ;"):
            skipping = True
            continue
        if skipping and line.startswith("    --hash="):
            continue
        skipping = False
        if line.startswith(f"torch=={TORCH}+cpu ;"):
            line = f"torch=={TORCH}+cpu \\\n"
        kept.append(line)
    return "".join(kept)


def pins(lock_text: str) -> dict[str, str]:
    """{name: version} of every package the lock names (torch's local label kept)."""
    return {
        name.lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+?)(?: ;.*)? \\$", lock_text, re.M)
    }


def _environment(versions: dict[str, str]) -> str:
    lines = [
        "# Generated from requirements.lock by `make lock` (scripts/lock.py): the same versions.",
        "#   conda env create -f environment.yml && conda activate convscope",
        "# torch is PyTorch's CPU build: 2.13.0+cpu from its CPU index on x86-64 Linux, PyPI's",
        "# 2.13.0 (CPU-only there) elsewhere.",
        "name: convscope",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        "      - --extra-index-url https://download.pytorch.org/whl/cpu",
    ]
    for name, version in sorted(versions.items()):
        if name == "torch":
            version = version.split("+")[0]
        lines.append(f"      - {name}=={version}")
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


def binder_requirements(lock_text: str) -> str:
    """`binder/requirements.txt`: the lock, with the index torch's CPU wheel comes from."""
    return (
        "# Generated from requirements.lock by `make lock` (scripts/lock.py): Binder's\n"
        "# environment is exactly the lock, hash-checked; binder/postBuild installs convscope.\n"
        f"--extra-index-url {TORCH_INDEX}\n" + lock_text
    )


def main() -> None:
    scratch = TOOLS / "requirements.lock"
    TOOLS.mkdir(parents=True, exist_ok=True)
    # pip-compile keeps the pins of an existing output file: seeded with the current lock (its
    # x86-64 torch entry only), a new dependency changes no version that does not need to move
    if LOCK.exists():
        scratch.write_text(_one_torch(LOCK.read_text()))
    _compile(scratch)
    text = _split_torch(scratch.read_text())
    header = (
        "# The exact environment `make` installs (pip, hash-checked): refresh with `make lock`\n"
        "# (scripts/lock.py, pip-compile over pyproject.toml), then run `make test` before\n"
        "# committing it.\n"
    )
    LOCK.write_text(header + text)
    versions = {name: version for name, version in pins(text).items()}
    ENVIRONMENT.write_text(_environment(versions))
    BINDER.write_text(binder_requirements(LOCK.read_text()))
    print(f"{LOCK.name}: {len(versions)} packages; {ENVIRONMENT.name} and {BINDER} written")


if __name__ == "__main__":
    main()
