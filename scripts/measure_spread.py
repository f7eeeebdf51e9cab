"""How much each printed number moves between CPU settings: run every notebook under each.

A CPU setting is torch's kernel level (`ATEN_CPU_CAPABILITY`), oneDNN's instruction-set cap
(`ONEDNN_MAX_CPU_ISA`), MKL's (`MKL_ENABLE_INSTRUCTIONS`: the matrix products of every linear
layer and of every float64 convolution) and the thread count: together they stand for the
machines a class meets (AVX-512 or AVX2 servers, old laptops, ARM). Every notebook is executed
once per setting, in a fresh kernel, and every number in every code cell's text output is compared
across settings, position by position, after nbval's own sanitising (`tests/sanitize.cfg`:
timings and numbers shown after "≈" are shown, never compared):

    .venv/bin/python scripts/measure_spread.py            # every notebook, three settings
    .venv/bin/python scripts/measure_spread.py 06 07      # some notebooks

It prints, per notebook, how many numbers were compared, and each number that differs with
its values under every setting (the spread). The committed outputs must show none.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (name, ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, threads); None
# keeps the machine's own.
SETTINGS = [
    ("own, 1 thread", None, None, None, 1),
    ("SSE4 (torch default, oneDNN SSE41, MKL SSE4_2), 1 thread", "default", "SSE41", "SSE4_2", 1),
    ("AVX2 (torch, oneDNN, MKL), 2 threads", "avx2", "AVX2", "AVX2", 2),
]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _sanitisers() -> list[tuple[re.Pattern, str]]:
    """nbval's replacements from tests/sanitize.cfg, in order."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tests" / "sanitize.cfg", encoding="utf-8")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


def _execute(notebook: Path, setting: tuple, out: Path) -> None:
    """Execute `notebook` in a fresh kernel whose environment carries `setting`."""
    _, capability, isa, mkl, threads = setting
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CONVSCOPE_DEVICE="cpu")
    variables = (
        ("ATEN_CPU_CAPABILITY", capability),
        ("ONEDNN_MAX_CPU_ISA", isa),
        ("MKL_ENABLE_INSTRUCTIONS", mkl),
    )
    for key, value in variables:
        env.pop(key, None)
        if value is not None:
            env[key] = value
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=1200",
            "--output",
            str(out),
            str(notebook),
        ],
        check=True,
        cwd=notebook.parent,
        env=env,
        capture_output=True,
    )


IGNORED = {"nbval-ignore-output", "nbval-skip"}  # widgets and timings: nbval compares nothing


def _texts(path: Path) -> list[str | None]:
    """The text outputs of every code cell, one string per cell (figures are not text); None
    for a cell whose output nbval does not compare."""
    cells = json.loads(path.read_text())["cells"]
    texts: list[str | None] = []
    for cell in (c for c in cells if c["cell_type"] == "code"):
        if IGNORED & set(cell["metadata"].get("tags", [])):
            texts.append(None)
            continue
        parts = []
        for output in cell.get("outputs", []):
            if "text" in output:
                parts.append("".join(output["text"]))
            elif "image/png" not in output.get("data", {}):
                parts.append("".join(output.get("data", {}).get("text/plain", "")))
        text = "".join(parts)
        for pattern, replacement in _sanitisers():
            text = pattern.sub(replacement, text)
        texts.append(text)
    return texts


def spread(notebook: Path, scratch: Path) -> tuple[int, list[tuple[int, list[str]]]]:
    """(numbers compared, [(code cell, [the number under each setting]), ...] that differ)."""
    runs = []
    for index, setting in enumerate(SETTINGS):
        out = scratch / f"{notebook.stem}-{index}.ipynb"
        _execute(notebook, setting, out)
        runs.append(_texts(out))
    compared, moved = 0, []
    for cell, texts in enumerate(zip(*runs)):
        if texts[0] is None:
            continue
        numbers = [NUMBER.findall(text) for text in texts]
        if len({len(each) for each in numbers}) > 1:
            moved.append((cell, ["(a different count of numbers)"] * len(texts)))
            continue
        for values in zip(*numbers):
            compared += 1
            if len(set(values)) > 1:
                moved.append((cell, list(values)))
    return compared, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="prefixes (01 ... 07); all by default")
    chosen = parser.parse_args().notebooks
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if chosen:
        notebooks = [nb for nb in notebooks if nb.name[:2] in chosen]
    print("settings:", "; ".join(name for name, *_ in SETTINGS))
    total = 0
    with tempfile.TemporaryDirectory() as scratch:
        for notebook in notebooks:
            compared, moved = spread(notebook, Path(scratch))
            total += len(moved)
            print(f"{notebook.stem}: {compared} printed numbers, {len(moved)} differ")
            for cell, values in moved:
                print(f"    code cell {cell}: " + " | ".join(values))
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
