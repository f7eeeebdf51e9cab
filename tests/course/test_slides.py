"""Slide metadata: the rule on hand-made cells, and every committed notebook following it."""

from __future__ import annotations

import json

import pytest

from convscope.course.runner import notebook_paths
from convscope.course.slides import SLIDE_TYPES, is_widget_cell, slide_types

NOTEBOOKS = notebook_paths()


def markdown(text, tags=()):
    return {"cell_type": "markdown", "source": text, "metadata": {"tags": list(tags)}}


def code(text, tags=(), outputs=()):
    return {"cell_type": "code", "source": text, "metadata": {"tags": list(tags)},
            "outputs": list(outputs)}  # fmt: skip


def test_the_rule_on_a_small_lesson():
    cells = [
        markdown("# 09 · Title\n\nIn this notebook you will ..."),
        code("seed = 0", ["parameters"]),
        code("import convscope as cs\ncs.seed_everything(seed)"),
        code("print(net.name)"),
        markdown("## An idea\n\nThe sentence that explains the figure."),
        code("cs.show_panels(...)"),
        code("cs.show_panels(...)"),
        markdown("A second step of the idea."),
        code("cs.show_layer(...)"),
        code("cs.layer_widget(net, images)"),
        markdown("## Summary\n\n## Exercises\n\n1. One."),
        markdown("### Solution 1\n\nBecause.", ["solution"]),
        code("print(cs.accuracy(net, images, labels))", ["solution"]),
    ]
    assert slide_types(cells) == [
        "slide", "skip", "skip", "-", "slide", "-", "fragment", "subslide", "-", "subslide",
        "slide", "subslide", "-",
    ]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_carries_the_rules_slide_types(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    committed = [c["metadata"].get("slideshow", {}).get("slide_type") for c in cells]
    assert committed == slide_types(cells), "run `make outputs NB=..` after editing"
    assert set(committed) <= set(SLIDE_TYPES)
    code_cells = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    assert committed[0] == "slide"
    assert [committed[i] for i in code_cells[:2]] == ["skip", "skip"]  # parameters, setup
    for index, cell in enumerate(cells):
        if is_widget_cell(cell):
            assert committed[index] == "subslide"  # a widget on a slide of its own
        figure = any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        if figure and not is_widget_cell(cell):
            # the figure shares its slide with a sentence that explains it
            start = max(i for i in range(index + 1) if committed[i] in ("slide", "subslide"))
            assert any(cells[i]["cell_type"] == "markdown" for i in range(start, index)), (
                path.stem, index)  # fmt: skip
