"""Shape arithmetic: output sizes, receptive fields, strides, offsets, crops and MACs.

Each layer maps its output coordinates to its input's affinely (Caffe's `coord_map`):
a convolution or pooling with kernel k, stride s and padding p puts the centre of output unit
x at input position `s * x + (k - 1) / 2 - p`; a transposed convolution inverts that,
`(x + p - (k - 1) / 2) / s`. Composing these maps from the input gives every layer's
*jump* (the distance in input pixels between neighbouring units), *start* (the input position
of unit 0's centre) and receptive field; FCN's crop offsets follow from comparing two blobs'
maps. Shapes come from a forward pass on the meta device, so even FCN-8s on VGG16 costs no
memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from torch.func import functional_call

from .errors import ConvscopeError
from .inspection import recording
from .net import INPUT_BLOB, Crop, LayeredModel, Sum
from .plotting import FIGURE_DPI
from .tables import Table

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


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     ceil: bool = False) -> int:  # fmt: skip
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


def _meta_blobs(model: LayeredModel, input_shape: Sequence[int]) -> dict[str, torch.Tensor]:
    """All blobs of one forward pass on the meta device: shapes only, no memory, model untouched."""
    meta_state = {
        key: torch.empty_like(value, device="meta")
        for key, value in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    dtype = next(iter(meta_state.values())).dtype if meta_state else torch.float32
    data = torch.empty(tuple(input_shape), device="meta", dtype=dtype)
    with recording(model, clone=False) as blobs:
        functional_call(model, meta_state, (data,))
    return {INPUT_BLOB: data, **blobs}


def blob_shapes(model: LayeredModel, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Every blob's shape for an input of `input_shape` `(N, C, H, W)`, from one pass on the
    meta device (no memory, the model untouched): `"data"` first, then each layer's output.

    Raises:
        ConvscopeError: the input does not fit the model; the message names the smallest size.
    """
    shape = tuple(input_shape)
    try:
        return {name: tuple(blob.shape) for name, blob in _meta_blobs(model, shape).items()}
    except (RuntimeError, ValueError) as error:
        raise _size_error(model, shape, error) from error


def _macs(module: nn.Module, inputs: list[torch.Tensor], output: torch.Tensor) -> int:
    """Multiply-accumulates of one layer for one image."""
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output[0].numel() * per_output
    if isinstance(module, nn.ConvTranspose2d):
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return inputs[0][0].numel() * per_input
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


def _hyper(module: nn.Module) -> str:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride = _pair(module.kernel_size)[0], _pair(module.stride)[0]
        return f"{kernel}/{stride}/{_pair(module.padding)[0]}"
    if isinstance(module, Crop):
        return f"offset {module.offset}"
    return ""


def _size_error(model: LayeredModel, input_shape: Sequence[int], error: Exception) -> Exception:
    height, width = smallest_input_size(model)
    return ConvscopeError(
        f"input {tuple(input_shape[-2:])} is too small for {model.name}: the smallest valid "
        f"input is {height}x{width} (H x W) ({error})"
    )


def _fits(model: LayeredModel, input_shape: Sequence[int]) -> bool:
    try:
        _meta_blobs(model, input_shape)
    except (RuntimeError, ConvscopeError, ValueError):
        return False
    return True


def smallest_input_size(model: LayeredModel) -> tuple[int, int]:
    """The smallest height (at the training width) and width (at the training height) accepted.

    Searched up to the training size, which must itself be valid.
    """
    channels, height, width = model.input_size
    found = []
    for axis, limit in ((0, height), (1, width)):
        for size in range(1, limit + 1):
            shape = [1, channels, height, width]
            shape[2 + axis] = size
            if _fits(model, shape):
                found.append(size)
                break
        else:
            raise ConvscopeError(f"{model.name} rejects even its training size {height}x{width}")
    return found[0], found[1]


def layer_table(model: LayeredModel | str, input_shape: Sequence[int]) -> Table:
    """Caffe's blob shapes plus the geometry of every layer, computed on the meta device.

    Args:
        model: a `Net` or `GraphNet`, or a model name (built on the meta device: no weights,
            no memory, e.g. `layer_table("fcn8s", (3, 500, 334))`).
        input_shape: `(N, C, H, W)` or `(C, H, W)`.

    Returns:
        A `Table` with columns layer, type, k/s/p (kernel, stride, padding), output `C×H×W`,
        field (receptive field), jump (effective stride), start (input position of unit 0's
        centre), each as `H` or `H×W` when the axes differ, and MACs for one image.

    Raises:
        ConvscopeError: the input is too small; the message names the smallest valid size.
    """
    if isinstance(model, str):
        from .models import load_shapes_only  # noqa: PLC0415 (models import this module)

        model = load_shapes_only(model)
    shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    try:
        blobs = _meta_blobs(model, shape)
    except (RuntimeError, ConvscopeError) as error:
        raise _size_error(model, shape, error) from error
    along = [geometries(model, axis) for axis in (0, 1)]
    rows = [(INPUT_BLOB, "Input", "", "×".join(map(str, shape[1:])), 1, 1, 0, 0)]
    for name, module, bottoms in model.layer_graph():
        height, width = along[0][name], along[1][name]
        macs = _macs(module, [blobs[b] for b in bottoms], blobs[name])
        rows.append(
            (
                name,
                type(module).__name__,
                _hyper(module),
                "×".join(map(str, blobs[name].shape[1:])),
                _both(height.field, width.field),
                _both(height.jump, width.jump),
                _both(height.start, width.start),
                macs,
            )
        )
    columns = ["layer", "type", "k/s/p", "output", "field", "jump", "start", "MACs"]
    return Table(columns, rows)


def _both(along_height: float | None, along_width: float | None) -> object:
    def tidy(value):
        if value is None:
            return None
        return int(value) if float(value).is_integer() else value

    first, second = tidy(along_height), tidy(along_width)
    return first if first == second else f"{first}×{second}"


def total_macs(model: LayeredModel, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass for one image of `input_shape`."""
    return sum(layer_table(model, input_shape).column("MACs"))


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
    sizes = [tuple(int(v) for v in outputs[name].split("×")[1:]) for name in layers]
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


def model_for_shapes(name: str, weights: str = "random") -> LayeredModel:
    """A model whose sizes the shape lessons tabulate, fully convolutional.

    FCNs and Caffe files come as they are; a classifier (`caffenet`, `alexnet`, `vgg16`,
    `digits`) is cast fully convolutional, so it too accepts any input size. With
    `weights="random"` it is `load_shapes_only` (meta device: no memory, nothing read). A
    weights file (or `"default"`) is loaded, and checked, for real.
    """
    from .cast import fully_convolutional
    from .models import load_model, load_shapes_only

    model = load_shapes_only(name) if weights == "random" else load_model(name, weights=weights)
    if not any(isinstance(module, Crop) for _, module, _ in model.layer_graph()):
        if any(isinstance(module, nn.Linear) for _, module, _ in model.layer_graph()):
            model = fully_convolutional(model)
    return model
