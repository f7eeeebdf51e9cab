"""Zeiler & Fergus's Figure 2: the strongest activations of a feature map over a whole set.

One streaming pass keeps, per channel, the `k` strongest activations seen so far (value, image,
position): memory grows with the number of channels, not of images. Each is then shown as its
deconvnet projection beside the image patch under its receptive field.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from convscope.core.arguments import grid_position, image_for, image_tensor, integer, positive
from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError
from convscope.core.geometry import geometries
from convscope.core.inspection import (
    check_feature_map_layer,
    ending_after,
    feature_map_layers,
    forward_hooks,
)
from convscope.core.meta import blob_shapes, check_input_fits, images_per_batch
from convscope.core.net import LayeredModel
from convscope.core.plotting import show_panels, tile
from convscope.explain.deconvnet import Deconvnet, project_units
from convscope.explain.projection_figures import as_picture


@dataclass
class TopActivations:
    """The `k` strongest activations of every channel of one layer.

    Attributes:
        layer: the layer's name.
        values: `(channels, k)`, strongest first.
        images: `(channels, k)` indices into the image set.
        positions: `(channels, k, 2)` (row, column) of each unit in the layer's map.
    """

    layer: str
    values: torch.Tensor
    images: torch.Tensor
    positions: torch.Tensor


@torch.no_grad()
def top_activations_of_layers(
    model: LayeredModel,
    images: torch.Tensor,
    layers: list[str],
    k: int = 9,
    batch_size: int = 250,
) -> dict[str, TopActivations]:
    """Stream `images` `(N, C, H, W)` in [0, 1] through `model` once, keeping each channel's
    top `k` of every layer in `layers` at the same time.

    Each image contributes at most its strongest unit per channel, so the `k` come from `k`
    different images, as in the paper. A hook reduces each blob to its per-channel maxima as
    it is made, and batches are bounded by memory (`images_per_batch`), so memory stays
    bounded for any set and any net.

    Returns:
        Layer name -> `TopActivations`, in the order of `layers`.
    """
    layers = [check_feature_map_layer(model, layer) for layer in layers]
    if not layers:
        raise ConvscopeError("layers must name at least one layer with feature maps")
    image_for(model, images, "images", batched=True)
    k = positive("k", k, high=len(images))
    deepest = max(layers, key=model.layer_names.index)  # the passes end there
    check_input_fits(model, images.shape[1:], "images", until=deepest)
    batch = images_per_batch(model, images.shape[1:], positive("batch_size", batch_size), deepest)
    best: dict[str, tuple[torch.Tensor, ...]] = {}
    start = 0

    def keeper(layer: str):
        def hook(module, inputs, output):
            maps = output.detach().flatten(2)  # (B, C, h*w)
            values, where = (to_cpu(t) for t in maps.max(dim=2))  # (B, C)
            count, width = values.shape[0], output.shape[-1]
            candidates = (
                values.T,
                torch.arange(start, start + count).expand(values.shape[1], -1),
                where.T,
                torch.full_like(where.T, width),
            )
            if layer in best:
                candidates = tuple(torch.cat(pair, dim=1) for pair in zip(best[layer], candidates))
            order = candidates[0].topk(min(k, candidates[0].shape[1]), dim=1).indices
            best[layer] = tuple(c.gather(1, order) for c in candidates)

        return hook

    with forward_hooks(model, {layer: keeper(layer) for layer in layers}):
        for start in range(0, len(images), batch):
            with ending_after(model, deepest):  # after the keepers: its hook runs last
                model(to_model(model, model.preprocess(images[start : start + batch])))
    found = {}
    for layer in layers:
        values, indices, flat, width = best[layer]
        positions = torch.stack([flat // width, flat % width], dim=-1)
        found[layer] = TopActivations(layer, values, indices, positions)
    return found


def top_activations(
    model: LayeredModel, images: torch.Tensor, layer: str, k: int = 9, batch_size: int = 250
) -> TopActivations:
    """One layer's `top_activations_of_layers`: each channel's top `k` over `images`
    `(N, C, H, W)` in [0, 1], from one streaming pass."""
    return top_activations_of_layers(model, images, [layer], k, batch_size)[layer]


def receptive_patch(
    model: LayeredModel, image: torch.Tensor, layer: str, position: tuple[int, int]
) -> torch.Tensor:
    """The input pixels under one unit's receptive field, zero where it leaves the image.

    Args:
        image: `(C, H, W)`; position: `(row, column)` of the unit in `layer`'s map.

    Returns:
        `(C, field, field)` (each side the layer's receptive field along that axis).

    Raises:
        ConvscopeError: a layer without a feature map, an image that is not `(C, H, W)`, a
            position that is not two integers >= 0 or whose field misses the image.
    """
    check_feature_map_layer(model, layer)
    image = image_tensor("image", image)
    position = grid_position("position", position)
    sides = []
    for axis in (0, 1):
        geometry = geometries(model, axis)[layer]
        centre = geometry.start + geometry.jump * position[axis]
        first = math.floor(centre - (geometry.field - 1) / 2 + 0.5)
        if first >= image.shape[1 + axis]:
            raise ConvscopeError(
                f"position {position} in {layer}: the unit's receptive field lies outside the "
                f"{image.shape[1]}x{image.shape[2]} image"
            )
        sides.append((first, int(geometry.field)))
    (top, height), (left, width) = sides
    padded = torch.zeros(image.shape[0], height, width)
    rows = slice(max(top, 0), min(top + height, image.shape[1]))
    columns = slice(max(left, 0), min(left + width, image.shape[2]))
    padded[:, rows.start - top : rows.stop - top, columns.start - left : columns.stop - left] = (
        image[:, rows, columns]
    )
    return padded


def top_grids(
    model: LayeredModel,
    images: torch.Tensor,
    top: TopActivations,
    channel: int,
    deconvnet_for: Callable[[int], Deconvnet] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One channel's top activations as two tiled grids: the projections of each activation
    (alone, in its map) and the input patches under their receptive fields.

    Args:
        deconvnet_for: image index -> its recorded `Deconvnet` (pass a cache, as the widget
            does, so that moving between channels repeats no forward pass).

    Raises:
        ConvscopeError: `images` is not `(N, C, H, W)` for the model, or `channel` is not one
            of `top`'s channels.
    """
    image_for(model, images, "images", batched=True)
    channel = integer("channel", channel, 0, len(top.values) - 1, where=f" for {top.layer}")
    deconvnet_for = deconvnet_for or (
        lambda i: Deconvnet(model, model.preprocess(images[i][None]), switches_only=True)
    )
    indices = top.images[channel].tolist()
    positions = [tuple(position) for position in top.positions[channel].tolist()]
    passes = [deconvnet_for(i) for i in indices]
    walked = project_units(passes, top.layer, channel, positions, top.values[channel])
    projections, patches = [], []
    for image_index, position, signal in zip(indices, positions, walked):
        picture = as_picture(model, signal)
        projections.append(receptive_patch(model, picture, top.layer, position))
        patches.append(receptive_patch(model, images[image_index], top.layer, position))
    columns = math.ceil(math.sqrt(len(patches)))
    return _tile_maps(projections, columns), _tile_maps(patches, columns)


def recorded_switches(
    model: LayeredModel, images: torch.Tensor, indices: list[int]
) -> dict[int, Deconvnet]:
    """The switches-only passes of `images[indices]` (each image once), recorded in batches
    bounded by memory (`Deconvnet.record_many`)."""
    wanted = list(dict.fromkeys(indices))
    batch = images_per_batch(model, images.shape[1:], 256, feature_map_layers(model)[-1])
    found = {}
    for start in range(0, len(wanted), batch):
        chunk = wanted[start : start + batch]
        passes = Deconvnet.record_many(model, model.preprocess(images[chunk]))
        found.update(zip(chunk, passes))
    return found


def show_top_activations(
    model: LayeredModel,
    images: torch.Tensor,
    top: TopActivations,
    channels: list[int],
    deconvnet_for: Callable[[int], Deconvnet] | None = None,
) -> Figure:
    """For each channel, a row: its top activations' projections beside their input patches.

    The passes of the images the channels name are recorded once, in batches
    (`recorded_switches`), or taken from `deconvnet_for` (a widget's cache).
    """
    if deconvnet_for is None:
        named = [i for channel in channels for i in top.images[channel].tolist()]
        deconvnet_for = recorded_switches(model, images, named).__getitem__
    panels = []
    for channel in channels:
        projections, patches = top_grids(model, images, top, channel, deconvnet_for)
        panels += [
            (f"{top.layer} map {channel}: projections", projections),
            ("input patches", patches),
        ]
    return show_panels(panels, columns=2, size=3.0)


def _tile_maps(maps: list[torch.Tensor], columns: int) -> torch.Tensor:
    stack = torch.stack(maps)
    if stack.shape[1] == 1:
        return torch.as_tensor(tile(stack[:, 0], columns=columns, scale=False))
    return torch.as_tensor(tile(stack.permute(0, 2, 3, 1), columns=columns, scale=False))


def show_channel(
    model: LayeredModel,
    images: torch.Tensor,
    deconvnet: Deconvnet,
    image: torch.Tensor,
    top: TopActivations,
    channel: int,
    deconvnet_for: Callable[[int], Deconvnet] | None = None,
) -> Figure:
    """One channel: the chosen image, the projection of its strongest activation there, and
    the channel's top activations over the whole set (projections and patches). A map that is
    zero everywhere on the chosen image has nothing to project: its panel says so."""
    projections, patches = top_grids(model, images, top, channel, deconvnet_for)
    title = f"{top.layer} map {channel}"
    if deconvnet.silent(top.layer, channel):
        projection, title = torch.full_like(image, 0.5), f"{title}: zero on this image"
    else:
        projection = as_picture(model, deconvnet.project(top.layer, channel))
    return show_panels(
        [
            ("image", image),
            (title, projection),
            ("top activations: projections", projections),
            ("their input patches", patches),
        ],
        size=2.2,
    )


# The recorded passes a widget keeps of the top images, in bytes of switches (VGG16 at
# 224 x 224: 6 MB a pass), and how many passes with activations it keeps (the chosen image's).
KEPT_PASS_BYTES = 512 * 2**20
KEPT_FULL_PASSES = 4


class RecordedPasses:
    """Every image's recorded deconvnet pass and every layer's top activations, each computed
    once and then kept: what the deconvnet widget needs so that moving a slider repeats no
    forward pass it has done before. The first layer asked for streams the set once for every
    layer with feature maps (`top_activations_of_layers`), so a new layer costs nothing more.

    The top images' passes keep only their switches (`switches_only`; the units' values come
    from the top activations), so the kept passes fit `KEPT_PASS_BYTES`; the chosen image's
    pass keeps its activations too (the last `KEPT_FULL_PASSES` images).

    Args:
        model: a `Net` of conv, ReLU and max-pool layers.
        images: `(N, C, H, W)` in [0, 1].
        keep: at most how many top images' passes to keep (the oldest goes first); fewer
            when `KEPT_PASS_BYTES` holds fewer of this model's passes.
    """

    def __init__(self, model: LayeredModel, images: torch.Tensor, keep: int = 256) -> None:
        self.model, self.images = model, image_for(model, images, "images", batched=True)
        shapes = blob_shapes(model, (1, *images.shape[1:]), feature_map_layers(model)[-1])
        pools = [
            layer
            for layer in feature_map_layers(model)
            if isinstance(model.layer(layer), torch.nn.MaxPool2d)
        ]
        per_pass = max(1, 4 * sum(math.prod(shapes[layer]) for layer in pools))
        self.keep = max(1, min(positive("keep", keep), KEPT_PASS_BYTES // per_pass))
        self._light: OrderedDict[int, Deconvnet] = OrderedDict()
        self.deconvnet = functools.lru_cache(maxsize=KEPT_FULL_PASSES)(self._record)
        self._tops: dict[str, TopActivations] = {}

    def _record(self, index: int) -> Deconvnet:
        return Deconvnet(self.model, self.model.preprocess(self.images[index][None]))

    def switches(self, index: int) -> Deconvnet:
        """Image `index`'s pass with its switches only: kept (the oldest goes first)."""
        if index not in self._light:
            data = self.model.preprocess(self.images[index][None])
            self._keep(index, Deconvnet(self.model, data, switches_only=True))
        self._light.move_to_end(index)
        return self._light[index]

    def _keep(self, index: int, recorded: Deconvnet) -> None:
        self._light[index] = recorded
        while len(self._light) > self.keep:
            self._light.popitem(last=False)

    def top(self, layer: str) -> TopActivations:
        """`layer`'s top activations. The first call streams the set for every layer, then
        records the switches of the images they name (in batches, as many as are kept), so
        that no later channel or layer move runs a forward pass."""
        check_feature_map_layer(self.model, layer)
        if not self._tops:
            self._tops = top_activations_of_layers(
                self.model, self.images, feature_map_layers(self.model)
            )
            named = [i for top in self._tops.values() for i in top.images.flatten().tolist()]
            wanted = list(dict.fromkeys(named))[: self.keep]
            for index, recorded in recorded_switches(self.model, self.images, wanted).items():
                self._keep(index, recorded)
        return self._tops[layer]

    def show(self, layer: str, channel: int, index: int) -> Figure:
        """`show_channel` for image `index`, from the kept passes."""
        return show_channel(
            self.model,
            self.images,
            self.deconvnet(index),
            self.images[index],
            self.top(layer),
            channel,
            self.switches,
        )
