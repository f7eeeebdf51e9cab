"""Blob and parameter tables, and hooks that never outlive their context."""

from __future__ import annotations

import pytest
import torch
from caffe_files import CAFFE_FILES

import convscope as cs
from convscope.core.errors import UnknownNameError
from convscope.core.inspection import blobs, feature_map_layers, show_layer
from convscope.course.parameters import check_run
from convscope.course.runner import select_notebooks
from convscope.explain.deconvnet import Deconvnet
from convscope.ui.widgets import layer_widget

CAFFE = CAFFE_FILES


def hook_count(net: cs.Net) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


def test_blob_table_matches_running_the_layers_by_hand(digits_net, heldout):
    data = digits_net.preprocess(heldout[0][:2])
    table = cs.blob_table(digits_net, data)
    x, expected = data, [("data", (2, 1, 28, 28))]
    for name, module in digits_net.named_layers():
        x = module(x)
        expected.append((name, tuple(x.shape)))
    assert list(zip(table.column("blob"), table.column("shape"))) == expected
    assert "pool3" in str(table) and "(2, 64, 1, 1)" in str(table)


def test_param_table_total(digits_net):
    table = cs.param_table(digits_net)
    assert table.rows[-1][-1] == sum(p.numel() for p in digits_net.parameters()) == 174_026
    assert sum(table.column("parameters")[:-1]) == 174_026
    assert table.rows[0][:4] == ("conv1", "Conv2d", (32, 1, 5, 5), (32,))


def test_recording_removes_its_hooks_even_after_an_error(digits_net):
    assert hook_count(digits_net) == 0
    with pytest.raises(RuntimeError):
        with cs.recording(digits_net, ["conv1"]):
            assert hook_count(digits_net) == 1
            digits_net(torch.zeros(1, 3, 28, 28))  # wrong channel count
    assert hook_count(digits_net) == 0
    for _ in range(3):  # re-running a cell never stacks hooks
        blobs(digits_net, torch.zeros(1, 1, 28, 28))
    assert hook_count(digits_net) == 0


def test_recorded_blobs_survive_in_place_relu():
    net = cs.load_model("alexnet", weights="random")
    for module in net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = True  # as torchvision builds it
    x = torch.randn(1, 3, 64, 64)
    recorded = blobs(net, x, ["conv1", "relu1"])
    assert (recorded["conv1"] < 0).any()  # not overwritten by the in-place ReLU
    assert torch.equal(recorded["relu1"], recorded["conv1"].clamp(min=0))  # a ReLU is exact


def test_recording_unknown_layer_registers_nothing(digits_net):
    with pytest.raises(UnknownNameError, match="conv1, relu1"):
        with cs.recording(digits_net, ["conv1", "conv9"]):
            pass
    assert hook_count(digits_net) == 0


def test_feature_map_layers_stop_at_flatten(digits_net):
    layers = feature_map_layers(digits_net)
    assert layers[0] == "conv1" and layers[-1] == "pool3"
    assert layers == digits_net.layer_names[: digits_net.layer_names.index("flatten")]


def test_show_layer_figure_and_bad_layer(digits_net, heldout):
    figure = show_layer(digits_net, heldout[0][0], "conv2")
    assert [a.get_title() for a in figure.axes][1].startswith("conv2 filters (16x16 of 64x32)")
    weights = digits_net.layer("conv2").weight.detach()[:16, :16]
    bars = {a.get_ylabel(): a.get_ylim() for a in figure.axes if a.get_ylabel()}
    assert bars["weight"] == pytest.approx((weights.min().item(), weights.max().item()))
    assert set(bars) == {"weight", "activation"}  # each grid read on its own colour bar
    pooled = show_layer(digits_net, heldout[0][0], "pool1")
    assert [a.get_title() for a in pooled.axes if a.get_title()] == ["input", "pool1: 32 maps"]
    with pytest.raises(UnknownNameError, match="pool3"):
        show_layer(digits_net, heldout[0][0], "fc6")


def test_one_definition_of_layers_with_feature_maps_for_a_caffe_net(tmp_path):
    """CaffeNet from its prototxt: InnerProduct layers are no feature-map layers anywhere."""
    text = (CAFFE / "caffenet_deploy.prototxt").read_text()
    prototxt = tmp_path / "small.prototxt"
    prototxt.write_text(text.replace("num_output: 4096", "num_output: 16"))
    net = cs.load_model(f"caffe:{prototxt}", weights="random")
    layers = feature_map_layers(net)
    assert layers[0] == "conv1" and layers[-1] == "pool5" and "fc6" not in layers
    data = net.preprocess(torch.rand(1, 3, 227, 227))
    deconvnet = Deconvnet(net, data)
    assert deconvnet.layers == layers
    with pytest.raises(UnknownNameError, match="unknown layer with feature maps 'fc6'"):
        deconvnet.project("fc6", 0)
    assert layer_widget(net, torch.rand(2, 3, 227, 227), "conv1").children[0].options == tuple(
        layers
    )
    with pytest.raises(UnknownNameError, match="layer='fc6' is not valid in 05_deconvnet"):
        check_run(select_notebooks(["05"])[0], {"model": f"caffe:{prototxt}", "layer": "fc6"})
    assert check_run(select_notebooks(["05"])[0], {"model": f"caffe:{prototxt}", "layer": "pool5"})


def test_suggested_layer_is_the_middle_convolution(digits_net):
    assert cs.suggested_layer(digits_net) == "conv2"
    for name, middle in (("caffenet", "conv3"), ("alexnet", "conv3"), ("vgg16", "conv3_3")):
        with torch.device("meta"):
            assert cs.suggested_layer(cs.load_model(name, weights="random")) == middle
