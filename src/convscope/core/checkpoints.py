"""Reading, checking and writing weights files, never leaving a model half-loaded."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from convscope.core.errors import CheckpointError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict with `torch.load(..., weights_only=True)` (no code is unpickled).

    Accepts a plain state dict or one wrapped as `{"state_dict": ...}` / `{"model": ...}`.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
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


def check_state_dict_fits(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a `CheckpointError` naming every missing, unexpected or mis-shaped entry."""
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
        if key in state and tuple(state[key].shape) != tuple(value.shape):
            problems.append(
                f"{key} has shape {tuple(state[key].shape)} in the file, "
                f"{tuple(value.shape)} in the model"
            )
    if problems:
        raise CheckpointError(f"weights in {source} do not fit the model: " + "; ".join(problems))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Read `path`, check every key and shape, and only then copy the weights into `model`.

    Returns:
        `model`, loaded. On any error the model is untouched.
    """
    state = read_state_dict(path)
    check_state_dict_fits(model, state, str(path))
    model.load_state_dict(state)
    return model


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write `model.state_dict()` to `path` atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(model.state_dict(), temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
