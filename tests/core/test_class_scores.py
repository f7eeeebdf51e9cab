"""Only the chosen classes' scores: the pass ends below a large final linear layer, and what
is differentiated equals the full scores' gradient."""

from __future__ import annotations

from collections import OrderedDict

import torch
from bounds import U32, assert_within
from torch import nn

import convscope as cs
from convscope.core.class_scores import ROWS_WORTH_SKIPPING, chosen_scores, final_linear


def classifier(classes: int, graph: bool = False) -> cs.LayeredModel:
    """Conv → ReLU → flatten → linear (1,024 features) → ReLU → linear to `classes`; with
    1,024 classes the last layer holds 2**20 weights, the size from which rows are skipped."""
    torch.manual_seed(4)
    layers = OrderedDict(
        conv=nn.Conv2d(1, 4, 3),
        relu=nn.ReLU(),
        flatten=nn.Flatten(),
        fc1=nn.Linear(4 * 16 * 16, 1024),
        relu1=nn.ReLU(),
        fc2=nn.Linear(1024, classes),
    )
    names = [str(i) for i in range(classes)]
    if graph:
        order = list(layers.items())
        chain = [(n, m, (order[i - 1][0] if i else "data",)) for i, (n, m) in enumerate(order)]
        return cs.GraphNet(
            chain,
            output="fc2",
            name="graph",
            input_size=(1, 18, 18),
            class_names=names,
            preprocess=lambda x: x,
        ).eval()
    return cs.Net(
        layers, name="chain", input_size=(1, 18, 18), class_names=names, preprocess=lambda x: x
    ).eval()


def full_gradient(net, data, indices):
    """∂Σ_i S_{c_i}/∂x from every score, by plain autograd."""
    data = data.clone().requires_grad_(True)
    net(data).gather(1, indices[:, None]).sum().backward()
    return data.grad


def test_final_linear_is_the_output_layer_when_large():
    assert ROWS_WORTH_SKIPPING == 1024 * 1024
    for graph in (False, True):
        large = classifier(1024, graph)
        assert final_linear(large) is large.layer("fc2")
        assert final_linear(classifier(1023, graph)) is None
    assert final_linear(cs.load_model("digits")) is None  # fc8 holds 10 × 500 weights


def test_chosen_rows_alone_give_the_scores_and_the_exact_gradient():
    net = classifier(1024)
    data, indices = torch.randn(3, 1, 18, 18), torch.tensor([5, 1023, 5])
    ran = []
    handle = net.layer("fc2").register_forward_hook(lambda *_: ran.append(True))
    try:
        with torch.enable_grad():
            x = data.clone().requires_grad_(True)
            scores, seed = chosen_scores(net, x, indices)
            (gradient,) = torch.autograd.grad(scores, x, seed)
    finally:
        handle.remove()
    assert not ran  # the pass ended before the last layer
    assert scores.shape == (3,) and torch.equal(seed, torch.ones(3))
    with torch.no_grad():
        expected = net(data).gather(1, indices[:, None])[:, 0]
    # each score sums 1,024 products and a bias in a different order: at most 1,025 × u of the
    # summed magnitudes, which stay within 50 times the largest score (tests/bounds.py)
    assert_within(scores, expected, 1025 * 50 * U32, "chosen rows")
    # the gradient reaching fc1's output is W_c exactly both ways (a one-hot row times W adds
    # exact zeros), and everything below runs the same kernels on the same numbers
    assert torch.equal(gradient, full_gradient(net, data, indices))


def test_small_last_layers_give_every_score_and_a_one_hot_seed():
    net = classifier(10)
    data, indices = torch.randn(2, 1, 18, 18), torch.tensor([3, 9])
    with torch.enable_grad():
        x = data.clone().requires_grad_(True)
        scores, seed = chosen_scores(net, x, indices)
        (gradient,) = torch.autograd.grad(scores, x, seed)
    assert scores.shape == (2, 10)
    assert torch.equal(seed, torch.eye(10)[indices])
    assert torch.equal(gradient, full_gradient(net, data, indices))
