"""Slide metadata for teaching: which cell starts a slide, which stays, which is skipped.

The rule, cell by cell (RISE in JupyterLab and nbconvert's reveal.js decks read the same
`metadata.slideshow.slide_type`):

- the title cell starts the deck (`slide`);
- the `parameters` cell and the setup cell after it are skipped: a class sees the lesson,
  not its plumbing;
- a markdown cell that opens a section (`## ...`) starts a slide: one idea per slide;
- a markdown cell after code starts a subslide: the next step of the idea, with its sentence;
  but the sentence after a figure, which says what to see in it, stays on the figure's slide;
- a code cell stays on the slide of the sentence that explains it (`-`); one that follows
  other shown code appears as a fragment of that slide;
- a widget cell gets a subslide of its own, and so does whatever follows it;
- an exercise's worked answer (nbgrader's answer and check cells) is a subslide after its
  question, for the instructor to reveal;
- a slide fits a 1280×720 projector: a cell that would make its slide taller than
  `SLIDE_HEIGHT` starts a subslide instead, but a figure's sentence stays with its figure
  (`cell_height` estimates each cell's height in the decks' CSS, `course/deck_template`; the
  browser test measures every slide of every deck).

`make outputs` writes these into the notebooks; a test checks that the committed metadata is
what the rule gives, so an edited notebook cannot drift from it.
"""

from __future__ import annotations

import base64
import re

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
# How many estimated pixels a 1280×720 slide may hold: fewer than 720, because reveal.js keeps
# a margin and the estimate undercounts formulas and lists (set against the browser test's
# measurements of every deck); and the decks' CSS in pixels: the text's line height and
# characters a line, the code's, the printed output's line height, the tallest a figure is
# drawn (`course/deck_template`).
SLIDE_HEIGHT = 560
TEXT_LINE, TEXT_CHARACTERS = 27, 110
CODE_LINE, CODE_CHARACTERS = 21, 140
OUTPUT_LINE = 15
FIGURE_HEIGHT, FIGURE_WIDTH = 380, 1240
PARAMETERS_TAG = "parameters"
COLAB_TAG = "colab-setup"  # the cell that sets a lesson up on Google Colab (course.launch)
WIDGET_CALL = re.compile(r"\bcs\.\w+_widget\(")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_widget_cell(cell: dict) -> bool:
    """Whether a code cell shows a widget (it calls a `cs.*_widget` function)."""
    return cell["cell_type"] == "code" and bool(WIDGET_CALL.search(_source(cell)))


def is_answer_cell(cell: dict) -> bool:
    """Whether a cell is an exercise's answer or check (nbgrader's solution and grade cells:
    in the instructor's notebook, the worked solution)."""
    graded = cell.get("metadata", {}).get("nbgrader", {})
    return bool(graded.get("solution") or graded.get("grade"))


def _wrapped_lines(text: str, characters: int) -> int:
    return sum(max(1, -(-len(line) // characters)) for line in text.splitlines())


def _png_size(encoded: str) -> tuple[int, int]:
    """(width, height) from a base64 PNG's header (its IHDR chunk)."""
    header = base64.b64decode(encoded[:44])
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def cell_height(cell: dict) -> int:
    """About how many pixels `cell` takes on a deck's slide, input and outputs."""
    if cell["cell_type"] == "markdown":
        height = 0
        for block in _source(cell).strip().split("\n\n"):
            heading = block.startswith("#")
            height += 60 if heading else _wrapped_lines(block, TEXT_CHARACTERS) * TEXT_LINE + 16
        return height
    height = _wrapped_lines(_source(cell), CODE_CHARACTERS) * CODE_LINE + 24
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "image/png" in data:
            width, tall = _png_size(data["image/png"])
            tall = tall * min(1.0, FIGURE_WIDTH / max(width, 1))
            height += int(min(tall, FIGURE_HEIGHT)) + 10
        elif output.get("output_type") == "stream":
            text = output.get("text", "")  # a string, or a list of lines in a stored notebook
            text = "".join(text) if isinstance(text, list) else text
            height += _wrapped_lines(text, CODE_CHARACTERS) * OUTPUT_LINE + 10
        elif "text/plain" in data and not is_widget_cell(cell):
            height += _wrapped_lines("".join(data["text/plain"]), CODE_CHARACTERS) * OUTPUT_LINE
    return height + (30 if is_widget_cell(cell) else 0)


def _shows_figure(cell: dict | None) -> bool:
    return cell is not None and any(
        "image/png" in output.get("data", {}) for output in cell.get("outputs", [])
    )


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of each cell of a lesson notebook, by the module's rule."""
    types: list[str] = []
    code_seen = 0
    filled = 0  # estimated pixels on the slide being built
    for index, cell in enumerate(cells):
        previous = cells[index - 1] if index else None
        after_widget = previous is not None and is_widget_cell(previous)
        if index == 0:
            kind = "slide"
        elif is_answer_cell(cell):
            follows = (
                previous is not None
                and is_answer_cell(previous)
                and (previous["cell_type"] == "markdown" or _shows_figure(previous))
            )
            kind = "-" if follows else "subslide"
        elif cell["cell_type"] == "code" and COLAB_TAG in cell.get("metadata", {}).get("tags", []):
            kind = "skip"  # Colab's set-up: nothing to show a class
        elif cell["cell_type"] == "code":
            code_seen += 1
            tags = cell.get("metadata", {}).get("tags", [])
            if PARAMETERS_TAG in tags or code_seen == 2:  # the parameters, then the setup
                kind = "skip"
            elif is_widget_cell(cell) or after_widget:
                kind = "subslide"
            elif previous["cell_type"] == "code" and types[-1] != "skip":
                kind = "fragment"
            else:  # after its sentence, or after the skipped setup: on the slide shown
                kind = "-"
        elif _source(cell).lstrip().startswith("## "):
            kind = "slide"
        elif after_widget:
            kind = "subslide"
        elif previous is not None and previous["cell_type"] == "code":
            kind = "-" if _shows_figure(previous) else "subslide"  # a figure keeps its sentence
        else:
            kind = "-"
        height = cell_height(cell) if kind != "skip" else 0
        sentence = cell["cell_type"] == "markdown" and _shows_figure(previous)
        if kind in ("-", "fragment") and filled + height > SLIDE_HEIGHT and not sentence:
            kind = "subslide"  # the slide is full
        filled = height if kind in ("slide", "subslide") else filled + height
        types.append(kind)
    return types


def with_slide_metadata(notebook: dict) -> dict:
    """`notebook` (nbformat JSON) with every cell's `slideshow.slide_type` set by the rule."""
    for cell, kind in zip(notebook["cells"], slide_types(notebook["cells"])):
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
    return notebook
