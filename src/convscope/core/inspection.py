"""Looking inside a network as Caffe's `net.blobs` and `net.params` allowed.

Hooks are registered only inside context managers (`forward_hooks`, and `ending_before` for
its one pre-hook) and always removed, so re-running a notebook cell never stacks them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from convscope.core.devices import to_cpu, to_model
from convscope.core.errors import ConvscopeError, unknown_name
from convscope.core.net import LayeredModel
from convscope.core.plotting import Heat, show_panels, tile
from convscope.core.tables import Table

MAX_FILTER_ROWS = 16  # show at most 16 filters x 16 input channels of a deep layer


@contextmanager
def forward_hooks(
    model: LayeredModel, hooks: Mapping[str, Callable] | Iterable[tuple[nn.Module, Callable]]
) -> Iterator[None]:
    """Within the block, each hook `(module, inputs, output)` runs after its layer's forward
    pass, in the order given; every one is removed on leaving, even after an error, so a
    re-run notebook cell never stacks them. The one place forward hooks are registered.

    Args:
        hooks: layer name -> hook, or `(module, hook)` pairs (the modules of a type).

    Raises:
        UnknownNameError: a layer does not exist; nothing is registered.
    """
    pairs = (
        [(model.layer(name), hook) for name, hook in hooks.items()]
        if isinstance(hooks, Mapping)
        else list(hooks)
    )
    handles = []
    try:
        for module, hook in pairs:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recording(
    model: LayeredModel, layers: Iterable[str] | None = None, clone: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs ("blobs") of `layers` (default: all) during forward passes.

    Usage: `with recording(net, ["conv1"]) as blobs: net(x)`; then `blobs["conv1"]` is
    `(N, C, H, W)`. Outputs are cloned, so a later in-place ReLU cannot change them
    (`clone=False` keeps them as they are, for shape-only passes on the meta device).

    Raises:
        UnknownNameError: a requested layer does not exist; nothing is registered.
    """
    wanted = None if layers is None else list(layers)
    for name in wanted or []:
        model.layer(name)  # raises, listing the valid names, before any hook exists
    blobs: OrderedDict[str, torch.Tensor] = OrderedDict()

    def keeper(name: str):
        def hook(module, inputs, output):
            blobs[name] = output.detach().clone() if clone else output.detach()

        return hook

    chosen = [
        (module, keeper(name))
        for name, module in model.named_layers()
        if wanted is None or name in wanted
    ]
    with forward_hooks(model, chosen):
        yield blobs


class _EndOfPass(Exception):
    """Raised by `ending_after`'s hook to end a forward pass; never leaves the context."""


@contextmanager
def ending_after(model: LayeredModel, layer: str | None) -> Iterator[None]:
    """Within it, a forward pass of `model` ends as soon as `layer` has made its output, so
    the layers above it cost nothing and need not fit the input (a conv layer reads any
    size at least its field; the fc layers above it read one). `None` changes nothing.

    Usage: `with recording(net, ["conv2"]) as kept, ending_after(net, "conv2"): net(x)`;
    the pass returns nothing then, so record what is needed, entering `recording` first
    (its hook on `layer` must run before this one).

    Raises:
        UnknownNameError: `layer` does not exist; nothing is registered.
    """
    if layer is None:
        yield
        return

    def end(module, inputs, output):
        raise _EndOfPass

    with forward_hooks(model, {layer: end}):
        try:
            yield
        except _EndOfPass:
            pass


@contextmanager
def ending_before(module: nn.Module) -> Iterator[list[tuple]]:
    """Within it, a forward pass ends when it reaches `module`, before the module computes:
    the yielded list receives the positional inputs it was called with, and the pass returns
    nothing. The hook is removed on leaving, even after an error.

    Usage: `with ending_before(net.layer("fc8")) as calls: net(x)`; then `calls[0][0]` is
    fc8's input.
    """
    calls: list[tuple] = []

    def end(module, args):
        calls.append(args)
        raise _EndOfPass

    handle = module.register_forward_pre_hook(end)
    try:
        yield calls
    except _EndOfPass:
        pass
    finally:
        handle.remove()


@torch.no_grad()
def blobs(model: LayeredModel, data: torch.Tensor, layers: Iterable[str] | None = None):
    """One forward pass of preprocessed `data` `(N, C, H, W)` on the model's device; returns
    layer name -> blob, on the CPU."""
    with recording(model, layers) as recorded:
        model(to_model(model, data))
    return {name: to_cpu(blob) for name, blob in recorded.items()}


def blob_table(model: LayeredModel, data: torch.Tensor) -> Table:
    """Shapes of the input and of every layer's output for `data` `(N, C, H, W)`.

    Returns:
        A `Table` with columns blob, type, shape, one row per layer in forward order.
    """
    recorded = blobs(model, data)
    types = {name: type(module).__name__ for name, module in model.named_layers()}
    rows = [("data", "Input", tuple(data.shape))]
    rows += [(name, types[name], tuple(blob.shape)) for name, blob in recorded.items()]
    return Table(["blob", "type", "shape"], rows)


