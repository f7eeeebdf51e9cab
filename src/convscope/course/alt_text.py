"""Every figure of a lesson is followed by the sentence that says what to see; that sentence
is also the figure's alt text, for a screen reader and for the exported decks.

The rule: a code cell's figures (its `image/png` outputs) are described by the first paragraph
of the markdown cell right after it, with the markdown marks taken out. A widget's figure is
the first state of something the student will move: the paragraph before it, which says what
the controls do, describes it. `make outputs` writes
it into each figure's output metadata (`metadata["image/png"]["alt"]`, which nbconvert's HTML
exporters put on the `<img>`), and a test checks the committed notebooks against the rule and
the figures' resolution (`figure_problems` in `core.plotting` checks the figures themselves).
"""

from __future__ import annotations

import base64
import io
import re

from PIL import Image

from convscope.core.plotting import FIGURE_DPI
from convscope.course.slides import is_widget_cell

PNG = "image/png"
_MARKS = (
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [text](link) -> text
    (re.compile(r"[`*_]{1,2}([^`*_]+)[`*_]{1,2}"), r"\1"),  # `code`, *em*, **strong**
    (re.compile(r"\s+"), " "),
)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def figure_sentence(cells: list[dict], index: int) -> str | None:
    """The sentence that describes the figures of code cell `index`: the first paragraph of
    the markdown cell after it, marks removed; None when no such sentence follows (the next
    cell is code, a heading, or there is none). For a widget, the last paragraph of the
    nearest markdown cell before it."""
    if is_widget_cell(cells[index]):
        before = [cell for cell in cells[:index] if cell["cell_type"] == "markdown"]
        paragraph = _source(before[-1]).strip().split("\n\n")[-1] if before else ""
    elif index + 1 < len(cells) and cells[index + 1]["cell_type"] == "markdown":
        paragraph = _source(cells[index + 1]).strip().split("\n\n")[0]
    else:
        return None
    if not paragraph or paragraph.startswith("#"):
        return None
    for pattern, replacement in _MARKS:
        paragraph = pattern.sub(replacement, paragraph)
    return paragraph.strip()


def _figures(cell: dict) -> list[dict]:
    return [output for output in cell.get("outputs", []) if PNG in output.get("data", {})]


def with_alt_text(notebook: dict) -> dict:
    """`notebook` (nbformat JSON) with each figure's alt text set to its sentence."""
    cells = notebook["cells"]
    for index, cell in enumerate(cells):
        sentence = figure_sentence(cells, index)
        for output in _figures(cell):
            metadata = output.setdefault("metadata", {}).setdefault(PNG, {})
            if sentence is None:
                metadata.pop("alt", None)
            else:
                metadata["alt"] = sentence
    return notebook


def png_dpi(encoded: str) -> float:
    """The resolution a base64 PNG states (its pHYs chunk), or 0 when it states none."""
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        return float(image.info.get("dpi", (0, 0))[0])


def figure_text_problems(notebook: dict) -> list[str]:
    """Where a notebook's stored figures break the rule: a figure with no sentence after it,
    alt text that is not its sentence, a resolution under `FIGURE_DPI`."""
    problems = []
    cells = notebook["cells"]
    for index, cell in enumerate(cells):
        first_line = _source(cell).split("\n")[0][:60]
        sentence = figure_sentence(cells, index)
        for output in _figures(cell):
            where = f"cell {index} ({first_line!r})"
            if sentence is None:
                problems.append(f"{where}: a figure with no sentence after it")
            elif output.get("metadata", {}).get(PNG, {}).get("alt") != sentence:
                problems.append(f"{where}: the alt text is not the sentence after the figure")
            dpi = png_dpi(output["data"][PNG])
            if round(dpi) < FIGURE_DPI:
                problems.append(f"{where}: a figure at {dpi:g} dpi, under {FIGURE_DPI}")
    return problems
