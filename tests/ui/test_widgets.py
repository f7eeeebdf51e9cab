"""Widgets, driven headlessly: each must call its plain figure function with the chosen values."""

from __future__ import annotations

import io

import pytest
import torch

import convscope as cs
from convscope.core.inspection import show_layer
from convscope.core.meta import layer_table
from convscope.explain.class_models import ClassModels, show_class_models
from convscope.explain.methods import show_explanation
from convscope.explain.saliency import show_saliency
from convscope.explain.sanity import randomisation_curves, show_randomisation
from convscope.explain.top_activations import RecordedPasses, show_channel
from convscope.fully_conv.shapes import key_blob_rows, key_blobs
from convscope.surgery.filters import designer_kernel, show_filter_response
from convscope.ui.widgets import (
    class_model_widget,
    deconvnet_widget,
    designer_filter_widget,
    explain_widget,
    layer_widget,
    randomisation_widget,
    saliency_widget,
)


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
    before = show_filter_response(image, designer_kernel("gaussian", 1.0), 0.0)
    assert [a.get_title() for a in widget.result.axes] != [a.get_title() for a in before.axes]
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


def test_class_map_widget_follows_its_controls(digits_net, heldout):
    from convscope.data.scenes import compose_scene
    from convscope.fully_conv.dense import class_maps, show_class_maps
    from convscope.ui.widgets import class_map_widget

    cast = cs.fully_convolutional(digits_net)
    images, labels = heldout
    widget = class_map_widget(cast, images, labels, "3", scene_seed=2, count=2, size=(64, 64))
    controls(widget)["class"].value = "5"
    controls(widget)["scene"].value = 4
    scene = compose_scene(
        images, labels, size=(64, 64), count=2, generator=torch.Generator().manual_seed(4)
    )
    expected = show_class_maps(cast, scene.image, class_maps(cast, scene.image), "5", scene)
    assert png(widget.result) == png(expected)


def test_fcn_shape_widget_follows_net_and_size(capsys):
    from convscope.core.meta import layer_table
    from convscope.fully_conv.cast import fully_convolutional
    from convscope.fully_conv.shapes import key_blobs, show_blob_sizes
    from convscope.ui.widgets import fcn_shape_widget

    with torch.device("meta"):
        nets = {v: cs.load_model(f"fcn{v}", weights="random") for v in ("32s", "8s")}
        nets["caffenet"] = fully_convolutional(cs.load_model("caffenet", weights="random"))
    widget = fcn_shape_widget(nets, "32s", 200, 150)
    controls(widget)["net"].value = "8s"
    controls(widget)["height"].value = 321
    table = layer_table(nets["8s"], (1, 3, 321, 150))
    assert png(widget.result) == png(show_blob_sizes(table, key_blobs(table)))
    printed = capsys.readouterr().out
    assert "upscore_pool4" in printed and "score_pool4c" not in printed  # key blobs only
    controls(widget)["net"].value = "caffenet"
    controls(widget)["width"].value = 100  # CaffeNet needs 227 (FCN's pad of 100 takes any size)
    assert widget.result is None
    assert "smallest" in capsys.readouterr().out


def test_key_blobs_of_fcn8s_and_a_cast_classifier():
    from convscope.core.meta import layer_table
    from convscope.fully_conv.cast import fully_convolutional
    from convscope.fully_conv.shapes import key_blobs

    fcn8s = layer_table(cs.load_shapes_only("fcn8s"), (3, 500, 334))
    assert key_blobs(fcn8s) == [
        "data",
        "pool1",
        "pool2",
        "pool3",
        "pool4",
        "pool5",
        "fc7",
        "upscore2",
        "upscore_pool4",
        "upscore8",
        "score",
    ]
    with torch.device("meta"):
        cast = fully_convolutional(cs.load_model("caffenet", weights="random"))
    assert key_blobs(layer_table(cast, (3, 451, 451))) == [
        "data",
        "pool1",
        "pool2",
        "pool5",
        "fc7",
        "fc8",
    ]


def test_deconvnet_widget_follows_its_controls(digits_net, heldout):
    from convscope.explain.deconvnet import Deconvnet
    from convscope.explain.top_activations import show_channel, top_activations
    from convscope.ui.widgets import deconvnet_widget

    images = heldout[0][::50]
    widget = deconvnet_widget(digits_net, images, "conv1", channel=2, index=0)
    controls(widget)["layer"].value = "conv3"
    assert controls(widget)["channel"].max == 63
    controls(widget)["channel"].value = 40
    controls(widget)["image"].value = 7
    deconvnet = Deconvnet(digits_net, digits_net.preprocess(images[7][None]))
    top = top_activations(digits_net, images, "conv3")
    expected = show_channel(digits_net, images, deconvnet, images[7], top, 40)
    assert png(widget.result) == png(expected)


def test_saliency_widget(digits_net, heldout):
    images = heldout[0][:20]
    widget = saliency_widget(digits_net, images, "0", 0)
    controls(widget)["class"].value = "6"
    controls(widget)["image"].value = 11
    assert png(widget.result) == png(show_saliency(digits_net, images[11], "6"))


