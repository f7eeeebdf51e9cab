"""The Gaussian blur: its weights, and a blur of image batches that keeps their size."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from convscope.core.errors import ConvscopeError


def gaussian_weights(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(size,)` samples of a Gaussian of standard deviation `sigma` centred on the middle
    sample, normalised to sum to 1."""
    if not (isinstance(sigma, int | float) and sigma > 0 and math.isfinite(sigma)):
        raise ConvscopeError(f"sigma must be a positive number; got {sigma!r}")
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur `(N, C, H, W)` images channel by channel with a Gaussian of `sigma` pixels,
    truncated at 3σ and applied along rows, then columns; edges reflected, so the output
    has the input's shape."""
    radius = max(1, math.ceil(3 * sigma))
    if radius >= min(images.shape[-2:]):
        raise ConvscopeError(
            f"sigma {sigma} needs images larger than {radius} pixels a side; got "
            f"{tuple(images.shape[-2:])}"
        )
    weights = gaussian_weights(2 * radius + 1, sigma, images.dtype).to(images.device)
    channels = images.shape[1]
    across = weights.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    down = weights.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    blurred = F.conv2d(
        F.pad(images, (radius, radius, 0, 0), mode="reflect"), across, groups=channels
    )
    return F.conv2d(F.pad(blurred, (0, 0, radius, radius), mode="reflect"), down, groups=channels)
