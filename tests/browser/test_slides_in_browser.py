"""Slides in Chromium: a static deck that must open with every outside request aborted, and a
live slideshow (jupyterlab-rise) whose widget must still answer a slider."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from convscope.__main__ import main
from convscope.course.alt_text import figure_sentence
from convscope.course.slides import is_widget_cell

from .conftest import REPO, SHOTS, local_only
from .lab import HOST
from .notebook_page import NotebookPage

DECKS = REPO / "build" / "slides"
DECK = "07_which_to_trust"
NEXT_STEPS = 400  # more than the deck's slides and fragments together
# the innermost slide shown (its index among all slides) and how many fragments are visible
CURRENT = """() => {
  const all = [...document.querySelectorAll('.reveal .slides section')];
  const shown = all.filter(s => s.classList.contains('present')).pop();
  return [all.indexOf(shown), shown.querySelectorAll('.fragment.visible').length];
}"""
# every figure of the slide shown: (its source's tail, whether it has loaded and has pixels,
# its alt text)
IMAGES = """() => {
  const shown = [...document.querySelectorAll('.reveal .slides section.present')].pop();
  return [...shown.querySelectorAll('img')].map(
    img => [img.src.slice(-60), img.complete && img.naturalWidth > 0, img.alt]);
}"""


# A 1280×720 projector: every slide of every deck fits it (lesson 04's layer table is printed
# in two halves, and lesson 07's tables sit in cells of their own, apart from their figures).
PROJECTOR = {"width": 1280, "height": 720}
SLIDES = """() => [...document.querySelectorAll('.reveal .slides > section')].map(
  h => Math.max(1, h.querySelectorAll(':scope > section').length))"""
# the slide shown: its height, its width, how many of its code blocks are cut at the right,
# and the start of its text
SHOWN = """() => {
  const s = [...document.querySelectorAll('.reveal .slides section.present')].pop();
  const cut = [...s.querySelectorAll('pre')].filter(p => p.scrollWidth > p.clientWidth + 1);
  return [s.scrollHeight, s.scrollWidth, cut.length, (s.innerText || '').trim().slice(0, 60)];
}"""


@pytest.fixture(scope="module")
def deck_server():
    """`make slides` for every notebook, served from build/slides/ on 127.0.0.1."""
    assert main(["slides", "--out", str(DECKS)]) == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DECKS))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


def test_a_deck_opens_offline_and_every_figure_renders(browser, deck_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside = local_only(context)
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{deck_server}/{DECK}.slides.html")
    page.wait_for_selector(".reveal.ready", timeout=30_000)  # reveal.js has initialised
    page.wait_for_function(
        "() => document.querySelector('.MathJax_CHTML') !== null", timeout=30_000
    )  # MathJax typeset the formulas
    notebook = json.loads((REPO / "notebooks" / f"{DECK}.ipynb").read_text(encoding="utf-8"))
    expected = {  # the figures outside widget cells (a deck shows no widget), each once, with
        # the sentence after it as its alt text
        o["data"]["image/png"].strip()[-60:]: figure_sentence(notebook["cells"], index)
        for index, c in enumerate(notebook["cells"])
        if not is_widget_cell(c)
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    }
    seen, states = set(), []
    for step in range(NEXT_STEPS):
        state = page.evaluate(CURRENT)
        if states and state == states[-1]:
            break  # Space changed nothing: the last slide, every fragment shown
        states.append(state)
        images = page.evaluate(IMAGES)
        assert all(ok for _, ok, _ in images), f"a figure did not render on slide {state}"
        seen.update((src, alt) for src, _, alt in images)
        if step in (0, 8):
            page.screenshot(path=SHOTS / f"deck-{DECK}-{step}.png")
        page.keyboard.press("Space")  # reveal.js: the next fragment, subslide or slide
        page.wait_for_timeout(60)
    else:
        pytest.fail(f"the deck did not end within {NEXT_STEPS} steps")
    assert outside == [] and failed == [], (outside, failed)
    slides = {index for index, _ in states}
    assert len(slides) > 10 and seen == set(expected.items()), (len(slides), len(seen))
    context.close()


def test_a_notebook_runs_as_a_live_slideshow_and_its_widget_answers(page, lab):
    """Run the notebook, make its widget cell the active one, open jupyterlab-rise's slideshow
    (Alt+R): it opens on that cell's slide and shares the kernel, so the widget is live
    there. A drag of its slider (reveal.js keeps the arrow keys) must redraw the figure."""
    stem = "01_designer_filters"
    notebook = NotebookPage(page, lab.url(f"{stem}.ipynb"), SHOTS, f"{stem}-rise")
    notebook.run_all()
    page.keyboard.press("Control+s")
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    widget_cell = next(
        i for i in range(cells.count()) if cells.nth(i).locator(".widget-interact").count()
    )
    cells.nth(widget_cell).locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")  # command mode, where Alt+R is bound
    page.keyboard.press("Alt+r")
    page.wait_for_function(
        "() => [...document.querySelectorAll('iframe')].some(f => f.src.includes('/rise/'))"
    )
    show = page.frame_locator("iframe[src*='/rise/']")
    widget = show.locator(".reveal section.present:not(.stack) .widget-interact")
    widget.locator("img").first.wait_for(timeout=60_000)
    before = widget.locator("img").first.get_attribute("src")
    page.screenshot(path=SHOTS / f"{stem}-rise-1.png")
    box = widget.locator(".noUi-handle").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=8)
    page.mouse.up()
    for _ in range(150):
        if widget.locator("img").first.get_attribute("src") != before:
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("moving the slider in the slideshow did not change the figure")
    page.screenshot(path=SHOTS / f"{stem}-rise-2.png")


@pytest.mark.parametrize(
    "stem", [path.stem for path in sorted((REPO / "notebooks").glob("0*.ipynb"))]
)
def test_every_slide_fits_a_projector(browser, deck_server, stem):
    """Each slide of the deck, shown by its address (reveal.js's history: `#/h/v`), is at most
    as tall and as wide as reveal.js's 1280×720 slide, and no line of code is cut."""
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.goto(f"{deck_server}/{stem}.slides.html")
    page.wait_for_selector(".reveal.ready", timeout=30_000)
    too_tall = []
    for across, down_count in enumerate(page.evaluate(SLIDES)):
        for down in range(down_count):
            page.evaluate(f"() => {{ location.hash = '#/{across}/{down}'; }}")
            page.wait_for_timeout(100)
            height, width, cut, text = page.evaluate(SHOWN)
            assert width <= PROJECTOR["width"] and cut == 0, (stem, across, down, text)
            if height > PROJECTOR["height"]:
                too_tall.append(text)
    context.close()
    assert too_tall == [], (stem, too_tall)
