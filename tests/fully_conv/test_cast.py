"""The fully convolutional cast: exact against explicit crops, in float64."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import convscope as cs
from convscope.core.errors import ConvscopeError
from convscope.core.meta import layer_table
from convscope.fully_conv.cast import fully_convolutional


def crops_agree(model: cs.Net, cast: cs.Net, data: torch.Tensor, stride: int) -> float:
    """Largest |cast(data)[:, :, i, j] - model(crop at (i·stride, j·stride))| over all cells."""
    dense = cast(data)
    height, width = model.input_size[1:]
    worst = 0.0
    for i in range(dense.shape[2]):
        for j in range(dense.shape[3]):
            crop = data[:, :, i * stride : i * stride + height, j * stride : j * stride + width]
            worst = max(worst, (dense[:, :, i, j] - model(crop)).abs().max().item())
    return worst


def test_digit_cast_is_exactly_a_sliding_window_classifier(digits_net):
    model = copy.deepcopy(digits_net).double()
    cast = fully_convolutional(model)
    data = torch.randn(2, 1, 28 + 8 * 4, 28 + 8 * 3, dtype=torch.float64)
    assert cast(data).shape == (2, 10, 5, 4)
    assert crops_agree(model, cast, data, stride=8) < 1e-9


def test_cast_layers_and_the_original_is_untouched(digits_net):
    before = {k: v.clone() for k, v in digits_net.state_dict().items()}
    cast = fully_convolutional(digits_net)
    assert isinstance(cast.layer("fc6"), nn.Conv2d) and cast.layer("fc6").kernel_size == (1, 1)
    assert "flatten" not in cast.layer_names and cast.layer_names[-1] == "fc8"
    assert torch.equal(cast.params["fc6"][0].flatten(1), digits_net.params["fc6"][0])
    assert all(torch.equal(digits_net.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize(("name", "kernel"), [("caffenet", 6), ("alexnet", 6), ("vgg16", 7)])
def test_imagenet_cast_at_the_training_size(name, kernel):
    """One cell: the cast computes the classifier's own function (float64)."""
    model = cs.load_model(name, weights="random").double()
    cast = fully_convolutional(model)
    assert cast.layer("fc6").kernel_size == (kernel, kernel)
    assert cast.layer("fc7").kernel_size == (1, 1)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in cast.modules())
    data = torch.randn(1, *model.input_size, dtype=torch.float64)
    assert (cast(data).flatten(1) - model(data)).abs().max().item() < 1e-9


def grid_side(model: cs.Net, size: int) -> int | None:
    """Side of the last map for a square input, by the output-size formula layer by layer;
    `None` if a window hangs over an edge (Caffe's ceil-mode pooling keeps such windows)."""
    for _, module in model.named_layers():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p = (
                v if isinstance(v, int) else v[0]
                for v in (module.kernel_size, module.stride, module.padding)
            )
            if (size + 2 * p - k) % s and getattr(module, "ceil_mode", False):
                return None
            size = (size + 2 * p - k) // s + 1
        if isinstance(module, (nn.Flatten, nn.AdaptiveAvgPool2d)):
            return size
    raise AssertionError("no flatten")


def unpadded(model: cs.Net) -> cs.Net:
    """The same net with every convolution's zero padding removed, at the input size where
    its last map is again the grid fc6 expects."""
    twin = copy.deepcopy(model)
    side = grid_side(model, model.input_size[1]) or 6  # CaffeNet: pool5 is 6x6
    for module in twin.modules():
        if isinstance(module, nn.Conv2d):
            module.padding = (0, 0)
    size = next(s for s in range(model.input_size[1], 1000) if grid_side(twin, s) == side)
    twin.input_size = (3, size, size)
    return twin


# VGG16's cast is the same code as AlexNet's (it is checked at its training size above)
@pytest.mark.parametrize(("name", "stride"), [("caffenet", 32), ("alexnet", 32)])
def test_imagenet_cast_slides_exactly_when_nothing_is_padded(name, stride):
    """Padding makes a window see its neighbours (the notebook measures that border effect);
    without it, every cell of the cast equals the classifier on its crop."""
    model = unpadded(cs.load_model(name, weights="random")).double()
    cast = fully_convolutional(model)
    height, width = model.input_size[1:]
    data = torch.randn(1, 3, height + stride, width, dtype=torch.float64)
    assert cast(data).shape[2:] == (2, 1)
    assert crops_agree(model, cast, data, stride) < 1e-9


def test_caffenet_451_gives_an_8x8_map():
    with torch.device("meta"):
        cast = fully_convolutional(cs.load_model("caffenet", weights="random"))
    table = layer_table(cast, (1, 3, 451, 451))
    assert table.rows[-1][3] == (1000, 8, 8)


def test_padding_makes_the_caffenet_cast_differ_from_isolated_crops():
    model = cs.load_model("caffenet", weights="random").double()
    cast = fully_convolutional(model)
    data = torch.randn(1, 3, 227 + 32, 227, dtype=torch.float64)
    assert crops_agree(model, cast, data, 32) > 1e-6


def test_adaptive_pooling_that_changes_the_grid_is_refused():
    model = cs.load_model("alexnet", weights="random")
    model.input_size = (3, 256, 256)  # pool5 is 7x7 there; avgpool would squash it to 6x6
    with pytest.raises(ConvscopeError, match="avgpool changes the grid"):
        fully_convolutional(model)
