"""Which kernels compute the convolutions: small CPU passes without oneDNN, and an image's
gradient through the first convolution on PyTorch's own kernels; the switch, its limits, and
the passes that use it."""

from __future__ import annotations

from collections import Counter, OrderedDict

import pytest
import torch
from bounds import U32, assert_within
from torch import nn
from torch.profiler import ProfilerActivity, profile

import convscope as cs
from convscope.core.conv_kernels import (
    SMALL_PASS_VALUES,
    first_convolution,
    input_gradient,
    own_kernels,
    small_pass,
)
from convscope.core.net import Crop
from convscope.explain.grad_cam import layer_cam
from convscope.explain.saliency import input_gradients

# Float32 against float64 on the digit net: a sum of at most 800 products errs by at most
# 800·u of the magnitudes summed; three convolutions and three linear layers, forward and
# back, make 12 such sums on any path, and the flowing magnitudes stay within 50 times the
# largest compared value (tests/bounds.py), so 800 × 12 × 50 × u ≈ 2.9e-2 of that value holds
# in the worst case, while a switch that changed what is computed would not stay that close.
DIGIT_FLOAT32 = 800 * 12 * 50 * U32


def test_switch_is_off_inside_and_restored_after_an_error():
    assert torch.backends.mkldnn.enabled
    with small_pass(torch.zeros(1, 1, 28, 28)) as switched:
        assert switched and not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError), small_pass(torch.zeros(SMALL_PASS_VALUES)):
        assert not torch.backends.mkldnn.enabled
        raise RuntimeError("inside the pass")
    assert torch.backends.mkldnn.enabled


def test_large_inputs_and_other_devices_keep_onednn():
    for data in (torch.zeros(SMALL_PASS_VALUES + 1), torch.zeros(1, device="meta")):
        with small_pass(data) as switched:
            assert not switched and torch.backends.mkldnn.enabled


def test_a_switch_already_off_stays_off():
    torch.backends.mkldnn.enabled = False
    try:
        with small_pass(torch.zeros(4)) as switched:
            assert not switched
        assert not torch.backends.mkldnn.enabled
    finally:
        torch.backends.mkldnn.enabled = True


@pytest.fixture(scope="module")
def digits():
    images, labels = cs.load_digits("heldout")
    return cs.load_model("digits"), images[:4], labels[:4]


def seen_switches(model):
    """A forward hook on the first convolution recording oneDNN's switch during each pass."""
    seen = []
    handle = model.layer("conv1").register_forward_hook(
        lambda *_: seen.append(torch.backends.mkldnn.enabled)
    )
    return seen, handle


def test_one_digits_gradient_runs_without_onednn_and_equals_float64(digits):
    net, images, labels = digits
    data = net.preprocess(images[:1])
    seen, handle = seen_switches(net)
    try:
        got = input_gradients(net, data, labels[:1])
    finally:
        handle.remove()
    assert seen == [False]
    exact = net.double()
    try:
        reference = exact.preprocess(images[:1].double()).requires_grad_(True)
        exact(reference)[0, int(labels[0])].backward()
    finally:
        net.float()
    assert_within(got, reference.grad, DIGIT_FLOAT32, "small pass against float64")


def test_grad_cam_of_a_few_digits_runs_without_onednn(digits):
    net, images, labels = digits
    seen, handle = seen_switches(net)
    try:
        layer_cam(net, net.preprocess(images), labels, "relu3")
        layer_cam(net, net.preprocess(images.repeat(4, 1, 1, 1)), labels.repeat(4), "relu3")
    finally:
        handle.remove()
    assert seen == [False, True]  # 4 digits hold 3,136 values; 16 hold 12,544


def photo_net(in_channels: int = 3) -> cs.Net:
    """Conv (stride 2) → ReLU → conv → ReLU → pool → linear, reading `in_channels` × 64 × 64:
    two such images hold 24,576 values, above the small-pass size."""
    torch.manual_seed(3)
    layers = OrderedDict(
        conv1=nn.Conv2d(in_channels, 8, 5, stride=2),
        relu1=nn.ReLU(),
        conv2=nn.Conv2d(8, 8, 3),
        relu2=nn.ReLU(),
        pool=nn.AdaptiveAvgPool2d(2),
        flatten=nn.Flatten(),
        fc=nn.Linear(32, 5),
    )
    net = cs.Net(
        layers,
        name="photo",
        input_size=(in_channels, 64, 64),
        class_names=list("abcde"),
        preprocess=lambda x: x,
    )
    return net.eval()


