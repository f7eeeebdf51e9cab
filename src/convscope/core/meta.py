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
from convscope.core.inspection import ending_after, recording
from convscope.core.net import INPUT_BLOB, Crop, GraphNet, LayeredModel
from convscope.core.tables import Table


class Shape(tuple):
    """A blob's shape, or a value per axis `(along height, along width)`: a tuple that prints
    as `3×500×334`, the way the lessons write shapes."""

    def __str__(self) -> str:
        return "×".join(map(str, self))

    __repr__ = tuple.__repr__


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def meta_blobs(
    model: LayeredModel, input_shape: Sequence[int], until: str | None = None
) -> dict[str, torch.Tensor]:
    """All blobs of one forward pass on the meta device: shapes only, no memory, model untouched.

    Args:
        model: a `Net` or `GraphNet` (on any device).
        input_shape: `(N, C, H, W)`.
        until: end the pass after this layer (`ending_after`); None: the whole net.

    Returns:
        Blob name -> meta tensor, `"data"` first, then every layer's output in forward order.
    """
    meta_state = {
        key: torch.empty_like(value, device="meta")
        for key, value in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    dtype = next(iter(meta_state.values())).dtype if meta_state else torch.float32
    data = torch.empty(tuple(input_shape), device="meta", dtype=dtype)
    with recording(model, clone=False) as blobs, ending_after(model, until):
        functional_call(model, meta_state, (data,))
    return {INPUT_BLOB: data, **blobs}


def blob_shapes(
    model: LayeredModel, input_shape: Sequence[int], until: str | None = None
) -> dict[str, Shape]:
    """Every blob's shape for an input of `input_shape` `(N, C, H, W)`, from one pass on the
    meta device (no memory, the model untouched): `"data"` first, then each layer's output,
    up to layer `until` (None: all).

    Raises:
        ConvscopeError: the input does not fit the model (`check_input_fits`'s message).
    """
    shape = tuple(input_shape)
    try:
        blobs = meta_blobs(model, shape, until)
    except (RuntimeError, ValueError) as error:
        raise _size_error(model, shape, until) from error
    return {name: Shape(blob.shape) for name, blob in blobs.items()}


# The activations one forward batch may hold: the largest blob three times over (a layer's
# input, its output and a ReLU's copy) within this many bytes.
BATCH_BYTES = 512 * 2**20


# Inputs from this many pixels on are ImageNet-size (224 x 224, 227 x 227): the lessons
# suggest less work there, where one forward pass costs a thousand times a digit's.
LARGE_INPUT_PIXELS = 128 * 128


def has_large_input(model: LayeredModel) -> bool:
    """Whether `model` takes ImageNet-size inputs (`LARGE_INPUT_PIXELS` or more), not digits."""
    return model.input_size[-2] * model.input_size[-1] >= LARGE_INPUT_PIXELS


def images_per_batch(
    model: LayeredModel, image_shape: Sequence[int], most: int, until: str | None = None
) -> int:
    """How many images `(C, H, W)` one forward batch may hold, at most `most`, so that the
    largest blob stays within `BATCH_BYTES` three times over (from the meta-device pass): 64
    digits or 256 occluded photos fit for a small net, 13 photos for VGG16 at 224 x 224.
    `until`: the passes end after this layer (`ending_after`).
    """
    largest = largest_blob(model, image_shape, until)
    return max(1, min(most, BATCH_BYTES // (3 * 4 * largest)))


# model -> {(architecture, image shape): elements of its largest blob}; weak, so a model's
# entries go with it. The key holds every layer's type and parameter shapes, so a model whose
# layers are changed in place is measured again.
_LARGEST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# model -> (the ids of its modules and parameters, weak references to them, its architecture)
_MADE_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _architecture(model: LayeredModel) -> tuple:
    """Every layer's name, type and parameter shapes: what a shape-only pass depends on.

    Read again only when a module or parameter was replaced: the model's parts are compared by
    identity with those it was read from (weak references, so a freed part's id, reused by a
    new object, is never mistaken for it). Reading every layer cost ~0.2 ms, three times an
    explanation, on the digits (as much as a backward pass); the comparison costs ~0.01 ms.
    """
    parts = (*model.modules(), *model.parameters())
    ids = tuple(map(id, parts))
    kept = _MADE_OF.get(model)
    if kept is not None and kept[0] == ids and all(r() is p for r, p in zip(kept[1], parts)):
        return kept[2]
    architecture = tuple(
        (
            name,
            type(module).__name__,
            module.extra_repr(),  # kernel, stride, padding: a pooling swapped in place too
            *(tuple(p.shape) for p in module.parameters(recurse=False)),
        )
        for name, module in model.named_layers()
    )
    _MADE_OF[model] = (ids, tuple(map(weakref.ref, parts)), architecture)
    return architecture


def largest_blob(model: LayeredModel, image_shape: Sequence[int], until: str | None = None) -> int:
    """Elements of one image's largest blob `(C, H, W)` in `model`, up to layer `until` (the
    meta-device pass, measured once per model, architecture, image shape and `until`: a pass
    costs ~20 ms, and the lessons call this for every image they explain).

    Raises:
        ConvscopeError: the image does not fit (`check_input_fits`'s message).
    """
    key = (_architecture(model), tuple(image_shape), until)
    kept = _LARGEST.setdefault(model, {})
    if key not in kept:
        check_input_fits(model, image_shape, until=until)
        shapes = blob_shapes(model, (1, *image_shape), until)
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


def _size_error(
    model: LayeredModel, input_shape: Sequence[int], until: str | None, name: str = "input"
) -> ConvscopeError:
    """Why an input of `input_shape` (`(..., H, W)`) does not fit: too small (the message
    names the smallest size), or big enough but not the size fully connected layers take."""
    height, width = input_shape[-2:]
    smallest = smallest_input_size(model, until)
    where = f"{model.name}" + (f" up to {until}" if until else "")
    if height >= smallest[0] and width >= smallest[1]:
        if _fully_connected(model, until):
            return _exact_size_error(model, input_shape, name)
        try:  # neither too small nor an fc size: say what the shape-only pass met
            meta_blobs(model, (1, *input_shape[-3:]), until)
            problem = "its layers cannot combine the blobs of this size"
        except (RuntimeError, ValueError, ConvscopeError) as error:
            problem = " ".join(str(error).split())
        return ConvscopeError(f"{name} of {height}x{width} does not fit {where}: {problem}")
    return ConvscopeError(
        f"{name} of {height}x{width} is too small for {where}: the smallest it reads is "
        f"{smallest[0]}x{smallest[1]} (H x W)"
    )


def _exact_size_error(model: LayeredModel, input_shape: Sequence[int], name: str) -> ConvscopeError:
    height, width = input_shape[-2:]
    _, trained_height, trained_width = model.input_size
    return ConvscopeError(
        f"{name} of {height}x{width} does not fit {model.name}: its fully connected layers "
        f"read exactly {trained_height}x{trained_width} (H x W); resize or crop it, or cast the "
        f"net fully convolutional (lesson 03)"
    )


# model -> {(architecture, input shape, until): whether it fits}; weak, as `_LARGEST`.
_FITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fits(model: LayeredModel, input_shape: Sequence[int], until: str | None = None) -> bool:
    key = (_architecture(model), tuple(input_shape), until)
    kept = _FITS.setdefault(model, {})
    if key not in kept:
        try:
            meta_blobs(model, input_shape, until)
            kept[key] = True
        except (RuntimeError, ConvscopeError, ValueError):
            kept[key] = False
    return kept[key]


def check_input_fits(
    model: LayeredModel, image_shape: Sequence[int], name: str = "image", until: str | None = None
) -> None:
    """Refuse an image `(C, H, W)` that `model` cannot read (up to layer `until`; None: the
    whole net), before any real pass: from one shape-only pass, remembered per shape.

    Raises:
        ConvscopeError: naming the argument and its size, and the smallest size the model
            reads there, or the exact size its fully connected layers take.
    """
    if tuple(image_shape) == tuple(model.input_size):
        return  # the size the net was built for: every layer reads it (no pass needed)
    if image_shape[-3] != model.input_size[0]:
        raise ConvscopeError(
            f"{name} has {image_shape[-3]} channel(s); {model.name} reads {model.input_size[0]}"
        )
    if not _fits(model, (1, *image_shape), until):
        raise _size_error(model, image_shape, until, name)
    if _fully_connected(model, until) and tuple(image_shape[-2:]) != model.input_size[1:]:
        # a shape-only pass may run (a 30x30 digit can flatten to 28x28's length), but the
        # fully connected weights were learnt for one size: the pixels would not line up
        raise _exact_size_error(model, image_shape, name)


def _fully_connected(model: LayeredModel, until: str | None) -> bool:
    """Whether a fully connected layer reads the feature maps themselves in a pass that ends
    after `until` (None: all): not after a global (adaptive) pooling, which reads any size."""
    for layer, module in model.named_layers():
        global_pool = isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
        if global_pool or getattr(module, "reads_any_size", False):  # Caffe's GlobalPool too
            return False
        if isinstance(module, nn.Linear):
            return True
        if layer == until:
            return False
    return False


def _at(shape: list[int], axis: int, size: int) -> list[int]:
    """`shape` with height (axis 0) or width (axis 1) set to `size`."""
    changed = list(shape)
    changed[2 + axis] = size
    return changed


def smallest_input_size(model: LayeredModel, until: str | None = None) -> tuple[int, int]:
    """The smallest height (at the training width) and width (at the training height) the
    model reads, up to layer `until` (None: the whole net).

    Up to the training size, which must itself be valid. In a chain a layer that reads a size
    reads every larger one, so the sizes that fit are a range and a binary search finds its
    start; in a graph two branches can round differently (a Concat of a strided conv and a
    ceil-mode pool fits even sizes only), so every size is tried from 1 up.
    """
    channels, height, width = model.input_size
    found = []
    for axis, limit in ((0, height), (1, width)):
        shape = [1, channels, height, width]
        if not _fits(model, shape, until):
            raise ConvscopeError(f"{model.name} rejects even its training size {height}x{width}")
        if isinstance(model, GraphNet):
            found.append(
                next(s for s in range(1, limit + 1) if _fits(model, _at(shape, axis, s), until))
            )
            continue
        low, high = 1, limit  # high fits; find the smallest that does
        while low < high:
            middle = (low + high) // 2
            shape[2 + axis] = middle
            if _fits(model, shape, until):
                high = middle
            else:
                low = middle + 1
        found.append(high)
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
        raise _size_error(model, shape, None) from error
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
