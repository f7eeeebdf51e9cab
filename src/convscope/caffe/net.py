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
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

from convscope.caffe import layers
from convscope.caffe.proto import layers_of
from convscope.caffe.schema import CaffeFormatError
from convscope.caffe.text import read_prototxt
from convscope.caffe.weights import load_caffe_weights
from convscope.caffe.wire import read_caffemodel
from convscope.core.bilinear import bilinear_kernel
from convscope.core.devices import to_cpu, to_model
from convscope.core.inspection import recording
from convscope.core.meta import meta_blobs
from convscope.core.net import INPUT_BLOB, Crop, GraphNet, LayeredModel, Net, Sum

SUPPORTED = (
    "Input", "Convolution", "Deconvolution", "Pooling", "ReLU", "LRN", "InnerProduct", "Dropout",
    "Softmax", "Crop", "Eltwise", "Concat", "Split", "Flatten", "Reshape", "BatchNorm", "Scale",
)  # fmt: skip


def _pair(param: dict, name: str, default: int) -> tuple[int, int]:
    """Caffe's `pad`/`kernel_size`/`stride` (repeated or single) with `_h`/`_w` overrides."""
    key = "kernel_size" if name == "kernel" else name
    values = param.get(key, [])
    values = values if isinstance(values, list) else [values]
    both = (values * 2)[:2] if values else [default, default]
    return int(param.get(f"{name}_h", both[0])), int(param.get(f"{name}_w", both[1]))


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


@dataclass(frozen=True)
class FinalSoftmax:
    """The Softmax that ends a Caffe net, left out of the model but kept in `caffe_blobs`.

    Attributes:
        top: its blob (`prob` in Caffe's deploy files); bottom: the scores it reads;
        axis: the axis it normalises.
    """

    top: str
    bottom: str
    axis: int


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


def _filler(tensor: torch.Tensor, filler: dict | None) -> None:
    """Fill like Caffe's fillers: constant (default 0), uniform, gaussian, xavier, msra,
    bilinear. Fans as Caffe counts them: count / shape[0] and count / shape[1]."""
    filler = filler or {}
    fan_in = tensor.numel() / tensor.shape[0]
    fan_out = tensor.numel() / tensor.shape[1] if tensor.dim() > 1 else tensor.numel()
    kind = filler.get("type", "constant")
    with torch.no_grad():
        if kind == "constant":
            tensor.fill_(filler.get("value", 0.0))
        elif kind == "uniform":
            low, high = filler.get("min", 0.0), filler.get("max", 1.0)
            if not low <= high or not math.isfinite(high - low):  # Caffe: CHECK_LE(a, b)
                raise CaffeFormatError(f"the uniform filler needs min <= max; got {low}, {high}")
            tensor.uniform_(low, high)
        elif kind == "gaussian":
            mean, std = filler.get("mean", 0.0), filler.get("std", 1.0)
            if not std > 0 or not math.isfinite(mean + std):  # Caffe: CHECK_GT(sigma, 0)
                raise CaffeFormatError(f"the gaussian filler needs std > 0; got {std}")
            tensor.normal_(mean, std)
        elif kind in ("xavier", "msra"):
            norm = filler.get("variance_norm", "FAN_IN")
            n = {"FAN_IN": fan_in, "FAN_OUT": fan_out}.get(norm, (fan_in + fan_out) / 2)
            if kind == "xavier":
                tensor.uniform_(-math.sqrt(3 / n), math.sqrt(3 / n))
            else:
                tensor.normal_(0.0, math.sqrt(2 / n))
        elif kind == "bilinear":
            if tensor.dim() != 4 or tensor.shape[-1] != tensor.shape[-2]:
                raise CaffeFormatError(
                    f"the bilinear filler needs a square 4-D kernel; got {tuple(tensor.shape)}"
                )
            # every (input, output) pair, as Caffe fills it: hence its advice of `group: C`
            tensor.copy_(bilinear_kernel(tensor.shape[-1]).expand_as(tensor))
        else:
            raise CaffeFormatError(
                f"unsupported filler {kind!r}; supported: constant, uniform, gaussian, "
                "xavier, msra, bilinear"
            )


