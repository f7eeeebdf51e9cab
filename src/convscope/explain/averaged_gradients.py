"""Gradients averaged over many inputs: SmoothGrad and integrated gradients.

SmoothGrad (Smilkov et al. 2017) averages the gradient over copies of the image with
Gaussian noise added, σ a chosen fraction of the input's range (max − min):
M̂ = (1/n) Σ ∂S_c/∂x at x + N(0, σ²). Integrated gradients (Sundararajan et al. 2017) sum
the gradient along the straight path from a baseline x' to the image, in m steps of a
Riemann sum: (x − x') · (1/m) Σ_{k=1..m} ∂S_c/∂x at x' + (k/m)(x − x'). Here the baseline
is the image that preprocesses to zero (the dataset mean), and both work in the network's
(preprocessed) input space, as every method of lesson 07.
"""

from __future__ import annotations

import torch

from convscope.core.arguments import positive
from convscope.core.errors import ConvscopeError
from convscope.core.meta import images_per_batch
from convscope.core.net import LayeredModel
from convscope.explain.saliency import class_gradients


def _per_chunk(model: LayeredModel, data: torch.Tensor, copies: int) -> int:
    """How many images' `copies` copies together fill about one memory-bounded batch."""
    return max(1, images_per_batch(model, data.shape[1:], 64) // copies)


def smoothgrad(
    model: LayeredModel,
    data: torch.Tensor,
    indices: torch.Tensor,
    samples: int = 50,
    noise: float = 0.15,
    seed: int | None = None,
) -> torch.Tensor:
    """SmoothGrad's mean gradient for each image.

    Args:
        data: preprocessed inputs `(N, C, H, W)`; indices: each image's class `(N,)`.
        samples: n noisy copies; noise: σ / (max − min) of each image.
        seed: each image's noise is drawn at once as `(n, C, H, W)` standard normals times σ,
            from a generator seeded with `seed` (torch's global one when None).

    Returns:
        `(N, C, H, W)`, the mean of each image's n gradients.
    """
    samples = positive("samples", samples)
    if not 0 < noise <= 1:
        raise ConvscopeError(
            f"noise must be a fraction of the input's range in (0, 1]; got {noise!r}"
        )
    data = data.cpu()
    results, per_chunk = [], _per_chunk(model, data, samples)
    for start in range(0, len(data), per_chunk):
        chunk, classes = data[start : start + per_chunk], indices[start : start + per_chunk]
        noisy = []
        for image in chunk:
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            sigma = noise * float(image.max() - image.min())
            draws = torch.randn((samples, *image.shape), generator=generator) * sigma
            noisy.append(image + draws)
        gradients = class_gradients(model, torch.cat(noisy), classes.repeat_interleave(samples))
        results.append(gradients.view(len(chunk), samples, *data.shape[1:]).mean(1))
    return torch.cat(results)


def integrated_gradients(
    model: LayeredModel, data: torch.Tensor, indices: torch.Tensor, steps: int = 50
) -> torch.Tensor:
    """Integrated gradients from the zero input (the dataset mean) to each image.

    Args:
        data: preprocessed inputs `(N, C, H, W)`; indices: each image's class `(N,)`;
            steps: m.

    Returns:
        `(N, C, H, W)`; each image's sum approaches S_c(x) − S_c(0) as m grows (completeness).
    """
    steps = positive("steps", steps)
    data = data.cpu()
    fractions = torch.arange(1, steps + 1, dtype=data.dtype) / steps
    results, per_chunk = [], _per_chunk(model, data, steps)
    for start in range(0, len(data), per_chunk):
        chunk = data[start : start + per_chunk]
        path = (fractions[None, :, None, None, None] * chunk[:, None]).flatten(0, 1)
        classes = indices[start : start + per_chunk].repeat_interleave(steps)
        mean = (
            class_gradients(model, path, classes).view(len(chunk), steps, *data.shape[1:]).mean(1)
        )
        results.append(chunk * mean)
    return torch.cat(results)
