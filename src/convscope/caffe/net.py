"""A Caffe net (`.prototxt`, optionally `.caffemodel`) as a PyTorch model with Caffe's semantics.

Each Caffe layer becomes one module named after the layer; blobs keep their Caffe names
(`net.blob_layers` maps a blob to the layer whose output it finally is, so in-place layers
behave as in Caffe: after `relu1`, blob `conv1` holds the rectified values). A net that is a
plain chain becomes a `Net` (so casting, deconvnet and saliency apply); any other graph a
`GraphNet`. A final Softmax is left out, so the model returns class scores like every
convscope model. Without a caffemodel, parameters come from the prototxt's fillers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from convscope.caffe.budget import check_memory, max_net_bytes
from convscope.caffe.modules import build_module
from convscope.caffe.proto import layers_of
from convscope.caffe.schema import CaffeFormatError
from convscope.caffe.text import read_prototxt
from convscope.caffe.weights import load_caffe_weights
from convscope.caffe.wire import read_caffemodel
from convscope.core.devices import to_cpu, to_model
from convscope.core.inspection import recording
from convscope.core.net import INPUT_BLOB, FinalSoftmax, GraphNet, LayeredModel, Net


def _in_test_phase(layer: dict) -> bool:
    includes = layer.get("include", [])
    if includes and not any(rule.get("phase", "TEST") == "TEST" for rule in includes):
        return False
    return not any(rule.get("phase") == "TEST" for rule in layer.get("exclude", []))


def _input_shape(net_param: dict) -> tuple[str, list[int]]:
    """The input blob's name and shape, from `input`/`input_shape`/`input_dim` or an Input layer."""
    for layer in layers_of(net_param):
        if layer.get("type") == "Input":
            tops, shapes = layer.get("top", []), layer.get("input_param", {}).get("shape", [])
            if len(tops) != 1 or len(shapes) != 1:
                raise CaffeFormatError(
                    f"the Input layer {layer.get('name')!r} needs one top and one "
                    f"input_param shape; it has tops {tops} and {len(shapes)} shape(s)"
                )
            return tops[0], [int(d) for d in shapes[0].get("dim", [])]
    names = net_param.get("input", [])
    if len(names) != 1:
        raise CaffeFormatError(f"the net must have exactly one input blob; it has {names}")
    if net_param.get("input_shape"):
        return names[0], [int(d) for d in net_param["input_shape"][0].get("dim", [])]
    return names[0], [int(d) for d in net_param.get("input_dim", [])]


# How many bottoms each layer type takes, (fewest, most), as Caffe's layers declare them
# (ExactNumBottomBlobs, MinBottomBlobs); every other type takes exactly one.
_BOTTOMS = {"Crop": (2, 2), "Eltwise": (2, None), "Concat": (1, None), "Scale": (1, 2)}
# what torch raises for an input a module cannot take (a kernel larger than the blob, ...)
_TORCH_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError)


def _check_bottoms(layer: dict, bottoms: tuple[str, ...]) -> None:
    fewest, most = _BOTTOMS.get(layer["type"], (1, 1))
    if len(bottoms) < fewest or (most is not None and len(bottoms) > most):
        wanted = f"{fewest}" if fewest == most else f"{fewest} or more"
        wanted = f"{fewest} or {most}" if most not in (None, fewest) else wanted
        raise CaffeFormatError(
            f"layer {layer['name']!r} ({layer['type']}) takes {wanted} bottom blob(s); "
            f"it has {list(layer.get('bottom', []))}"
        )


