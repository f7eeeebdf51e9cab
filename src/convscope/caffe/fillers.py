"""Caffe's fillers: how a prototxt's layers get their parameters without a caffemodel."""

from __future__ import annotations

import math

import torch

from convscope.caffe.schema import CaffeFormatError
from convscope.core.bilinear import bilinear_kernel


def fill(tensor: torch.Tensor, filler: dict | None) -> None:
    """Fill like Caffe's fillers: constant (default 0), uniform, gaussian, xavier, msra,
    bilinear. Fans as Caffe counts them: count / shape[0] and count / shape[1]."""
    filler = filler or {}
    fan_in = tensor.numel() / tensor.shape[0]
    fan_out = tensor.numel() / tensor.shape[1] if tensor.dim() > 1 else tensor.numel()
    kind = filler.get("type", "constant")
    with torch.no_grad():
        if kind == "constant":
            tensor.fill_(filler.get("value", 0.0))
        elif kind == "uniform":
            low, high = filler.get("min", 0.0), filler.get("max", 1.0)
            if not low <= high or not math.isfinite(high - low):  # Caffe: CHECK_LE(a, b)
                raise CaffeFormatError(f"the uniform filler needs min <= max; got {low}, {high}")
            tensor.uniform_(low, high)
        elif kind == "gaussian":
            mean, std = filler.get("mean", 0.0), filler.get("std", 1.0)
            if not std > 0 or not math.isfinite(mean + std):  # Caffe: CHECK_GT(sigma, 0)
                raise CaffeFormatError(f"the gaussian filler needs std > 0; got {std}")
            tensor.normal_(mean, std)
        elif kind in ("xavier", "msra"):
            norm = filler.get("variance_norm", "FAN_IN")
            n = {"FAN_IN": fan_in, "FAN_OUT": fan_out}.get(norm, (fan_in + fan_out) / 2)
            if kind == "xavier":
                tensor.uniform_(-math.sqrt(3 / n), math.sqrt(3 / n))
            else:
                tensor.normal_(0.0, math.sqrt(2 / n))
        elif kind == "bilinear":
            if tensor.dim() != 4 or tensor.shape[-1] != tensor.shape[-2]:
                raise CaffeFormatError(
                    f"the bilinear filler needs a square 4-D kernel; got {tuple(tensor.shape)}"
                )
            # every (input, output) pair, as Caffe fills it: hence its advice of `group: C`
            tensor.copy_(bilinear_kernel(tensor.shape[-1]).expand_as(tensor))
        else:
            raise CaffeFormatError(
                f"unsupported filler {kind!r}; supported: constant, uniform, gaussian, "
                "xavier, msra, bilinear"
            )
