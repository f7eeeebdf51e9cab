"""Figures for the lessons: tiled maps (Caffe's `vis_square`), side-by-side panels, overlays.

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so a function's return
value is displayed exactly once in a notebook and nothing leaks between calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

FIGURE_DPI = 72  # small PNGs in committed notebooks


def _as_array(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=np.float32)


def normalize(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the joint minimum and maximum (a constant array becomes 0.5)."""
    array = _as_array(values)
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.full_like(array, 0.5)
    return (array - low) / (high - low)


def tile(
    maps: torch.Tensor | np.ndarray,
    columns: int | None = None,
    padding: int = 1,
    scale: bool = True,
) -> np.ndarray:
    """Arrange a stack of maps in a near-square grid, as Caffe's `vis_square` did.

    Args:
        maps: `(N, H, W)` gray maps or `(N, H, W, 3)` colour maps; scaled jointly to [0, 1].
        columns: grid width (default `ceil(sqrt(N))`).
        padding: white pixels between tiles.
        scale: scale the stack jointly to [0, 1] (off: the maps already are pictures).
        scale: scale the stack jointly to [0, 1] (off: the maps already are pictures).

    Returns:
        `(rows*(H+padding)-padding, columns*(W+padding)-padding[, 3])` array in [0, 1].
    """
    array = normalize(maps) if scale else _as_array(maps)
    count, height, width = array.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    shape = (rows * (height + padding) - padding, columns * (width + padding) - padding)
    canvas = np.ones(shape + array.shape[3:], dtype=np.float32)
    for index in range(count):
        top, left = (index // columns) * (height + padding), (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = array[index]
    return canvas


def heatmap_overlay(
    image: torch.Tensor, heat: torch.Tensor, alpha: float = 0.5, cmap: str = "jet"
) -> np.ndarray:
    """Blend a heat map over an image, upsampling the map to the image's size.

    Args:
        image: `(C, H, W)` in [0, 1], C = 1 or 3.
        heat: `(h, w)` any range; scaled to [0, 1] and resized bilinearly to `(H, W)`.
        alpha: weight of the heat map.

    Returns:
        `(H, W, 3)` array in [0, 1].
    """
    height, width = image.shape[-2:]
    resized = torch.nn.functional.interpolate(
        torch.as_tensor(heat, dtype=torch.float32)[None, None],
        size=(height, width),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    colours = colormaps[cmap](normalize(resized))[..., :3]
    base = _as_array(image).transpose(1, 2, 0)
    base = np.repeat(base, 3, axis=2) if base.shape[2] == 1 else base
    return (1 - alpha) * base + alpha * colours


def show_panels(
    panels: Sequence[tuple[str, torch.Tensor | np.ndarray]],
    cmap: str = "gray",
    shared_range: bool = False,
    columns: int | None = None,
    size: float = 2.6,
    title: str | None = None,
    title_size: float | None = None,
) -> Figure:
    """Images side by side, each with a title.

    Args:
        panels: `(title, image)` pairs; an image is `(H, W)`, `(H, W, 3)` or `(C, H, W)`.
        cmap: colour map for single-channel images.
        shared_range: use one colour scale for all panels (to compare magnitudes).
        columns: panels per row (default all in one row).
        size: inches per panel.
        title: optional figure title, in a band above the panels.
        title_size: its font size in points (None: matplotlib's default); a long title over
            few panels needs a smaller one to fit.
    """
    arrays = [_display_array(image) for _, image in panels]
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(size * columns, size * rows + (0.3 if title else 0)), dpi=FIGURE_DPI)
    limits = {}
    if shared_range:
        limits = {"vmin": min(a.min() for a in arrays), "vmax": max(a.max() for a in arrays)}
    for index, ((name, _), array) in enumerate(zip(panels, arrays)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(array, cmap=cmap, interpolation="nearest", **limits)
        axes.set_title(name, fontsize=10)
        axes.axis("off")
    if title:
        figure.suptitle(title, fontsize=title_size)
    _fixed_layout(figure, rows, columns, size, 0.3 if title else 0.0)
    return figure


# Space around image panels, in inches: a title band above each row, thin gaps elsewhere.
# A fixed layout instead of `tight_layout`, which measured every axis's ticks (axes that are
# switched off) and took 60% of a widget's update.
_TITLE_BAND, _GAP = 0.3, 0.08


def _fixed_layout(figure: Figure, rows: int, columns: int, size: float, suptitle: float) -> None:
    width, height = size * columns, size * rows + suptitle
    panel_height = (height - suptitle - rows * _TITLE_BAND - _GAP) / rows
    panel_width = (width - (columns + 1) * _GAP) / columns
    figure.subplots_adjust(
        left=_GAP / width, right=1 - _GAP / width, bottom=_GAP / height,
        top=1 - (suptitle + _TITLE_BAND) / height,
        wspace=_GAP / panel_width, hspace=_TITLE_BAND / panel_height,
    )  # fmt: skip


def in_colour(image: torch.Tensor) -> torch.Tensor:
    """A gray image `(1, H, W)` as `(3, H, W)`, so that it shows in gray beside maps drawn in
    another colour map; colour images are returned as they are."""
    return image.expand(3, -1, -1) if image.dim() == 3 and image.shape[0] == 1 else image


def _display_array(image: torch.Tensor | np.ndarray) -> np.ndarray:
    array = _as_array(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array


def show_label_maps(
    panels: Sequence[tuple[str, torch.Tensor | np.ndarray]], class_names: Sequence[str],
    size: float = 2.6,
) -> Figure:  # fmt: skip
    """Images and per-pixel label maps side by side, labels in one fixed colour per class.

    Args:
        panels: `(title, array)`; `(H, W)` integer arrays are label maps, others images.
        class_names: names of the label values, in order (the legend).
    """
    colours = colormaps["tab20"](np.linspace(0, 1, 20))[: len(class_names)]
    figure = Figure(figsize=(size * len(panels), size + 0.5), dpi=FIGURE_DPI)
    for index, (name, values) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        array = _as_array(values)
        if (
            array.ndim == 2
            and np.allclose(array, np.round(array))
            and array.max() < len(class_names)
        ):
            axes.imshow(colours[array.astype(int)], interpolation="nearest")
        else:
            axes.imshow(_display_array(values), cmap="gray", interpolation="nearest")
        axes.set_title(name, fontsize=10)
        axes.axis("off")
    handles = [Patch(color=colours[i], label=n) for i, n in enumerate(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=len(class_names), fontsize=7,
                  frameon=False)  # fmt: skip
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure
