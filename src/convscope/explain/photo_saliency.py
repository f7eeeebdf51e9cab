"""Saliency of photos from a trained ImageNet net: lesson 06's maps on the data they were made for.

The map is the paper's: the maximum over colour channels of |∂S_c/∂I| for the net's top
class c. A few pixels carry gradients many times larger than the rest, so a linear colour
scale would show little but those; each map is clipped at a high percentile of its own
values and then scaled to [0, 1] (a display choice, stated on the figure's colour bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from convscope.core.errors import ConvscopeError
from convscope.core.metrics import class_scores
from convscope.core.net import LayeredModel
from convscope.core.plotting import FIGURE_DPI
from convscope.data.images import square_photo
from convscope.explain.saliency import saliency_of_images

CLIP_PERCENTILE = 99.0
# sixteen grey levels: the eye tells no more apart in speckle, and the committed PNG stays small
MAP_COLOURS = colormaps["gray"].resampled(16)


def clipped(saliency: torch.Tensor, percentile: float = CLIP_PERCENTILE) -> torch.Tensor:
    """`saliency` `(H, W)` clipped at its `percentile`-th percentile and scaled to [0, 1]
    (all zero stays all zero)."""
    if (
        isinstance(percentile, bool)
        or not isinstance(percentile, int | float)
        or not (0 < percentile <= 100)
    ):
        raise ConvscopeError(f"percentile must be a number in (0, 100]; got {percentile!r}")
    top = torch.quantile(saliency.flatten().double(), percentile / 100).item()
    if top <= 0:
        return torch.zeros_like(saliency)
    return (saliency.clamp(max=top) / top).to(saliency.dtype)


class PhotoSaliency(NamedTuple):
    """Shipped photos read by a net: `images` `(N, 3, H, W)`, the `top` class of each, its
    `probability` `(N,)`, and its saliency `maps` `(N, H, W)` (not clipped)."""

    images: torch.Tensor
    top: list[int]
    probability: torch.Tensor
    maps: torch.Tensor


def photo_saliency(model: LayeredModel, names: Sequence[str]) -> PhotoSaliency:
    """The shipped photos `names` at the model's input size, their top classes, the top
    classes' probabilities and saliency maps (`PhotoSaliency`)."""
    images = torch.stack([square_photo(name, model.input_size[-1]) for name in names])
    probabilities = class_scores(model, images).softmax(1)
    top = probabilities.argmax(1).tolist()
    maps = saliency_of_images(model, images, top)
    chosen = probabilities[torch.arange(len(top)), torch.tensor(top)]
    return PhotoSaliency(images, top, chosen, maps)


def show_photo_saliency(
    model: LayeredModel, found: PhotoSaliency, percentile: float = CLIP_PERCENTILE
) -> Figure:
    """One row per photo of `found` (`photo_saliency`): the photo, titled with the net's top
    class and its probability, and its saliency map (`clipped` at `percentile`), each with its
    colour bar."""
    images, top, chosen, maps = found
    rows = len(top)
    # inches: a 224-pixel map drawn at about 200 pixels at 100 dpi, smoothed while shrunk
    # ("antialiased"), where nearest-neighbour sampling would drop whole rows of the map
    panel = 2.0
    figure = Figure(figsize=(2 * panel + 0.9, rows * (panel + 0.35) + 0.4), dpi=FIGURE_DPI)
    grid = figure.add_gridspec(
        rows,
        3,
        width_ratios=[1, 1, 0.06],
        left=0.02,
        right=0.9,
        top=1 - 0.4 / figure.get_figheight(),
        bottom=0.02,
        wspace=0.05,
        hspace=0.12,
    )
    for row, (image, index, probability, saliency) in enumerate(zip(images, top, chosen, maps)):
        photo_axes, map_axes = figure.add_subplot(grid[row, 0]), figure.add_subplot(grid[row, 1])
        photo_axes.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        photo_axes.set_title(
            f"top class: {model.class_names[index]} (P = {probability:.2f})", fontsize=8
        )
        shown = map_axes.imshow(
            clipped(saliency, percentile).numpy(),
            cmap=MAP_COLOURS,
            vmin=0,
            vmax=1,
            interpolation="antialiased",
        )
        map_axes.set_title("max over channels of |∂S_c/∂I|", fontsize=8)
        for axes in (photo_axes, map_axes):
            axes.axis("off")
        bar = figure.colorbar(shown, cax=figure.add_subplot(grid[row, 2]))
        bar.set_label(f"per map, clipped at its {percentile:g}th percentile", fontsize=8)
        bar.ax.tick_params(labelsize=8)
    figure.suptitle(f"{model.name}: class saliency maps of photos", fontsize=11)
    return figure
