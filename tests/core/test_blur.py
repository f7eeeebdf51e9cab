"""The Gaussian blur against SciPy's."""

from __future__ import annotations

import pytest
import torch
from bounds import U64
from scipy import ndimage

from convscope.core.blur import gaussian_blur, gaussian_weights
from convscope.core.errors import ConvscopeError


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_the_blur_is_scipys_gaussian_filter(sigma):
    """SciPy's `mirror` edges are torch's `reflect`; `truncate=3` cuts at the same radius
    (round(3σ) there, ceil(3σ) here: equal for these σ). Both sum at most 13 × 13 products of
    values in [0, 1] in float64, so they agree to 13 × 13 × u64 relative to 1, far below 1e-12."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 20, 24, dtype=torch.float64, generator=generator)
    expected = torch.from_numpy(
        ndimage.gaussian_filter(
            images.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=3.0
        )
    )
    got = gaussian_blur(images, sigma)
    assert got.shape == images.shape
    assert (got - expected).abs().max().item() <= 13 * 13 * 4 * U64


def test_the_weights_are_a_normalised_gaussian():
    weights = gaussian_weights(7, 1.5, torch.float64)
    offsets = torch.arange(7, dtype=torch.float64) - 3
    expected = torch.exp(-(offsets**2) / 4.5)
    assert torch.allclose(weights, expected / expected.sum(), rtol=0, atol=4 * U64)


def test_bad_sigmas_are_named():
    with pytest.raises(ConvscopeError, match="sigma must be a positive number; got 0"):
        gaussian_weights(5, 0)
    with pytest.raises(ConvscopeError, match="sigma 5 needs images larger than 15 pixels"):
        gaussian_blur(torch.zeros(1, 1, 10, 10), 5)
