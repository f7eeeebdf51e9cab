"""Small CPU passes without oneDNN: the switch, its limits, and the passes that use it."""

from __future__ import annotations

import pytest
import torch
from bounds import U32, assert_within

import convscope as cs
from convscope.core.small_passes import SMALL_PASS_VALUES, small_pass
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
