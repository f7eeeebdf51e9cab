"""Images a model cannot read are refused up front, by a shape-only pass, with the size it
does read: the smallest size found by the search is the one real forward passes find."""

from __future__ import annotations

import copy

import pytest
import torch

import convscope as cs
from convscope.caffe.net import build_caffe_net
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import ending_after, recording
from convscope.core.meta import check_input_fits, smallest_input_size


def reads(model, height: int, width: int, until: str | None = None) -> bool:
    """Whether a real forward pass of a zero image of this size runs (to `until`)."""
    data = torch.zeros(1, model.input_size[0], height, width)
    try:
        with torch.no_grad(), ending_after(model, until):
            model(data)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("until", [None, "conv2", "pool3"])
def test_the_smallest_size_is_the_first_a_real_pass_reads(digits_net, until):
    height, width = smallest_input_size(digits_net, until)
    first = next(size for size in range(1, 29) if reads(digits_net, size, 28, until))
    assert height == first and width == first  # the digit net is square
    assert not reads(digits_net, height - 1, 28, until) or height == 1


def test_alexnet_reads_63_pixels_at_the_least():
    net = cs.load_model("alexnet", weights="random")
    assert smallest_input_size(net, "pool5") == (63, 63)
    assert reads(net, 63, 63, "pool5") and not reads(net, 62, 63, "pool5")


def test_a_conv_layer_reads_any_size_above_its_smallest_the_classifier_only_its_own(digits_net):
    check_input_fits(digits_net, (1, 40, 52), until="conv2")  # a conv layer reads it
    exactly = "image of 40x52 does not fit digits: its fully connected layers read exactly 28x28"
    with pytest.raises(ConvscopeError, match=exactly):
        check_input_fits(digits_net, (1, 40, 52))
    # 30x30 flattens to as many values as 28x28 and a pass runs, but the fc weights were
    # learnt for 28x28: refused all the same
    with pytest.raises(ConvscopeError, match="image of 30x30 does not fit digits: .* exactly"):
        check_input_fits(digits_net, (1, 30, 30))
    small = r"images of 10x10 is too small for digits up to conv2: the smallest it reads is 1\dx"
    with pytest.raises(ConvscopeError, match=small):
        check_input_fits(digits_net, (1, 10, 10), "images", until="conv2")


def test_ending_after_a_layer_records_it_and_runs_nothing_above(digits_net):
    ran, returned = [], "nothing: the pass ended"
    handle = digits_net.layer("fc6").register_forward_hook(lambda *_: ran.append("fc6"))
    try:
        with recording(digits_net, ["conv2"]) as kept, ending_after(digits_net, "conv2"):
            returned = digits_net(torch.zeros(2, 1, 28, 28))
    finally:
        handle.remove()
    assert returned == "nothing: the pass ended" and ran == [] and kept["conv2"].shape[0] == 2
    assert digits_net(torch.zeros(1, 1, 28, 28)).shape == (1, 10)  # the hook is gone


def test_a_caffe_global_pooling_reads_any_size_and_the_channels_are_named():
    net = {
        "name": "gap",
        "input": ["data"],
        "input_shape": [{"dim": [1, 3, 32, 32]}],
        "layer": [
            {
                "name": "conv",
                "type": "Convolution",
                "bottom": ["data"],
                "top": ["conv"],
                "convolution_param": {"num_output": 4, "kernel_size": [3]},
            },
            {
                "name": "pool",
                "type": "Pooling",
                "bottom": ["conv"],
                "top": ["pool"],
                "pooling_param": {"pool": "AVE", "global_pooling": True},
            },
            {
                "name": "fc",
                "type": "InnerProduct",
                "bottom": ["pool"],
                "top": ["fc"],
                "inner_product_param": {"num_output": 2},
            },
        ],
    }
    model = build_caffe_net(net)
    check_input_fits(model, (3, 64, 48))  # a real pass reads it too:
    assert model(torch.zeros(1, 3, 64, 48)).shape == (1, 2)
    with pytest.raises(ConvscopeError, match=r"image has 1 channel\(s\); caffe reads 3"):
        check_input_fits(model, (1, 32, 32))


def test_a_layer_replaced_in_place_is_measured_again(digits_net):
    net = copy.deepcopy(digits_net)
    assert smallest_input_size(net, "conv2") == (14, 14)
    net.pool1 = torch.nn.MaxPool2d(2, 1)  # a pooling that no longer halves
    first = next(size for size in range(1, 29) if reads(net, size, 28, "conv2"))
    assert smallest_input_size(net, "conv2") == (first, first) and first < 14
