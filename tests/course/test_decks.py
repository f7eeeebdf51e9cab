"""A deck's figures carry their alt text (the browser test opens a whole deck)."""

from __future__ import annotations

import html
import json
import re

from convscope.course.alt_text import figure_sentence
from convscope.course.decks import write_deck
from convscope.course.runner import notebook_paths
from convscope.course.slides import is_widget_cell


def test_each_figure_of_a_deck_has_its_sentence_as_alt_text(tmp_path):
    path = next(p for p in notebook_paths() if p.stem.startswith("03"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sentences = [
        figure_sentence(cells, index)
        for index, cell in enumerate(cells) if not is_widget_cell(cell)
        for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
    ]  # fmt: skip
    page = write_deck(path, tmp_path).read_text(encoding="utf-8")
    alts = [html.unescape(alt) for alt in re.findall(r'<img[^>]* alt="([^"]*)"', page)]
    assert len(re.findall(r"<img", page)) == len(sentences) >= 2
    assert alts == sentences
