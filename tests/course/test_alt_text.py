"""Each figure's sentence and alt text: the rule on hand-made cells, and every committed
notebook following it at the lessons' resolution."""

from __future__ import annotations

import base64
import io
import json

import pytest
from matplotlib.figure import Figure

from convscope.course.alt_text import (
    figure_sentence,
    figure_text_problems,
    png_dpi,
    with_alt_text,
)
from convscope.course.runner import notebook_paths

NOTEBOOKS = notebook_paths()


def png(dpi: int) -> str:
    buffer = io.BytesIO()
    figure = Figure(figsize=(1, 1), dpi=dpi)
    figure.add_subplot().plot([0, 1])
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def figure_cell(dpi: int = 100) -> dict:
    output = {"output_type": "display_data", "data": {"image/png": png(dpi)}, "metadata": {}}
    return {"cell_type": "code", "source": "cs.show_panels(...)", "outputs": [output]}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "source": text}


def test_the_sentence_is_the_next_paragraph_without_its_marks():
    cells = [
        figure_cell(),
        markdown(
            "The **bright** cells of `P(7)`, see [04](04.ipynb),\nare "
            "the windows.\n\nA second paragraph."
        ),
    ]
    assert figure_sentence(cells, 0) == "The bright cells of P(7), see 04, are the windows."
    assert figure_sentence([figure_cell(), markdown("## A new section")], 0) is None
    assert figure_sentence([figure_cell(), figure_cell()], 0) is None
    assert figure_sentence([figure_cell()], 0) is None
    widget = {**figure_cell(), "source": "cs.layer_widget(net, images)"}
    cells = [markdown("## Explore\n\nMove the slider."), figure_cell(), widget, widget]
    assert figure_sentence(cells, 2) == figure_sentence(cells, 3) == "Move the slider."


def test_problems_name_a_missing_sentence_a_stale_alt_text_and_a_low_resolution():
    notebook = {"cells": [figure_cell(72), markdown("What to see."), figure_cell()]}
    assert png_dpi(notebook["cells"][0]["outputs"][0]["data"]["image/png"]) == pytest.approx(
        72, abs=0.01
    )  # PNG stores pixels per metre: 2835 ≈ 72.009 dpi
    assert figure_text_problems(notebook) == [
        "cell 0 ('cs.show_panels(...)'): the alt text is not the sentence after the figure",
        "cell 0 ('cs.show_panels(...)'): a figure at 72.009 dpi, under 100",
        "cell 2 ('cs.show_panels(...)'): a figure with no sentence after it",
    ]
    with_alt_text(notebook)
    assert notebook["cells"][0]["outputs"][0]["metadata"]["image/png"]["alt"] == "What to see."
    assert len(figure_text_problems(notebook)) == 2  # the resolution and the last figure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_committed_figure_has_its_sentence_and_resolution(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert figure_text_problems(notebook) == [], "write the sentence; then `make outputs NB=..`"
