"""Input gradients with the parameters frozen: the same gradient, the flags restored."""

from __future__ import annotations

import pytest
import torch

from convscope.core.gradients import input_gradients_only


def input_gradient(net, data: torch.Tensor) -> torch.Tensor:
    data = data.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(net(data)[:, 3].sum(), data)
    return gradient


def test_the_gradient_is_the_same_and_no_weight_is_in_the_graph(digits_net, heldout):
    data = digits_net.preprocess(heldout[0][:4])
    plain = input_gradient(digits_net, data)
    with input_gradients_only(digits_net):
        frozen = input_gradient(digits_net, data)
        assert not any(p.requires_grad for p in digits_net.parameters())
    # the same products and sums on the input's path; only the weights' are skipped
    assert torch.equal(frozen, plain)
    assert all(p.requires_grad for p in digits_net.parameters())


def test_flags_are_restored_after_an_error_and_frozen_ones_stay_frozen(digits_net):
    first = digits_net.params["conv1"][0]
    first.requires_grad_(False)
    try:
        with pytest.raises(RuntimeError, match="stop"), input_gradients_only(digits_net):
            raise RuntimeError("stop")
        assert not first.requires_grad
        others = [p for p in digits_net.parameters() if p is not first]
        assert others and all(p.requires_grad for p in others)
    finally:
        first.requires_grad_(True)