needs_onednn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this PyTorch build has no oneDNN"
)


def kernels_used(run) -> Counter:
    """How often each convolution kernel ran during `run()`, from PyTorch's profiler."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run()
    wanted = (
        "aten::mkldnn_convolution",
        "aten::_slow_conv2d_backward",
        "aten::_slow_conv2d_forward",
    )
    return Counter(event.name for event in profiler.events() if event.name in wanted)


# Float32 against float64 through this net: conv1 sums 75 products, conv2 72, the pooling 225
# (of 15 × 15 values), the linear layer 32; forward and back, eight sums of at most 225 terms
# err by at most 8 × 225 × u of the magnitudes summed, which stay within 50 times the largest
# compared value (tests/bounds.py): 9e4 × u ≈ 5.4e-3 holds in the worst case, while a wrong
# kernel (a flipped or shifted filter) moves values by their own size.
PHOTO_FLOAT32 = 8 * 225 * 50 * U32


@needs_onednn
def test_an_images_gradient_through_the_first_convolution_runs_on_pytorchs_own_kernels():
    net = photo_net()
    images, classes = torch.rand(2, 3, 64, 64), torch.tensor([1, 4])
    got = {}
    used = kernels_used(lambda: got.update(gradient=input_gradients(net, images, classes)))
    # both forward steps on oneDNN; of the two backward steps, only the first convolution's
    # runs on PyTorch's own kernels (conv2's input gradient stays on oneDNN)
    assert used == Counter({"aten::mkldnn_convolution": 2, "aten::_slow_conv2d_backward": 1})
    assert torch.backends.mkldnn.enabled
    exact = net.double()
    reference = images.double().requires_grad_(True)
    exact(reference).gather(1, classes[:, None]).sum().backward()
    assert_within(got["gradient"], reference.grad, PHOTO_FLOAT32, "split pass against float64")


@needs_onednn
def test_a_small_pass_runs_wholly_on_pytorchs_own_kernels_and_others_are_not_split():
    net = photo_net()
    small = torch.rand(1, 3, 32, 32)  # 3,072 values
    used = kernels_used(lambda: input_gradients(net, small, torch.tensor([0])))
    assert used == Counter({"aten::_slow_conv2d_forward": 2, "aten::_slow_conv2d_backward": 2})
    wide = photo_net(in_channels=8)  # not an image's channels: no split, all on oneDNN
    used = kernels_used(
        lambda: input_gradients(wide, torch.rand(2, 8, 64, 64), torch.tensor([0, 1]))
    )
    assert used == Counter({"aten::mkldnn_convolution": 2})


def image_graph(layers, name: str) -> cs.GraphNet:
    """A DAG reading a 3 × 64 × 64 image, returning its layer `fc`."""
    return cs.GraphNet(
        layers,
        output="fc",
        name=name,
        input_size=(3, 64, 64),
        class_names=list("abcde"),
        preprocess=lambda x: x,
    )


def test_first_convolution_needs_the_one_reader_of_the_input_to_be_a_convolution_of_an_image():
    assert first_convolution(photo_net()) is not None
    assert first_convolution(photo_net(in_channels=8)) is None
    graph = photo_net().layer_graph()
    assert first_convolution(image_graph(graph, "the chain as a graph")) is not None
    normalised = [
        ("norm", nn.BatchNorm2d(3), ("data",)),
        *[(n, m, b if b != ("data",) else ("norm",)) for n, m, b in graph],
    ]
    assert first_convolution(image_graph(normalised, "normalised")) is None
    two_readers = [*graph, ("crop", Crop(0), ("conv1", "data"))]
    assert first_convolution(image_graph(two_readers, "two readers")) is None


def test_the_switch_comes_back_when_the_pass_fails_after_the_first_step_switched_it_off():
    net = photo_net()
    seen = []

    def outputs(x):
        def fail(gradient):  # runs after the first convolution's step: the input's gradient
            seen.append(torch.backends.mkldnn.enabled)
            raise RuntimeError("after the first step")

        x.register_hook(fail)
        scores = net(x)
        return scores, torch.ones_like(scores)

    with pytest.raises(RuntimeError, match="after the first step"):
        input_gradient(net, torch.rand(2, 3, 64, 64), outputs)
    assert seen == [False] and torch.backends.mkldnn.enabled


def test_own_kernels_are_undone_after_an_error():
    with pytest.raises(RuntimeError), own_kernels():
        assert not torch.backends.mkldnn.enabled
        raise RuntimeError("inside")
    assert torch.backends.mkldnn.enabled
