"""Zeiler & Fergus's occlusion sensitivity (section 4.2): slide a grey square over the image.

For every position of the square, one forward pass of the occluded image gives (a) the total
activation of the feature map that is strongest in the unoccluded image, (b) the probability of
the correct class, and (c) the most probable class. Where covering the image changes these, the
network was looking.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import image_for, image_tensor, integer, positive
from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.inspection import check_feature_map_layer, recording
from convscope.core.meta import check_input_fits, images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, Labels, show_panels


@dataclass
class OcclusionMaps:
    """Per square position `(rows, columns)`: feature activation, correct-class probability
    and most probable class; plus which feature map was followed, and the square's side and
    step (`size`, `stride`), which place each value on the image."""

    feature: torch.Tensor
    probability: torch.Tensor
    top_class: torch.Tensor
    channel: int
    layer: str
    size: int
    stride: int


def square_starts(side: int, size: int, stride: int) -> range:
    """Where a square of `size` starts along a `side`: every `stride` pixels until it reaches
    the edge, as Captum's `Occlusion` does (ceil((side − size) / stride) + 1 positions); the
    last square is cut at the edge when the stride does not tile the side, so every pixel is
    covered, as Zeiler & Fergus slide the square over the whole image."""
    return range(0, side - size + stride, stride) if side > size else range(1)


def occluded_images(
    image: torch.Tensor, size: int, stride: int, fill: torch.Tensor
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Copies of `image` `(C, H, W)` with a `size`×`size` square of `fill` `(C,)` at every
    position `stride` apart up to the edges (`square_starts`), row by row:
    `(rows * columns, C, H, W)`, and `(rows, columns)`.

    Raises:
        ConvscopeError: naming the argument: an image that is not `(C, H, W)`, a size that is
            not 1..min(H, W), a stride below 1, a fill that is not `(C,)`.
    """
    channels, height, width = image_tensor("image", image).shape
    size = integer("size", size, 1, min(height, width), plural="square sizes")
    stride = positive("stride", stride)
    if not isinstance(fill, torch.Tensor) or tuple(fill.shape) != (channels,):
        got = tuple(fill.shape) if isinstance(fill, torch.Tensor) else type(fill).__name__
        raise ConvscopeError(
            f"fill must be a tensor ({channels},), one value per channel; got {got}"
        )
    tops, lefts = square_starts(height, size, stride), square_starts(width, size, stride)
    copies = image.expand(len(tops) * len(lefts), -1, -1, -1).clone()
    for index, (top, left) in enumerate((t, s) for t in tops for s in lefts):
        copies[index, :, top : top + size, left : left + size] = fill.view(channels, 1, 1)
    return copies, (len(tops), len(lefts))


@torch.no_grad()
def occlusion(
    model: LayeredModel,
    image: torch.Tensor,
    label: int,
    layer: str,
    size: int = 8,
    stride: int = 2,
    batch_size: int = 256,
) -> OcclusionMaps:
    """The three occlusion maps of the paper for one image.

    Args:
        model: a classifier `Net`.
        image: `(C, H, W)` in [0, 1], the model's input size.
        label: the correct class's index.
        layer: the layer whose strongest feature map is followed (a conv, ReLU or pool layer).
        size: side of the grey square in pixels; stride: its step.

    Returns:
        `OcclusionMaps` with `(rows, columns)` maps; the grey is the dataset mean (the image
        that preprocesses to zero).
    """
    check_feature_map_layer(model, layer)
    image_for(model, image)
    check_input_fits(model, image.shape)
    size = integer("size", size, 1, min(image.shape[1:]), plural="square sizes")
    stride = positive("stride", stride)
    batch_size = positive("batch_size", batch_size)
    label = model.class_index(label)
    grey = model.preprocess.deprocess(torch.zeros(1, *image.shape))[0].mean(dim=(1, 2))
    copies, grid = occluded_images(image, size, stride, grey)
    with recording(model, [layer]) as blobs:
        model(to_model(model, model.preprocess(image[None])))
    channel = int(blobs[layer][0].flatten(1).max(dim=1).values.argmax())
    features, probabilities, winners = [], [], []
    batch_size = images_per_batch(model, image.shape, batch_size)  # bounded by memory
    for start in range(0, len(copies), batch_size):  # each batch moved to the model once
        with recording(model, [layer]) as blobs:
            scores = model(to_model(model, model.preprocess(copies[start : start + batch_size])))
        features.append(to_cpu(blobs[layer][:, channel].sum(dim=(1, 2))))
        probabilities.append(to_cpu(scores.softmax(dim=1)[:, label]))
        winners.append(to_cpu(scores.argmax(dim=1)))
    return OcclusionMaps(
        torch.cat(features).view(grid),
        torch.cat(probabilities).view(grid),
        torch.cat(winners).view(grid),
        channel,
        layer,
        size,
        stride,
    )


