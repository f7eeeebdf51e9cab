"""Weakly supervised localisation from a class saliency map (Simonyan et al., section 3.1).

The most salient pixels (above the 95% quantile) seed the foreground, the least salient
(below the 30% quantile) the background; colour models and a graph cut — OpenCV's GrabCut,
initialised from that mask — label the rest; the largest connected foreground component's
bounding box is the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from convscope.core.arguments import image_tensor, positive
from convscope.core.errors import ConvscopeError
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, show_panels
from convscope.explain.photo_saliency import clipped
from convscope.explain.saliency import class_saliency

# GrabCut runs on small images; OpenCV's own thread pool only competes with torch's threads
# (two pools spinning on 2 cores can slow both down by orders of magnitude).
cv2.setNumThreads(1)


@dataclass
class Localization:
    """The result for one image.

    Attributes:
        box: `(top, left, bottom, right)`, bottom and right exclusive; all zero if nothing
            was found.
        mask: `(H, W)` bool, the largest foreground component.
        saliency: `(H, W)` the class saliency map used.
    """

    box: tuple[int, int, int, int]
    mask: torch.Tensor
    saliency: torch.Tensor


def _to_bgr8(image: torch.Tensor) -> np.ndarray:
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return np.ascontiguousarray(
        np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., ::-1]
    )


def _constant_or_flat(values: np.ndarray) -> str:
    low, high = float(values.min()), float(values.max())
    return f"constant ({low:.3g})" if low == high else f"flat (from {low:.3g} to {high:.3g})"


def segment_from_saliency(
    image: torch.Tensor,
    saliency: torch.Tensor,
    foreground: float = 0.95,
    background: float = 0.30,
    iterations: int = 5,
) -> torch.Tensor:
    """GrabCut initialised from saliency seeds; returns the largest foreground component.

    Args:
        image: `(C, H, W)` in [0, 1] (C = 1 or 3).
        saliency: `(H, W)`.
        foreground, background: the quantiles above / below which pixels are seeds.

    Returns:
        `(H, W)` bool mask.
    """
    image = image_tensor("image", image)
    if image.shape[0] not in (1, 3):
        raise ConvscopeError(f"image must have 1 or 3 channels; got {image.shape[0]}")
    if not isinstance(saliency, torch.Tensor) or tuple(saliency.shape) != tuple(image.shape[1:]):
        got = tuple(saliency.shape) if isinstance(saliency, torch.Tensor) else type(saliency)
        raise ConvscopeError(f"saliency must be (H, W) = {tuple(image.shape[1:])}; got {got}")
    if not 0 <= background < foreground <= 1:
        raise ConvscopeError(
            f"need 0 <= background < foreground <= 1; got {background} and {foreground}"
        )
    iterations = positive("iterations", iterations)
    values = saliency.detach().cpu().numpy()
    high, low = np.quantile(values, foreground), np.quantile(values, background)
    mask = np.full(values.shape, cv2.GC_PR_BGD, dtype=np.uint8)
    mask[values >= high] = cv2.GC_FGD
    mask[values <= low] = cv2.GC_BGD  # <=: many pixels may share the lowest value (0)
    if not (mask == cv2.GC_FGD).any():  # GrabCut needs seeds of both kinds
        raise ConvscopeError(
            f"saliency is {_constant_or_flat(values)}: no pixel lies above its {background} "
            f"quantile, so there is no foreground seed; nothing to localise (is the image blank?)"
        )
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(_to_bgr8(image), mask, None, *models, iterations, cv2.GC_INIT_WITH_MASK)
    return torch.from_numpy(largest_component((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a bool mask `(H, W)` (the first of equal ones), as a
    bool mask; all False when `mask` is. The one home of the rule that localisation and the
    box IoU of lesson 07 both use."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    return labels == 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))


def bounding_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """`(top, left, bottom, right)` of a mask's true pixels, bottom/right exclusive."""
    rows, columns = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    if len(rows) == 0:
        return (0, 0, 0, 0)
    return (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)


def localize(
    model: LayeredModel,
    image: torch.Tensor,
    class_index: int | str,
    augment: str = "none",
    **options,
) -> Localization:
    """Locate an object of class `class_index` in `image` `(C, H, W)` from its saliency alone.

    `augment` goes to `class_saliency` (`"flip"`, `"crops_and_flips"` average the map over
    views); `options` to `segment_from_saliency` (`foreground`, `background`, `iterations`).
    """
    saliency = class_saliency(model, image, model.class_index(class_index), augment)
    mask = segment_from_saliency(image, saliency, **options)
    return Localization(bounding_box(mask), mask, saliency)


def show_localization(
    image: torch.Tensor, result: Localization, truth: tuple[int, int, int, int] | None = None
) -> Figure:
    """The image with the found box (and the true one, dashed), the saliency map (`clipped` at
    its 99th percentile, as lesson 06 draws photo maps), the mask."""
    figure = show_panels(
        [
            ("image and box", image),
            (
                "saliency",
                Heat(clipped(result.saliency), "|∂S/∂I|, clipped at its 99th pct", cmap="hot"),
            ),
            ("GrabCut mask", result.mask),
        ],
        size=2.0,
    )
    axes = figure.axes[0]
    boxes = ((result.box, "-", "yellow", "found box"), (truth, "--", "cyan", "true box"))
    for box, style, colour, name in boxes:
        if box is not None:
            top, left, bottom, right = box
            corner = (left - 0.5, top - 0.5)
            outline = Rectangle(
                corner,
                right - left,
                bottom - top,
                fill=False,
                color=colour,
                linewidth=1.5,
                label=name,
            )
            outline.set_linestyle(style)
            axes.add_patch(outline)
    # below the picture, so that it hides no part of a box
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False)
    return figure