class _Builder:
    """Walks the layers in order, keeping every blob's producer and shape: each layer's output
    is computed on the meta device as the layer is added, so a layer that cannot take its
    input is refused by name, at once."""

    def __init__(self, input_name: str, input_shape: list[int]) -> None:
        self.nodes: list[tuple[str, nn.Module, tuple[str, ...]]] = []
        self.producer = {input_name: INPUT_BLOB}
        self.blobs = {INPUT_BLOB: torch.empty(input_shape, device="meta")}

    def bottoms(self, layer: dict) -> tuple[str, ...]:
        found = []
        for blob in layer.get("bottom", []):
            if blob not in self.producer:
                raise CaffeFormatError(
                    f"layer {layer['name']!r} reads blob {blob!r}, which no earlier layer produces"
                )
            found.append(self.producer[blob])
        return tuple(found)

    def add(self, name: str, module: nn.Module, bottoms: tuple[str, ...], top: str) -> None:
        node = name.replace(".", "_")
        if node in self.blobs:
            raise CaffeFormatError(f"two layers are called {name!r}")
        if top in self.producer and self.producer[top] not in bottoms:
            # in place (the layer reads its own top) is Caffe's idiom; anything else is not
            raise CaffeFormatError(
                f"layer {name!r}: top blob {top!r} is produced by multiple sources "
                f"(layer {self.producer[top]!r} too), which Caffe refuses"
            )
        inputs = [self.blobs[bottom] for bottom in bottoms]
        state = {
            key: torch.empty_like(value, device="meta")
            for key, value in [*module.named_parameters(), *module.named_buffers()]
        }
        try:
            output = functional_call(module, state, tuple(inputs))
        except _TORCH_ERRORS as error:
            shapes = ", ".join(str(tuple(blob.shape)) for blob in inputs)
            problem = " ".join(str(error).split())
            raise CaffeFormatError(
                f"layer {name!r} cannot take its input {shapes}: {problem}"
            ) from error
        self.nodes.append((node, module, bottoms))
        self.producer[top] = node
        self.blobs[node] = output

    def channels(self, bottom: str) -> int:
        return self.shape(bottom)[1]

    def shape(self, node: str) -> torch.Size:
        return self.blobs[node].shape


# names a layer cannot take: the model's own attributes (methods, and those set per instance)
_MODULE_ATTRIBUTES = frozenset(
    [
        *dir(Net),
        *dir(GraphNet),
        "name",
        "input_size",
        "class_names",
        "preprocess",
        "output",
        "blob_layers",
        "final_softmax",
        "caffe_names",
    ]
)


def _check_layer(layer: dict) -> None:
    """A layer's name, type and top, as Caffe requires them, before it is built.

    Raises:
        CaffeFormatError: naming the layer (or its position) and the missing or bad field.
    """
    name = layer.get("name")
    if not isinstance(name, str) or not name:
        raise CaffeFormatError(f"a layer of type {layer.get('type')!r} has no name")
    if name.replace(".", "_") in _MODULE_ATTRIBUTES:
        raise CaffeFormatError(
            f"layer {name!r}: the name is an attribute of the PyTorch model (forward, name, "
            "params, ...); rename the layer"
        )
    if not layer.get("type"):
        raise CaffeFormatError(f"layer {name!r} has no type")
    if not layer.get("top"):
        raise CaffeFormatError(f"layer {name!r} has no top blob")


def build_caffe_net(
    net_param: dict, name: str = "caffe", class_names: list[str] | None = None, preprocess=None
) -> LayeredModel:
    """Build the model of a parsed prototxt (`caffe_proto.read_prototxt`), in eval mode.

    The net is built on the meta device first and checked against the memory budget
    (`check_memory`), so a small file that asks for gigabytes allocates nothing. Under
    `torch.device("meta")` (shapes only) that first build is the result.

    Returns:
        A `Net` if the layers form a chain, else a `GraphNet`; `blob_layers` maps every Caffe
        blob name to the layer whose output it is last.

    Raises:
        CaffeFormatError: a malformed layer, or a net over the memory budget.
    """
    with torch.device("meta"):
        shapes_only = _build(net_param, name, class_names, preprocess)
    check_memory(shapes_only, tuple(_input_shape(net_param)[1]))
    if torch.empty(0).device.type == "meta":
        return shapes_only
    return _build(net_param, name, class_names, preprocess)


