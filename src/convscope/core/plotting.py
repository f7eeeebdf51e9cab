"""Figures for the lessons: tiled maps (Caffe's `vis_square`), side-by-side panels, heat maps.

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so a function's return
value is displayed exactly once in a notebook and nothing leaks between calls.

Every figure meets one standard (`figure_problems` checks it): at least `FIGURE_DPI` dots per
inch, no text below `MIN_FONT_PT` points, and a colour bar beside every heat map, whose label
says what the values are. A heat map is drawn from its values (`Heat`), never baked into
colours, so its colour bar shows its real scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colorbar import Colorbar
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from mpl_toolkits.axes_grid1 import make_axes_locatable

FIGURE_DPI = 100  # legible on a projector; panels are sized in inches to keep PNGs small
MIN_FONT_PT = 8.0  # no text smaller than this
PICTURE_COLOURS = ("gray", "Greys", "gray_r", "binary")  # images, not heat maps
LABELS_GID = "labels"  # an image of class labels (its legend or its text names the colours)


@dataclass(frozen=True)
class Heat:
    """A heat map for `show_panels`, drawn with a colour bar.

    Attributes:
        values: `(h, w)`, any range.
        label: the colour bar's label: what the values are, e.g. "P(7)".
        over: optional `(C, H, W)` image in [0, 1] drawn under the map; the map is then
            resized bilinearly to `(H, W)` unless `extent` places it.
        limits: `(low, high)` of the colour scale; None: the map's own minimum and maximum.
        cmap: the colour map; alpha: its opacity over `over`.
        extent: `(left, right, bottom, top)` in the image's pixel coordinates: the map's cells
            drawn as blocks over that region instead of resized over the whole image.
        bar: draw the colour bar; off only where another panel of the figure has the same
            colour map and `limits` and draws it (a row of maps on one scale).
    """

    values: torch.Tensor | np.ndarray
    label: str
    over: torch.Tensor | None = None
    limits: tuple[float, float] | None = None
    cmap: str = "inferno"
    alpha: float = 0.6
    extent: tuple[float, float, float, float] | None = None
    bar: bool = True


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
    fill: float = 1.0,
) -> np.ndarray:
    """Arrange a stack of maps in a near-square grid, as Caffe's `vis_square` did.

    Args:
        maps: `(N, H, W)` gray maps or `(N, H, W, 3)` colour maps; scaled jointly to [0, 1].
        columns: grid width (default `ceil(sqrt(N))`).
        padding: white pixels between tiles.
        scale: scale the stack jointly to [0, 1] (off: the maps are pictures, or values to
            draw as a `Heat`).
        fill: the value between tiles: 1 (white) for pictures; NaN for a `Heat`, drawn as
            the background and left out of its colour scale.

    Returns:
        `(rows*(H+padding)-padding, columns*(W+padding)-padding[, 3])` array, in [0, 1]
        when scaled.
    """
    array = normalize(maps) if scale else _as_array(maps)
    count, height, width = array.shape[:3]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    shape = (rows * (height + padding) - padding, columns * (width + padding) - padding)
    canvas = np.full(shape + array.shape[3:], fill, dtype=np.float32)
    for index in range(count):
        top, left = (index // columns) * (height + padding), (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = array[index]
    return canvas


@dataclass(frozen=True)
class Labels:
    """A map of class labels for `show_panels`: one colour per class, named in a legend below
    the panel (and in each cell when `in_cells`).

    Attributes:
        values: `(h, w)` class indices into `class_names`.
        class_names: the names of the classes, in index order.
        in_cells: write each cell's class name in it (short names on small grids).
        unknown: optional `(h, w)` bool: cells drawn grey and named `unknown_name` in the
            legend (e.g. windows that hold no object, whatever the classifier says there).
        over, extent: as for `Heat`: an image `(C, H, W)` drawn under the cells, and where
            the cells sit on it, `(left, right, bottom, top)` in its pixel coordinates.
    """

    values: torch.Tensor
    class_names: Sequence[str]
    in_cells: bool = False
    unknown: torch.Tensor | None = None
    unknown_name: str = "no object"
    over: torch.Tensor | None = None
    extent: tuple[float, float, float, float] | None = None


UNKNOWN_COLOUR = (0.93, 0.93, 0.93, 1.0)  # paler than any class colour


def class_colours(count: int) -> np.ndarray:
    """`count` distinct RGBA colours, none of them gray (gray marks unknown cells)."""
    palette = [colormaps["tab10"](i) for i in range(10) if i != 7]  # tab10's 7 is gray
    palette += [colormaps["tab20"](i) for i in range(20) if i not in (14, 15)]
    return np.array([palette[i % len(palette)] for i in range(count)])


def draw_labels(axes, labels: Labels) -> None:
    """Draw `labels` on `axes`, with a legend of the classes present below it."""
    values = torch.as_tensor(labels.values).long()
    unknown = (
        torch.zeros_like(values, dtype=torch.bool)
        if labels.unknown is None
        else torch.as_tensor(labels.unknown, dtype=torch.bool)
    )
    colours = class_colours(len(labels.class_names))
    pixels = colours[values.numpy()]
    pixels[unknown.numpy()] = UNKNOWN_COLOUR
    rows, columns = values.shape
    left, right, bottom, top = labels.extent or (-0.5, columns - 0.5, rows - 0.5, -0.5)
    if labels.over is not None:
        axes.imshow(_display_array(in_colour(labels.over)), interpolation="nearest")
    # opaque, so that the legend's colours are the cells' colours; the image shows around them
    axes.imshow(pixels, interpolation="nearest", gid=LABELS_GID, extent=(left, right, bottom, top))
    if labels.over is not None:
        height, width = labels.over.shape[-2:]
        axes.set_xlim(-0.5, width - 0.5)
        axes.set_ylim(height - 0.5, -0.5)
    if labels.in_cells:
        for (row, column), label in np.ndenumerate(values.numpy()):
            colour = "0.5" if unknown[row, column] else "black"
            x = left + (column + 0.5) * (right - left) / columns
            y = top + (row + 0.5) * (bottom - top) / rows
            axes.text(
                x,
                y,
                labels.class_names[label],
                ha="center",
                va="center",
                fontsize=MIN_FONT_PT,
                color=colour,
            )
    present = values[~unknown].unique(sorted=True).tolist()
    counts = {label: int((values[~unknown] == label).sum()) for label in present}
    present.sort(key=lambda label: (-counts[label], label))
    handles = [
        Patch(color=colours[label], label=labels.class_names[label][:24]) for label in present
    ]
    if bool(unknown.any()):
        handles.append(Patch(color=UNKNOWN_COLOUR, label=labels.unknown_name))
    axes.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.02),
        ncol=min(len(handles), 2 if len(handles) > 3 else 3),
        fontsize=MIN_FONT_PT,
        frameon=False,
        handlelength=1.0,
        columnspacing=1.0,
    )


def resized(values: torch.Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A map `(h, w)` resized bilinearly to `size` `(H, W)` (float32)."""
    return torch.nn.functional.interpolate(
        torch.as_tensor(_as_array(values))[None, None],
        size=size,
        mode="bilinear",
        align_corners=False,
    )[0, 0].numpy()


