"""Students' copies: the worked solutions gone, the exercises kept, and the copies run."""

from __future__ import annotations

import json

import pytest

from convscope.__main__ import main
from convscope.course.runner import execute_notebook, notebook_paths
from convscope.course.slides import is_solution_cell

NOTEBOOKS = notebook_paths()
# parameters that keep each copy's run short; the copies' cells are the lessons' own
QUICK = {
    "02": {"ablated_filters": 2},
    "06": {"scene_count": 10},
    "07": {"pointing_scenes": 10, "sanity_images": 2},
}


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert main(["student", "--out", str(out)]) == 0
    return out


def test_no_solution_survives_and_every_exercise_does(copies):
    assert sorted(p.name for p in copies.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for original in NOTEBOOKS:
        cells = json.loads(original.read_text(encoding="utf-8"))["cells"]
        solutions = [c for c in cells if is_solution_cell(c)]
        kept = json.loads((copies / original.name).read_text(encoding="utf-8"))["cells"]
        assert solutions and not any(is_solution_cell(c) for c in kept)
        texts = {"".join(c["source"]) for c in kept}
        assert not any("".join(s["source"]) in texts for s in solutions)
        assert kept == [c for c in cells if not is_solution_cell(c)]  # the rest untouched
        assert "## Exercises" in "".join(kept[-2]["source"])
        assert "".join(kept[-1]["source"]).startswith("## References")
        assert not any("### Solution" in "".join(c["source"]) for c in kept)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_copy_still_executes(copies, tmp_path, path):
    out = execute_notebook(copies / path.name, tmp_path / path.name, QUICK.get(path.stem[:2], {}))
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", []))
    assert all(c["execution_count"] for c in cells if c["cell_type"] == "code")
