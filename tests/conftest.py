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


@pytest.fixture(scope="session")
def digits64() -> cs.Net:
    """The shipped digit model in float64, for comparing two code paths (tests/bounds.py)."""
    return cs.load_model("digits").double()


@pytest.fixture(scope="session")
def heldout64() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = cs.load_digits("heldout")
    return images.double(), labels