# names a layer cannot take: the model's own attributes (methods, and those set per instance)
_MODULE_ATTRIBUTES = frozenset(
    [*dir(Net), *dir(GraphNet), "name", "input_size", "class_names", "preprocess", "output",
     "blob_layers", "final_softmax", "caffe_names"]
)  # fmt: skip


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


def _positive(layer: dict, message: str, field: str) -> int:
    """A required positive integer field of one of the layer's parameter messages."""
    value = layer.get(message, {}).get(field)
    if value is None or int(value) < 1:
        raise CaffeFormatError(
            f"layer {layer['name']!r}: {message} needs {field} >= 1; got {value}"
        )
    return int(value)


def _convolution(layer: dict, channels: int, transposed: bool) -> nn.Module:
    param = layer.get("convolution_param", {})
    kernel = _pair(param, "kernel", 0)
    if 0 in kernel:
        raise CaffeFormatError(f"layer {layer['name']!r}: convolution_param has no kernel size")
    outputs, group = _positive(layer, "convolution_param", "num_output"), int(param.get("group", 1))
    stride = _pair(param, "stride", 1)
    if min(kernel) < 1 or min(stride) < 1 or group < 1:
        raise CaffeFormatError(
            f"layer {layer['name']!r}: convolution_param needs kernel, stride and group >= 1; "
            f"got kernel {kernel}, stride {stride}, group {group}"
        )
    if channels % group or outputs % group:
        raise CaffeFormatError(
            f"layer {layer['name']!r}: convolution_param group {group} must divide the "
            f"{channels} input channels and num_output {outputs}"
        )
    dilation = param.get("dilation", [1])
    kind = nn.ConvTranspose2d if transposed else nn.Conv2d
    module = kind(
        channels, outputs, kernel, stride=stride,
        padding=_pair(param, "pad", 0), dilation=int(dilation[0]),
        groups=int(param.get("group", 1)), bias=bool(param.get("bias_term", True)),
    )  # fmt: skip
    _filler(module.weight, param.get("weight_filler"))
    if module.bias is not None:
        _filler(module.bias, param.get("bias_filler"))
    return module


