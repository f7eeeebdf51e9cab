"""A Caffe layer's torch module, built by its type: one small builder per type (`BUILDERS`).

Each builder reads the layer's parameter message with Caffe's defaults and the shapes of its
bottoms, refuses what Caffe would refuse (naming the layer and the field), and fills the
parameters as the prototxt's fillers say.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from convscope.caffe import layers
from convscope.caffe.fillers import fill
from convscope.caffe.schema import CaffeFormatError
from convscope.core.net import Crop, Sum


def _pair(param: dict, name: str, default: int) -> tuple[int, int]:
    """Caffe's `pad`/`kernel_size`/`stride` (repeated or single) with `_h`/`_w` overrides."""
    key = "kernel_size" if name == "kernel" else name
    values = param.get(key, [])
    values = values if isinstance(values, list) else [values]
    both = (values * 2)[:2] if values else [default, default]
    return int(param.get(f"{name}_h", both[0])), int(param.get(f"{name}_w", both[1]))


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
        channels,
        outputs,
        kernel,
        stride=stride,
        padding=_pair(param, "pad", 0),
        dilation=int(dilation[0]),
        groups=int(param.get("group", 1)),
        bias=bool(param.get("bias_term", True)),
    )
    fill(module.weight, param.get("weight_filler"))
    if module.bias is not None:
        fill(module.bias, param.get("bias_filler"))
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
    module = layers.InnerProduct(
        inputs,
        _positive(layer, "inner_product_param", "num_output"),
        bool(param.get("bias_term", True)),
        axis,
    )
    module.caffe_transpose = bool(param.get("transpose", False))
    fill(module.weight, param.get("weight_filler"))
    if module.bias is not None:
        fill(module.bias, param.get("bias_filler"))
    return module


def _relu(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    slope = layer.get("relu_param", {}).get("negative_slope", 0.0)
    return nn.LeakyReLU(slope) if slope else nn.ReLU()


def _lrn(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("lrn_param", {})
    size = int(param.get("local_size", 5))
    alpha, beta = param.get("alpha", 1.0), param.get("beta", 0.75)
    if param.get("norm_region", "ACROSS_CHANNELS") == "WITHIN_CHANNEL":
        return layers.WithinChannelLRN(size, alpha, beta)
    return nn.LocalResponseNorm(size, alpha, beta, param.get("k", 1.0))


def _dropout(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    return nn.Dropout(layer.get("dropout_param", {}).get("dropout_ratio", 0.5))


def _softmax(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    return nn.Softmax(dim=int(layer.get("softmax_param", {}).get("axis", 1)))


def _crop(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("crop_param", {})
    axis, offsets = int(param.get("axis", 2)), [int(o) for o in param.get("offset", [0])]
    if axis == 2 and len(set(offsets)) == 1:
        return Crop(offsets[0])
    return layers.AxisCrop(axis, offsets)


def _eltwise(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("eltwise_param", {})
    operation, coefficients = param.get("operation", "SUM"), param.get("coeff", [])
    if operation == "SUM" and not coefficients:
        return Sum()
    return layers.Eltwise(operation, coefficients)


def _concat(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("concat_param", {})
    return layers.Concat(int(param.get("axis", param.get("concat_dim", 1))))


def _flatten(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("flatten_param", {})
    return nn.Flatten(int(param.get("axis", 1)), int(param.get("end_axis", -1)))


def _reshape(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("reshape_param", {})
    dims = param.get("shape", {}).get("dim", [])
    return layers.Reshape(dims, int(param.get("axis", 0)), int(param.get("num_axes", -1)))


def _batch_norm(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    eps = layer.get("batch_norm_param", {}).get("eps", 1e-5)
    return layers.CaffeBatchNorm(shapes[0][1], eps)


def _scale(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    param = layer.get("scale_param", {})
    learned = None if len(shapes) > 1 else shapes[0][1]  # a second bottom is the scale
    module = layers.Scale(learned, bool(param.get("bias_term", False)), int(param.get("axis", 1)))
    if module.weight is not None:
        fill(module.weight, param.get("filler", {"type": "constant", "value": 1.0}))
    return module


# Caffe layer type -> its builder `(layer, input shapes) -> module`; Input and Split are no
# modules and are handled where the net is built.
BUILDERS: dict[str, Callable[[dict, list[torch.Size]], nn.Module]] = {
    "Convolution": lambda layer, shapes: _convolution(layer, shapes[0][1], transposed=False),
    "Deconvolution": lambda layer, shapes: _convolution(layer, shapes[0][1], transposed=True),
    "Pooling": lambda layer, shapes: _pooling(layer, shapes[0]),
    "ReLU": _relu,
    "LRN": _lrn,
    "InnerProduct": lambda layer, shapes: _inner_product(layer, shapes[0]),
    "Dropout": _dropout,
    "Softmax": _softmax,
    "Crop": _crop,
    "Eltwise": _eltwise,
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
}
SUPPORTED = ("Input", "Split", *BUILDERS)


def build_module(layer: dict, shapes: list[torch.Size]) -> nn.Module:
    """The torch module of one Caffe layer, given its bottoms' shapes (from the meta device).

    Raises:
        CaffeFormatError: an unsupported type, or a field the type needs that is missing or bad.
    """
    builder = BUILDERS.get(layer["type"])
    if builder is None:
        raise CaffeFormatError(
            f"layer {layer.get('name')!r} has unsupported type {layer['type']!r}; supported: "
            + ", ".join(SUPPORTED)
        )
    return builder(layer, shapes)
