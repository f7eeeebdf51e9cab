"""Receptive-field geometry: output sizes, jumps, starts and fields, crop offsets.

Each layer maps its output coordinates to its input's affinely (Caffe's `coord_map`):
a convolution or pooling with kernel k, stride s and padding p puts the centre of output unit
x at input position `s * x + (k - 1) / 2 - p`; a transposed convolution inverts that,
`(x + p - (k - 1) / 2) / s`. Composing these maps from the input gives every layer's
*jump* (the distance in input pixels between neighbouring units), *start* (the input position
of unit 0's centre) and receptive field; FCN's crop offsets follow from comparing two blobs'
maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from convscope.core.errors import ConvscopeError
from convscope.core.net import INPUT_BLOB, Crop, LayeredModel, Sum

_POINTWISE = (nn.ReLU, nn.Dropout, nn.LocalResponseNorm, nn.Identity, nn.BatchNorm2d, nn.Softmax)


@dataclass(frozen=True)
class Geometry:
    """Where a blob's units sit in input pixels (along one axis).

    Attributes:
        jump: input pixels between neighbouring units (the effective stride).
        start: input position of unit 0's centre (negative when padding reaches outside).
        field: receptive field size in input pixels, or `None` once the grid is flattened.
    """

    jump: float
    start: float
    field: float | None


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _step(module: nn.Module, inputs: list[Geometry], axis: int) -> Geometry:
    """The geometry of `module`'s output given its inputs' geometries (one axis)."""
    first = inputs[0]
    if first.field is None:
        return first
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride = _pair(module.kernel_size)[axis], _pair(module.stride)[axis]
        pad, dilation = _pair(module.padding)[axis], _pair(getattr(module, "dilation", 1))[axis]
        span = dilation * (kernel - 1) + 1
        return Geometry(
            jump=first.jump * stride,
            start=first.start + ((span - 1) / 2 - pad) * first.jump,
            field=first.field + (span - 1) * first.jump,
        )
    if isinstance(module, nn.ConvTranspose2d):
        kernel, stride = module.kernel_size[axis], module.stride[axis]
        pad = module.padding[axis]
        return Geometry(
            jump=first.jump / stride,
            start=first.start + (pad - (kernel - 1) / 2) / stride * first.jump,
            field=first.field + (math.ceil(kernel / stride) - 1) * first.jump,
        )
    if isinstance(module, Crop):
        return Geometry(first.jump, first.start + (module.offset or 0) * first.jump, first.field)
    if isinstance(module, Sum):
        return Geometry(first.jump, first.start, max(g.field or 0 for g in inputs))
    if isinstance(module, _POINTWISE):
        return first
    return Geometry(first.jump, first.start, None)  # Flatten, Linear, adaptive pooling...


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, ceil: bool = False
) -> int:
    """Output size of a convolution or pooling: `(size + 2p - k) / s + 1`, rounded down.

    With `ceil=True`, Caffe's pooling rule (torch's `ceil_mode` is the same): round up, then
    drop the last window when it would start inside the padding, that is when `p > 0` and
    `(out - 1) * s >= size + p`. For example k=2, s=2, p=1 on 5 rows gives 3, not 4.
    """
    steps = (size + 2 * padding - kernel) / stride
    if not ceil:
        return math.floor(steps) + 1
    out = math.ceil(steps) + 1
    if padding > 0 and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def transposed_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output size of a transposed convolution: `(size - 1) * s + k - 2p`."""
    return (size - 1) * stride + kernel - 2 * padding


def geometries(model: LayeredModel, axis: int = 0) -> dict[str, Geometry]:
    """Every blob's `Geometry` along `axis` (0: height, 1: width), with `"data"` first."""
    found = {INPUT_BLOB: Geometry(1.0, 0.0, 1.0)}
    for name, module, bottoms in model.layer_graph():
        found[name] = _step(module, [found[bottom] for bottom in bottoms], axis)
    return found


def crop_offset(bottom: Geometry, reference: Geometry, name: str = "crop") -> int:
    """Rows to skip in `bottom` so that its units line up with `reference`'s.

    Raises:
        ConvscopeError: the two grids have different jumps, or the offset is negative or
            fractional, so no crop can align them.
    """
    if not math.isclose(bottom.jump, reference.jump):
        raise ConvscopeError(
            f"{name}: cannot align grids with jumps {bottom.jump} and {reference.jump}"
        )
    offset = (reference.start - bottom.start) / bottom.jump
    if offset < -1e-9 or not math.isclose(offset, round(offset), abs_tol=1e-9):
        raise ConvscopeError(f"{name}: the grids are offset by {offset} units, not a whole >= 0")
    return round(offset)


def derive_crop_offsets(model: LayeredModel) -> dict[str, int]:
    """Set every `Crop` layer's offset from the coordinate maps of its two inputs.

    Offsets are derived in forward order, so a crop after another crop sees its true grid.

    Returns:
        Crop layer name -> offset.
    """
    offsets = {}
    for axis in (0, 1):
        found = {INPUT_BLOB: Geometry(1.0, 0.0, 1.0)}
        for name, module, bottoms in model.layer_graph():
            inputs = [found[bottom] for bottom in bottoms]
            if isinstance(module, Crop):
                offset = crop_offset(inputs[0], inputs[1], name)
                if axis == 1 and offsets[name] != offset:
                    raise ConvscopeError(f"{name}: offsets differ along height and width")
                module.offset = offsets[name] = offset
            found[name] = _step(module, inputs, axis)
    return offsets