def _pooling(layer: dict, shape: torch.Size) -> nn.Module:
    param = layer.get("pooling_param", {})
    mode = param.get("pool", "MAX")
    if mode not in ("MAX", "AVE"):
        raise CaffeFormatError(
            f"layer {layer['name']!r}: pooling {mode} is not supported (MAX, AVE)"
        )
    if param.get("global_pooling"):
        return layers.GlobalPool(mode)
    kernel, stride, pad = (
        _pair(param, "kernel", 0),
        _pair(param, "stride", 1),
        _pair(param, "pad", 0),
    )
    if min(kernel) < 1 or min(stride) < 1:
        raise CaffeFormatError(
            f"layer {layer['name']!r}: pooling_param needs kernel and stride >= 1; got kernel "
            f"{kernel}, stride {stride}"
        )
    for axis, (k, p) in enumerate(zip(kernel, pad)):
        if p > k // 2:  # Caffe allows pad < kernel; torch's pooling only pad <= kernel / 2
            raise CaffeFormatError(
                f"layer {layer['name']!r}: pooling_param pad {p} is more than half the kernel "
                f"{k} along {'hw'[axis]}; torch's pooling needs pad <= kernel / 2"
            )
        steps = -(-(shape[2 + axis] + 2 * p - k) // stride[axis])  # ceil
        if p == 0 and steps * stride[axis] >= shape[2 + axis]:
            # Caffe keeps this window although it starts past the input: it would be empty
            raise CaffeFormatError(
                f"layer {layer['name']!r}: pooling_param stride {stride[axis]} > kernel {k} "
                f"on {shape[2 + axis]} {'rows' if axis == 0 else 'columns'} makes Caffe's last "
                "window start outside the input (an empty window); use a stride <= kernel"
            )
    # Caffe rounds the output size up and drops a last window that starts in the padding;
    # torch's ceil_mode does exactly that, and its average divides by the same window size.
    if mode == "MAX":
        return nn.MaxPool2d(kernel, stride, pad, ceil_mode=True)
    return nn.AvgPool2d(kernel, stride, pad, ceil_mode=True, count_include_pad=True)


def _inner_product(layer: dict, shape: torch.Size) -> nn.Module:
    param = layer.get("inner_product_param", {})
    axis = int(param.get("axis", 1)) % len(shape)
    inputs = math.prod(shape[axis:])
    module = layers.InnerProduct(inputs, _positive(layer, "inner_product_param", "num_output"),
                                 bool(param.get("bias_term", True)), axis)  # fmt: skip
    module.caffe_transpose = bool(param.get("transpose", False))
    _filler(module.weight, param.get("weight_filler"))
    if module.bias is not None:
        _filler(module.bias, param.get("bias_filler"))
    return module


def _module(layer: dict, builder: _Builder, bottoms: tuple[str, ...]) -> nn.Module:
    """The torch module of one Caffe layer (its input shapes are known on the meta device)."""
    kind = layer["type"]
    if kind in ("Convolution", "Deconvolution"):
        return _convolution(layer, builder.channels(bottoms[0]), kind == "Deconvolution")
    if kind == "Pooling":
        return _pooling(layer, builder.shape(bottoms[0]))
    if kind == "ReLU":
        slope = layer.get("relu_param", {}).get("negative_slope", 0.0)
        return nn.LeakyReLU(slope) if slope else nn.ReLU()
    if kind == "LRN":
        param = layer.get("lrn_param", {})
        size, alpha, beta = (
            int(param.get("local_size", 5)),
            param.get("alpha", 1.0),
            param.get("beta", 0.75),
        )
        if param.get("norm_region", "ACROSS_CHANNELS") == "WITHIN_CHANNEL":
            return layers.WithinChannelLRN(size, alpha, beta)
        return nn.LocalResponseNorm(size, alpha, beta, param.get("k", 1.0))
    if kind == "InnerProduct":
        return _inner_product(layer, builder.shape(bottoms[0]))
    if kind == "Dropout":
        return nn.Dropout(layer.get("dropout_param", {}).get("dropout_ratio", 0.5))
    if kind == "Softmax":
        return nn.Softmax(dim=int(layer.get("softmax_param", {}).get("axis", 1)))
    if kind == "Crop":
        param = layer.get("crop_param", {})
        axis, offsets = int(param.get("axis", 2)), [int(o) for o in param.get("offset", [0])]
        if axis == 2 and len(set(offsets)) == 1:
            return Crop(offsets[0])
        return layers.AxisCrop(axis, offsets)
    if kind == "Eltwise":
        param = layer.get("eltwise_param", {})
        operation, coefficients = param.get("operation", "SUM"), param.get("coeff", [])
        return (
            Sum()
            if operation == "SUM" and not coefficients
            else layers.Eltwise(operation, coefficients)
        )
    if kind == "Concat":
        param = layer.get("concat_param", {})
        return layers.Concat(int(param.get("axis", param.get("concat_dim", 1))))
    if kind == "Flatten":
        param = layer.get("flatten_param", {})
        return nn.Flatten(int(param.get("axis", 1)), int(param.get("end_axis", -1)))
    if kind == "Reshape":
        param = layer.get("reshape_param", {})
        return layers.Reshape(param.get("shape", {}).get("dim", []), int(param.get("axis", 0)),
                              int(param.get("num_axes", -1)))  # fmt: skip
    if kind == "BatchNorm":
        eps = layer.get("batch_norm_param", {}).get("eps", 1e-5)
        return layers.CaffeBatchNorm(builder.channels(bottoms[0]), eps)
    if kind == "Scale":
        param = layer.get("scale_param", {})
        learned = None if len(bottoms) > 1 else builder.channels(bottoms[0])
        module = layers.Scale(
            learned, bool(param.get("bias_term", False)), int(param.get("axis", 1))
        )
        if module.weight is not None:
            _filler(module.weight, param.get("filler", {"type": "constant", "value": 1.0}))
        return module
    raise CaffeFormatError(
        f"layer {layer.get('name')!r} has unsupported type {kind!r}; supported: "
        + ", ".join(SUPPORTED)
    )


# The largest net built, parameters plus one forward pass's blobs at the prototxt's input
# shape, in bytes (4 GiB: VGG16 needs 0.6 GB, FCN-8s at 500x500 about 2 GB); change it with
# the environment variable CONVSCOPE_MAX_NET_BYTES.
MAX_NET_BYTES = 4 * 1024**3


def max_net_bytes() -> int:
    """The memory budget in force: `$CONVSCOPE_MAX_NET_BYTES`, else `MAX_NET_BYTES`."""
    return int(os.environ.get("CONVSCOPE_MAX_NET_BYTES", MAX_NET_BYTES))


def net_bytes(model: LayeredModel, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Bytes of each layer's parameters plus its output blob, for one pass of `input_shape`
    `(N, C, H, W)`, computed on the meta device (nothing is allocated). `"data"` is the input."""
    blobs = meta_blobs(model, input_shape)
    found = {}
    for blob, tensor in blobs.items():
        module = dict(model.named_layers()).get(blob)
        weights = [*module.parameters(), *module.buffers()] if module is not None else []
        found[blob] = tensor.numel() * tensor.element_size() + sum(
            p.numel() * p.element_size() for p in weights
        )
    return found


def check_memory(model: LayeredModel, input_shape: tuple[int, ...]) -> None:
    """Refuse a net whose parameters and blobs need more than `max_net_bytes()`.

    Raises:
        CaffeFormatError: naming the total, the limit and the layer that needs the most.
    """
    needed = net_bytes(model, input_shape)
    total, limit = sum(needed.values()), max_net_bytes()
    if total > limit:
        largest = max(needed, key=needed.get)
        raise CaffeFormatError(
            f"the net needs {total:,} bytes for its parameters and one pass at {input_shape}, "
            f"over the limit of {limit:,} (CONVSCOPE_MAX_NET_BYTES); layer {largest!r} alone "
            f"needs {needed[largest]:,}"
        )


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
            module = _module(layer, builder, bottoms)
        except _TORCH_ERRORS as error:  # a value torch refuses while building the module
            problem = " ".join(str(error).split())
            raise CaffeFormatError(
                f"layer {layer['name']!r} ({layer['type']}): {problem}"
            ) from error
        builder.add(layer["name"], module, bottoms, tops[0])
    classes = class_names or []
    model = _assemble(builder, name, input_shape, classes, preprocess)
    model.blob_layers = dict(builder.producer)
    model.final_softmax = final_softmax
    return model.eval()


def _final_softmax(layer: dict) -> FinalSoftmax:
    bottoms, tops = layer.get("bottom", []), layer.get("top", [])
    if len(bottoms) != 1 or len(tops) != 1:
        raise CaffeFormatError(
            f"layer {layer.get('name')!r}: a Softmax has one bottom and one top; "
            f"got bottoms {bottoms}, tops {tops}"
        )
    return FinalSoftmax(tops[0], bottoms[0], int(layer.get("softmax_param", {}).get("axis", 1)))


def _assemble(builder: _Builder, name: str, input_shape: list[int], classes, preprocess):
    chain = all(
        bottoms == ((builder.nodes[i - 1][0],) if i else (INPUT_BLOB,))
        for i, (_, _, bottoms) in enumerate(builder.nodes)
    )
    size = tuple(input_shape[1:])
    if chain:
        return Net(OrderedDict((n, m) for n, m, _ in builder.nodes), name=name, input_size=size,
                   class_names=classes, preprocess=preprocess)  # fmt: skip
    return GraphNet(builder.nodes, output=builder.nodes[-1][0], name=name, input_size=size,
                    class_names=classes, preprocess=preprocess)  # fmt: skip


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