def draw_heat(figure: Figure, axes, heat: Heat) -> Colorbar | None:
    """Draw `heat` on `axes` (over its image, if any) and its colour bar beside them."""
    limits = dict(zip(("vmin", "vmax"), heat.limits)) if heat.limits else {}
    if heat.over is None:
        shown = axes.imshow(
            _as_array(heat.values), cmap=heat.cmap, interpolation="nearest", **limits
        )
    else:
        axes.imshow(_display_array(in_colour(heat.over)), interpolation="nearest")
        height, width = heat.over.shape[-2:]
        if heat.extent is None:
            values = resized(heat.values, (height, width))
            shown = axes.imshow(
                values, cmap=heat.cmap, alpha=heat.alpha, interpolation="nearest", **limits
            )
        else:
            shown = axes.imshow(
                _as_array(heat.values),
                cmap=heat.cmap,
                alpha=heat.alpha,
                interpolation="nearest",
                extent=heat.extent,
                **limits,
            )
            axes.set_xlim(-0.5, width - 0.5)
            axes.set_ylim(height - 0.5, -0.5)
    return colour_bar(figure, axes, shown, heat.label) if heat.bar else None


def colour_bar(figure: Figure, axes, shown: AxesImage, label: str) -> Colorbar:
    """A colour bar for `shown` beside `axes`, as tall as the image drawn there, labelled
    `label`, legible (`MIN_FONT_PT`)."""
    bar_axes = make_axes_locatable(axes).append_axes("right", size="6%", pad=0.04)
    bar = figure.colorbar(shown, cax=bar_axes)
    bar.solids.set_alpha(1.0)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
    bar.formatter = FuncFormatter(lambda value, _: f"{value:.3g}")  # 8e-09, not a "1e-9" on top
    bar.set_label(label, fontsize=MIN_FONT_PT)
    return bar


