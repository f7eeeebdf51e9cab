"""Shared fixtures: one seeding helper for every test, and the shipped digit model."""

from __future__ import annotations

import pytest
import torch

import convscope as cs


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state (the package's one seeding helper)."""
    return cs.seed_everything(0)


@pytest.fixture(scope="session")
def digits_net() -> cs.Net:
    return cs.load_model("digits")


@pytest.fixture(scope="session")
def heldout() -> tuple[torch.Tensor, torch.Tensor]:
    return cs.load_digits("heldout")


@pytest.fixture()
def offline_hub(tmp_path, monkeypatch):
    """torch hub's cache in a temporary folder, so no test sees or writes real weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"
