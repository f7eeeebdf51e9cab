"""Malformed nets: each refusal is a CaffeFormatError that names the layer and the field."""

from __future__ import annotations

import numpy as np
import pytest

import convscope as cs
from convscope.caffe.budget import check_memory
from convscope.caffe.net import build_caffe_net
from convscope.caffe.proto import CaffeFormatError
from convscope.caffe.weights import load_caffe_weights
from convscope.course.runner import plan_runs


def net_with(*layers: dict) -> dict:
    data = {
        "name": "data",
        "type": "Input",
        "top": ["data"],
        "input_param": {"shape": [{"dim": [1, 4, 8, 8]}]},
    }
    return {"name": "bad", "layer": [data, *layers]}


def conv(name="c", **param) -> dict:
    return {
        "name": name,
        "type": "Convolution",
        "bottom": ["data"],
        "top": [name],
        "convolution_param": {"num_output": 4, "kernel_size": [3], **param},
    }


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"type": "ReLU", "bottom": ["data"], "top": ["data"]},
            "a layer of type 'ReLU' has no name",
        ),
        ({"name": "", "type": "ReLU", "bottom": ["data"], "top": ["data"]}, "has no name"),
        ({"name": "r", "bottom": ["data"], "top": ["data"]}, "layer 'r' has no type"),
        ({"name": "r", "type": "ReLU", "bottom": ["data"]}, "layer 'r' has no top blob"),
        (conv("forward"), "layer 'forward': the name is an attribute"),
        (conv("name"), "layer 'name': the name is an attribute"),
        (conv(num_output=0), "layer 'c': convolution_param needs num_output >= 1; got 0"),
        ({**conv(), "convolution_param": {"kernel_size": [3]}}, "needs num_output >= 1; got None"),
        (conv(group=3), "group 3 must divide the 4 input channels and num_output 4"),
        (conv(stride=[0]), "needs kernel, stride and group >= 1"),
        (
            {
                "name": "fc",
                "type": "InnerProduct",
                "bottom": ["data"],
                "top": ["fc"],
                "inner_product_param": {},
            },
            "layer 'fc': inner_product_param needs num_output >= 1",
        ),
    ],
)
def test_a_malformed_layer_is_named(layer, message):
    with pytest.raises(CaffeFormatError, match=message):
        build_caffe_net(net_with(layer))


def test_two_layers_writing_the_same_top_are_refused_but_in_place_is_fine():
    in_place = {"name": "relu", "type": "ReLU", "bottom": ["c"], "top": ["c"]}
    build_caffe_net(net_with(conv(), in_place))
    other = {**conv("d"), "top": ["c"]}
    with pytest.raises(CaffeFormatError, match="top blob 'c' is produced by multiple sources"):
        build_caffe_net(net_with(conv(), other))


def blob(shape: tuple[int, ...], legacy: bool = False) -> dict:
    values = np.zeros(int(np.prod(shape)), np.float32)
    if legacy:
        padded = (1,) * (4 - len(shape)) + shape
        return {
            "num": padded[0],
            "channels": padded[1],
            "height": padded[2],
            "width": padded[3],
            "data": values,
        }
    return {"shape": {"dim": list(shape)}, "data": values}


def test_a_blob_of_another_shape_is_refused_even_when_its_count_agrees():
    net = build_caffe_net(net_with(conv()))
    wrong = {"layer": [{"name": "c", "blobs": [blob((4, 4, 9, 1)), blob((4,))]}]}
    with pytest.raises(CaffeFormatError, match=r"layer 'c': weight blob .* needs \(4, 4, 3, 3\)"):
        load_caffe_weights(net, wrong)
    right = {"layer": [{"name": "c", "blobs": [blob((4, 4, 3, 3)), blob((4,), legacy=True)]}]}
    assert load_caffe_weights(net, right) == ["c"]  # legacy (1, 1, 1, 4) bias is Caffe's too


HUGE = """name: "huge"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 50000 } }
"""  # noqa: E501 (a whole Caffe file of a few hundred bytes asking for 30 GB)


def test_a_small_file_asking_for_gigabytes_is_refused_before_anything_is_allocated(tmp_path):
    path = tmp_path / "huge.prototxt"
    path.write_text(HUGE)
    assert path.stat().st_size < 400
    with pytest.raises(CaffeFormatError, match=r"over the limit of .*layer 'fc' alone needs"):
        cs.load_model(f"caffe:{path}", weights="random")
    with pytest.raises(CaffeFormatError, match="CONVSCOPE_MAX_NET_BYTES"):
        cs.load_shapes_only(f"caffe:{path}")  # the shapes-only parameter checks use it too
    with pytest.raises(CaffeFormatError, match="over the limit"):
        plan_runs(["05"], [("model", f"caffe:{path}"), ("weights", "random")])


def test_an_input_too_large_to_describe_is_refused_before_its_shape_is_made():
    # 2**31 - 1 squared rows and columns: torch cannot even make the meta tensor (the
    # property test found it); 4 bytes a value is over any budget long before that
    shape = {"dim": [2**31 - 1, 2**31 - 1, 64, 64]}
    net = {"name": "wide", "input": ["data"], "input_shape": [shape], "layer": []}
    too_large = r"the input \(2147483647, 2147483647, 64, 64\) alone needs [\d,]+ bytes, over"
    with pytest.raises(CaffeFormatError, match=too_large):
        build_caffe_net(net)


def test_the_memory_budget_is_configurable(monkeypatch):
    net = net_with(conv())
    assert check_memory(build_caffe_net(net), (1, 4, 8, 8)) is None
    monkeypatch.setenv("CONVSCOPE_MAX_NET_BYTES", "100")
    with pytest.raises(CaffeFormatError, match="over the limit of 100"):
        build_caffe_net(net)


def test_a_blob_that_holds_fewer_values_than_its_shape_is_called_corrupt():
    net = build_caffe_net(net_with(conv()))
    short = blob((4, 4, 3, 3))
    short["data"] = short["data"][:100]
    truncated = {"layer": [{"name": "c", "blobs": [short, blob((4,))]}]}
    message = r"weight blob declares shape \(4, 4, 3, 3\) \(144 values\) but holds 100: .* corrupt"
    with pytest.raises(CaffeFormatError, match=message):
        load_caffe_weights(net, truncated)
