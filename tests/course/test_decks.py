"""A deck's figures carry their alt text (the browser test opens a whole deck)."""

from __future__ import annotations

import html
import json
import re

import pytest

from convscope.course.alt_text import figure_sentence
from convscope.course.decks import move_into_place, write_deck
from convscope.course.runner import notebook_paths
from convscope.course.slides import is_widget_cell


def test_each_figure_of_a_deck_has_its_sentence_as_alt_text(tmp_path):
    path = next(p for p in notebook_paths() if p.stem.startswith("03"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sentences = [
        figure_sentence(cells, index)
        for index, cell in enumerate(cells)
        if not is_widget_cell(cell)
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    page = write_deck(path, tmp_path).read_text(encoding="utf-8")
    alts = [html.unescape(alt) for alt in re.findall(r'<img[^>]* alt="([^"]*)"', page)]
    assert len(re.findall(r"<img", page)) == len(sentences) >= 2
    assert alts == sentences


def test_a_package_unpacked_twice_at_once_is_kept_once(tmp_path):
    """Two builds into one folder (two test workers, two terminals) may both unpack a vendor
    package; the second to finish keeps the first one's copy instead of failing."""
    target = tmp_path / "vendor" / "reveal.js"
    for build in ("first", "second"):
        staged = tmp_path / build / "staged"
        (staged / "dist").mkdir(parents=True)
        (staged / "dist" / "reveal.js").write_text(build)
        move_into_place(staged, target)
    assert (target / "dist" / "reveal.js").read_text() == "first"
    assert (tmp_path / "second" / "staged").is_dir()  # left for its temporary folder's cleanup
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not the package")  # any other failure is raised
    with pytest.raises(OSError):
        move_into_place(tmp_path / "second" / "staged", blocked)
