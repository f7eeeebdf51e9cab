"""The shape lessons' tables and figures: key blobs, blob sizes, crop derivations, and the
model a shape lesson tabulates (fully convolutional, on the meta device)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from convscope.core.geometry import crop_offset, geometries
from convscope.core.net import Crop, LayeredModel
from convscope.core.plotting import FIGURE_DPI
from convscope.core.tables import Table
from convscope.fully_conv.cast import fully_convolutional
from convscope.models.registry import load_model, load_shapes_only

KEY_BLOB_TYPES = ("Input", "MaxPool2d", "AvgPool2d", "ConvTranspose2d")


def key_blobs(table: Table) -> list[str]:
    """The blobs worth drawing from a `layer_table`: input, pools, fc7, upsampled maps, output.

    Works for any net: a classifier's cast gives data, pool1…pool5, fc7, fc8; FCN-8s adds
    upscore2, upscore_pool4, upscore8 and the cropped score.
    """
    names, types = table.column("layer"), table.column("type")
    last = names[-1]
    return [
        name
        for name, kind in zip(names, types)
        if kind in KEY_BLOB_TYPES or name == "fc7" or name == last
    ]


def show_blob_sizes(table: Table, layers: Sequence[str]) -> Figure:
    """Each chosen blob drawn as a rectangle of its height × width, all to one scale.

    Args:
        table: a `layer_table`.
        layers: the blobs to draw, e.g. the input, the pools, fc7 and the upsampled maps.
    """
    outputs = dict(zip(table.column("layer"), table.column("output")))
    sizes = [tuple(outputs[name][1:]) for name in layers]  # (H, W) of each (C, H, W)
    largest = max(max(size) for size in sizes)
    figure = Figure(figsize=(1.3 * len(layers), 2.6), dpi=FIGURE_DPI)
    axes = figure.add_subplot(1, 1, 1)
    for index, (name, (height, width)) in enumerate(zip(layers, sizes)):
        left = index * largest * 1.15
        axes.add_patch(Rectangle((left, 0), width, height, fill=True, alpha=0.4))
        axes.text(left, largest * 1.04, f"{name}\n{height}×{width}", fontsize=8, va="top")
    axes.set_xlim(-largest * 0.05, len(layers) * largest * 1.15)
    axes.set_ylim(largest * 1.4, -largest * 0.02)
    axes.set_aspect("equal")
    axes.axis("off")
    return figure


def crop_table(model: LayeredModel) -> Table:
    """Every `Crop` layer with the offset derived from its inputs' grids, along the height.

    Columns: crop, cropped (its first input), reference (the blob it is cut to), the
    derivation `(reference start - cropped start) / jump`, and the offset the layer holds.
    Empty for a net without crops.
    """
    along_height = geometries(model, axis=0)
    rows = []
    for name, module, bottoms in model.layer_graph():
        if isinstance(module, Crop):
            cropped, reference = along_height[bottoms[0]], along_height[bottoms[1]]
            derived = crop_offset(cropped, reference, name)
            formula = f"({reference.start:g} - ({cropped.start:g})) / {cropped.jump:g} = {derived}"
            rows.append((name, bottoms[0], bottoms[1], formula, module.offset))
    return Table(["crop", "cropped", "reference", "derived offset", "layer offset"], rows)


def model_for_shapes(
    name: str, weights: str = "random", device: str | torch.device = "auto"
) -> LayeredModel:
    """A model whose sizes the shape lessons tabulate, fully convolutional.

    FCNs and Caffe files come as they are; a classifier (`caffenet`, `alexnet`, `vgg16`,
    `digits`) is cast fully convolutional, so it too accepts any input size. With
    `weights="random"` it is `load_shapes_only` (meta device: no memory, nothing read). A
    weights file (or `"default"`) is loaded, and checked, for real, onto `device`.
    """
    if weights == "random":
        model = load_shapes_only(name)
    else:
        model = load_model(name, weights=weights, device=device)
    if not any(isinstance(module, Crop) for _, module, _ in model.layer_graph()):
        if any(isinstance(module, nn.Linear) for _, module, _ in model.layer_graph()):
            model = fully_convolutional(model)
    return model


def key_blob_rows(table: Table) -> Table:
    """The rows of `table` (a `layer_table`) for its `key_blobs`, same columns."""
    keys = set(key_blobs(table))
    return Table(table.columns, [row for row in table.rows if row[0] in keys])
