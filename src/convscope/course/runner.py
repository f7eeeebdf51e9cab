"""Executing the course notebooks headlessly with papermill (`python -m convscope run`)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import papermill
import yaml
from nbconvert import HTMLExporter
from tqdm.auto import tqdm

from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.files import (
    readable_file,
    writable_folder,
    write_atomically,
    write_bytes_atomically,
    write_text_atomically,
)
from convscope.core.records import RECORDS_VARIABLE, records_path
from convscope.course.compact_figures import compact_png
from convscope.course.gallery import RunRecord, write_gallery
from convscope.course.headless import ENGINE_NAME
from convscope.course.parameters import check_run

REPOSITORY = Path(__file__).resolve().parents[3]
NOTEBOOK_DIR = REPOSITORY / "notebooks"
FIGURE_DIR = REPOSITORY / "docs" / "figures"
KEY_FIGURE_TAG = "key-figure"


def notebook_paths() -> list[Path]:
    """The course notebooks, `NN_name.ipynb`, in order."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(selectors: list[str]) -> list[Path]:
    """Notebooks by number (`02`), stem (`02_net_surgery`) or name (`net_surgery`); all if none."""
    paths = notebook_paths()
    if not selectors:
        return paths
    chosen = []
    for selector in selectors:
        matches = [p for p in paths if selector in (p.stem, p.stem[:2], p.stem[3:], p.name)]
        if not matches:
            raise unknown_name("notebook", selector, [p.stem for p in paths])
        chosen += matches
    return chosen


def parse_value(text: str) -> object:
    """A parameter value typed on the command line: `3` -> int, `0.5` -> float, else text."""
    value = yaml.safe_load(text)
    return value if isinstance(value, (int, float, bool, str)) else text


def key_figure(notebook: Path) -> bytes | None:
    """The PNG of the first figure in the cell tagged `key-figure`, if any."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if KEY_FIGURE_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    return base64.b64decode(output["data"]["image/png"])
    return None


def execute_notebook(
    notebook: Path,
    target: Path,
    parameters: dict[str, object],
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run one notebook with papermill, in its own folder, writing the result to `target`;
    `progress` gets a line as each code cell starts (`cell 3 of 18: cs.show_...`).

    It runs on the `headless` engine: widgets are not mirrored (see `convscope.headless`).
    papermill writes into a temporary file that becomes `target` once it is complete, a failed
    run's notebook (stopped at its failing cell) included: `target` is never half-written.
    What the notebook `record`s goes to `records_path(target)` (`read_records` reads it).

    Raises:
        papermill.PapermillExecutionError: a cell raised; `target` holds the stopped notebook.
    """
    failures: list[papermill.PapermillExecutionError] = []
    records = records_path(target)
    records.unlink(missing_ok=True)  # a new run's records only

    def execute(temporary: str) -> None:
        os.environ[RECORDS_VARIABLE] = str(records.resolve())  # the kernel inherits it
        try:
            papermill.execute_notebook(
                str(notebook),
                temporary,
                parameters=parameters,
                cwd=str(notebook.parent),
                kernel_name="python3",
                progress_bar=False,
                engine_name=ENGINE_NAME,
                progress=progress,
            )
        except papermill.PapermillExecutionError as failure:  # the notebook is written whole
            failures.append(failure)
        finally:
            del os.environ[RECORDS_VARIABLE]

    write_atomically(target, execute)
    if failures:
        raise failures[0]
    return target


def run_name(parameters: dict[str, object]) -> str:
    """A file name for a run: `defaults`, or `name=value-name=value` in safe characters, cut
    to 100, then a short hash of all the parameters, so that two parameter sets never share
    a name (`a b.pth` and `a_b.pth` sanitise alike; long `caffe:` paths are cut alike)."""
    if not parameters:
        return "defaults"
    text = "-".join(f"{name}={value}" for name, value in parameters.items())
    readable = re.sub(r"[^A-Za-z0-9_.=,-]", "_", text)[:100]
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode())
    return f"{readable}-{digest.hexdigest()[:8]}"


@dataclass
class Run:
    """One notebook to execute with checked parameter overrides."""

    notebook: Path
    parameters: dict[str, object]


