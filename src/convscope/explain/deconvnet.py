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

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from convscope.core.arguments import grid_position, integer
from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.inspection import check_feature_map_layer, feature_map_layers
from convscope.core.net import LayeredModel
from convscope.core.plotting import show_panels

_PASS_BACK = (nn.Dropout, nn.LocalResponseNorm, nn.Identity, nn.BatchNorm2d)
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


class Deconvnet:
    """One recorded forward pass of a conv -> ReLU -> max-pool network, ready for projections.

    Args:
        model: a `Net` made of conv, ReLU and max-pool layers (then fc layers, ignored here).
        data: one preprocessed input `(1, C, H, W)` (use `model.preprocess`).

    Attributes:
        layers: names of the layers one can project from: `feature_map_layers(model)`.
        activations: layer name -> its output `(1, C, h, w)`.
    """

    def __init__(self, model: LayeredModel, data: torch.Tensor) -> None:
        if data.dim() != 4 or data.shape[0] != 1:
            raise ConvscopeError(
                f"the deconvnet takes one preprocessed image (1, C, H, W); got {tuple(data.shape)}"
            )
        if data.shape[1] != model.input_size[0]:
            raise ConvscopeError(
                f"{model.name} takes {model.input_size[0]} channel(s); "
                f"the image has {data.shape[1]}"
            )
        self.model = model
        data = to_model(model, data)  # the pass and its switches stay on the model's device
        self._chain = _check_chain(model)
        self.layers = [name for name, _ in self._chain]
        self.activations: dict[str, torch.Tensor] = {}
        self._switches: dict[str, tuple[torch.Tensor, torch.Size]] = {}
        with torch.no_grad():
            x = data
            for name, module in self._chain:
                if isinstance(module, nn.MaxPool2d):
                    size = x.shape
                    x, indices = F.max_pool2d(
                        x, module.kernel_size, module.stride, module.padding, module.dilation,
                        ceil_mode=module.ceil_mode, return_indices=True,
                    )  # fmt: skip
                    self._switches[name] = (indices, size)
                elif isinstance(module, nn.ReLU):
                    x = F.relu(x)  # never in place: the recorded input must survive
                else:
                    x = module(x)
                self.activations[name] = x
        self.input_shape = data.shape
        self.input_device = data.device

    def channels(self, layer: str) -> int:
        """How many feature maps `layer` has."""
        return self._activation(layer).shape[1]

    def _check_layer(self, layer: str) -> str:
        return check_feature_map_layer(self.model, layer)

    def _activation(self, layer: str) -> torch.Tensor:
        return self.activations[self._check_layer(layer)]

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
        activation = self._activation(layer)
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
    def project_unit(self, layer: str, channel: int, position: tuple[int, int]) -> torch.Tensor:
        """Project the single activation at `position` (row, column) of one map.

        Returns:
            `(C, H, W)` in the network's input space.
        """
        activation = self.activations[self._check_layer(layer)]
        _, channels, height, width = activation.shape
        channel = integer("channel", channel, 0, channels - 1, where=f" for {layer}")
        row, column = grid_position("position", position, (height, width), where=f" for {layer}")
        signal = torch.zeros_like(activation)
        signal[0, channel, row, column] = activation[0, channel, row, column]
        return self.project_signal(layer, signal)

    @torch.no_grad()
    def project_signal(self, layer: str, signal: torch.Tensor) -> torch.Tensor:
        """Walk any signal shaped like `layer`'s output `(1, C, h, w)` back to `(C, H, W)`."""
        switches = {name: indices for name, (indices, _) in self._switches.items()}
        return self._walk_back(layer, signal, switches)[0]

    def _walk_back(
        self, layer: str, signal: torch.Tensor, switches: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Walk signals `(U, C, h, w)` of `layer` back to `(U, C, H, W)` (on the CPU), with
        `switches[pool]` the pooling indices of each signal's own image `(U, C, h', w')`."""
        self._check_layer(layer)
        names = [name for name, _ in self._chain]
        signal = signal.to(self.input_device)
        for name, module in reversed(self._chain[: names.index(layer) + 1]):
            signal = self._backward(name, module, signal, switches)
        return to_cpu(signal)

    def _backward(
        self, name: str, module: nn.Module, signal: torch.Tensor, switches: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        if isinstance(module, nn.MaxPool2d):
            return unpool(signal, switches[name], self._switches[name][1])
        if isinstance(module, nn.ReLU):
            return F.relu(signal)
        if isinstance(module, nn.Conv2d):
            return F.conv_transpose2d(
                signal, module.weight, stride=module.stride, padding=module.padding,
                groups=module.groups, dilation=module.dilation,
                output_padding=_output_padding(module, signal, self._input_of(name)),
            )  # fmt: skip
        return signal  # dropout, normalisation: passed through

    def _input_of(self, layer: str) -> torch.Size:
        names = [name for name, _ in self._chain]
        index = names.index(layer)
        return self.input_shape if index == 0 else self.activations[names[index - 1]].shape


@torch.no_grad()
def project_units(
    passes: Sequence[Deconvnet], layer: str, channel: int, positions: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """One unit of `layer`'s map `channel` from each recorded pass, all walked back together.

    Args:
        passes: recorded passes of the same model on images of one size (one per unit).
        positions: `(row, column)` of the unit in each pass's map.

    Returns:
        `(U, C, H, W)` on the CPU; row i equals `passes[i].project_unit(layer, channel,
        positions[i])`, for one batched walk instead of U.

    Raises:
        ConvscopeError: no passes, a count of positions that differs, passes of different
            models or image sizes, or a channel or position outside the map.
    """
    if not passes or len(passes) != len(positions):
        raise ConvscopeError(
            f"project_units needs one position per pass; got {len(passes)} passes and "
            f"{len(positions)} positions"
        )
    first = passes[0]
    if any(p.model is not first.model or p.input_shape != first.input_shape for p in passes):
        raise ConvscopeError("project_units needs passes of one model on images of one size")
    activation = first._activation(layer)
    _, channels, height, width = activation.shape
    channel = integer("channel", channel, 0, channels - 1, where=f" for {layer}")
    signals = torch.zeros(len(passes), *activation.shape[1:], device=activation.device)
    for unit, (recorded, position) in enumerate(zip(passes, positions)):
        row, column = grid_position("position", position, (height, width), where=f" for {layer}")
        signals[unit, channel, row, column] = recorded.activations[layer][0, channel, row, column]
    switches = {name: torch.cat([p._switches[name][0] for p in passes]) for name in first._switches}
    return first._walk_back(layer, signals, switches)


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
    out.scatter_add_(2, indices.flatten(2), signal.flatten(2))
    return out.view(batch, channels, size[-2], size[-1])


def _output_padding(conv: nn.Conv2d, signal: torch.Tensor, input_shape: torch.Size) -> tuple:
    """Rows and columns a strided convolution dropped, restored by its transpose."""
    padding = []
    for axis in (0, 1):
        stride, pad = conv.stride[axis], conv.padding[axis]
        span = conv.dilation[axis] * (conv.kernel_size[axis] - 1) + 1
        covered = (signal.shape[2 + axis] - 1) * stride - 2 * pad + span
        padding.append(input_shape[2 + axis] - covered)
    return tuple(padding)


class _RectifiedGradient(torch.autograd.Function):
    """ReLU forward; the backward pass applies a ReLU to the incoming gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, gradient):
        return gradient.clamp(min=0)


class _Transparent(torch.autograd.Function):
    """A normalisation layer forward; the backward pass lets the gradient through."""

    @staticmethod
    def forward(ctx, x, module):
        return module(x)

    @staticmethod
    def backward(ctx, gradient):
        return gradient, None


def rectified_gradient(
    model: LayeredModel, data: torch.Tensor, layer: str, signal: torch.Tensor
) -> torch.Tensor:
    """The deconvnet as a modified gradient: ∂(signal · layer's output)/∂input, computed by
    autograd with every ReLU's backward pass replaced by a ReLU of the incoming gradient (and
    normalisation passed through). Equal to `Deconvnet.project_signal`.

    Returns:
        `(C, H, W)`.
    """
    x = to_model(model, data).detach().clone().requires_grad_(True)
    signal = to_model(model, signal)
    with torch.enable_grad():
        h = x
        for name, module in _check_chain(model):
            if isinstance(module, nn.ReLU):
                h = _RectifiedGradient.apply(h)
            elif isinstance(module, (nn.LocalResponseNorm, nn.BatchNorm2d)):
                h = _Transparent.apply(h, module)
            else:
                h = module(h)
            if name == layer:
                break
        (gradient,) = torch.autograd.grad(h, x, grad_outputs=signal)
    return to_cpu(gradient[0])


def as_picture(model: LayeredModel, signal: torch.Tensor) -> torch.Tensor:
    """A projection `(C, H, W)` in input space as a picture in [0, 1]: channels back in RGB
    order (Caffe nets read BGR), values stretched to the full range, zero mid-grey."""
    swap = getattr(model.preprocess, "channel_swap", None)
    if swap is not None and len(swap) == signal.shape[0]:
        signal = signal[[list(swap).index(i) for i in range(len(swap))]]
    scale = signal.abs().max().clamp(min=1e-12)
    return (signal / scale + 1) / 2


def show_projections(model: LayeredModel, image: torch.Tensor, deconvnet: Deconvnet,
                     layers: list[str]) -> Figure:  # fmt: skip
    """The image, then for each layer the projection of its strongest activation (the map
    holding the largest activation, the paper's choice)."""
    panels = [("input", image)]
    for layer in layers:
        activation = deconvnet.activations[layer][0]
        channel = int(activation.flatten(1).max(dim=1).values.argmax())
        picture = as_picture(model, deconvnet.project(layer, channel))
        panels.append((f"{layer} map {channel}", picture))
    return show_panels(panels, size=2.2)
