"""Slide metadata for teaching: which cell starts a slide, which stays, which is skipped.

The rule, cell by cell (RISE in JupyterLab and nbconvert's reveal.js decks read the same
`metadata.slideshow.slide_type`):

- the title cell starts the deck (`slide`);
- the `parameters` cell and the setup cell after it are skipped: a class sees the lesson,
  not its plumbing;
- a markdown cell that opens a section (`## ...`) starts a slide: one idea per slide;
- a markdown cell after code starts a subslide: the next step of the idea, with its sentence;
- a code cell stays on the slide of the sentence that explains it (`-`); one that follows
  other shown code appears as a fragment of that slide;
- a widget cell gets a subslide of its own, and so does whatever follows it;
- a worked solution is a subslide after the exercises, for the instructor to reveal.

`make outputs` writes these into the notebooks; a test checks that the committed metadata is
what the rule gives, so an edited notebook cannot drift from it.
"""

from __future__ import annotations

import re

SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
PARAMETERS_TAG, SOLUTION_TAG = "parameters", "solution"
WIDGET_CALL = re.compile(r"\bcs\.\w+_widget\(")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_widget_cell(cell: dict) -> bool:
    """Whether a code cell shows a widget (it calls a `cs.*_widget` function)."""
    return cell["cell_type"] == "code" and bool(WIDGET_CALL.search(_source(cell)))


def is_solution_cell(cell: dict) -> bool:
    """Whether a cell is a worked solution (tagged `solution`)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of each cell of a lesson notebook, by the module's rule."""
    types: list[str] = []
    code_seen = 0
    for index, cell in enumerate(cells):
        previous = cells[index - 1] if index else None
        after_widget = previous is not None and is_widget_cell(previous)
        if index == 0:
            kind = "slide"
        elif is_solution_cell(cell):
            kind = "-" if previous is not None and is_solution_cell(previous) and (
                previous["cell_type"] == "markdown") else "subslide"  # fmt: skip
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
        elif previous is not None and previous["cell_type"] == "code" or after_widget:
            kind = "subslide"
        else:
            kind = "-"
        types.append(kind)
    return types


def with_slide_metadata(notebook: dict) -> dict:
    """`notebook` (nbformat JSON) with every cell's `slideshow.slide_type` set by the rule."""
    for cell, kind in zip(notebook["cells"], slide_types(notebook["cells"])):
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
    return notebook
