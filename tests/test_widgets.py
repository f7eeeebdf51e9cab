"""Widgets, driven headlessly: each must call its plain figure function with the chosen values."""

from __future__ import annotations

import io

import torch

from convscope.filters import designer_kernel, show_filter_response
from convscope.inspection import show_layer
from convscope.widgets import designer_filter_widget, layer_widget


def png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def controls(widget) -> dict:
    return {child.description: child for child in widget.children[:-1]}


def test_designer_filter_widget_follows_its_controls():
    image = torch.rand(1, 16, 16)
    widget = designer_filter_widget(image)
    first = png(widget.result)
    assert first == png(show_filter_response(image, designer_kernel("gaussian", 1.0), 0.0))
    controls(widget)["bias"].value = 0.5
    assert (
        widget.result.axes[2].get_title()
        != show_filter_response(image, designer_kernel("gaussian", 1.0), 0.0).axes[2].get_title()
    )
    controls(widget)["kernel"].value = "typed"
    controls(widget)["typed"].value = "1 0 -1; 2 0 -2; 1 0 -1"
    expected = show_filter_response(
        image, designer_kernel("typed", 1.0, "1 0 -1; 2 0 -2; 1 0 -1"), 0.5
    )
    assert png(widget.result) == png(expected)


def test_layer_widget_follows_its_controls(digits_net, heldout):
    images = heldout[0][:5]
    widget = layer_widget(digits_net, images, "conv1")
    assert png(widget.result) == png(show_layer(digits_net, images[0], "conv1"))
    controls(widget)["layer"].value = "pool2"
    controls(widget)["image"].value = 3
    assert png(widget.result) == png(show_layer(digits_net, images[3], "pool2"))
    assert controls(widget)["layer"].options[0] == "conv1"
    assert controls(widget)["image"].max == 4
