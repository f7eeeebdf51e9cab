"""Executing the course notebooks headlessly with papermill (`python -m convscope run`)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import yaml

from .errors import unknown_name

REPOSITORY = Path(__file__).resolve().parents[2]
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


def check_parameters(notebook: Path, parameters: dict[str, object]) -> None:
    """Raise an error naming any parameter the notebook's `parameters` cell does not declare."""
    import papermill

    declared = list(papermill.inspect_notebook(str(notebook)))
    for name in parameters:
        if name not in declared:
            raise unknown_name(f"parameter of {notebook.stem}", name, declared)


def key_figure(notebook: Path) -> bytes | None:
    """The PNG of the first figure in the cell tagged `key-figure`, if any."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if KEY_FIGURE_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    return base64.b64decode(output["data"]["image/png"])
    return None


def execute_notebook(notebook: Path, target: Path, parameters: dict[str, object]) -> Path:
    """Run one notebook with papermill, in its own folder, writing the result to `target`."""
    import papermill

    papermill.execute_notebook(
        str(notebook),
        str(target),
        parameters=parameters,
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    return target


def run_notebooks(selectors: list[str], pairs: list[tuple[str, str]], out: Path) -> list[str]:
    """Execute notebooks into `out/`, each with the given parameters.

    With default parameters, each notebook's key figure is also written to `docs/figures/`,
    which the README shows, so the README's figures stay current.

    Returns:
        One line per failed notebook, naming the cell and the error; empty if all passed.
    """
    import papermill

    parameters = {name: parse_value(value) for name, value in pairs}
    notebooks = select_notebooks(selectors)
    for notebook in notebooks:
        check_parameters(notebook, parameters)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for notebook in notebooks:
        target = out / notebook.name
        start = time.perf_counter()
        try:
            execute_notebook(notebook, target, parameters)
        except papermill.PapermillExecutionError as error:
            failures.append(
                f"{notebook.name}: cell {error.exec_count} raised {error.ename}: {error.evalue}"
            )
            print(f"FAILED {failures[-1]}")
            continue
        print(f"ran {notebook.name} -> {target} in {time.perf_counter() - start:.1f} s")
        figure = key_figure(target)
        if figure and not parameters:
            FIGURE_DIR.mkdir(parents=True, exist_ok=True)
            (FIGURE_DIR / f"{notebook.stem}.png").write_bytes(figure)
    return failures
