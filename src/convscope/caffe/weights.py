"""Caffe weights into PyTorch: a caffemodel's blobs into a built net, and a loaded Caffe net's
parameters into a convscope architecture's state dict (`python -m convscope convert`)."""

from __future__ import annotations

import torch
from torch import nn

from convscope.caffe import layers
from convscope.caffe.proto import layers_of
from convscope.caffe.schema import CaffeFormatError
from convscope.core.net import LayeredModel, Net


def _blob_array(blob: dict) -> torch.Tensor:
    values = blob.get("data")
    if values is None or len(values) == 0:
        values = blob.get("double_data", [])
    return torch.as_tensor(values, dtype=torch.float32)


def _blob_shape(blob: dict) -> tuple[int, ...]:
    if "shape" in blob:
        return tuple(int(d) for d in blob["shape"].get("dim", []))
    return tuple(int(blob.get(k, 0)) for k in ("num", "channels", "height", "width"))


def _shape_equals(blob: dict, wanted: tuple[int, ...]) -> bool:
    """Caffe's `Blob::ShapeEquals`: a blob with a `shape` must have exactly the layer's; a
    legacy blob's (num, channels, height, width) must be the layer's shape padded with
    leading 1s to four axes. A blob that gives no dimensions at all is judged by its count."""
    if "shape" in blob:
        return _blob_shape(blob) == wanted
    legacy = _blob_shape(blob)
    if not any(legacy):
        return True
    return len(wanted) <= 4 and legacy == (1,) * (4 - len(wanted)) + wanted


def load_caffe_weights(model: LayeredModel, weights: dict) -> list[str]:
    """Copy a parsed caffemodel's blobs into `model`, matched by layer name.

    Every blob is checked before anything is copied. Layers the model lacks are ignored (as
    Caffe does); layers the caffemodel lacks keep their fillers.

    Returns:
        The names of the layers that received weights.
    """
    modules = dict(model.named_layers())
    plan, loaded = [], []
    for layer in layers_of(weights):
        blobs = layer.get("blobs", [])
        node = layer.get("name", "").replace(".", "_")
        if not blobs or node not in modules:
            continue
        targets = _parameter_targets(modules[node])
        if len(blobs) != len(targets):
            raise CaffeFormatError(
                f"layer {layer['name']!r} has {len(blobs)} blobs in the caffemodel; "
                f"the prototxt's {type(modules[node]).__name__} takes {len(targets)}"
            )
        for blob, (label, tensor, transpose) in zip(blobs, targets):
            values = _blob_array(blob)
            wanted = (tensor.shape[1], tensor.shape[0]) if transpose else tuple(tensor.shape)
            if not _shape_equals(blob, tuple(wanted)):
                raise CaffeFormatError(
                    f"layer {layer['name']!r}: {label} blob has shape {_blob_shape(blob)}; the "
                    f"layer needs {tuple(wanted)}"
                )
            if values.numel() != tensor.numel():
                raise CaffeFormatError(
                    f"layer {layer['name']!r}: {label} blob declares shape {_blob_shape(blob)} "
                    f"({tensor.numel():,} values) but holds {values.numel():,}: the caffemodel "
                    f"is truncated or corrupt"
                )
            if transpose:
                values = values.view(tensor.shape[1], tensor.shape[0]).T
            plan.append((tensor, values.reshape(tensor.shape)))
        loaded.append(layer["name"])
    with torch.no_grad():
        for tensor, values in plan:
            tensor.copy_(values)
    return loaded


def _parameter_targets(module: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    """The tensors a layer's caffemodel blobs fill, in Caffe's blob order."""
    if isinstance(module, layers.CaffeBatchNorm):
        return [
            ("mean", module.mean, False),
            ("variance", module.variance, False),
            ("scale factor", module.scale_factor, False),
        ]
    transpose = bool(getattr(module, "caffe_transpose", False))
    found = []
    if getattr(module, "weight", None) is not None:
        found.append(("weight", module.weight, transpose))
    if getattr(module, "bias", None) is not None:
        found.append(("bias", module.bias, False))
    return found


def convert_to(source: LayeredModel, target: LayeredModel) -> dict[str, torch.Tensor]:
    """A state dict for `target` (a convscope architecture) from a loaded Caffe net.

    Parameters are matched by Caffe layer name (`conv1`, `fc6`, `upscore2`, ...) and copied
    flat where only the layout differs; every target parameter must be found.

    Raises:
        CaffeFormatError: a target layer is missing from the Caffe net, or sizes differ.
    """
    caffe_layers = dict(source.named_layers())
    state = {}
    for path, module in target.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        layer = target.caffe_names.get(path, path) if isinstance(target, Net) else path
        if layer.replace(".", "_") not in caffe_layers:
            raise CaffeFormatError(
                f"the Caffe net has no layer {layer!r} for {target.name}; it has "
                + ", ".join(caffe_layers)
            )
        found = dict(caffe_layers[layer.replace(".", "_")].named_parameters(recurse=False))
        for kind, tensor in own:
            if kind not in found or found[kind].numel() != tensor.numel():
                raise CaffeFormatError(
                    f"layer {layer!r}: the Caffe {kind} does not fit {target.name}'s "
                    f"{tuple(tensor.shape)}"
                )
            state[f"{path}.{kind}"] = found[kind].detach().reshape(tensor.shape).clone()
    return state