def plan_runs(
    selectors: list[str],
    pairs: list[tuple[str, str]],
    files: list[str] = (),
    grids: list[str] = (),
) -> list[Run]:
    """Every run a command asks for, each checked before anything executes.

    Args:
        selectors: notebooks (numbers, stems or names); all if empty.
        pairs: `-p name value` overrides.
        files: YAML files of `name: value` overrides (applied before `pairs`).
        grids: `name=v1,v2,...`: one run per combination of the grids' values.

    Raises:
        ConvscopeError: a malformed file or grid, an unknown parameter or a bad value.
    """
    base: dict[str, object] = {}
    for file in files:
        path = readable_file("-f", file)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            problem = " ".join(str(error).split())
            raise ConvscopeError(f"parameter file {file} is not valid YAML: {problem}") from error
        if not isinstance(loaded, dict):
            raise ConvscopeError(
                f"{file} must hold name: value pairs; it holds {type(loaded).__name__}"
            )
        base.update(loaded)
    base.update({name: parse_value(value) for name, value in pairs})
    axes, named = [], set()
    for grid in grids:
        name, equals, values = grid.partition("=")
        if not equals or not name or not values:
            raise ConvscopeError(f"a grid is name=v1,v2,...; got {grid!r}")
        if name in named:
            raise ConvscopeError(f"--grid {name} is given twice; give its values once: {grid!r}")
        named.add(name)
        axes.append([(name, parse_value(value)) for value in values.split(",")])
    combos = [dict(combo) for combo in itertools.product(*axes)] or [{}]
    notebooks = select_notebooks(selectors)
    planned, seen = [], set()
    for notebook in notebooks:
        for combo in combos:
            run = Run(notebook, check_run(notebook, {**base, **combo}))
            if (notebook, run_name(run.parameters)) not in seen:  # the same run once
                seen.add((notebook, run_name(run.parameters)))
                planned.append(run)
    return planned


def export_html(notebook: Path) -> Path:
    """The executed notebook as a stand-alone HTML page beside it."""
    body, _ = HTMLExporter().from_filename(str(notebook))
    return write_text_atomically(notebook.with_suffix(".html"), body)


def _execute(run: Run, out: Path) -> RunRecord:
    """Execute one run; its notebook, page, key figure and record are each written atomically,
    and the files of an earlier run of the same name that this run did not produce are removed,
    so the gallery never shows an old result under a new record."""
    folder = out / "runs" / run.notebook.stem
    name = run_name(run.parameters)
    target = folder / f"{name}.ipynb"
    start = time.perf_counter()
    error, produced = "", False
    try:
        report = f"  {run.notebook.stem} {name}:"
        execute_notebook(
            run.notebook, target, run.parameters, lambda line: tqdm.write(f"{report} {line}")
        )
        produced = True
    except papermill.PapermillExecutionError as failure:
        produced = True
        error = (
            f"{run.notebook.stem}: cell {failure.exec_count} raised "
            f"{failure.ename}: {failure.evalue}"
        )
    except Exception as failure:  # a dead kernel or a bad file: report it, run the others
        error = f"{run.notebook.stem}: {type(failure).__name__}: {failure}"
    record = RunRecord(
        run.notebook.stem,
        run.parameters,
        "failed" if error else "ok",
        time.perf_counter() - start,
        str(target.relative_to(out)) if produced else "",
        error=error,
    )
    figure = key_figure(target) if produced else None
    figure = compact_png(figure) if figure else None  # stored as the committed notebooks'
    if produced:
        record.html_file = str(export_html(target).relative_to(out))
    if figure:
        png = write_bytes_atomically(folder / f"{name}.png", figure)
        record.figure_file = str(png.relative_to(out))
        if not run.parameters and not error:
            write_bytes_atomically(FIGURE_DIR / f"{run.notebook.stem}.png", figure)
    for suffix, kept in ((".ipynb", produced), (".html", produced), (".png", figure)):
        if not kept:
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
    write_text_atomically(folder / f"{name}.json", json.dumps(asdict(record), default=str))
    return record


def run_notebooks(runs: list[Run], out: Path) -> list[str]:
    """Execute `runs` into `out/runs/<notebook>/<parameters>.ipynb` (plus `.html` and the key
    figure), then rewrite `out/index.html` with every run recorded under `out/runs`.

    With default parameters, a notebook's key figure also goes to `docs/figures/`, which the
    README shows, so the README's figures stay current.

    Returns:
        One line per failed run, naming the notebook, the cell and the error.

    Raises:
        FileError: `out` is a file, or no file can be written there; nothing is run.
    """
    out = writable_folder("out", out)
    failures = []
    for run in tqdm(runs, desc="notebook runs", unit="run"):
        record = _execute(run, out)
        name = run_name(run.parameters)
        tqdm.write(f"{record.status:6s} {record.notebook} {name} ({record.seconds:.1f} s)")
        if record.error:
            failures.append(record.error)
            tqdm.write(f"       {record.error}")
    records = []
    for path in sorted((out / "runs").glob("*/*.json")):
        try:
            records.append(RunRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, TypeError) as error:  # a truncated or foreign file: say so, go on
            tqdm.write(f"skipped {path}: not a run record ({error})")
    tqdm.write(f"gallery: {write_gallery(records, out)}")
    return failures
