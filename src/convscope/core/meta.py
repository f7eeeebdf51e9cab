"""The meta-device pass: every blob's shape, the layer table and MACs, with no memory.

A forward pass on the meta device computes shapes only, so even FCN-8s on VGG16 costs no
memory and the model is left untouched. Shapes stay data: `Shape` is a tuple that prints as
`C×H×W`, so tables show what Caffe printed and code reads the numbers, never the text.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from convscope.core.errors import ConvscopeError
from convscope.core.geometry import geometries
from convscope.core.inspection import recording
from convscope.core.net import INPUT_BLOB, Crop, LayeredModel
from convscope.core.tables import Table


class Shape(tuple):
    """A blob's shape, or a value per axis `(along height, along width)`: a tuple that prints
    as `3×500×334`, the way the lessons write shapes."""

    def __str__(self) -> str:
        return "×".join(map(str, self))

    __repr__ = tuple.__repr__


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def meta_blobs(model: LayeredModel, input_shape: Sequence[int]) -> dict[str, torch.Tensor]:
    """All blobs of one forward pass on the meta device: shapes only, no memory, model untouched.

    Args:
        model: a `Net` or `GraphNet` (on any device).
        input_shape: `(N, C, H, W)`.

    Returns:
        Blob name -> meta tensor, `"data"` first, then every layer's output in forward order.
    """
    meta_state = {
        key: torch.empty_like(value, device="meta")
        for key, value in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    dtype = next(iter(meta_state.values())).dtype if meta_state else torch.float32
    data = torch.empty(tuple(input_shape), device="meta", dtype=dtype)
    with recording(model, clone=False) as blobs:
        functional_call(model, meta_state, (data,))
    return {INPUT_BLOB: data, **blobs}


def blob_shapes(model: LayeredModel, input_shape: Sequence[int]) -> dict[str, Shape]:
    """Every blob's shape for an input of `input_shape` `(N, C, H, W)`, from one pass on the
    meta device (no memory, the model untouched): `"data"` first, then each layer's output.

    Raises:
        ConvscopeError: the input does not fit the model; the message names the smallest size.
    """
    shape = tuple(input_shape)
    try:
        return {name: Shape(blob.shape) for name, blob in meta_blobs(model, shape).items()}
    except (RuntimeError, ValueError) as error:
        raise _size_error(model, shape, error) from error


# The activations one forward batch may hold: the largest blob three times over (a layer's
# input, its output and a ReLU's copy) within this many bytes.
BATCH_BYTES = 512 * 2**20


# Inputs from this many pixels on are ImageNet-size (224 x 224, 227 x 227): the lessons
# suggest less work there, where one forward pass costs a thousand times a digit's.
LARGE_INPUT_PIXELS = 128 * 128


def has_large_input(model: LayeredModel) -> bool:
    """Whether `model` takes ImageNet-size inputs (`LARGE_INPUT_PIXELS` or more), not digits."""
    return model.input_size[-2] * model.input_size[-1] >= LARGE_INPUT_PIXELS


def images_per_batch(model: LayeredModel, image_shape: Sequence[int], most: int) -> int:
    """How many images `(C, H, W)` one forward batch may hold, at most `most`, so that the
    largest blob stays within `BATCH_BYTES` three times over (from the meta-device pass): 64
    digits or 256 occluded photos fit for a small net, 13 photos for VGG16 at 224 x 224.
    """
    return max(1, min(most, BATCH_BYTES // (3 * 4 * largest_blob(model, image_shape))))


# model -> {(architecture, image shape): elements of its largest blob}; weak, so a model's
# entries go with it. The key holds every layer's type and parameter shapes, so a model whose
# layers are changed in place is measured again.
_LARGEST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def largest_blob(model: LayeredModel, image_shape: Sequence[int]) -> int:
    """Elements of one image's largest blob `(C, H, W)` in `model` (the meta-device pass,
    measured once per model, architecture and image shape: a pass costs ~20 ms, and the
    lessons call this for every image they explain)."""
    architecture = tuple(
        (name, type(module).__name__, *(tuple(p.shape) for p in module.parameters(recurse=False)))
        for name, module in model.named_layers()
    )
    key = (architecture, tuple(image_shape))
    kept = _LARGEST.setdefault(model, {})
    if key not in kept:
        shapes = blob_shapes(model, (1, *image_shape))
        kept[key] = max(math.prod(shape[1:]) for shape in shapes.values())
    return kept[key]


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
        meta_blobs(model, input_shape)
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


def layer_table(model: LayeredModel, input_shape: Sequence[int]) -> Table:
    """Caffe's blob shapes plus the geometry of every layer, computed on the meta device.

    Args:
        model: a `Net` or `GraphNet` (ideally on the meta device: no weights, no memory; see
            `load_shapes_only`).
        input_shape: `(N, C, H, W)` or `(C, H, W)`.

    Returns:
        A `Table` with columns layer, type, k/s/p (kernel, stride, padding), output (a `Shape`
        `(C, H, W)`), field (receptive field), jump (effective stride), start (input position
        of unit 0's centre), each a number or a `Shape` `(along H, along W)` when the axes
        differ, and MACs for one image.

    Raises:
        ConvscopeError: the input is too small; the message names the smallest valid size.
    """
    shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    try:
        blobs = meta_blobs(model, shape)
    except (RuntimeError, ConvscopeError) as error:
        raise _size_error(model, shape, error) from error
    along = [geometries(model, axis) for axis in (0, 1)]
    rows = [(INPUT_BLOB, "Input", "", Shape(shape[1:]), 1, 1, 0, 0)]
    for name, module, bottoms in model.layer_graph():
        height, width = along[0][name], along[1][name]
        macs = _macs(module, [blobs[b] for b in bottoms], blobs[name])
        rows.append(
            (
                name,
                type(module).__name__,
                _hyper(module),
                Shape(blobs[name].shape[1:]),
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
    return first if first == second else Shape((first, second))


def total_macs(model: LayeredModel, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass for one image of `input_shape`."""
    return sum(layer_table(model, input_shape).column("MACs"))
