"""Reading, checking and writing weights files, never leaving a model half-loaded."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from convscope.core.errors import CheckpointError
from convscope.core.files import readable_file, write_atomically


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict with `torch.load(..., weights_only=True)` (no code is unpickled).

    Accepts a plain state dict or one wrapped as `{"state_dict": ...}` / `{"model": ...}`.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or holds no tensors.
    """
    path = readable_file("weights", path, CheckpointError)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for bad bytes; all mean "unreadable"
        raise CheckpointError(
            f"cannot read weights file {path}: truncated, corrupt or not a torch file ({error})"
        ) from error
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise CheckpointError(f"weights file {path} does not hold a state dict of named tensors")
    return dict(loaded)


def _tensor_problem(key: str, tensor: torch.Tensor, wanted: torch.Tensor) -> str | None:
    """Why `tensor` cannot be copied into the model's `wanted`, or `None` when it can."""
    if tensor.is_meta:
        return f"{key} is a meta tensor (shapes only, no values)"
    if tensor.layout != torch.strided:
        return f"{key} is a {tensor.layout} tensor; dense (strided) tensors only"
    if tensor.is_quantized:
        return f"{key} is quantized ({tensor.dtype}); floating tensors only"
    if wanted.is_floating_point() and not tensor.is_floating_point():
        return f"{key} has dtype {tensor.dtype}; the model takes {wanted.dtype}"
    if tuple(tensor.shape) != tuple(wanted.shape):
        return (
            f"{key} has shape {tuple(tensor.shape)} in the file, {tuple(wanted.shape)} in the model"
        )
    return None


def check_state_dict_fits(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    allow_not_finite: bool = False,
) -> None:
    """Check every entry of `state` against `model` before anything is copied.

    Each tensor must exist in the model, be dense and strided (not meta, sparse or
    quantized), have a dtype the model's tensor can take and its shape, and hold finite
    values: a NaN or an infinity makes every output NaN. `allow_not_finite=True` loads such
    tensors anyway, with a warning naming their keys (to study a diverged training run).

    Raises:
        CheckpointError: naming every missing, unexpected or unusable key.
    """
    expected = model.state_dict()
    problems = []
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing:
        problems.append("missing " + ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""))
    if unexpected:
        problems.append(
            "unexpected " + ", ".join(unexpected[:6]) + (" ..." if len(unexpected) > 6 else "")
        )
    for key, value in expected.items():
        if key in state:
            problem = _tensor_problem(key, state[key], value)
            if problem:
                problems.append(problem)
    if problems:
        raise CheckpointError(f"weights in {source} do not fit the model: " + "; ".join(problems))
    not_finite = [
        key
        for key, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if not_finite:
        listed = ", ".join(not_finite[:6]) + (" ..." if len(not_finite) > 6 else "")
        if not allow_not_finite:
            raise CheckpointError(
                f"weights in {source} hold NaN or infinite values in {listed}: the model would "
                f"output NaN (allow_not_finite=True loads them anyway, with a warning)"
            )
        warnings.warn(f"weights in {source} hold NaN or infinite values in {listed}", stacklevel=3)


def load_weights(
    model: nn.Module,
    path: str | Path,
    rename: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    allow_not_finite: bool = False,
) -> nn.Module:
    """Read `path`, check every tensor (key, layout, dtype, shape, finite values), and only
    then copy the weights into `model`.

    Args:
        rename: maps the file's keys to the model's (a file saved by another implementation).
        allow_not_finite: load NaN or infinite values with a warning instead of refusing.

    Returns:
        `model`, loaded. On any error the model is untouched.

    Raises:
        CheckpointError: the file cannot be read or does not fit; the message names the keys.
    """
    state = read_state_dict(path)
    if rename is not None:
        state = rename(state)
    check_state_dict_fits(model, state, str(path), allow_not_finite)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # checked above; kept so nothing else can escape half-done
        raise CheckpointError(f"weights in {path} do not fit the model: {error}") from error
    return model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write `model.state_dict()` to `path` atomically (a crash never leaves half a file)."""
    return save_state_dict(model.state_dict(), path)


def save_state_dict(state: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write a state dict to `path` atomically (`write_atomically`)."""
    return write_atomically(path, lambda temporary: torch.save(dict(state), temporary))
