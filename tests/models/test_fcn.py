"""The digit FCNs: net-surgery initialisation, shapes, and the shipped weights' scores."""

from __future__ import annotations

import pytest
import torch
from bounds import NET_FLOAT64, assert_within

import convscope as cs
from convscope.core.bilinear import bilinear_kernel
from convscope.core.inspection import blobs
from convscope.core.metrics import confusion_matrix, segmentation_scores
from convscope.data.scenes import BACKGROUND_LABEL
from convscope.models.fcn import init_digit_fcn
from convscope.models.training import heldout_scenes


def test_fcn32s_from_the_classifier_scores_a_digit_window_like_the_classifier(
    digits_net, digits64, heldout64
):
    net = init_digit_fcn("32s", digits_net).double()  # float64 on both sides (tests/bounds.py)
    digits = heldout64[0][:8]
    data = net.preprocess(digits)  # 28x28: score_fr's cell (2, 2) sees exactly rows 0..27
    score_fr = blobs(net, data, ["score_fr"])["score_fr"]
    digits_rows = [c for c in range(11) if c != BACKGROUND_LABEL]
    assert_within(score_fr[:, digits_rows, 2, 2], cs.class_scores(digits64, digits), NET_FLOAT64)
    assert torch.all(score_fr[:, BACKGROUND_LABEL] == 0)


def test_upsampling_starts_bilinear_and_skips_start_at_zero(digits_net):
    net = init_digit_fcn("8s", init_digit_fcn("16s", init_digit_fcn("32s", digits_net)))
    kernel = bilinear_kernel(4)
    assert torch.equal(net.upscore_pool2.weight[3, 3], kernel)
    assert net.upscore_pool2.weight[3, 4].abs().sum() == 0
    assert net.score_pool1.weight.abs().sum() == 0


def test_finer_fcn_keeps_what_the_coarser_learned(digits_net):
    coarse = init_digit_fcn("16s", init_digit_fcn("32s", digits_net))
    with torch.no_grad():
        coarse.score_pool2.weight.normal_()
    fine = init_digit_fcn("8s", coarse)
    for name in ("conv1", "fc7", "score_fr", "upscore2", "score_pool2"):
        assert torch.equal(fine.params[name][0], coarse.params[name][0]), name


@pytest.mark.parametrize("size", [(28, 28), (40, 71), (64, 64), (97, 50)])
def test_digit_fcn_output_matches_the_input_size(size):
    net = cs.load_model("digit-fcn8s")
    assert net(torch.zeros(1, 1, *size)).shape == (1, 11, *size)


# The shipped digit FCNs on the 200 held-out scenes, as the README and lesson 04 state them
# (percent, two decimals): pixel accuracy and mean IU.
STATED = {"32s": (93.58, 42.59), "16s": (96.96, 69.06), "8s": (98.79, 84.79)}


def test_shipped_digit_fcns_score_as_stated_and_every_skip_gains():
    images, label_maps = heldout_scenes()
    assert images.shape == (200, 1, 64, 64)
    scores = {}
    for variant, stated in STATED.items():
        net = cs.load_model(f"digit-fcn{variant}")
        pixel_accuracy, mean_iu = segmentation_scores(net, images, label_maps)
        # independent evaluation: per-class IU from boolean masks
        predicted = cs.predicted_classes(net, images)
        ious = []
        for label in range(11):
            truth, guess = label_maps == label, predicted == label
            union = (truth | guess).sum().item()
            if union:
                ious.append((truth & guess).sum().item() / union)
        assert mean_iu == pytest.approx(sum(ious) / len(ious), abs=1e-12)
        accuracy = (predicted == label_maps).double().mean().item()
        assert pixel_accuracy == pytest.approx(accuracy, abs=1e-12)
        # one of 819,200 pixels is 1.2e-4 %: half the stated last digit (0.005 %) is 40 pixels
        assert 100 * accuracy == pytest.approx(stated[0], abs=0.005), variant
        assert 100 * mean_iu == pytest.approx(stated[1], abs=0.005), variant
        scores[variant] = mean_iu
    assert scores["32s"] < scores["16s"] < scores["8s"]  # FCN's finding: each skip adds detail
    assert confusion_matrix(label_maps, label_maps, 11).trace() == label_maps.numel()
