"""Only the chosen classes' scores: the pass ends below a large final linear layer, and what
is differentiated equals the full scores' gradient."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from bounds import U32, assert_within
from torch import nn

import convscope as cs
from convscope.caffe.layers import InnerProduct
from convscope.core.class_scores import ROWS_WORTH_SKIPPING, chosen_scores, final_linear
from convscope.explain.grad_cam import layer_cam


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
    assert final_linear(cs.load_model("digits")) is None  # fc8 holds 10 × 256 weights
    lazy = classifier(1024)
    lazy.fc2 = nn.LazyLinear(1024)
    assert final_linear(lazy) is None  # no weights before its first pass


def gradient_and_calls(net, data, indices):
    """`chosen_scores`' scores, seed and input gradient, and the shapes the last layer
    returned meanwhile (a forward hook on it)."""
    shapes = []
    handle = net.output_module.register_forward_hook(
        lambda module, args, out: shapes.append(tuple(out.shape))
    )
    try:
        with torch.enable_grad():
            x = data.clone().requires_grad_(True)
            scores, seed = chosen_scores(net, x, indices)
            (gradient,) = torch.autograd.grad(scores, x, seed)
    finally:
        handle.remove()
    return scores, seed, gradient, shapes


@pytest.mark.parametrize("graph", [False, True], ids=["Net", "GraphNet"])
def test_chosen_rows_alone_give_the_scores_and_the_exact_gradient(graph):
    net = classifier(1024, graph)
    data, indices = torch.randn(3, 1, 18, 18), torch.tensor([1023, 5, 1023])
    scores, seed, gradient, shapes = gradient_and_calls(net, data, indices)
    assert shapes == [(3, 2)]  # the last layer ran once, with the two classes' rows only
    assert torch.equal(seed, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    with torch.no_grad():
        expected = net(data).gather(1, indices[:, None])[:, 0]
    # each score sums 1,024 products and a bias, maybe in another order: at most 1,025 × u of
    # the summed magnitudes, which stay within 50 times the largest score (tests/bounds.py)
    assert_within((scores * seed).sum(1), expected, 1025 * 50 * U32, "chosen rows")
    # the gradient reaching fc1's output is W_c exactly both ways (a one-hot row times W adds
    # exact zeros), and everything below runs the same kernels on the same numbers
    assert torch.equal(gradient, full_gradient(net, data, indices))


def test_a_caffe_inner_product_flattens_its_own_input_first():
    """The last layer's own forward runs: Caffe's InnerProduct flattens a 4-D input."""
    torch.manual_seed(6)
    layers = OrderedDict(
        conv=nn.Conv2d(1, 4, 3), relu=nn.ReLU(), fc=InnerProduct(4 * 16 * 16, 1024, bias=True)
    )
    names = [str(i) for i in range(1024)]
    net = cs.Net(
        layers, name="caffe", input_size=(1, 18, 18), class_names=names, preprocess=lambda x: x
    ).eval()
    assert final_linear(net) is net.fc
    data, indices = torch.randn(2, 1, 18, 18), torch.tensor([7, 900])
    scores, seed, gradient, shapes = gradient_and_calls(net, data, indices)
    assert shapes == [(2, 2)]
    assert torch.equal(gradient, full_gradient(net, data, indices))


def test_small_last_layers_give_every_score_and_a_one_hot_seed():
    net = classifier(10)
    data, indices = torch.randn(2, 1, 18, 18), torch.tensor([3, 9])
    scores, seed, gradient, shapes = gradient_and_calls(net, data, indices)
    assert shapes == [(2, 10)] and scores.shape == (2, 10)
    assert torch.equal(seed, torch.eye(10)[indices])
    assert torch.equal(gradient, full_gradient(net, data, indices))


def test_grad_cam_through_the_chosen_rows_equals_the_papers_definition():
    """`layer_cam` ends its pass below fc2 and differentiates the chosen rows; the reference
    takes every score by plain autograd: α_k = mean of ∂S_c/∂A^k, ReLU(Σ_k α_k A^k)."""
    net = classifier(1024)
    data, indices = torch.randn(2, 1, 18, 18), torch.tensor([3, 1000])
    got = layer_cam(net, data, indices, "relu")
    kept = []
    handle = net.layer("relu").register_forward_hook(lambda module, args, out: kept.append(out))
    try:
        with torch.enable_grad():
            scores = net(data.clone().requires_grad_(True))
            (gradient,) = torch.autograd.grad(scores.gather(1, indices[:, None]).sum(), kept[0])
    finally:
        handle.remove()
    expected = (gradient.mean(dim=(2, 3))[:, :, None, None] * kept[0]).sum(1).clamp(min=0)
    # the two sides may use different convolution kernels (a small pass): each value sums
    # at most 1,024 products through two linear layers and a convolution, forward and back;
    # 6 sums × 1,024 × u of magnitudes within 50 times the largest value
    assert_within(got, expected, 6 * 1024 * 50 * U32, "Grad-CAM through chosen rows")
