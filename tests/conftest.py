"""Shared fixtures: one seeding helper for every test, and the shipped digit model; property
tests that draw the same examples on every run."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

import convscope as cs

# The property tests draw the same examples on every run, so a red suite is reproducible and
# never a draw's luck (a CI run once drew a Caffe input shape no earlier run had). To explore
# new examples: HYPOTHESIS_PROFILE=explore make unit.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


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
