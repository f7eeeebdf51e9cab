"""Casting a classifier into its fully convolutional twin (Caffe's net-surgery lesson).

The first fully connected layer reads a `(C, h, w)` feature map flattened in row-major order;
a convolution with a `(C, h, w)` kernel computes the same sums at one position and, on a larger
input, at every position with stride 1 on that map. The later fully connected layers become
1×1 convolutions. The weights are identical in memory, so they are copied flat
(`surgery.transplant`). Pointwise layers (ReLU, dropout, LRN) do not care about spatial size;
flattening and adaptive pooling (which would squash the grid) are removed.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.errors import ConvscopeError
from convscope.core.meta import blob_shapes
from convscope.core.net import Net
from convscope.core.transplant import transplant

_DROPPED = (nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class FullyConnectedConv(nn.Conv2d):
    """A cast fully connected layer: a stride-1 convolution computed as one matrix product.

    The weights are a plain `Conv2d`'s `(out, in, kh, kw)`. The forward pass unfolds every
    `kh × kw` window into a column and multiplies by the flat `(out, in·kh·kw)` weight — the
    fc layer's own matrix, applied to all windows at once. On a CPU this is 2–3× faster than
    the general convolution routine for these shapes (a large kernel over a small map), and it
    gives the same numbers up to rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        kh, kw = self.kernel_size
        columns = x.flatten(2) if (kh, kw) == (1, 1) else F.unfold(x, (kh, kw))
        out = torch.matmul(self.weight.flatten(1), columns)
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out.view(batch, self.out_channels, height - kh + 1, width - kw + 1)


def _grid_before_first_linear(model: Net) -> tuple[int, int, int]:
    """`(C, h, w)` of the map that the first Linear layer reads, at the training size."""
    found = blob_shapes(model, (1, *model.input_size))
    shapes = {name: tuple(shape[1:]) for name, shape in found.items()}  # (C, h, w) each
    grid = shapes["data"]
    for name, module, _ in model.layer_graph():
        if (
            isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
            and shapes[name] != grid
        ):
            raise ConvscopeError(
                f"{name} changes the grid {grid} to {shapes[name]} at the training size, so "
                "removing it would change the classifier"
            )
        if isinstance(module, nn.Linear):
            return grid
        if len(shapes[name]) == 3:
            grid = shapes[name]
    raise ConvscopeError(f"{model.name} has no fully connected layer to cast")


def _replace(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, child, module)


def fully_convolutional(model: Net) -> Net:
    """The fully convolutional twin of a classifier, with the classifier's weights.

    Args:
        model: a `Net` whose fully connected layers follow its convolutional part
            (`digits`, `caffenet`, `alexnet`, `vgg16`).

    Returns:
        A new `Net` (the original is untouched) with the same layer names: `fc6` is a
        convolution whose kernel covers the last feature map (6×6 for CaffeNet and AlexNet,
        7×7 for VGG16), `fc7` and `fc8` are 1×1 convolutions. On the training size it outputs
        `(N, classes, 1, 1)`; on larger inputs, a map of class scores.
    """
    channels, height, width = _grid_before_first_linear(model)
    # Copy the structure, not the weights: every tensor is replaced by a meta placeholder.
    memo = {id(t): torch.empty_like(t, device="meta") for t in model.state_dict().values()}
    memo.update({id(p): nn.Parameter(memo[id(p)]) for p in model.parameters() if id(p) in memo})
    twin = copy.deepcopy(model, memo)
    first = True
    for path, module in list(twin.named_modules()):
        if isinstance(module, nn.Linear):
            kernel = (height, width) if first else (1, 1)
            inputs = channels if first else module.in_features
            conv = FullyConnectedConv(inputs, module.out_features, kernel, device="meta")
            _replace(twin, path, conv)
            first = False
    device = next(model.parameters()).device  # real storage there; transplant fills it
    kept = OrderedDict(
        (name, child) for name, child in twin.named_children() if not isinstance(child, _DROPPED)
    )
    cast = Net(
        OrderedDict((name, child.to_empty(device=device)) for name, child in kept.items()),
        name=f"{model.name}_fully_conv",
        input_size=model.input_size,
        class_names=model.class_names,
        preprocess=model.preprocess,
        caffe_names=model.caffe_names,
    )
    transplant(model, cast)
    weight = next(model.parameters())  # the cast lives where the model does, in its dtype
    return cast.to(device=weight.device, dtype=weight.dtype).train(model.training)


def sliding_classifier(model: Net) -> Net:
    """A classifier for images of any size at least the training size: the cast, then the
    maximum of each class's score over all windows (global max pooling).

    Its class score S_c(I) is the best window's score, so saliency maps (notebook 06) of a
    scene point at the window that convinced the net.

    Returns:
        A `Net` mapping `(N, C, H, W)` to scores `(N, classes)`.
    """
    cast = fully_convolutional(model)
    layers = OrderedDict(cast.named_children())
    layers["global_max"] = nn.AdaptiveMaxPool2d(1)
    layers["flatten"] = nn.Flatten()
    return Net(
        layers,
        name=f"{model.name}_sliding",
        input_size=model.input_size,
        class_names=model.class_names,
        preprocess=model.preprocess,
        caffe_names=model.caffe_names,
    ).train(model.training)
