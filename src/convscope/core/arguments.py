"""Checking the arguments of the analysis functions up front, in one place.

Each check raises a `ConvscopeError` that names the argument, the bad value and what is
valid, before any tensor is touched: a negative position does not wrap, `True` is not
channel 1, a float is not an index, and NumPy's or torch's integers count as integers.
"""

from __future__ import annotations

import numbers

import torch

from convscope.core.errors import ConvscopeError


def integer(
    name: str,
    value: object,
    low: int | None = None,
    high: int | None = None,
    *,
    plural: str | None = None,
    where: str = "",
    error: type[ConvscopeError] = ConvscopeError,
) -> int:
    """`value` as an `int` within `low..high` (inclusive; `None` leaves a side open).

    Accepts Python, NumPy and 0-d torch integers; refuses bools, floats and everything else.
    The message reads `channel 64 is out of range for conv2; valid channels are 0..63`
    (`plural` names the valid values, `where` says whose they are).

    Raises:
        `error` (a `ConvscopeError`): naming the argument, the value and the valid range.
    """
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = type(value).__name__
        raise error(f"{name} must be an integer{where}; got {value!r} ({kind})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{'' if low is None else low}..{'' if high is None else high}"
        raise error(
            f"{name} {value} is out of range{where}; valid {plural or name + 's'} are {span}"
        )
    return value


def positive(name: str, value: object, high: int | None = None) -> int:
    """An integer >= 1 (sizes, strides, counts, batch sizes, iterations)."""
    return integer(name, value, 1, high)


def image_for(model, image: object, name: str = "image") -> torch.Tensor:
    """`image`, if it is one floating `(C, H, W)` tensor with the model's channel count.

    Raises:
        ConvscopeError: naming the argument, its shape or type and the model's channels.
    """
    channels = model.input_size[0]
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        kind = getattr(image, "dtype", type(image).__name__)
        raise ConvscopeError(f"{name} must be a floating tensor (C, H, W); got {kind}")
    if image.dim() != 3 or image.shape[0] != channels:
        raise ConvscopeError(
            f"{name} must be (C, H, W) with C={channels} for {model.name}; got shape "
            f"{tuple(image.shape)}"
        )
    return image