def param_table(model: LayeredModel) -> Table:
    """Shapes and sizes of every layer's parameters, with the total in the last row.

    Returns:
        A `Table` with columns layer, type, weight, bias, parameters.
    """
    types = dict((name, type(module).__name__) for name, module in model.named_layers())
    rows = []
    for name, params in model.params.items():
        weight, bias = (params + [None])[:2]
        shapes = [None if p is None else tuple(p.shape) for p in (weight, bias)]
        rows.append((name, types[name], *shapes, sum(p.numel() for p in params)))
    rows.append(("total", "", None, None, sum(p.numel() for p in model.parameters())))
    return Table(["layer", "type", "weight", "bias", "parameters"], rows)


# A layer of one of these types ends the stack of feature maps: its output is a vector per
# image (fc layers, Caffe's InnerProduct, which subclasses nn.Linear) or no longer a grid.
_ENDS_FEATURE_MAPS = (
    torch.nn.Flatten,
    torch.nn.Linear,
    torch.nn.AdaptiveAvgPool2d,
    torch.nn.AdaptiveMaxPool2d,
)


def feature_map_modules(model: LayeredModel) -> list[tuple[str, nn.Module]]:
    """`(name, module)` of every layer whose output is a stack of maps `(N, C, H, W)` (conv,
    ReLU, pooling, normalisation, dropout), in forward order, up to the first layer that
    flattens, fully connects or pools adaptively: one walk over the layers."""
    layers = []
    for name, module in model.named_layers():
        if isinstance(module, _ENDS_FEATURE_MAPS):
            break
        layers.append((name, module))
    return layers


def feature_map_layers(model: LayeredModel) -> list[str]:
    """The names of the layers with feature maps (`feature_map_modules`).

    The one definition that the layer menus, the parameter checks, the deconvnet, top
    activations and occlusion all use.
    """
    return [name for name, _ in feature_map_modules(model)]


def feature_map_module(model: LayeredModel, layer: str) -> nn.Module:
    """The module of `layer`, if it is one of `feature_map_layers(model)`.

    Raises:
        UnknownNameError: it is not; the message lists the layers with feature maps.
    """
    modules = dict(feature_map_modules(model))
    if layer not in modules:
        raise unknown_name("layer with feature maps", layer, list(modules))
    return modules[layer]


def check_feature_map_layer(model: LayeredModel, layer: str) -> str:
    """`layer`, if it is one of `feature_map_layers(model)` (else `feature_map_module`'s
    error)."""
    feature_map_module(model, layer)
    return layer


def conv_layers(model: LayeredModel) -> list[str]:
    """Names of the model's `Conv2d` layers, in order (the first is the net's first layer)."""
    return [name for name, module in model.named_layers() if isinstance(module, torch.nn.Conv2d)]


def suggested_layer(model: LayeredModel) -> str:
    """The layer a lesson shows when none is chosen: the middle convolution among the layers
    with feature maps (`conv2` of 3 in the digit net, `conv3` of 5 in CaffeNet and AlexNet,
    `conv3_3` of 13 in VGG16), deep enough for parts, shallow enough to stay quick.

    Raises:
        ConvscopeError: the model has no convolution among its layers with feature maps.
    """
    maps = set(feature_map_layers(model))
    convs = [name for name in conv_layers(model) if name in maps]
    if not convs:
        raise ConvscopeError(f"{model.name} has no convolution layer with feature maps")
    return convs[len(convs) // 2]


def _tiled(values: torch.Tensor, label: str, columns: int | None = None) -> Heat:
    """`values` `(N, h, w)` tiled in a grid on one gray scale, with a colour bar `label`."""
    return Heat(tile(values, columns, scale=False, fill=np.nan), label, cmap="gray")


def show_layer(model: LayeredModel, image: torch.Tensor, layer: str) -> Figure:
    """A layer's filters as one tiled grid (conv layers) beside one image's activation maps,
    each grid on one gray scale with its colour bar (the weights', the activations').

    Args:
        model: a `Net` or `GraphNet`.
        image: `(C, H, W)` in [0, 1], the model's input size.
        layer: one of `feature_map_layers(model)`.
    """
    check_feature_map_layer(model, layer)
    data = model.preprocess(image.unsqueeze(0))
    maps = blobs(model, data, [layer])[layer][0]
    panels = [("input", image), (f"{layer}: {len(maps)} maps", _tiled(maps, "activation"))]
    module = model.layer(layer)
    if isinstance(module, torch.nn.Conv2d):
        weight = module.weight.detach()
        out_channels, in_channels, height, width = weight.shape
        shown = weight[:MAX_FILTER_ROWS, :MAX_FILTER_ROWS]  # rows: filters; columns: inputs
        caption = (
            f"{layer} filters ({shown.shape[0]}x{shown.shape[1]} of {out_channels}x{in_channels})"
        )
        if in_channels == 1:
            shown, caption = weight, f"{layer}: {out_channels} filters {height}x{width}"
        columns = shown.shape[1] if in_channels > 1 else None
        panels.insert(1, (caption, _tiled(shown.reshape(-1, height, width), "weight", columns)))
    return show_panels(panels, size=2.6)