def show_occlusion(image: torch.Tensor, maps: OcclusionMaps, class_names: list[str]) -> Figure:
    """The image and the three maps of the paper's Figure 7, one value per position of the
    square (drawn where the square's centre was): (a) the total activation of the followed
    feature map, (b) P(correct class), (c) the most probable class, named in a legend."""
    rows, columns = maps.probability.shape
    # a digit's name fits in its cell while the cells are large enough to read
    in_cells = max(len(name) for name in class_names) <= 2 and max(rows, columns) <= 12
    start = (maps.size - 1) / 2 - maps.stride / 2  # cell k centred on square k's centre
    cells = (start, start + columns * maps.stride, start + rows * maps.stride, start)
    return show_panels(
        [
            ("input", image),
            (
                f"(a) {maps.layer} map {maps.channel}",
                Heat(
                    maps.feature,
                    "total activation, square there",
                    over=image,
                    cmap="jet",
                    extent=cells,
                ),
            ),
            (
                "(b) P(correct class)",
                Heat(
                    maps.probability,
                    "P(correct), square there",
                    over=image,
                    cmap="jet",
                    limits=(0.0, 1.0),
                    extent=cells,
                ),
            ),
            (
                "(c) most probable class",
                Labels(maps.top_class, class_names, in_cells=in_cells, over=image, extent=cells),
            ),
        ],
        size=2.2,
    )


def occlusion_windows(side: int) -> tuple[int, int]:
    """The square and stride lesson 07 slides over a `side`-pixel image.

    Small images: a quarter of the side (at least 4) and a stride of half that (7 and 3 on
    28 pixels). Images of 128 pixels or more: a quarter of the side rounded up to a multiple
    of 32 (the last feature map's cell on ImageNet nets), at 5 positions a side where they
    tile the image (64 and 40 on 224: 25 squares, which keeps one photo-net map under a
    second on two CPU cores), else a stride of half the square."""
    size = max(4, side // 4)
    if side < 128:
        return size, max(1, size // 2)
    size = -(-size // 32) * 32
    if (side - size) % 4 == 0:
        return size, (side - size) // 4
    return size, size // 2


@torch.no_grad()
def occlusion_attribution(
    model: LayeredModel, data: torch.Tensor, index: int, size: int, stride: int
) -> torch.Tensor:
    """Occlusion as an attribution per pixel: the drop of the class score when a square
    covers the pixel, averaged over every square position that covers it.

    Args:
        data: one preprocessed input `(1, C, H, W)`; the square is filled with zeros there,
            which is the dataset mean (the paper's grey).
        index: the class; size, stride: the square's side and step (all channels at once).

    Returns:
        `(C, H, W)`: S_c(x) − S_c(x with the square), the mean over the squares covering each
        pixel (every pixel is covered: `square_starts`).
    """
    data = image_tensor("data", data, batched=True)[0]
    channels, height, width = data.shape
    size = integer("size", size, 1, min(height, width), plural="square sizes")
    stride = positive("stride", stride)
    fill = torch.zeros(channels, dtype=data.dtype)
    copies, (rows, columns) = occluded_images(data.cpu(), size, stride, fill)
    batch = images_per_batch(model, data.shape, 256)
    score = to_cpu(model(to_model(model, data[None])))[0, index]
    drops = torch.cat(
        [
            score - to_cpu(model(to_model(model, copies[i : i + batch])))[:, index]
            for i in range(0, len(copies), batch)
        ]
    )
    total = torch.zeros(height, width, dtype=drops.dtype)
    covered = torch.zeros(height, width, dtype=drops.dtype)
    for k, drop in enumerate(drops):
        top, left = (k // columns) * stride, (k % columns) * stride
        total[top : top + size, left : left + size] += drop
        covered[top : top + size, left : left + size] += 1
    return (total / covered).expand(channels, -1, -1).clone()
