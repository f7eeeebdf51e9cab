"""Transplanting parameters by layer name, and switching filters off."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

import convscope as cs
from convscope.core.errors import SurgeryError, UnknownNameError
from convscope.core.transforms import PassThrough
from convscope.models.architectures import digit_net
from convscope.surgery.ablation import filter_ablation


def test_transplant_makes_a_fresh_net_compute_the_same(digits_net, heldout):
    fresh = cs.load_model("digits", weights="random")
    table = cs.transplant(digits_net, fresh)
    assert len(table) == 12 and set(table.column("mode")) == {"copy"}
    images = heldout[0][:50]
    assert torch.equal(cs.class_scores(fresh, images), cs.class_scores(digits_net, images))


def test_flat_copy_from_linear_to_convolution():
    """An InnerProduct (4, 2*3*3) and a convolution (4, 2, 3, 3) share one memory layout."""

    def make(fc: nn.Module) -> cs.Net:
        return cs.Net(
            OrderedDict(fc=fc),
            name="t",
            input_size=(2, 3, 3),
            class_names=[],
            preprocess=PassThrough(),
        )

    linear, conv = make(nn.Linear(18, 4)), make(nn.Conv2d(2, 4, 3))
    table = cs.transplant(linear, conv)
    assert table.column("mode") == ["flat", "copy"]
    x = torch.randn(5, 2, 3, 3, dtype=torch.float64)
    # float64: 18 products of magnitudes under 10 per output, far under 1e-12
    torch.testing.assert_close(
        conv.double()(x).flatten(1), linear.double()(x.flatten(1)), rtol=0, atol=1e-12
    )


def test_mismatch_names_both_shapes_and_copies_nothing(digits_net):
    target = digit_net(digits_net.class_names[:5], digits_net.preprocess, num_classes=5)
    conv1_before = target.params["conv1"][0].clone()
    with pytest.raises(SurgeryError, match=r"fc8.weight.*\(10, 256\).*\(5, 256\)"):
        cs.transplant(digits_net, target)
    assert torch.equal(target.params["conv1"][0], conv1_before)  # checked before copying


def test_transplant_unknown_layer(digits_net):
    with pytest.raises(UnknownNameError, match="conv1"):
        cs.transplant(digits_net, cs.load_model("digits", weights="random"), ["conv7"])


def test_filter_ablation_matches_zeroing_by_hand(digits_net, heldout):
    images, labels = heldout[0][:300], heldout[1][:300]
    table = filter_ablation(digits_net, "conv1", images, labels)
    assert sorted(table.column("filter")) == list(range(32))
    filter_index, ablated_accuracy, _ = table.rows[0]
    by_hand = cs.load_model("digits")
    with torch.no_grad():
        by_hand.params["conv1"][0][filter_index] = 0
        by_hand.params["conv1"][1][filter_index] = 0
    # accuracies over 300 images are multiples of 1/300 (float32 rounding: 6e-8): 1e-4 means
    # the same count
    assert cs.accuracy(by_hand, images, labels) == pytest.approx(ablated_accuracy, abs=1e-4)
    assert torch.equal(digits_net.params["conv1"][0], cs.load_model("digits").params["conv1"][0])
    with pytest.raises(UnknownNameError, match="conv1, conv2, conv3"):
        filter_ablation(digits_net, "fc6", images, labels)


def test_with_outputs_replaces_only_the_last_layer(digits_net):
    from convscope.surgery.ablation import with_outputs

    five = with_outputs(digits_net, 5)
    assert tuple(five.params["fc8"][0].shape) == (5, 256) and five.class_names == list("01234")
    assert torch.equal(five.params["conv1"][0], digits_net.params["conv1"][0])
    assert tuple(digits_net.params["fc8"][0].shape) == (10, 256)  # the original is untouched
    x = torch.rand(2, 1, 28, 28)
    assert five(x).shape == (2, 5)


def test_answer_key_is_labels_or_the_nets_own_answers(digits_net, heldout):
    from convscope.data.datasets import answer_key

    images, labels = heldout[0][:50], heldout[1][:50]
    assert answer_key(digits_net, images, labels) == (labels, "held-out accuracy")
    own, meaning = answer_key(digits_net, images, None)
    assert meaning == "agreement with the unedited net"
    assert torch.equal(own, digits_net(digits_net.preprocess(images)).argmax(1))


def test_the_lesson_suggests_fewer_trials_for_imagenet_size_nets(digits_net):
    assert cs.suggested_trials(digits_net) == 32
    assert cs.suggested_trials(cs.load_shapes_only("vgg16")) == 8
