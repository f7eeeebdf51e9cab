"""The Caffe layers that have no exact PyTorch twin, with Caffe's semantics.

Convolution, deconvolution, max-pooling, ReLU, dropout and flatten map onto torch modules
directly (see `caffe_net`); these are the rest: InnerProduct's flattening rule, WITHIN_CHANNEL
LRN, Crop on any axis, Eltwise with coefficients, Concat, Reshape, BatchNorm with Caffe's
scale factor, Scale, and global pooling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from convscope.core.net import Sum


class InnerProduct(nn.Linear):
    """Caffe's InnerProduct: flatten every axis from `axis` on, then a fully connected layer.

    Input `(d0, ..., d_axis-1, ...)` -> `(d0, ..., d_axis-1, num_output)`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, axis: int = 1) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(self.axis))


class WithinChannelLRN(nn.Module):
    """LRN over a `size`×`size` spatial window of each channel:
    `x / (1 + alpha · mean of x² over the window, zero-padded)^beta` (Caffe's WITHIN_CHANNEL)."""

    def __init__(self, size: int, alpha: float, beta: float) -> None:
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.size - 1) // 2
        mean = F.avg_pool2d(x * x, self.size, 1, pad, count_include_pad=True)
        return x * (1 + self.alpha * mean).pow(-self.beta)


class AxisCrop(nn.Module):
    """Caffe's Crop: cut `x` to `reference`'s size on every axis from `axis` on, skipping
    `offsets[i]` elements on the i-th cropped axis (one offset may serve all axes)."""

    def __init__(self, axis: int, offsets: Sequence[int]) -> None:
        super().__init__()
        self.axis, self.offsets = axis, list(offsets)

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        axis = self.axis % x.dim()
        for index, dim in enumerate(range(axis, x.dim())):
            offset = self.offsets[index] if len(self.offsets) > 1 else (self.offsets or [0])[0]
            x = x.narrow(dim, offset, reference.shape[dim])
        return x


class Eltwise(Sum):
    """Caffe's Eltwise: SUM (with coefficients), PROD or MAX of its inputs."""

    def __init__(self, operation: str = "SUM", coefficients: Sequence[float] = ()) -> None:
        super().__init__()
        self.operation, self.coefficients = operation, list(coefficients)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.operation == "PROD":
            return torch.stack(inputs).prod(dim=0)
        if self.operation == "MAX":
            return torch.stack(inputs).amax(dim=0)
        weights = self.coefficients or [1.0] * len(inputs)
        return sum(w * x for w, x in zip(weights, inputs))


class Concat(nn.Module):
    """Caffe's Concat along `axis`."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.axis)


class Reshape(nn.Module):
    """Caffe's Reshape: `shape` replaces axes `axis .. axis + num_axes` (all by default);
    0 copies the input's dimension, -1 is inferred."""

    def __init__(self, shape: Sequence[int], axis: int = 0, num_axes: int = -1) -> None:
        super().__init__()
        self.shape, self.axis, self.num_axes = list(shape), axis, num_axes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.axis % (x.dim() + 1)
        end = x.dim() if self.num_axes == -1 else start + self.num_axes
        middle = [x.shape[start + i] if d == 0 else d for i, d in enumerate(self.shape)]
        return x.reshape(*x.shape[:start], *middle, *x.shape[end:])


class CaffeBatchNorm(nn.Module):
    """Caffe's BatchNorm at test time: `(x - mean / s) / sqrt(var / s + eps)` with Caffe's
    stored moving-average scale factor `s` (its third blob); no learned scale (see Scale)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("variance", torch.ones(channels))
        self.register_buffer("scale_factor", torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Caffe: a zero scale factor means "no statistics yet" and multiplies by 0
        safe = torch.where(
            self.scale_factor == 0, torch.ones_like(self.scale_factor), self.scale_factor
        )
        factor = torch.where(self.scale_factor == 0, torch.zeros_like(safe), 1.0 / safe)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean, variance = self.mean * factor, self.variance * factor
        return (x - mean.view(shape)) / (variance.view(shape) + self.eps).sqrt()


class Scale(nn.Module):
    """Caffe's Scale: multiply by a learned `(C,)` factor along `axis` (or by a second input),
    optionally add a learned bias."""

    def __init__(self, channels: int | None, bias: bool, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.weight = nn.Parameter(torch.ones(channels)) if channels else None
        self.bias = nn.Parameter(torch.zeros(channels)) if bias and channels else None

    def _broadcast(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis % x.dim()
        return values.view(*([1] * axis), *values.shape, *([1] * (x.dim() - axis - values.dim())))

    def forward(self, x: torch.Tensor, factor: torch.Tensor | None = None) -> torch.Tensor:
        out = x * self._broadcast(factor if factor is not None else self.weight, x)
        return out if self.bias is None else out + self._broadcast(self.bias, x)


class GlobalPool(nn.Module):
    """Caffe's `global_pooling`: one MAX or AVE over each whole map -> `(N, C, 1, 1)`."""

    reads_any_size = True  # what follows sees one value per map, whatever the input's size

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "MAX":
            return x.amax(dim=(2, 3), keepdim=True)
        return x.mean(dim=(2, 3), keepdim=True)
