"""Net surgery: moving parameters between networks by layer name, as Caffe's tutorial did."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch

from .errors import SurgeryError, unknown_name
from .inspection import conv_layers
from .metrics import accuracy
from .net import LayeredModel, Net
from .tables import Table

_PARAM_KINDS = ("weight", "bias")


def _copy_mode(name: str, kind: str, source: torch.Tensor, target: torch.Tensor) -> str:
    """`"copy"` for equal shapes, `"flat"` for a row-major reshape, else a `SurgeryError`.

    A flat copy keeps each output unit's values together: the leading (output) dimension must
    agree and so must the element count, e.g. an InnerProduct `(4096, 9216)` and a
    convolution `(4096, 256, 6, 6)` (CaffeNet's fc6), whose memory layouts are identical.
    """
    if source.shape == target.shape:
        return "copy"
    if source.numel() == target.numel() and source.shape[:1] == target.shape[:1]:
        return "flat"
    raise SurgeryError(
        f"cannot transplant {name}.{kind}: source shape {tuple(source.shape)} does not fit "
        f"target shape {tuple(target.shape)} ({source.numel()} vs {target.numel()} values); "
        "nothing was copied"
    )


def transplant(source: Net, target: Net, layers: Iterable[str] | None = None) -> Table:
    """Copy parameters from `source` into `target`, layer by layer, matched by name.

    Every layer is checked before anything is copied, so an error leaves `target` untouched.

    Args:
        source: the net to copy from.
        target: the net to copy into (changed in place).
        layers: layer names to copy; default all layers with parameters in both nets.

    Returns:
        A `Table` of what was copied: layer, param, source shape, target shape, mode
        (`copy` for equal shapes, `flat` for a reshape of the same values).
    """
    source_params, target_params = source.params, target.params
    names = list(layers) if layers is not None else [n for n in target_params if n in source_params]
    plan = []
    for name in names:
        if name not in source_params:
            raise unknown_name("source layer", name, list(source_params))
        if name not in target_params:
            raise unknown_name("target layer", name, list(target_params))
        pairs = list(zip(_PARAM_KINDS, source_params[name], target_params[name]))
        if len(source_params[name]) != len(target_params[name]):
            raise SurgeryError(
                f"cannot transplant {name}: the source has {len(source_params[name])} parameter "
                f"tensors, the target {len(target_params[name])}; nothing was copied"
            )
        plan += [(name, kind, s, t, _copy_mode(name, kind, s, t)) for kind, s, t in pairs]
    with torch.no_grad():
        for _, _, source_tensor, target_tensor, _ in plan:
            target_tensor.copy_(source_tensor.reshape(target_tensor.shape))
    rows = [(name, kind, tuple(s.shape), tuple(t.shape), mode) for name, kind, s, t, mode in plan]
    return Table(["layer", "param", "source", "target", "mode"], rows)


def filter_ablation(
    model: Net,
    layer: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    filters: Iterable[int] | None = None,
) -> Table:
    """Held-out accuracy with each filter of a conv layer switched off (weights and bias 0).

    The model is restored after each trial.

    Args:
        model: a `Net`.
        layer: a convolution layer's name.
        images: `(N, C, H, W)` in [0, 1]; labels `(N,)`.
        filters: the filters tried, one at a time (default: all).

    Returns:
        A `Table` (filter, accuracy, change) sorted from the most harmful switch-off.
    """
    if not isinstance(model.layer(layer), torch.nn.Conv2d):  # model.layer names valid layers
        raise unknown_name("convolution layer", layer, conv_layers(model))
    weight, bias = model.params[layer]
    baseline = accuracy(model, images, labels)
    rows = []
    for index in range(weight.shape[0]) if filters is None else filters:
        saved = weight[index].clone(), bias[index].clone()
        with torch.no_grad():
            weight[index], bias[index] = 0.0, 0.0
            trial = accuracy(model, images, labels)
            weight[index], bias[index] = saved
        rows.append((index, round(trial, 4), round(trial - baseline, 4)))
    rows.sort(key=lambda row: (row[2], row[0]))
    return Table(["filter", "accuracy", "change"], rows)


def with_outputs(model: LayeredModel, count: int) -> LayeredModel:
    """A copy of `model` whose last layer has `count` outputs (fresh weights; the first
    `count` class names). Its other layers keep the original's parameters.

    Args:
        model: a net ending in a `Linear` or `Conv2d` layer.
    """
    edited = copy.deepcopy(model)
    name = edited.layer_names[-1]
    last = edited.layer(name)
    if isinstance(last, torch.nn.Linear):
        new = torch.nn.Linear(last.in_features, count)
    elif isinstance(last, torch.nn.Conv2d):
        new = torch.nn.Conv2d(last.in_channels, count, last.kernel_size, last.stride,
                              last.padding)  # fmt: skip
    else:
        raise SurgeryError(f"the last layer {name!r} is a {type(last).__name__}, "
                           "not a Linear or Conv2d layer")  # fmt: skip
    path = next(path for path, module in edited.named_modules() if module is last)
    parent, _, attribute = path.rpartition(".")
    setattr(edited.get_submodule(parent), attribute, new)
    edited.class_names = list(model.class_names[:count])
    return edited
