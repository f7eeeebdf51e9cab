"""Saliency of the shipped photos from the trained photo net, and the clipped display."""

from __future__ import annotations

import pytest
import torch
from bounds import NET_FLOAT64, assert_within

import convscope as cs
from convscope.explain.photo_saliency import clipped


def test_clipping_at_a_percentile_by_hand():
    values = torch.arange(1.0, 101.0).view(10, 10)  # 1..100
    shown = clipped(values, 90.0)
    # NumPy's linear rule: the 90th percentile of 1..100 is 1 + 0.9 × 99 = 90.1
    assert shown.max() == 1.0 and (shown == 1.0).sum() == 10
    assert shown[0, 0].item() == pytest.approx(1 / 90.1, abs=2**-24)
    assert torch.equal(clipped(torch.zeros(3, 3)), torch.zeros(3, 3))
    with pytest.raises(cs.ConvscopeError, match="percentile must be a number in"):
        clipped(values, 0)


def test_the_photos_maps_are_the_top_class_gradients():
    net = cs.load_model("efficientnet_lite0", device="cpu")
    images, top, probabilities, maps = cs.photo_saliency(net, ["coffee", "chelsea"])
    assert [net.class_names[c] for c in top] == ["espresso", "Egyptian cat"]
    assert images.shape == (2, 3, 224, 224) and maps.shape == (2, 224, 224)
    assert 0.9 < probabilities[0] <= 1
    # independently, by plain autograd on the first photo, both in float64: at most 1,152
    # products a sum, about 100 layers forward and back: 2 × 1,152 × 100 × 1.1e-16 ≈ 2.5e-11
    # of the flowing magnitudes, far under NET_FLOAT64 (tests/bounds.py)
    exact = cs.load_model("efficientnet_lite0", device="cpu").double()
    image = images[:1].double()
    ours = cs.saliency_of_images(exact, image, top[:1])[0]
    data = exact.preprocess(image).requires_grad_()
    exact(data)[0, top[0]].backward()
    assert_within(ours, data.grad[0].abs().amax(0), NET_FLOAT64)
    # the float32 map the figure draws: rounding errors of long float32 sums grow like their
    # square root in practice, sqrt(1,152 × 100) × 6e-8 ≈ 2e-5 of magnitudes within 10 times
    # the largest gradient: 1e-3 of it leaves a margin of 5
    assert_within(maps[0], ours, 1e-3)
    figure = cs.show_photo_saliency(net, cs.photo_saliency(net, ["coffee"]))
    assert [a.get_title() for a in figure.axes[:2]] == [
        "top class: espresso (P = 0.94)",
        "max over channels of |∂S_c/∂I|",
    ]
