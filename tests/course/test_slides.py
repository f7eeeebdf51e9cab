"""Slide metadata: the rule on hand-made cells, and every committed notebook following it."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from convscope.course.runner import notebook_paths
from convscope.course.slides import SLIDE_TYPES, cell_height, is_widget_cell, slide_types

NOTEBOOKS = notebook_paths()


def markdown(text, tags=()):
    return {"cell_type": "markdown", "source": text, "metadata": {"tags": list(tags)}}


def code(text, tags=(), outputs=()):
    return {
        "cell_type": "code",
        "source": text,
        "metadata": {"tags": list(tags)},
        "outputs": list(outputs),
    }


def graded(cell: dict, solution: bool = False, grade: bool = False) -> dict:
    """`cell` as one of nbgrader's: an answer (`solution`) or a graded cell."""
    cell["metadata"]["nbgrader"] = {"solution": solution, "grade": grade, "grade_id": "x"}
    return cell


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
        markdown("### Exercise 1\n\nWhy?"),
        graded(markdown("Because."), solution=True, grade=True),
        graded(code("answer = cs.accuracy(net, images, labels)"), solution=True),
    ]
    assert slide_types(cells) == [
        "slide",
        "skip",
        "skip",
        "-",
        "slide",
        "-",
        "fragment",
        "subslide",
        "-",
        "subslide",
        "slide",
        "-",  # the question, on the exercises' slide
        "subslide",  # its worked answer, for the instructor to reveal
        "-",
    ]


def png_of_height(height: int, width: int = 600) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_figure_keeps_its_sentence_and_a_full_slide_makes_room():
    """Heights by `cell_height`: 40 lines of 27 px fill a slide, so a figure 300 px tall
    starts its own subslide, and the sentence after it stays with it."""
    figure = {"output_type": "display_data", "data": {"image/png": png_of_height(300)}}
    cells = [
        markdown("# 09 · Title"),
        code("seed = 0", ["parameters"]),
        code("import convscope as cs"),
        markdown("## An idea\n\n" + "A line of the idea.\n" * 15),
        code("cs.show_panels(...)", outputs=[figure]),
        markdown("What to see in the figure."),
        markdown("## Another\n\nShort."),
        code("cs.show_panels(...)", outputs=[figure]),
        markdown("What to see."),
    ]
    assert cell_height(cells[4]) == 1 * 21 + 24 + 300 + 10
    assert cell_height(cells[3]) == 60 + 15 * 27 + 16
    assert slide_types(cells) == [
        "slide",
        "skip",
        "skip",
        "slide",
        "subslide",
        "-",
        "slide",
        "-",
        "-",
    ]


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
            # the figure shares its slide with a sentence that explains it, before or after
            starts = [i for i, kind in enumerate(committed) if kind in ("slide", "subslide")]
            start = max(i for i in starts if i <= index)
            end = min([i for i in starts if i > index], default=len(cells))
            assert any(cells[i]["cell_type"] == "markdown" for i in range(start, end)), (
                path.stem,
                index,
            )
