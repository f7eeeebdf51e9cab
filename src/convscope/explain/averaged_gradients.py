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
from convscope.explain.saliency import input_gradients


def _gradients_of(model: LayeredModel, inputs: torch.Tensor, index: int) -> torch.Tensor:
    """∂S_index/∂input for each of `inputs` `(N, C, H, W)`, in memory-bounded batches."""
    batch = images_per_batch(model, inputs.shape[1:], 64)
    weights = torch.zeros(batch, len(model.class_names))
    weights[:, index] = 1.0
    return torch.cat(
        [
            input_gradients(model, inputs[i : i + batch], weights[: len(inputs[i : i + batch])])
            for i in range(0, len(inputs), batch)
        ]
    )


def smoothgrad(
    model: LayeredModel,
    data: torch.Tensor,
    index: int,
    samples: int = 50,
    noise: float = 0.15,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SmoothGrad's mean gradient.

    Args:
        data: one preprocessed input `(1, C, H, W)`; index: the class.
        samples: n noisy copies; noise: σ / (max − min) of `data`.
        generator: the noise's random source (torch's global one when None); the noise is
            drawn at once as `(n, C, H, W)` standard normals times σ.

    Returns:
        `(C, H, W)`, the mean of the n gradients.
    """
    samples = positive("samples", samples)
    if not 0 < noise <= 1:
        raise ConvscopeError(
            f"noise must be a fraction of the input's range in (0, 1]; got {noise!r}"
        )
    sigma = noise * float(data.max() - data.min())
    draws = torch.randn((samples, *data.shape[1:]), generator=generator) * sigma
    return _gradients_of(model, data.cpu() + draws, index).mean(0)


def integrated_gradients(
    model: LayeredModel, data: torch.Tensor, index: int, steps: int = 50
) -> torch.Tensor:
    """Integrated gradients from the zero input (the dataset mean) to `data`.

    Args:
        data: one preprocessed input `(1, C, H, W)`; index: the class; steps: m.

    Returns:
        `(C, H, W)`; its sum approaches S_c(data) − S_c(0) as m grows (completeness).
    """
    steps = positive("steps", steps)
    fractions = torch.arange(1, steps + 1, dtype=data.dtype) / steps
    path = fractions[:, None, None, None] * data.cpu()
    return data[0].cpu() * _gradients_of(model, path, index).mean(0)
