"""Where convscope finds its shipped data and where it caches downloaded weights."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def data_dir() -> Path:
    """The folder of shipped data: `$CONVSCOPE_DATA`, else the repository's `data/`."""
    override = os.environ.get("CONVSCOPE_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "data"


def data_path(relative: str) -> Path:
    """The path of one shipped file, e.g. `data_path("images/chelsea.png")`."""
    return data_dir() / relative


def weights_cache_dir() -> Path:
    """torch hub's checkpoint folder (`$TORCH_HOME/hub/checkpoints`), where downloads land."""
    return Path(torch.hub.get_dir()) / "checkpoints"
