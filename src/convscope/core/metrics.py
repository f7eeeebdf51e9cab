"""Measuring a model: predictions and accuracy, segmentation scores, box overlap."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.meta import images_per_batch


@torch.no_grad()
def class_scores(model: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class scores for raw images, applying the model's own preprocessing.

    Args:
        model: a `Net` (its `preprocess` is applied) in eval mode.
        images: `(N, C, H, W)` in [0, 1].

    Returns:
        Unnormalised scores `(N, num_classes)` (`(N, num_classes, H, W)` for a segmenter).
    """
    batch_size = images_per_batch(model, images.shape[1:], batch_size)  # bounded by memory
    batches = [
        to_cpu(model(to_model(model, model.preprocess(images[start : start + batch_size]))))
        for start in range(0, len(images), batch_size)
    ]
    return torch.cat(batches)


def predicted_classes(
    model: nn.Module, images: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """Each image's most probable class `(N,)` (each pixel's, `(N, H, W)`, for a segmenter):
    the argmax of `class_scores` over the classes."""
    return class_scores(model, images, batch_size).argmax(dim=1)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of `images` `(N, C, H, W)` whose top class equals `labels` `(N,)`."""
    return (predicted_classes(model, images) == labels).float().mean().item()


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
    predictions = predicted_classes(model, images, batch_size=50)
    confusion = confusion_matrix(predictions, label_maps, num_classes)
    return pixel_accuracy(confusion), mean_iou(confusion)


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int = 11
) -> torch.Tensor:
    """Counts of (true, predicted) label pairs, as FCN's `fast_hist` in score.py.

    Args:
        pred: predicted labels, any shape, values in 0..num_classes-1.
        target: true labels, same shape; values outside 0..num_classes-1 (a "void" label such
            as 255) are ignored, as in FCN.
        num_classes: C, 11 for scenes (`NUM_SEGMENT_CLASSES`).

    Returns:
        `(C, C)` int64: row = true class, column = predicted class.
    """
    if pred.shape != target.shape:
        raise ConvscopeError(f"pred shape {tuple(pred.shape)} != target {tuple(target.shape)}")
    keep = (target >= 0) & (target < num_classes)
    pred, target = pred[keep].to(torch.int64), target[keep].to(torch.int64)
    if pred.numel() and not (0 <= int(pred.min()) and int(pred.max()) < num_classes):
        raise ConvscopeError(f"pred has labels outside 0..{num_classes - 1}")
    pairs = torch.bincount(num_classes * target + pred, minlength=num_classes**2)
    return pairs.reshape(num_classes, num_classes)


def pixel_accuracy(conf: torch.Tensor) -> float:
    """Overall pixel accuracy `diag.sum() / conf.sum()` of a `(C, C)` confusion matrix."""
    if int(conf.sum()) == 0:
        raise ConvscopeError("the confusion matrix is empty (no labelled pixels)")
    return float(conf.diag().sum()) / float(conf.sum())


def class_iou(conf: torch.Tensor) -> torch.Tensor:
    """Per-class intersection over union `diag / (row sum + col sum - diag)`, `(C,)` float64.

    A class that is neither present nor predicted gets NaN (0 / 0), as in FCN.
    """
    conf = conf.to(torch.float64)
    return conf.diag() / (conf.sum(dim=1) + conf.sum(dim=0) - conf.diag())


def mean_iou(conf: torch.Tensor) -> float:
    """FCN's mean IU: the NaN-ignoring mean of `class_iou(conf)` over the C classes."""
    return float(torch.nanmean(class_iou(conf)))


def box_iou(box_a: Sequence[int] | torch.Tensor, box_b: Sequence[int] | torch.Tensor) -> float:
    """Intersection over union of two (top, left, bottom, right) boxes, bottom/right exclusive.

    Returns 0.0 when both boxes are empty.
    """
    a, b = (tuple(int(v) for v in box) for box in (box_a, box_b))
    for box in (a, b):
        if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
            raise ConvscopeError(
                f"box {box} is not (top, left, bottom, right) with bottom >= top and right >= left"
            )
    rows = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    cols = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = rows * cols
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


# z of a two-sided 95% normal interval: Φ⁻¹(0.975)
Z95 = 1.959963984540054


def wilson_interval(hits: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion `hits / trials` (95% by default):
    unlike the plain normal interval it stays inside [0, 1] and is not empty at 0 or 1 hits."""
    if not 0 <= hits <= trials or trials < 1:
        raise ConvscopeError(f"need 0 <= hits <= trials and trials >= 1; got {hits} of {trials}")
    share = hits / trials
    middle = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z / (1 + z * z / trials) * (share * (1 - share) / trials + z * z / (4 * trials**2)) ** 0.5
    )
    return max(0.0, middle - half), min(1.0, middle + half)
