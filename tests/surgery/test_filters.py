"""Designer filters: kernels against closed forms, and the bias lesson."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.surgery.filters import (
    designer_kernel,
    designer_net,
    embed_kernel,
    filter_outputs,
    gaussian_kernel,
    parse_kernel,
    show_filter_response,
    sobel_kernel,
)


def test_gaussian_kernel_closed_form():
    kernel = gaussian_kernel(5, 1.0)
    raw = [[math.exp(-(u * u + v * v) / 2) for v in range(-2, 3)] for u in range(-2, 3)]
    total = sum(map(sum, raw))
    expected = torch.tensor(raw) / total
    # both rounded once to float32 from float64 values under 1: within 2**-24 of each other
    torch.testing.assert_close(kernel, expected, rtol=0, atol=2**-24)
    # 25 positive float32 terms: their sum errs by at most 25 × 2**-24 of 1
    assert kernel.sum().item() == pytest.approx(1.0, abs=25 * 2**-24)


def test_sobel_kernels_find_their_edges():
    horizontal_edge = torch.zeros(1, 1, 6, 6)
    horizontal_edge[..., 3:, :] = 1
    along_y = F.conv2d(horizontal_edge, sobel_kernel("y")[None, None])
    along_x = F.conv2d(horizontal_edge, sobel_kernel("x")[None, None])
    assert along_y.abs().max().item() == 4.0 and along_x.abs().max().item() == 0.0
    assert torch.equal(sobel_kernel("x"), sobel_kernel("y").T)  # small integers: exact


def test_bias_shifts_the_mean_exactly():
    net = designer_net()
    image = torch.rand(1, 20, 30)
    before = filter_outputs(net, image)
    with torch.no_grad():
        net.params["conv"][1][0] = 1.0
    after = filter_outputs(net, image)
    # each output moves by the bias, 1, rounded once at magnitudes under 2 (2 × 2**-24); the
    # float32 mean of 600 differences adds at most log2(600) ≈ 10 roundings: under 1e-6
    assert (after[0] - before[0]).mean().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(after[1:], before[1:])  # the other filters' sums are untouched


def test_designer_net_initialisation():
    weights = torch.cat([designer_net(3, 5, 0.01).params["conv"][0].flatten() for _ in range(40)])
    # 3,000 draws of N(0, 0.01): the sample std's relative standard error is 1/sqrt(2n) ≈ 1.3%,
    # so 10% is over seven standard errors
    assert weights.std().item() == pytest.approx(0.01, rel=0.1)
    assert designer_net().params["conv"][1].abs().sum().item() == 0.0


def test_embed_and_parse():
    kernel = parse_kernel("0 1 0; 1 -4 1\n0, 1, 0")
    assert torch.equal(kernel, torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]))  # exact
    embedded = embed_kernel(kernel, 5)
    assert embedded.shape == (5, 5) and embedded[1:-1, 1:-1].equal(kernel)
    assert embedded.abs().sum() == kernel.abs().sum()
    with pytest.raises(ConvscopeError, match="not square"):
        parse_kernel("1 2; 3")
    with pytest.raises(ConvscopeError, match="cannot read"):
        parse_kernel("1 x; 2 3")
    with pytest.raises(ConvscopeError, match="odd side"):
        embed_kernel(torch.ones(4, 4))


def test_designer_kernel_kinds():
    assert designer_kernel("sobel_y")[1:-1, 1:-1].equal(sobel_kernel("y"))
    assert torch.equal(designer_kernel("gaussian", sigma=2.0), gaussian_kernel(5, 2.0))
    with pytest.raises(UnknownNameError, match="gaussian, sobel_y, sobel_x, typed"):
        designer_kernel("laplace")


def test_filter_response_figure_reports_the_mean():
    image = torch.rand(1, 10, 10)
    kernel = designer_kernel("gaussian")
    figure = show_filter_response(image, kernel, bias=0.5)
    expected = F.conv2d(image[None], kernel[None, None]).mean().item() + 0.5
    assert f"output (mean {expected:.3f})" in [axes.get_title() for axes in figure.axes]


def test_designer_filters_in_a_real_first_layer_match_a_plain_convolution():
    import convscope as cs
    from convscope.surgery.filters import first_layer_maps, with_designer_filters

    net = cs.load_model("caffenet", weights="random")
    designed = with_designer_filters(net, "conv1", sigma=2.0)
    photo = cs.load_photo("coffee")
    maps = first_layer_maps(designed, photo)
    # independently: BGR 0..255 minus the mean, channel mean, 11x11 kernels at stride 4
    bgr = photo.flip(0) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(3, 1, 1)
    gray = bgr.mean(0, keepdim=True)[None]
    sobel_y = F.pad(torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]), (4, 4, 4, 4))
    kernels = torch.stack([gaussian_kernel(11, 2.0), sobel_y, sobel_y.T])[:, None]
    # float32 sums of 121 products of magnitudes up to 2 × 255 (Sobel on BGR 0..255 minus the
    # mean): each errs by at most 121 × 2**-24 × 121 × 510 ≈ 0.45 in the worst case, by about
    # sqrt(121) × 2**-24 × 510 ≈ 3e-4 as rounding errors add up in practice; the maps reach
    # about 1,000, so 1e-3 absolute plus 1e-4 relative holds with a margin of three
    torch.testing.assert_close(maps, F.conv2d(gray, kernels, stride=4)[0], rtol=1e-4, atol=1e-3)
    untouched = designed.params["conv1"][0][3:]
    assert torch.equal(untouched, net.params["conv1"][0][3:])  # other filters kept
    with pytest.raises(ConvscopeError, match="choose one of"):
        with_designer_filters(net, "fc6")
