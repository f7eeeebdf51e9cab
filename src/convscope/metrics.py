"""Measuring a classifier: predictions and accuracy on a labelled set."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class scores for raw images, applying the model's own preprocessing.

    Args:
        model: a `Net` (its `preprocess` is applied) in eval mode.
        images: `(N, C, H, W)` in [0, 1].

    Returns:
        Unnormalised scores `(N, num_classes)`.
    """
    batches = [
        model(model.preprocess(images[start : start + batch_size]))
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(batches)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of `images` `(N, C, H, W)` whose top class equals `labels` `(N,)`."""
    return (predict(model, images).argmax(dim=1) == labels).float().mean().item()