def test_the_class_model_widget_computes_only_when_its_button_is_pressed(digits_net):
    cache = ClassModels(digits_net)
    widget = class_model_widget(digits_net, "2", 0.01, 30, cache=cache)
    assert widget.result is None and cache.computed == 0
    widget.controls["iterations"].value = 20
    widget.controls["λ"].value = 0.1
    widget.controls["λ"].value = 0.01
    assert widget.result is None and cache.computed == 0  # moving sliders started nothing
    widget.compute()
    assert cache.computed == 1 and widget.progress.value == widget.progress.max == 20
    expected = show_class_models(digits_net, ["2"], l2=0.01, iterations=20)
    assert png(widget.result) == png(expected)
    widget.controls["iterations"].value = 30
    assert widget.result is None
    widget.controls["iterations"].value = 20  # back: the kept result, at once
    assert png(widget.result) == png(expected) and cache.computed == 1


def test_the_class_model_widget_shows_what_the_lesson_computed(digits_net):
    cache = ClassModels(digits_net)
    image, score = cache.get("4", 0.01, 0.2, 20)
    widget = class_model_widget(digits_net, "4", 0.01, 20, cache=cache)
    assert widget.result is not None and cache.computed == 1


def test_deconvnet_widget_channel_moves_repeat_no_forward_pass(digits_net, heldout):
    widget = deconvnet_widget(digits_net, heldout[0][::50], "conv2", channel=0, index=3)
    for channel in (1, 2):  # the first visit of each channel records its top images once
        controls(widget)["channel"].value = channel
    calls = []
    handle = digits_net.conv1.register_forward_hook(lambda *args: calls.append(1))
    try:
        for channel in (1, 2, 1):  # revisiting: everything is recorded already
            controls(widget)["channel"].value = channel
    finally:
        handle.remove()
    assert calls == []


def test_key_blob_rows_are_the_tables_rows_of_its_key_blobs():
    table = layer_table(cs.load_shapes_only("fcn8s"), (3, 500, 334))
    rows = key_blob_rows(table)
    assert rows.columns == table.columns
    assert [row[0] for row in rows.rows] == key_blobs(table)
    assert all(row in table.rows for row in rows.rows)


def test_recorded_passes_record_each_image_and_layer_once(digits_net, heldout):
    images = heldout[0][:40]
    passes = RecordedPasses(digits_net, images)
    calls = []

    def count(module, inputs, output):  # real passes only, not the meta-device shape passes
        if inputs[0].device.type != "meta":
            calls.append(len(inputs[0]))

    handle = digits_net.conv1.register_forward_hook(count)
    try:
        passes.show("conv2", 3, 5)  # streams the set once, records the named images' switches
        first = list(calls)
        for layer, channel in (("conv2", 4), ("conv3", 0), ("pool1", 7), ("conv2", 3)):
            passes.show(layer, channel, 5)  # nothing left to run: every move draws only
        assert calls == first
    finally:
        handle.remove()
    layers = cs.feature_map_layers(digits_net)
    named = {i for layer in layers for i in passes.top(layer).images.flatten().tolist()}
    # one pass for image 5 (its activations), one streaming batch, one batch of switches
    assert sorted(first) == sorted([1, len(images), len(named)])
    expected = show_channel(
        digits_net, images, passes.deconvnet(5), images[5], passes.top("conv2"), 3
    )
    assert [a.get_title() for a in passes.show("conv2", 3, 5).axes] == [
        a.get_title() for a in expected.axes
    ]


def test_explain_widget_follows_method_and_image_and_keeps_its_figures(digits_net, heldout):
    images, labels = heldout[0][:12], heldout[1][:12]
    widget = explain_widget(digits_net, images, labels, "gradient", 0)
    controls(widget)["method"].value = "grad_cam"
    controls(widget)["image"].value = 7
    shown = widget.result
    assert png(shown) == png(show_explanation(digits_net, images[7], int(labels[7]), "grad_cam"))
    controls(widget)["method"].value = "occlusion"
    controls(widget)["method"].value = "grad_cam"
    assert widget.result is shown  # kept, not computed again


def test_randomisation_slider_shows_the_cascade_it_was_given(digits_net, heldout):
    images, labels = heldout[0][:2], heldout[1][:2].tolist()
    curves = randomisation_curves(digits_net, images, labels, "cascading", ["gradient"])
    widget = randomisation_widget(curves, images)
    assert controls(widget)["randomise from"].options == tuple(curves.states[1:])
    controls(widget)["randomise from"].value = "conv2"
    controls(widget)["image"].value = 1
    expected = show_randomisation(curves, images[1], 1, ["trained", "conv2"])
    assert png(widget.result) == png(expected)
    with pytest.raises(cs.ConvscopeError, match="must be the 2 images the curves explain"):
        randomisation_widget(curves, images[:1])
