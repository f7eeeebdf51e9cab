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
    (`plural` names the valid values, `where` says whose they are), or, with one side open,
    `stride 0 is out of range; it must be at least 1`.

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
        if low is None or high is None:
            bound = f"at least {low}" if high is None else f"at most {high}"
            raise error(f"{name} {value} is out of range{where}; it must be {bound}")
        valid = f"valid {plural or name + 's'} are {low}..{high}"
        raise error(f"{name} {value} is out of range{where}; {valid}")
    return value


def positive(name: str, value: object, high: int | None = None) -> int:
    """An integer >= 1 (sizes, strides, counts, batch sizes, iterations)."""
    return integer(name, value, 1, high)


def image_tensor(
    name: str,
    value: object,
    channels: int | None = None,
    *,
    batched: bool = False,
    where: str = "",
) -> torch.Tensor:
    """`value`, if it is a floating tensor `(C, H, W)` (`(N, C, H, W)` when `batched`) with
    `channels` channels (any count when `None`) and no empty side; `where` names whose
    channels they are (` for digits`).

    Raises:
        ConvscopeError: naming the argument, its shape or type and the shape wanted.
    """
    wanted = "(N, C, H, W)" if batched else "(C, H, W)"
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        kind = getattr(value, "dtype", type(value).__name__)
        raise ConvscopeError(f"{name} must be a floating tensor {wanted}; got {kind}")
    channel_axis = 1 if batched else 0
    if (
        value.dim() != 3 + batched
        or 0 in value.shape
        or (channels is not None and value.shape[channel_axis] != channels)
    ):
        count = "" if channels is None else f" with C={channels}{where}"
        raise ConvscopeError(f"{name} must be {wanted}{count}; got shape {tuple(value.shape)}")
    return value


def image_for(model, image: object, name: str = "image", *, batched: bool = False) -> torch.Tensor:
    """`image`, if it is one floating `(C, H, W)` tensor (a batch `(N, C, H, W)` when
    `batched`) with the model's channel count.

    Raises:
        ConvscopeError: naming the argument, its shape or type and the model's channels.
    """
    channels = model.input_size[0]
    return image_tensor(name, image, channels, batched=batched, where=f" for {model.name}")


def grid_position(
    name: str, value: object, size: tuple[int, int] | None = None, where: str = ""
) -> tuple[int, int]:
    """`value` as a `(row, column)` pair of integers >= 0 (a negative one would wrap), below
    `size` `(height, width)` when given; `where` says whose map it is (` for conv2`).

    Raises:
        ConvscopeError: naming the argument or the row or column, and the valid range.
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConvscopeError(f"{name} must be a (row, column) pair; got {value!r}")
    height, width = (None, None) if size is None else (size[0] - 1, size[1] - 1)
    try:
        row = integer("row", value[0], 0, height, where=where)
        return row, integer("column", value[1], 0, width, where=where)
    except ConvscopeError as error:  # the argument first: "position (9, 0): row 9 is ..."
        raise ConvscopeError(f"{name} {tuple(value)}: {error}") from None
