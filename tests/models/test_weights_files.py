"""Weights files, as a careful user and a hostile file would try them: all or nothing."""

from __future__ import annotations

import warnings

import pytest
import torch

import convscope as cs
from convscope.core.errors import CheckpointError, ConvscopeError


def saved_with(tmp_path, key: str, tensor: torch.Tensor):
    """The digit net's state dict with one tensor replaced, saved to a file."""
    state = cs.load_model("digits", weights="random").state_dict()
    state[key] = tensor
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    return path


def weight_like(shape) -> dict[str, torch.Tensor]:
    dense = torch.randn(shape)
    return {
        "meta": torch.empty(shape, device="meta"),
        "sparse": dense.to_sparse(),
        "quantized": torch.quantize_per_tensor(dense, 0.1, 0, torch.qint8),
        "integer": dense.round().to(torch.int64),
    }


@pytest.mark.parametrize("kind", ["meta", "sparse", "quantized", "integer"])
def test_a_tensor_of_the_right_shape_but_the_wrong_kind_is_refused_and_nothing_is_copied(
    tmp_path, kind
):
    model = cs.load_model("digits")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = weight_like(tuple(model.params["conv2"][0].shape))[kind]
    path = saved_with(tmp_path, "conv2.weight", bad)
    with pytest.raises(CheckpointError, match="conv2.weight"):
        cs.load_weights(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_not_finite_values_are_refused_unless_allowed_with_a_warning(tmp_path):
    model = cs.load_model("digits", weights="random")
    before = model.params["fc8"][0].detach().clone()
    weight = torch.randn(model.params["fc8"][0].shape)
    weight[0, 0] = float("nan")
    path = saved_with(tmp_path, "fc8.weight", weight)
    with pytest.raises(CheckpointError, match="NaN or infinite values in fc8.weight"):
        cs.load_weights(model, path)
    assert torch.equal(model.params["fc8"][0], before)  # untouched
    with pytest.raises(CheckpointError, match="fc8.weight"):
        cs.load_model("digits", weights=path)
    with pytest.warns(UserWarning, match="fc8.weight"):
        cs.load_weights(model, path, allow_not_finite=True)
    assert torch.isnan(model.params["fc8"][0][0, 0])


def test_clean_weights_load_without_a_warning(tmp_path):
    model = cs.load_model("digits", weights="random")
    path = cs.save_weights(cs.load_model("digits"), tmp_path / "digits.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cs.load_weights(model, path)


def test_every_checkpoint_error_is_a_convscope_error():
    assert issubclass(CheckpointError, ConvscopeError)


def test_a_folder_none_or_nothing_is_not_a_model_or_weights(tmp_path):
    with pytest.raises(CheckpointError, match=r"weights .* is a folder; give a file in it"):
        cs.load_model("digits", weights=tmp_path)
    with pytest.raises(cs.ConvscopeError, match=r'weights must be "default", "random" or a file'):
        cs.load_model("digits", weights=None)
    with pytest.raises(cs.ConvscopeError, match=r"unknown model None; choose one of: digits"):
        cs.load_model(None)
    with pytest.raises(cs.ConvscopeError, match=r"path .* is a folder; give the file to write"):
        cs.save_weights(cs.load_model("digits", weights="random"), tmp_path)