def figure_problems(figure: Figure) -> list[str]:
    """Where `figure` breaks the lessons' figure standard; `[]` when it meets it.

    Checks: at least `FIGURE_DPI` dots per inch; every visible text at least `MIN_FONT_PT`
    points; every heat map (an image of values drawn through a colour map other than a gray
    one, and not a map of class labels) has a colour bar, its own or that of an image with the
    same colour map and limits.
    """
    problems = []
    if figure.dpi < FIGURE_DPI:
        problems.append(f"{figure.dpi:g} dpi, below {FIGURE_DPI}")
    figure.canvas.draw()  # lays out the text, so tick labels exist
    for text in figure.findobj(lambda artist: hasattr(artist, "get_fontsize")):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < MIN_FONT_PT:
            problems.append(f"text {text.get_text()!r} at {text.get_fontsize():g} pt")
    bar_axes = {id(image.colorbar.ax) for image in _images(figure) if image.colorbar}
    scales = {_scale(image) for image in _images(figure) if image.colorbar}
    for image in _images(figure):
        if id(image.axes) in bar_axes or not _is_heat(image):
            continue
        if image.colorbar is None and _scale(image) not in scales:
            problems.append(f"a heat map without a colour bar in {image.axes.get_title()!r}")
    return problems


def _images(figure: Figure) -> list[AxesImage]:
    return [image for axes in figure.axes for image in axes.get_images()]


def _scale(image: AxesImage) -> tuple[str, tuple[float, float]]:
    return image.get_cmap().name, tuple(image.get_clim())


def _is_heat(image: AxesImage) -> bool:
    array = image.get_array()
    return (
        array is not None
        and array.ndim == 2
        and image.get_gid() != LABELS_GID
        and image.get_cmap().name not in PICTURE_COLOURS
    )


