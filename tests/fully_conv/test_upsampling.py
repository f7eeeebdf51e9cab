"""Bilinear upsampling: kernels against closed forms, the three fills, and F.interpolate."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.bilinear import bilinear_all_pairs_, bilinear_diagonal_, bilinear_kernel
from convscope.core.errors import ConvscopeError
from convscope.fully_conv.upsampling import (
    bilinear_grouped,
    interpolate_equivalent,
    upsample_bilinear,
)


def outer(profile: list[Fraction]) -> torch.Tensor:
    """The 2-D kernel of a 1-D profile, multiplied out in exact fractions."""
    return torch.tensor([[float(a * b) for b in profile] for a in profile])


def random_layer(in_channels: int, out_channels: int, kernel_size, **kwargs) -> nn.ConvTranspose2d:
    """A transposed convolution with random weights and bias, so surgery must overwrite them."""
    layer = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, **kwargs)
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_()
    return layer


def test_even_kernels_closed_form():
    four = [Fraction(1, 4), Fraction(3, 4), Fraction(3, 4), Fraction(1, 4)]
    assert bilinear_kernel(4).equal(outer(four))
    rising = [Fraction(2 * i + 1, 16) for i in range(8)]
    assert bilinear_kernel(16).equal(outer(rising + rising[::-1]))


def test_odd_kernels_closed_form():
    assert bilinear_kernel(1).equal(torch.ones(1, 1))
    assert bilinear_kernel(3).equal(outer([Fraction(1, 2), Fraction(1), Fraction(1, 2)]))
    thirds = [Fraction(n, 3) for n in (1, 2, 3, 2, 1)]
    # float32 products of thirds against exact fractions: one rounding of values at most 1
    torch.testing.assert_close(bilinear_kernel(5), outer(thirds), rtol=0, atol=2**-24)


def test_diagonal_is_the_single_channel_convolution_per_channel():
    layer = bilinear_diagonal_(random_layer(3, 3, 4, stride=2, padding=1))
    x = torch.rand(2, 3, 5, 6)
    by_hand = outer([Fraction(1, 4), Fraction(3, 4), Fraction(3, 4), Fraction(1, 4)])
    with torch.no_grad():
        output = layer(x)
    for i in range(3):
        alone = F.conv_transpose2d(x[:, i : i + 1], by_hand[None, None], stride=2, padding=1)
        # quarters are exact in float32 and at most 4 products of values in [0, 1] are added:
        # each side rounds at most 4 times by 2**-24 of 1, so they differ by at most 8 × 2**-24
        torch.testing.assert_close(output[:, i : i + 1], alone, rtol=0, atol=8 * 2**-24)
    assert output.shape == (2, 3, (5 - 1) * 2 + 4 - 2, (6 - 1) * 2 + 4 - 2)
    assert layer.bias.abs().sum().item() == 0.0
    assert layer.weight.abs().sum().item() == pytest.approx(3 * 4.0)  # 3 kernels summing to 4


def test_grouped_equals_diagonal_exactly():
    grouped = bilinear_grouped(4, 6, 3, padding=1)
    diagonal = bilinear_diagonal_(random_layer(4, 4, 6, stride=3, padding=1, bias=False))
    assert grouped.weight.shape == (4, 1, 6, 6) and grouped.bias is None
    x = torch.randn(2, 4, 7, 5)
    with torch.no_grad():
        assert grouped(x).equal(diagonal(x))


def test_all_pairs_gives_every_channel_the_upsampled_sum():
    all_pairs = bilinear_all_pairs_(random_layer(3, 5, 4, stride=2))
    single = bilinear_diagonal_(random_layer(1, 1, 4, stride=2))
    x = torch.rand(2, 3, 6, 6)
    with torch.no_grad():
        output, of_sum = all_pairs(x), single(x.sum(dim=1, keepdim=True))
    assert output.shape[1] == 5
    for j in range(5):
        # 3 channels in [0, 1] summed, then at most 4 kernel products: a few roundings of
        # values under 12, so 16 × 12 × 2**-24 ≈ 1.1e-5 bounds them
        torch.testing.assert_close(output[:, j : j + 1], of_sum, rtol=0, atol=16 * 12 * 2**-24)


def interpolate(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def border_mask(shape: torch.Size, band: int) -> torch.Tensor:
    """True on the outer `band` rows and columns of the last two dimensions."""
    mask = torch.ones(shape, dtype=torch.bool)
    mask[..., band : shape[-2] - band, band : shape[-1] - band] = False
    return mask


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5, 8])
def test_interpolate_equivalent_except_the_outer_band(factor):
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64) + 0.1  # positive, so the fade shows
    ours, theirs = interpolate_equivalent(x, factor), interpolate(x, factor)
    assert ours.shape == theirs.shape == (2, 3, 5 * factor, 7 * factor)
    band = border_mask(ours.shape, factor // 2)
    torch.testing.assert_close(ours[~band], theirs[~band], rtol=0, atol=1e-12)
    assert (ours[band] < theirs[band] - 1e-6).all()  # every border pixel differs
    padded = F.pad(x, (1, 1, 1, 1))
    cropped = interpolate(padded, factor)[..., factor:-factor, factor:-factor]
    torch.testing.assert_close(ours, cropped, rtol=0, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_constant_image_fades_only_at_the_border(factor):
    ours = interpolate_equivalent(torch.ones(1, 1, 6, 6, dtype=torch.float64), factor)
    band = factor // 2
    torch.testing.assert_close(  # float64 weights summing to 1: a few 1e-16
        ours[..., band:-band, band:-band],
        torch.ones(1, 1, *[6 * factor - 2 * band] * 2, dtype=torch.float64),
        rtol=0,
        atol=1e-12,
    )
    # row o < s // 2 has source coordinate (o + 0.5) / s - 0.5 < 0: weight 1 - |coordinate|
    expected = torch.tensor([0.5 + (o + 0.5) / factor for o in range(band)], dtype=torch.float64)
    torch.testing.assert_close(ours[0, 0, :band, 3 * factor], expected, rtol=0, atol=1e-12)


def test_float32_interior_matches_interpolate():
    x = torch.rand(1, 2, 8, 8)
    ours, theirs = interpolate_equivalent(x, 4), interpolate(x, 4)
    # four float32 products of values in [0, 1] with weights summing to 1, added in two
    # orders, and float32 weights (k/8 exact, but interpolate's computed coordinates round):
    # within 8 × 2**-24 ≈ 5e-7
    torch.testing.assert_close(
        ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], rtol=0, atol=8 * 2**-24
    )


def test_upsample_bilinear_crops_to_interpolate_for_even_factors():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    for factor in (2, 4, 6):
        full = upsample_bilinear(x, factor)
        assert full.shape == (2, 3, (4 - 1) * factor + 2 * factor, (5 - 1) * factor + 2 * factor)
        half = factor // 2
        cropped = full[..., half:-half, half:-half]
        torch.testing.assert_close(cropped, interpolate_equivalent(x, factor), rtol=0, atol=1e-12)
        interior = ~border_mask(cropped.shape, half)
        torch.testing.assert_close(
            cropped[interior], interpolate(x, factor)[interior], rtol=0, atol=1e-12
        )  # float64 both: a few 1e-16


@pytest.mark.parametrize("factor", [1, 3, 5])
def test_upsample_bilinear_matches_no_crop_for_odd_factors(factor):
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    full, theirs = upsample_bilinear(x, factor), interpolate(x, factor)
    inner = (..., slice(factor, -factor), slice(factor, -factor))
    for offset in range(factor + 1):
        window = full[..., offset : offset + 6 * factor, offset : offset + 6 * factor]
        assert (window[inner] - theirs[inner]).abs().max().item() > 0.01, offset


def test_errors_name_the_bad_value():
    with pytest.raises(
        ConvscopeError, match="kernel size 0 is out of range; it must be at least 1"
    ):
        bilinear_kernel(0)
    with pytest.raises(ConvscopeError, match=r"in_channels == out_channels.*\(3, 4, 4, 4\)"):
        bilinear_diagonal_(nn.ConvTranspose2d(3, 4, 4))
    with pytest.raises(ConvscopeError, match=r"groups=3, weight shape \(3, 1, 4, 4\)"):
        bilinear_diagonal_(nn.ConvTranspose2d(3, 3, 4, groups=3))
    with pytest.raises(ConvscopeError, match=r"square kernel.*\(2, 2, 4, 2\)"):
        bilinear_all_pairs_(nn.ConvTranspose2d(2, 2, (4, 2)))
    with pytest.raises(ConvscopeError, match="nn.ConvTranspose2d; got Conv2d"):
        bilinear_diagonal_(nn.Conv2d(2, 2, 4))
    with pytest.raises(ConvscopeError, match="channels 0 is out of range; it must be at least 1"):
        bilinear_grouped(0, 4, 2)
    with pytest.raises(
        ConvscopeError, match="upsampling factor 0 is out of range; it must be at least 1"
    ):
        upsample_bilinear(torch.rand(1, 1, 3, 3), 0)
    with pytest.raises(ConvscopeError, match=r"\(N, C, H, W\) tensor; got shape \(1, 3, 3\)"):
        interpolate_equivalent(torch.rand(1, 3, 3), 2)
