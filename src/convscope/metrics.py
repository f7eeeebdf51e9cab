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


@torch.no_grad()
def segmentation_scores(
    model: nn.Module, images: torch.Tensor, label_maps: torch.Tensor, num_classes: int = 11
) -> tuple[float, float]:
    """FCN's pixel accuracy and mean IU of a segmentation net on labelled scenes.

    Args:
        model: maps preprocessed `(N, C, H, W)` to scores `(N, classes, H, W)`.
        images: `(N, C, H, W)` in [0, 1]; label_maps `(N, H, W)` int64.

    Returns:
        `(pixel_accuracy, mean_iu)`.
    """
    from .scenes import confusion_matrix, mean_iou, pixel_accuracy

    predictions = predict(model, images, batch_size=50).argmax(dim=1)
    confusion = confusion_matrix(predictions, label_maps, num_classes)
    return pixel_accuracy(confusion), mean_iou(confusion)
