"""Type-preserving random edits of valid nets: only a ConvscopeError may escape, and what builds
runs.

Random bytes and text mostly test the readers. These edits keep every value of the type its
field declares in caffe.proto (an int stays an int, an enum one of its names, a message a
message), so they reach the builder: a kernel of 0, a stride larger than the input, a bottom
naming a blob that comes later, a layer removed or repeated, a filler with a negative std.
The three definitions are CaffeNet, FCN-8s and LeNet, shrunk where the size does not matter
(fully connected widths of 16, FCN-8s at 64 x 64) so that each example takes milliseconds.
"""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch
from caffe_files import CAFFE_FILES, encode_text
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from convscope.caffe.net import build_caffe_net
from convscope.caffe.schema import BY_NAME, ENUMS, INT_RANGES
from convscope.caffe.text import parse_text, read_prototxt
from convscope.core.errors import ConvscopeError


def _shrunk(name: str, input_dims: list[int] | None = None) -> dict:
    net = read_prototxt(CAFFE_FILES / f"{name}_deploy.prototxt")
    for layer in net.get("layer", []):
        for param in ("inner_product_param", "convolution_param"):
            if layer.get(param, {}).get("num_output") == 4096:
                layer[param]["num_output"] = 16
    if input_dims:
        net["input_shape"] = [{"dim": input_dims}]
    for layer in net.get("layer", []):
        if layer.get("type") == "Input":
            layer["input_param"]["shape"][0]["dim"][0] = 1
    return net


NETS = {
    "caffenet": _shrunk("caffenet"),
    "fcn8s": _shrunk("fcn8s", [1, 3, 64, 64]),
    "lenet": _shrunk("lenet"),
}
STRINGS = sorted(
    {
        "",
        "x",
        "data",
        "forward",
        "Convolution",
        "Deconvolution",
        "Pooling",
        "InnerProduct",
        "Crop",
        "Eltwise",
        "Concat",
        "Split",
        "Dropout",
        "LRN",
        "ReLU",
        "Softmax",
        "Flatten",
        "Unknown",
        "constant",
        "gaussian",
        "uniform",
        "xavier",
        "msra",
        "bilinear",
    }
    | {
        text
        for net in NETS.values()
        for layer in net["layer"]
        for text in [layer["name"], *layer.get("top", []), *layer.get("bottom", [])]
    }
)
INTS = [0, 1, 2, 3, 4, 5, 7, 11, 16, 100, 101, 1000, -1, -3, 2**31 - 1, -(2**31)]
FLOATS = [0.0, 1.0, -1.0, 0.5, 1e-8, 1e30, -1e30, math.inf, -math.inf, math.nan]
BUDGET = str(256 * 2**20)  # bytes of parameters and blobs: large enough for the shrunk nets


def _value(draw, field):
    """A new value of `field`'s declared type."""
    if field.kind == "enum":
        return draw(st.sampled_from(sorted(ENUMS[field.type])))
    if field.kind == "bool":
        return draw(st.booleans())
    if field.kind == "string":
        return draw(st.sampled_from(STRINGS))
    if field.kind in ("float", "double"):
        return draw(st.sampled_from(FLOATS))
    low, high = INT_RANGES[field.kind]
    return draw(st.sampled_from([n for n in INTS if low <= n <= high]))


def _edit(draw, message: dict, name: str) -> None:
    """One edit somewhere inside `message` (a dict of caffe.proto message `name`), in place."""
    key = draw(st.sampled_from(sorted(message)))
    field = BY_NAME[name][key]
    value = message[key]
    if field.kind == "message":
        items = value if field.repeated else [value]
        action = draw(st.sampled_from(["inside", "inside", "inside", "drop", "repeat"]))
        if action == "drop" or not items:
            if field.repeated and items:
                items.pop(draw(st.integers(0, len(items) - 1)))
            else:
                del message[key]
        elif action == "repeat" and field.repeated:
            items.insert(
                draw(st.integers(0, len(items))), copy.deepcopy(draw(st.sampled_from(items)))
            )
        else:
            inner = draw(st.sampled_from(items))
            if inner:
                _edit(draw, inner, field.type)
            else:
                del message[key]
        return
    if field.is_array:
        del message[key]
        return
    action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "repeat"]))
    if action == "drop":
        del message[key]
    elif field.repeated and value:
        index = draw(st.integers(0, len(value) - 1))
        if action == "repeat":
            value.insert(index, value[index])
        else:
            value[index] = _value(draw, field)
    else:
        message[key] = [_value(draw, field)] if field.repeated else _value(draw, field)


@st.composite
def edited_nets(draw) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(NETS)))
    net = copy.deepcopy(NETS[name])
    for _ in range(draw(st.integers(1, 3))):
        if net:
            _edit(draw, net, "NetParameter")
    return name, net


def _input_shape(model) -> tuple[int, ...]:
    return (1, *model.input_size)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_nets())
def test_type_preserving_edits_build_or_raise_a_convscope_error(case):
    name, net = case
    text = encode_text(net)
    before = os.environ.get("CONVSCOPE_MAX_NET_BYTES")
    os.environ["CONVSCOPE_MAX_NET_BYTES"] = BUDGET
    try:
        model = build_caffe_net(parse_text(text), name=name)
    except ConvscopeError as error:
        assert str(error)
        event(f"{name}: refused")
        return
    finally:
        if before is None:
            del os.environ["CONVSCOPE_MAX_NET_BYTES"]
        else:
            os.environ["CONVSCOPE_MAX_NET_BYTES"] = before
    event(f"{name}: built")
    with torch.no_grad():  # what the builder accepts runs, with the shapes of its meta pass
        output = model(torch.zeros(_input_shape(model)))
    assert output.dim() >= 2 and output.shape[0] == 1


@pytest.mark.parametrize("name", sorted(NETS))
def test_the_unedited_nets_build_and_run(name):
    model = build_caffe_net(NETS[name], name=name)
    with torch.no_grad():
        assert model(torch.zeros(_input_shape(model))).shape[0] == 1
