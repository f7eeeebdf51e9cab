"""Each notebook in JupyterLab in headless Chromium: Run All from the menu, then the main widget
driven as a student would: keyboard on the slider handle, a drag, a value typed into the
readout, an entry picked from the dropdown. Screenshots go to build/ui/.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .conftest import SHOTS
from .notebook_page import NotebookPage


@dataclass(frozen=True)
class MainWidget:
    """A notebook's main widget: the slider moved three ways and the dropdown entry picked."""

    notebook: str
    slider: str
    dropdown: str
    entry: str


MAIN_WIDGETS = [
    MainWidget("01_designer_filters", slider="σ", dropdown="kernel", entry="sobel_x"),
    MainWidget("02_net_surgery", slider="image", dropdown="layer", entry="pool2"),
    MainWidget("03_fully_convolutional", slider="scene", dropdown="class", entry="1"),
    MainWidget("04_fcn_shapes", slider="height", dropdown="net", entry="fcn32s"),
    MainWidget("05_deconvnet", slider="channel", dropdown="layer", entry="conv1"),
    MainWidget("06_saliency", slider="image", dropdown="class", entry="3"),
    MainWidget("07_which_to_trust", slider="image", dropdown="method", entry="grad_cam"),
]


@pytest.mark.parametrize("main", MAIN_WIDGETS, ids=lambda main: main.notebook)
def test_main_widget_answers_keyboard_drag_typing_and_menu(page, lab, main):
    notebook = NotebookPage(page, lab.url(f"{main.notebook}.ipynb"), SHOTS, main.notebook)
    notebook.run_all()
    widget = notebook.widget(0)
    handle, readout = widget.handle(main.slider), widget.readout(main.slider)
    first_value = readout.inner_text()
    first = widget.new_figure(previous=None)
    widget.screenshot("0-after-run")

    # keyboard: one step to the right on the focused handle
    handle.focus()
    page.keyboard.press("ArrowRight")
    by_keyboard = widget.new_figure(previous=first)
    keyboard_value = readout.inner_text()
    assert keyboard_value != first_value
    widget.screenshot("1-keyboard")

    # drag: a fifth of the track, towards the side with more room
    track = widget.handle(main.slider).locator("xpath=ancestor::div[contains(@class,'slider')][1]")
    box, track_box = handle.bounding_box(), track.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    room_right = track_box["x"] + track_box["width"] - x
    step = track_box["width"] / 5 * (1 if room_right > track_box["width"] / 2 else -1)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + step, y, steps=8)
    page.mouse.up()
    by_drag = widget.new_figure(previous=by_keyboard)
    assert readout.inner_text() not in (first_value, keyboard_value)
    widget.screenshot("2-drag")

    # typing the keyboard's value into the readout gives the keyboard's figure again
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(keyboard_value)
    page.keyboard.press("Enter")
    by_typing = widget.new_figure(previous=by_drag)
    assert readout.inner_text() == keyboard_value
    assert by_typing == by_keyboard, "the same value, typed and keyed, drew different figures"
    widget.screenshot("3-typed")

    # the dropdown
    widget.select(main.dropdown).select_option(main.entry)
    widget.new_figure(previous=by_typing)
    assert widget.select(main.dropdown).input_value() == main.entry
    widget.screenshot("4-dropdown")

    assert page.aborted == [], f"requests outside 127.0.0.1: {page.aborted}"
