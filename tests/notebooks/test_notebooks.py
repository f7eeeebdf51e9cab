"""The notebooks' shape, and what papermill reads of them.

Notebooks execute in strict nbval (twice), in the browser test (once) and in one smoke run
per model family (test_models_in_notebooks.py); what they compute is tested on the package.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convscope.core.errors import UnknownNameError
from convscope.course.runner import (
    execute_notebook,
    notebook_paths,
    parse_value,
    select_notebooks,
)
from convscope.ui import widgets

NOTEBOOKS = notebook_paths()


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def execute(notebook: str, tmp_path: Path, **parameters) -> Path:
    path = select_notebooks([notebook])[0]
    return execute_notebook(path, tmp_path / path.name, parameters)


LESSONS = [
    "01_designer_filters",
    "02_net_surgery",
    "03_fully_convolutional",
    "04_fcn_shapes",
    "05_deconvnet",
    "06_saliency",
    "07_which_to_trust",
]


def test_the_seven_lessons_are_present_and_every_notebook_is_numbered_in_order():
    assert [p.stem for p in NOTEBOOKS][: len(LESSONS)] == LESSONS
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]


WIDGET_CALL = re.compile(r"\b(\w+_widget)\(")


def test_every_widget_cell_follows_a_plain_call_of_the_figure_it_wraps():
    """STYLE.md: papermill and nbval see the real figure first, then the widget wraps it."""
    for path in NOTEBOOKS:
        code = [source(c) for c in cells(path) if c["cell_type"] == "code"]
        found = 0
        for position, text in enumerate(code):
            for name in WIDGET_CALL.findall(text):
                figure = getattr(widgets, name).figure_function.__name__
                earlier = "\n".join(code[:position])
                assert re.search(rf"\b{figure}\(", earlier), f"{path.stem}: {name} before {figure}"
                found += 1
        assert found, f"{path.stem} has no widget"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in notebook["metadata"], "widget state is volatile: `make outputs`"
    all_cells = notebook["cells"]
    title = source(all_cells[0])
    assert title.startswith(f"# {path.stem[:2]} · ") and "you will" in title
    # the Colab set-up cell (tests/course/test_launch.py) comes right after the parameters
    code = [
        c
        for c in all_cells
        if c["cell_type"] == "code" and "colab-setup" not in c["metadata"].get("tags", [])
    ]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    setup = source(code[1])
    assert setup.count("cs.seed_everything(seed)") == 1
    assert len(setup.splitlines()) <= 8, "a setup cell has at most eight lines"
    # one namespace: `import convscope as cs`, then cs.<name> for every lesson function
    assert all(
        "from convscope" not in source(c) and "import convscope." not in source(c) for c in code
    )
    assert "import convscope as cs" in setup
    assert all("seed_everything" not in source(c) for c in code[2:])
    made = set(re.findall(r"^(\w+)\s*=\s*cs\.", "\n".join(map(source, code)), re.MULTILINE))
    graded = [c for c in all_cells if "nbgrader" in c["metadata"]]
    # the exercises in nbgrader's form (course/exercises.py): after the references, 4 cells each
    assert graded, "the exercises are nbgrader's cells"
    start = all_cells.index(graded[0]) - 1
    assert source(all_cells[start - 1]).startswith("## References")  # the lesson's sources
    assert "## Summary" in source(all_cells[start - 2])
    assert source(all_cells[start]).startswith("## Exercises")
    assert all_cells[start + 1 :] == graded and len(graded) % 4 == 0
    for number in range(1, len(graded) // 4 + 1):
        question, written, answer, check = graded[4 * number - 4 : 4 * number]
        kinds = ("question", "written", "code", "check")
        for cell, kind in zip((question, written, answer, check), kinds):
            assert cell["metadata"]["nbgrader"]["grade_id"] == f"exercise-{number}-{kind}"
        assert source(question).startswith(f"### Exercise {number}\n")
        assert written["metadata"]["nbgrader"]["points"] == 0  # read, not scored
        assert check["metadata"]["nbgrader"]["points"] == 1
        assert "### BEGIN SOLUTION" in source(answer)
        visible, hidden = source(check).split("### BEGIN HIDDEN TESTS")
        assert "assert" in visible and "assert" in hidden
        # every worked solution calls the package, or an object the lesson made with it
        used = set(re.findall(r"\b(\w+)\.", source(answer)))
        assert "cs." in source(answer) or used & made, source(answer)
    _check_code_cells(code)


def _check_code_cells(code: list[dict]) -> None:
    """A key figure; every code cell executed without error; widgets' output volatile."""
    assert any("key-figure" in c["metadata"].get("tags", []) for c in code)
    for cell in code:
        assert cell["execution_count"] is not None and not any(
            o["output_type"] == "error" for o in cell["outputs"]
        )
        # widget cells are volatile in nbval (the plain figure before them is compared)
        if WIDGET_CALL.search(source(cell)):
            assert "nbval-ignore-output" in cell["metadata"].get("tags", [])


def test_run_command_rejects_an_unknown_parameter_before_running(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "convscope",
            "run",
            "02",
            "-p",
            "layr",
            "conv2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "unknown parameter of 02_net_surgery 'layr'" in result.stderr
    assert "model, weights, device, layer, image_index" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_notebook_selection_and_values():
    assert select_notebooks(["02"]) == select_notebooks(["net_surgery"])
    with pytest.raises(UnknownNameError, match="01_designer_filters"):
        select_notebooks(["99"])
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("conv2") == "conv2"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    """A comment papermill cannot parse silently drops that parameter from `run`'s checks."""
    import ast

    import papermill

    cell = next(c for c in cells(path) if "parameters" in c["metadata"].get("tags", []))
    assigned = [node.targets[0].id for node in ast.parse(source(cell)).body]
    assert list(papermill.inspect_notebook(str(path))) == assigned
