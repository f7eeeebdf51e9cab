"""Zeiler & Fergus's deconvnet: projecting one activation back to pixel space.

A forward pass records every layer's output and every max-pooling's *switches* (where each
maximum came from). A projection then walks back from one chosen activation: unpooling puts
each value back where its maximum came from, a ReLU rectifies the signal, and each convolution
is undone by its transposed filters (the same weights, flipped; biases are not used).
Normalisation layers pass the signal through unchanged, as in the paper.

Projections reuse the recorded pass, so moving a channel slider costs one backward walk only.
This equals the gradient of the chosen activation with respect to the input when every ReLU's
backward pass is replaced by a ReLU of the incoming gradient (tests check it with autograd).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.arguments import grid_position, integer
from convscope.core.devices import dtype_of, to_cpu, to_model
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.inspection import check_feature_map_layer, feature_map_layers
from convscope.core.meta import check_input_fits
from convscope.core.net import LayeredModel
from convscope.explain.backward_rules import NORMALISATION, projection_by_rule

_PASS_BACK = (nn.Dropout, nn.Identity, *NORMALISATION)
MODES = ("max", "map")


def _check_chain(model: LayeredModel) -> list[tuple[str, nn.Module]]:
    """The layers with feature maps, which the deconvnet walks back through."""
    layers = []
    for name in feature_map_layers(model):
        module = model.layer(name)
        if not isinstance(module, (nn.Conv2d, nn.ReLU, nn.MaxPool2d, *_PASS_BACK)):
            raise ConvscopeError(
                f"the deconvnet handles conv, ReLU, max-pool, dropout and normalisation layers; "
                f"{name} is a {type(module).__name__}"
            )
        layers.append((name, module))
    return layers


@dataclass(frozen=True)
class RecordedPass:
    """What one image's forward pass leaves for the deconvnet.

    Attributes:
        activations: layer name -> its output `(1, C, h, w)` (on the meta device, shapes
            only, when `switches_only`).
        switches: max-pool layer name -> its switches `(1, C, h, w)` (int32) and the shape of
            its input.
        input_shape: `(1, C, H, W)`; input_device: where the pass ran.
    """

    activations: dict[str, torch.Tensor]
    switches: dict[str, tuple[torch.Tensor, torch.Size]]
    input_shape: torch.Size
    input_device: torch.device
    switches_only: bool


@torch.no_grad()
def record_passes(
    model: LayeredModel, data: torch.Tensor, switches_only: bool = False
) -> list[RecordedPass]:
    """One batched forward pass of preprocessed `data` `(N, C, H, W)` through the layers with
    feature maps, kept per image (each image's tensors cloned out of the batch's, so the
    batch's memory goes with it)."""
    chain = _check_chain(model)
    x = to_model(model, data)  # the pass and its switches stay on the model's device
    activations: dict[str, torch.Tensor] = {}
    switches: dict[str, tuple[torch.Tensor, torch.Size]] = {}
    for name, module in chain:
        if isinstance(module, nn.MaxPool2d):
            size = x.shape
            x, indices = F.max_pool2d(
                x,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                ceil_mode=module.ceil_mode,
                return_indices=True,
            )
            switches[name] = (indices.to(torch.int32), size)  # int32: half the memory
        elif isinstance(module, nn.ReLU):
            x = F.relu(x)  # never in place: the recorded input must survive
        else:
            x = module(x)
        activations[name] = x.to("meta") if switches_only else x
    if len(data) == 1:  # one image: its tensors are the pass's own
        return [RecordedPass(activations, switches, data.shape, x.device, switches_only)]
    return [
        RecordedPass(
            {name: blob[i : i + 1].clone() for name, blob in activations.items()},
            {
                name: (indices[i : i + 1].clone(), torch.Size((1, *size[1:])))
                for name, (indices, size) in switches.items()
            },
            torch.Size((1, *data.shape[1:])),
            x.device,
            switches_only,
        )
        for i in range(len(data))
    ]


class Deconvnet:
    """One recorded forward pass of a conv -> ReLU -> max-pool network, ready for projections.

    Args:
        model: a `Net` made of conv, ReLU and max-pool layers (then fc layers, ignored here).
        data: one preprocessed input `(1, C, H, W)` (use `model.preprocess`), or a pass
            already recorded (`record_passes`, `record_many`).
        switches_only: keep the switches but not the activations (their shapes only, on the
            meta device): a tenth of the memory for VGG16, enough for `project_units` given
            the units' values (a widget keeps the top images' passes this way).

    Attributes:
        layers: names of the layers one can project from: `feature_map_layers(model)`.
        activations: layer name -> its output `(1, C, h, w)`.
    """

    def __init__(
        self, model: LayeredModel, data: torch.Tensor | RecordedPass, switches_only: bool = False
    ):
        if not isinstance(data, RecordedPass):
            if not isinstance(data, torch.Tensor) or data.dim() != 4 or data.shape[0] != 1:
                shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data)
                raise ConvscopeError(
                    f"the deconvnet takes one preprocessed image (1, C, H, W); got {shape}"
                )
            if data.shape[1] != model.input_size[0]:
                raise ConvscopeError(
                    f"{model.name} takes {model.input_size[0]} channel(s); "
                    f"the image has {data.shape[1]}"
                )
            check_input_fits(model, data.shape[1:], "image", until=_check_chain(model)[-1][0])
            data = record_passes(model, data, switches_only)[0]
        self.model = model
        self._chain = _check_chain(model)
        self.layers = [name for name, _ in self._chain]
        self.activations = data.activations
        self._switches = data.switches
        self.input_shape, self.input_device = data.input_shape, data.input_device
        self.switches_only = data.switches_only

    @classmethod
    def record_many(
        cls, model: LayeredModel, data: torch.Tensor, switches_only: bool = True
    ) -> list[Deconvnet]:
        """The recorded passes of a batch `(N, C, H, W)` from one batched forward pass: item
        i equals `Deconvnet(model, data[i : i + 1], switches_only)`."""
        if data.dim() != 4 or data.shape[1] != model.input_size[0] or not len(data):
            raise ConvscopeError(
                f"record_many takes preprocessed images (N, C, H, W) with C="
                f"{model.input_size[0]}; got {tuple(data.shape)}"
            )
        check_input_fits(model, data.shape[1:], "images", until=_check_chain(model)[-1][0])
        return [cls(model, recorded) for recorded in record_passes(model, data, switches_only)]

    @property
    def switch_indices(self) -> dict[str, torch.Tensor]:
        """Max-pool layer name -> this pass's switches `(1, C, h, w)`."""
        return {name: indices for name, (indices, _) in self._switches.items()}

    def map_shape(self, layer: str) -> torch.Size:
        """`(1, C, h, w)` of `layer`'s output in this pass (kept with `switches_only` too)."""
        return self._activation(layer).shape

    def unit_value(self, layer: str, channel: int, row: int, column: int) -> torch.Tensor:
        """The recorded activation of one unit (a pass kept with `switches_only` has none)."""
        return self._values(layer)[0, channel, row, column]

    def channels(self, layer: str) -> int:
        """How many feature maps `layer` has."""
        return self._activation(layer).shape[1]

    def strongest_channel(self, layer: str) -> int:
        """The feature map of `layer` holding its largest activation in this pass (the paper's
        choice of what to project; the lowest index on a tie)."""
        return int(self._values(layer)[0].flatten(1).max(dim=1).values.argmax())

    def silent(self, layer: str, channel: int) -> bool:
        """Whether map `channel` of `layer` is zero (or below) everywhere in this pass: its
        projection is then all zero, and there is nothing to see."""
        return bool(self._values(layer)[0, channel].max() <= 0)

    def _check_layer(self, layer: str) -> str:
        return check_feature_map_layer(self.model, layer)

    def _activation(self, layer: str) -> torch.Tensor:
        return self.activations[self._check_layer(layer)]

    def _values(self, layer: str) -> torch.Tensor:
        """`layer`'s recorded activation, which a pass kept with `switches_only` lacks."""
        if self.switches_only:
            raise ConvscopeError(
                "this pass kept only its switches (switches_only=True): give the units' "
                "values to project_units, or record the pass with its activations"
            )
        return self._activation(layer)

    def start_signal(self, layer: str, channel: int, mode: str = "max") -> torch.Tensor:
        """The activations projected: one feature map, or only its strongest unit.

        Args:
            layer: one of `self.layers`.
            channel: `0 .. channels(layer) - 1`.
            mode: `"max"` keeps only the strongest activation of the map (the paper's choice),
                `"map"` keeps the whole map; everything else is zero.

        Returns:
            `(1, C, h, w)`, the shape of `layer`'s output.
        """
        activation = self._values(layer)
        channel = integer("channel", channel, 0, activation.shape[1] - 1, where=f" for {layer}")
        if mode not in MODES:
            raise unknown_name("projection mode", mode, MODES)
        signal = torch.zeros_like(activation)
        feature_map = activation[0, channel]
        if mode == "map":
            signal[0, channel] = feature_map
        else:
            flat = feature_map.flatten().argmax()
            signal[0, channel].view(-1)[flat] = feature_map.flatten()[flat]
        return signal

    @torch.no_grad()
    def project(self, layer: str, channel: int, mode: str = "max") -> torch.Tensor:
        """Project one channel of `layer` back to pixel space (no new forward pass).

        Returns:
            `(C, H, W)`, the input's shape, in the network's input space.
        """
        return self.project_signal(layer, self.start_signal(layer, channel, mode))

    @torch.no_grad()
    def project_unit(
        self, layer: str, channel: int, position: tuple[int, int], crop: bool = True
    ) -> torch.Tensor:
        """Project the single activation at `position` (row, column) of one map.

        Args:
            crop: walk back on the unit's receptive field only (the same result, faster);
                `False` walks the whole image, as the deconvnet is usually written.

        Returns:
            `(C, H, W)` in the network's input space.
        """
        activation = self._values(layer)
        _, channels, height, width = activation.shape
        channel = integer("channel", channel, 0, channels - 1, where=f" for {layer}")
        row, column = grid_position("position", position, (height, width), where=f" for {layer}")
        signal = torch.zeros_like(activation)
        signal[0, channel, row, column] = activation[0, channel, row, column]
        return self.project_signal(layer, signal, crop)

    @torch.no_grad()
    def project_signal(self, layer: str, signal: torch.Tensor, crop: bool = True) -> torch.Tensor:
        """Walk any signal shaped like `layer`'s output `(1, C, h, w)` back to `(C, H, W)`
        (`crop`: each transposed convolution on the box where the signal is nonzero)."""
        return self.walk_back(layer, signal, self.switch_indices, crop)[0]

    def walk_back(
        self, layer: str, signal: torch.Tensor, switches: dict[str, torch.Tensor], crop=True
    ) -> torch.Tensor:
        """Walk signals `(U, C, h, w)` of `layer` back to `(U, C, H, W)` (on the CPU), with
        `switches[pool]` the pooling indices of each signal's own image `(U, C, h', w')`
        (`switch_indices` of this pass, or of many passes concatenated)."""
        self._check_layer(layer)
        names = [name for name, _ in self._chain]
        signal = signal.to(self.input_device)
        for name, module in reversed(self._chain[: names.index(layer) + 1]):
            signal = self._backward(name, module, signal, switches, crop)
        return to_cpu(signal)

    def _backward(
        self, name: str, module: nn.Module, signal: torch.Tensor, switches: dict, crop: bool
    ) -> torch.Tensor:
        if isinstance(module, nn.MaxPool2d):
            return unpool(signal, switches[name], self._switches[name][1])
        if isinstance(module, nn.ReLU):
            return F.relu(signal)
        if isinstance(module, nn.Conv2d):
            if crop:
                return transposed_conv_where_nonzero(module, signal, self._input_of(name))
            return F.conv_transpose2d(
                signal,
                module.weight,
                stride=module.stride,
                padding=module.padding,
                groups=module.groups,
                dilation=module.dilation,
                output_padding=_output_padding(module, signal, self._input_of(name)),
            )
        return signal  # dropout, normalisation: passed through

    def _input_of(self, layer: str) -> torch.Size:
        names = [name for name, _ in self._chain]
        index = names.index(layer)
        return self.input_shape if index == 0 else self.activations[names[index - 1]].shape


