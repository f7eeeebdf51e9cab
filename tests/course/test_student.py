"""Students' copies (nbgrader's release): no solution survives, every exercise does, and the
copies run: to the end, but for the exercises the student has not answered yet."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from convscope.__main__ import main
from convscope.course.runner import notebook_paths

NOTEBOOKS = notebook_paths()
# parameters that keep each copy's run short; the copies' cells are the lessons' own
QUICK = {
    "02": {"ablated_filters": 2},
    "06": {"scene_count": 10},
    "07": {"pointing_scenes": 10, "sanity_images": 2},
}
HIDDEN = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS")


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _exercise(cell: dict) -> str:
    """The kind of an exercise cell (`question`, `written`, `code`, `check`), else ""."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
    return grade_id.rsplit("-", 1)[-1] if grade_id.startswith("exercise-") else ""


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out, course = tmp_path_factory.mktemp("student"), tmp_path_factory.mktemp("course")
    assert main(["student", "--out", str(out), "--course", str(course)]) == 0
    return out


def test_no_solution_survives_and_every_exercise_does(copies):
    assert sorted(p.name for p in copies.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for original in NOTEBOOKS:
        cells = json.loads(original.read_text(encoding="utf-8"))["cells"]
        kept = json.loads((copies / original.name).read_text(encoding="utf-8"))["cells"]
        assert [c["cell_type"] for c in kept] == [c["cell_type"] for c in cells]
        assert not any(c.get("outputs") for c in kept)
        assert not any(marker in _source(c) for c in kept for marker in HIDDEN)
        assert "## Exercises" in "".join(_source(c) for c in kept)
        for ours, theirs in zip(cells, kept):
            kind = _exercise(ours)
            if kind == "written":  # the model answer is gone; the student writes here
                assert _source(theirs) == "YOUR ANSWER HERE"
            elif kind == "code":  # the solution is a stub; the scaffold around it stays
                stub = [line.strip() for line in _source(theirs).splitlines()]
                assert ["# YOUR CODE HERE", "raise NotImplementedError()"] == stub[
                    stub.index("# YOUR CODE HERE") : stub.index("# YOUR CODE HERE") + 2
                ]
                before = _source(ours).split("### BEGIN SOLUTION")[0]
                assert _source(theirs).startswith(before)
            elif kind == "check":  # the visible asserts stay, the hidden ones go
                visible = _source(ours).split("### BEGIN HIDDEN TESTS")[0].rstrip()
                assert _source(theirs).rstrip() == visible and "assert" in visible
            else:
                assert _source(theirs) == _source(ours)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_copy_still_executes(copies, path):
    notebook = nbformat.read(copies / path.name, as_version=4)
    quick = QUICK.get(path.stem[:2], {})  # set after the parameters cell, as papermill does
    first = next(
        i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])
    )
    assignments = "\n".join(f"{name} = {value!r}" for name, value in quick.items())
    if quick:
        notebook.cells.insert(first + 1, nbformat.v4.new_code_cell(assignments))
    client = NotebookClient(
        notebook, allow_errors=True, timeout=900, resources={"metadata": {"path": path.parent}}
    )
    client.widget_registry = {}  # no Output widget mirrored (jupyter/nbclient#312: a rare hang)
    client.execute()
    errors = {
        (_exercise(cell), output["ename"])
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    }
    # every lesson cell runs; an unanswered exercise stops at its stub, and its check fails
    allowed = {("code", "NotImplementedError"), ("check", "NameError"), ("check", "AssertionError")}
    assert errors <= allowed, errors
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code")