def _build(net_param: dict, name: str, class_names: list[str] | None, preprocess) -> LayeredModel:
    input_name, input_shape = _input_shape(net_param)
    if len(input_shape) != 4 or min(input_shape) < 1:
        raise CaffeFormatError(
            f"the input must be (N, C, H, W), each at least 1; the prototxt gives {input_shape}"
        )
    input_bytes = 4 * math.prod(input_shape)  # before even a shape-only tensor is made
    if input_bytes > max_net_bytes():
        raise CaffeFormatError(
            f"the input {tuple(input_shape)} alone needs {input_bytes:,} bytes, over the limit "
            f"of {max_net_bytes():,} (CONVSCOPE_MAX_NET_BYTES)"
        )
    builder = _Builder(input_name, input_shape)
    layer_list = [layer for layer in layers_of(net_param) if _in_test_phase(layer)]
    final_softmax = None
    if layer_list and layer_list[-1].get("type") == "Softmax":
        final_softmax = _final_softmax(layer_list.pop())  # scores out, like every convscope model
    for layer in layer_list:
        _check_layer(layer)
        if layer.get("type") == "Input":
            continue
        bottoms = builder.bottoms(layer)
        _check_bottoms(layer, bottoms)
        tops = layer.get("top", [])
        if layer.get("type") == "Split":
            for top in tops:
                builder.add(f"{layer['name']}_{top}", nn.Identity(), bottoms, top)
            continue
        if len(tops) != 1:
            raise CaffeFormatError(f"layer {layer['name']!r} must have one top; it has {tops}")
        try:
            module = build_module(layer, [builder.shape(bottom) for bottom in bottoms])
        except _TORCH_ERRORS as error:  # a value torch refuses while building the module
            problem = " ".join(str(error).split())
            raise CaffeFormatError(
                f"layer {layer['name']!r} ({layer['type']}): {problem}"
            ) from error
        builder.add(layer["name"], module, bottoms, tops[0])
    classes = class_names or []
    return _assemble(builder, name, input_shape, classes, preprocess, final_softmax).eval()


def _final_softmax(layer: dict) -> FinalSoftmax:
    bottoms, tops = layer.get("bottom", []), layer.get("top", [])
    if len(bottoms) != 1 or len(tops) != 1:
        raise CaffeFormatError(
            f"layer {layer.get('name')!r}: a Softmax has one bottom and one top; "
            f"got bottoms {bottoms}, tops {tops}"
        )
    return FinalSoftmax(tops[0], bottoms[0], int(layer.get("softmax_param", {}).get("axis", 1)))


def _assemble(
    builder: _Builder,
    name: str,
    input_shape: list[int],
    classes,
    preprocess,
    final_softmax: FinalSoftmax | None,
) -> LayeredModel:
    chain = all(
        bottoms == ((builder.nodes[i - 1][0],) if i else (INPUT_BLOB,))
        for i, (_, _, bottoms) in enumerate(builder.nodes)
    )
    described = {
        "name": name,
        "input_size": tuple(input_shape[1:]),
        "class_names": classes,
        "preprocess": preprocess,
        "blob_layers": dict(builder.producer),
        "final_softmax": final_softmax,
    }
    if chain:
        return Net(OrderedDict((n, m) for n, m, _ in builder.nodes), **described)
    return GraphNet(builder.nodes, output=builder.nodes[-1][0], **described)


def load_caffe(
    prototxt: str | Path, caffemodel: str | Path | None = None, **describe
) -> LayeredModel:
    """Read a prototxt (and a caffemodel) into a model; `describe` goes to `build_caffe_net`."""
    model = build_caffe_net(read_prototxt(prototxt), **describe)
    if caffemodel is not None:
        load_caffe_weights(model, read_caffemodel(caffemodel))
    return model


@torch.no_grad()
def caffe_blobs(model: LayeredModel, data: torch.Tensor) -> dict[str, torch.Tensor]:
    """Caffe's `net.blobs` after a forward pass: every blob by its Caffe name.

    In-place layers share a blob, as in Caffe: `blobs["conv1"]` is the output of the last
    layer that wrote `conv1` (its ReLU). A final Softmax, which the model leaves out so that it
    returns scores, is applied here: `blobs["prob"]` is there as in Caffe's `net.blobs`.

    Args:
        model: a net from `load_caffe` (it has `blob_layers` and `final_softmax`).
        data: the preprocessed input `(N, C, H, W)`.

    Returns:
        Blob name -> tensor, in forward order: `data` `(N, C, H, W)` first, e.g. `prob`
        `(N, classes)` last.
    """
    data = to_model(model, data)
    with recording(model) as outputs:
        model(data)
    outputs = {name: to_cpu(blob) for name, blob in outputs.items()}
    outputs[INPUT_BLOB] = to_cpu(data)
    found = {blob: outputs[layer] for blob, layer in model.blob_layers.items() if layer in outputs}
    softmax = model.final_softmax
    if softmax is not None:
        found[softmax.top] = torch.softmax(found[softmax.bottom], dim=softmax.axis)
    return found