@torch.no_grad()
def project_units(
    passes: Sequence[Deconvnet],
    layer: str,
    channel: int,
    positions: Sequence[tuple[int, int]],
    values: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """One unit of `layer`'s map `channel` from each recorded pass, projected back.

    On a GPU the units walk back together, one batched walk. On the CPU batching gains
    nothing (measured 0.8-0.9x), but a lone unit is nonzero only within its receptive field:
    each walks back alone on that box (`transposed_conv_where_nonzero`).

    Args:
        passes: recorded passes of the same model on images of one size (one per unit).
        positions: `(row, column)` of the unit in each pass's map.
        values: the units' activations, for passes kept with `switches_only` (a
            `TopActivations` has them); default: read from the passes.

    Returns:
        `(U, C, H, W)` on the CPU; row i equals `passes[i].project_unit(layer, channel,
        positions[i])`.

    Raises:
        ConvscopeError: no passes, counts of positions or values that differ, passes of
            different models or image sizes, or a channel or position outside the map.
    """
    counts = {len(passes), len(positions), len(passes) if values is None else len(values)}
    if not passes or len(counts) != 1:
        raise ConvscopeError(
            f"project_units needs one position (and value) per pass; got {len(passes)} "
            f"passes and {len(positions)} positions"
        )
    first = passes[0]
    if any(p.model is not first.model or p.input_shape != first.input_shape for p in passes):
        raise ConvscopeError("project_units needs passes of one model on images of one size")
    shape = first.map_shape(layer)
    channel = integer("channel", channel, 0, shape[1] - 1, where=f" for {layer}")
    signals = torch.zeros(
        len(passes), *shape[1:], dtype=dtype_of(first.model), device=first.input_device
    )
    for unit, (recorded, position) in enumerate(zip(passes, positions)):
        row, column = grid_position("position", position, shape[2:], where=f" for {layer}")
        signals[unit, channel, row, column] = (
            recorded.unit_value(layer, channel, row, column) if values is None else values[unit]
        )
    if first.input_device.type != "cpu":
        together = {
            name: torch.cat([p.switch_indices[name] for p in passes])
            for name in first.switch_indices
        }
        return first.walk_back(layer, signals, together)
    walked = [
        recorded.walk_back(layer, signals[unit : unit + 1], recorded.switch_indices)
        for unit, recorded in enumerate(passes)
    ]
    return torch.cat(walked)


def _output_padding(conv: nn.Conv2d, signal: torch.Tensor, input_shape: torch.Size) -> tuple:
    """Rows and columns a strided convolution dropped, restored by its transpose."""
    padding = []
    for axis in (0, 1):
        stride, pad = conv.stride[axis], conv.padding[axis]
        span = conv.dilation[axis] * (conv.kernel_size[axis] - 1) + 1
        covered = (signal.shape[2 + axis] - 1) * stride - 2 * pad + span
        padding.append(input_shape[2 + axis] - covered)
    return tuple(padding)


def unpool(signal: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Put each value back at its switch; overlapping windows that chose the same input add up.

    Args:
        signal: `(N, C, h, w)`, shaped like the pooled map.
        indices: the switches, as `F.max_pool2d(..., return_indices=True)` gives them.
        size: the shape of the map before pooling.

    Returns:
        `(N, C, H, W)`: zero except at the switches. (`F.max_unpool2d` would overwrite where
        overlapping windows share a switch; summing is what the gradient does.)
    """
    batch, channels = signal.shape[:2]
    out = torch.zeros(
        batch, channels, size[-2] * size[-1], dtype=signal.dtype, device=signal.device
    )
    out.scatter_add_(2, indices.flatten(2).long(), signal.flatten(2))
    return out.view(batch, channels, size[-2], size[-1])


def _nonzero_box(signal: torch.Tensor) -> tuple[int, int, int, int]:
    """`(top, bottom, left, right)` of the box where `signal` `(N, C, h, w)` is nonzero
    (bottom and right one past the last); all zero when the signal is."""
    plane = signal.ne(0).flatten(0, 1).any(dim=0)  # (h, w)
    rows, columns = plane.any(dim=1).nonzero(), plane.any(dim=0).nonzero()
    if len(rows) == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def transposed_conv_where_nonzero(
    conv: nn.Conv2d, signal: torch.Tensor, input_shape: torch.Size
) -> torch.Tensor:
    """`conv`'s transposed convolution of `signal` `(N, C_out, h, w)` back to the layer's input
    size `input_shape`, computed on the box where the signal is nonzero only.

    A projected unit is nonzero only within its receptive field, so one unit of VGG16's
    conv3_3 walks back on at most 40x40 pixels instead of 224x224. The result equals the
    full transposed convolution: the box's output lands at `start * stride - padding`, and
    what falls outside the input is cut, which is what the padding removes.

    Returns:
        `(N, C_in, H, W)`.
    """
    height, width = input_shape[-2:]
    out = signal.new_zeros(signal.shape[0], conv.in_channels, height, width)
    top, bottom, left, right = _nonzero_box(signal)
    if bottom == top:
        return out
    local = F.conv_transpose2d(
        signal[:, :, top:bottom, left:right],
        conv.weight,
        stride=conv.stride,
        groups=conv.groups,
        dilation=conv.dilation,
    )
    row = top * conv.stride[0] - conv.padding[0]
    column = left * conv.stride[1] - conv.padding[1]
    rows = slice(max(row, 0), min(row + local.shape[2], height))
    columns = slice(max(column, 0), min(column + local.shape[3], width))
    out[:, :, rows, columns] = local[
        :, :, rows.start - row : rows.stop - row, columns.start - column : columns.stop - column
    ]
    return out


def rectified_gradient(
    model: LayeredModel, data: torch.Tensor, layer: str, signal: torch.Tensor
) -> torch.Tensor:
    """The deconvnet as a modified gradient: ∂(signal · layer's output)/∂input, computed by
    autograd with every ReLU's backward pass replaced by a ReLU of the incoming gradient (and
    normalisation passed through). Equal to `Deconvnet.project_signal`.

    Returns:
        `(C, H, W)`.
    """
    _check_chain(model)
    return projection_by_rule(model, data, layer, signal, "deconvnet")