def show_panels(
    panels: Sequence[tuple[str, torch.Tensor | np.ndarray | Heat | Labels]],
    cmap: str = "gray",
    shared_range: bool = False,
    columns: int | None = None,
    size: float = 2.0,
    title: str | None = None,
    title_size: float | None = None,
    shared_bar: str | None = None,
) -> Figure:
    """Images and heat maps side by side, each with a title; each `Heat` with its colour bar.

    Args:
        panels: `(title, image)` pairs; an image is `(H, W)`, `(H, W, 3)` or `(C, H, W)`, a
            `Heat` or `Labels`.
        cmap: colour map for single-channel images (a gray one: they are pictures).
        shared_range: one colour scale for all the images that are not `Heat`s.
        columns: panels per row (default all in one row).
        size: inches per panel.
        title: optional figure title, in a band above the panels.
        title_size: its font size in points (None: matplotlib's default); a long title over
            few panels needs a smaller one to fit.
        shared_bar: one colour bar for the whole figure, right of the panels, with this label,
            instead of one per `Heat`; every `Heat` must then have the same `limits` and
            colour map (raises `ValueError` otherwise).
    """
    heats = [image for _, image in panels if isinstance(image, Heat)]
    if shared_bar is not None:
        if not heats or len({(heat.limits, heat.cmap) for heat in heats}) != 1:
            raise ValueError("shared_bar needs heat maps of one colour map and fixed limits")
        if heats[0].limits is None:
            raise ValueError("shared_bar needs heat maps of one colour map and fixed limits")
        panels = [
            (name, replace(image, bar=False) if isinstance(image, Heat) else image)
            for name, image in panels
        ]
    pictures = [
        _display_array(image) for _, image in panels if not isinstance(image, (Heat, Labels))
    ]
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    bars = any(isinstance(image, Heat) and image.bar for _, image in panels)
    gap = _BAR_GAP if bars else _GAP  # room for a colour bar's ticks, not taken from a panel
    width = size * columns + (gap - _GAP) * columns
    figure = Figure(figsize=(width, size * rows + (0.3 if title else 0)), dpi=FIGURE_DPI)
    limits = {}
    if shared_range and pictures:
        limits = {"vmin": min(a.min() for a in pictures), "vmax": max(a.max() for a in pictures)}
    for index, (name, image) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        if isinstance(image, Heat):
            draw_heat(figure, axes, image)
        elif isinstance(image, Labels):
            draw_labels(axes, image)
        else:
            axes.imshow(_display_array(image), cmap=cmap, interpolation="nearest", **limits)
        axes.set_title(name, fontsize=10, y=1.0)
        axes.axis("off")
    if title:
        figure.suptitle(title, fontsize=title_size)
    _fixed_layout(figure, rows, columns, 0.3 if title else 0.0, gap)
    if shared_bar is not None:
        shown = next(
            image for axes in figure.axes for image in axes.get_images()[-1:] if _is_heat(image)
        )
        bar = figure.colorbar(shown, ax=figure.axes, fraction=0.9 / (columns * size + 1), pad=0.01)
        bar.ax.tick_params(labelsize=MIN_FONT_PT)
        bar.set_label(shared_bar, fontsize=MIN_FONT_PT)
    return figure


# Space around image panels, in inches: a title band above each row, thin gaps elsewhere.
# A fixed layout instead of `tight_layout`, which measured every axis's ticks (axes that are
# switched off) and took 60% of a widget's update.
# Beside a colour bar, the gap leaves room for its tick labels.
_TITLE_BAND, _GAP, _BAR_GAP = 0.3, 0.08, 0.6


def _fixed_layout(figure: Figure, rows: int, columns: int, suptitle: float, gap: float) -> None:
    width, height = figure.get_size_inches()
    panel_height = (height - suptitle - rows * _TITLE_BAND - _GAP) / rows
    panel_width = (width - _GAP - columns * gap) / columns
    figure.subplots_adjust(
        left=_GAP / width,
        right=1 - gap / width,
        bottom=_GAP / height,
        top=1 - (suptitle + _TITLE_BAND) / height,
        wspace=gap / panel_width,
        hspace=_TITLE_BAND / panel_height,
    )


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
    panels: Sequence[tuple[str, torch.Tensor | np.ndarray]],
    class_names: Sequence[str],
    size: float = 2.0,
) -> Figure:
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
        axes.set_title(name, fontsize=10, y=1.0)
        axes.axis("off")
    handles = [Patch(color=colours[i], label=n) for i, n in enumerate(class_names)]
    figure.legend(
        handles=handles, loc="lower center", ncol=len(class_names), fontsize=8, frameon=False
    )
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure
