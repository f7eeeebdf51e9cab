"""Net surgery: moving parameters between networks by layer name, as Caffe's tutorial did."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch

from convscope.core.devices import device_of
from convscope.core.errors import SurgeryError, unknown_name
from convscope.core.inspection import conv_layers
from convscope.core.meta import has_large_input
from convscope.core.metrics import accuracy
from convscope.core.net import LayeredModel, Net
from convscope.core.tables import Table

# First-layer filters the lesson switches off one at a time: each trial is a forward pass over
# the lesson's images, 7 s for VGG16 on 24 photo crops on two CPU cores, so ImageNet-size nets
# try 8 where the digit net tries 32.
SMALL_NET_TRIALS, LARGE_NET_TRIALS = 32, 8


def suggested_trials(model: LayeredModel) -> int:
    """32 filters to switch off for small inputs (the digits), 8 for ImageNet-size inputs."""
    return LARGE_NET_TRIALS if has_large_input(model) else SMALL_NET_TRIALS


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
        new = torch.nn.Conv2d(last.in_channels, count, last.kernel_size, last.stride, last.padding)
    else:
        raise SurgeryError(
            f"the last layer {name!r} is a {type(last).__name__}, not a Linear or Conv2d layer"
        )
    path = next(path for path, module in edited.named_modules() if module is last)
    parent, _, attribute = path.rpartition(".")
    setattr(edited.get_submodule(parent), attribute, new.to(device_of(model)))
    edited.class_names = list(model.class_names[:count])
    return edited
