"""Where the work runs: choosing a device, and following the model's device.

`load_model(..., device="auto")` puts a model on CUDA when there is a GPU, else on Apple's MPS,
else on the CPU; `$CONVSCOPE_DEVICE` overrides that choice (`make test` sets it to `cpu`).
Every analysis function then reads the model's device (`device_of`), moves its input there
once, in the model's floating dtype (`to_model`), and hands its results back on the CPU
(`to_cpu`), where figures and tables are drawn.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch import nn

from convscope.core.errors import ConvscopeError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
# What "auto" means when it is set: `make test` sets it to "cpu", so the stored outputs (the
# CPU's) are compared with CPU results on a machine with a GPU too.
DEVICE_VARIABLE = "CONVSCOPE_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    """The devices this machine offers, the CPU first: `["cpu", "cuda:0", ...]`."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The `torch.device` for a `device` parameter.

    Args:
        device: `"auto"` (the device `$CONVSCOPE_DEVICE` names when it is set, else CUDA when
            available, else MPS, else the CPU), `"cpu"`, `"cuda"`, `"cuda:N"`, `"mps"`, or a
            `torch.device`.

    Raises:
        ConvscopeError: an unknown name, or a device this machine does not have; the message
            lists the valid choices and the devices available here.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise ConvscopeError(
            f"device must be a string, one of {', '.join(DEVICE_CHOICES)}; got {device!r}"
        )
    if name == "auto":
        forced = os.environ.get(DEVICE_VARIABLE, "").strip()
        if forced:
            return _forced_device(forced)
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        chosen = torch.device(name)
    except (RuntimeError, ValueError):
        chosen = None
    if chosen is None or chosen.type not in ("cpu", "cuda", "mps"):
        raise ConvscopeError(
            f"device {device!r} is not one of {', '.join(DEVICE_CHOICES)}; "
            f"this machine has: {', '.join(available_devices())}"
        )
    present = (
        chosen.type == "cpu"
        or (chosen.type == "mps" and _mps_available())
        or (
            chosen.type == "cuda"
            and torch.cuda.is_available()
            and (chosen.index or 0) < torch.cuda.device_count()
        )
    )
    if not present:
        raise ConvscopeError(
            f"device {device!r} is not available on this machine; it has: "
            f"{', '.join(available_devices())} (or use device='auto')"
        )
    return chosen


def _forced_device(forced: str) -> torch.device:
    """The device `$CONVSCOPE_DEVICE` names, refused with the variable's name in the message."""
    if forced.lower() == "auto":
        raise ConvscopeError(
            f"{DEVICE_VARIABLE}={forced!r} would loop; set it to cpu, cuda, cuda:N or mps"
        )
    try:
        return resolve_device(forced)
    except ConvscopeError as error:
        raise ConvscopeError(
            f"device='auto' follows {DEVICE_VARIABLE}={forced!r}, and {error}; unset it or "
            f"set it to one of: {', '.join(available_devices())}"
        ) from None


def device_of(model: nn.Module) -> torch.device:
    """The device of `model`'s first parameter or buffer (the CPU for a module with none)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):  # the first only
        return tensor.device
    return torch.device("cpu")


def dtype_of(model: nn.Module) -> torch.dtype:
    """The dtype of `model`'s first floating parameter or buffer (float32 for a module with
    none): a model copied to float64 (`core.precision`) reads float64 input."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def to_model(model: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` on `model`'s device, and in its dtype when both are floating (the same tensor
    when it is there already). One look at the model's first tensors: this runs on every
    explanation, where walking the parameters twice cost as much as the checks."""
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    if first is None:
        return tensor.to(device="cpu")
    if tensor.is_floating_point() and first.is_floating_point():
        return tensor.to(device=first.device, dtype=first.dtype)
    if tensor.is_floating_point():
        return tensor.to(device=first.device, dtype=dtype_of(model))
    return tensor.to(first.device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device` (GPUs run asynchronously): before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def to_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` on the CPU, detached, for figures and tables (a shapes-only tensor on the meta
    device stays there: it has no values to move)."""
    tensor = tensor.detach()
    return tensor if tensor.device.type == "meta" else tensor.cpu()
