"""float64 where it is cheap, and maps settled before an argmax or a threshold."""

from __future__ import annotations

import torch

import convscope as cs
from convscope.core.precision import SETTLE_BITS, float64_where_cheap, settled
from convscope.explain.pointing import points_at, thresholded_box


def test_a_small_net_on_the_cpu_gets_a_float64_copy_and_stays_as_it_was(digits_net):
    exact = float64_where_cheap(digits_net)
    assert {p.dtype for p in exact.parameters()} == {torch.float64}
    assert {p.dtype for p in digits_net.parameters()} == {torch.float32}
    for mine, theirs in zip(exact.parameters(), digits_net.parameters()):
        assert mine.data_ptr() != theirs.data_ptr()
        assert torch.equal(mine, theirs.double())  # float32 -> float64 is exact


def test_an_imagenet_size_net_stays_float32():
    alexnet = cs.load_model("alexnet", weights="random")
    assert float64_where_cheap(alexnet) is alexnet


def test_settled_joins_what_only_rounding_separates():
    # 1 and 1 + 2**-40: apart by 2**-40 ≈ 9e-13, below the grid of 2**-30 -> equal, and the
    # argmax is the first; 2**-20 ≈ 1e-6 apart is far above the grid -> kept apart.
    values = torch.tensor([0.5, 1.0, 1.0 + 2**-40, 1.0 - 2**-20], dtype=torch.float64)
    calm = settled(values)
    assert calm[1] == calm[2] and calm[1] != calm[3]
    assert int(values.argmax()) == 2 and int(calm.argmax()) == 1
    assert (calm - values).abs().max() <= 2.0**-SETTLE_BITS / 2  # rounding to the nearest step
    assert torch.equal(settled(torch.zeros(3)), torch.zeros(3, dtype=torch.float64))
    # float32 maps carry rounding of a few 1e-7 of their maximum: a grid of 2**-16 joins them
    close32 = settled(torch.tensor([1.0, 1.0 - 2**-21, 0.5 + 2**-20], dtype=torch.float32))
    assert close32[0] == close32[1] and close32[2] != close32[1]


def test_the_pointing_game_and_the_box_see_through_rounding():
    heat = torch.zeros(8, 8, dtype=torch.float64)
    heat[1, 1] = 1.0
    heat[6, 6] = 1.0 + 1e-12  # equal but for rounding: the first, row by row, wins
    boxes = torch.tensor([[0, 0, 3, 3]])
    assert points_at(heat, boxes, tolerance=0)
    # a pixel at 15% of the maximum but for rounding belongs to the region on every CPU
    heat = torch.zeros(8, 8, dtype=torch.float64)
    heat[2:4, 2:4] = 1.0
    heat[4, 4] = 0.15 * (1 - 1e-13)
    assert thresholded_box(heat, 0.15) == (2, 2, 5, 5)


def test_the_class_model_is_plain_gradient_ascent_in_float64(digits_net):
    """The ascent written out with plain autograd, in float64, from I = 0."""
    image, score = cs.class_model(digits_net, 3, l2=0.01, step=0.2, iterations=6)
    net = cs.load_model("digits").double()
    data = torch.zeros(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    for _ in range(6):
        objective = net(data)[0, 3] - 0.01 * (data**2).sum()
        objective.backward()
        with torch.no_grad():
            data += 0.2 * data.grad
        data.grad = None
    expected = net(data)[0, 3].item()
    assert image.dtype == torch.float64
    # The same operations in the same precision; only the order of sums can differ. A sum of
    # at most 800 products (conv2: 32 × 5 × 5) errs by at most 800 × 1.1e-16 ≈ 9e-14 of its terms'
    # magnitudes (order 10 here), through six steps of ten layers: far under 1e-9.
    assert abs(score - expected) <= 1e-9 * max(1.0, abs(expected))
    assert (image - net.preprocess.deprocess(data.detach())[0]).abs().max() <= 1e-9
