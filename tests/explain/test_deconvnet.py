"""The deconvnet against an independent autograd implementation of the modified gradient."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from bounds import NET_FLOAT64, U64, assert_within
from torch import nn

import convscope as cs
from convscope.core.errors import ConvscopeError, UnknownNameError
from convscope.explain.backward_rules import projection_by_rule
from convscope.explain.deconvnet import Deconvnet, project_units, transposed_conv_where_nonzero
from convscope.explain.top_activations import top_activations, top_activations_of_layers


def modified_gradient(model, data, layer, signal):
    """d(signal · activation of `layer`)/d(input) with the deconvnet's backward rules, by
    autograd with backward hooks: every ReLU hands back ReLU(incoming gradient), every LRN
    hands back the incoming gradient unchanged."""

    def rectify(module, grad_input, grad_output):
        return (grad_output[0].clamp(min=0),)

    def pass_through(module, grad_input, grad_output):
        return (grad_output[0],)

    handles = []
    for _, module in model.named_layers():
        if isinstance(module, nn.ReLU):
            handles.append(module.register_full_backward_hook(rectify))
        elif isinstance(module, nn.LocalResponseNorm):
            handles.append(module.register_full_backward_hook(pass_through))
    try:
        x = data.clone().requires_grad_(True)
        h = x
        for name, module in model.named_layers():
            h = module(h)
            if name == layer:
                break
        h.backward(signal)
    finally:
        for handle in handles:
            handle.remove()
    return x.grad[0]


# Both sides in float64: the same transposed convolutions and unpoolings, summed in other
# orders. A sum of at most 4,608 products (VGG16's conv5: 512 × 3 × 3) errs by at most
# 4,608 × 1.1e-16 ≈ 5e-13 of its terms' magnitudes; through at most 18 layers, 1e-11; the
# magnitudes that flow stay within 100 times the largest value compared: 1e-9 of it holds.
TOLERANCE = 1e-9


def check_layers(model, data, layers, count):
    """Projections equal the modified gradient, in float64, for each layer's `count` most
    active channels for this image (an empty channel would compare zero with zero)."""
    model, data = copy.deepcopy(model).double(), data.double()
    deconvnet = Deconvnet(model, data)
    for layer in layers:
        strength = deconvnet.activations[layer][0].flatten(1).amax(dim=1)
        channels = strength.argsort(descending=True, stable=True)[:count].tolist()
        for channel in channels:
            assert strength[channel] > 0, (layer, channel)
            for mode in ("max", "map"):
                projection = deconvnet.project(layer, channel, mode)
                signal = deconvnet.start_signal(layer, channel, mode)
                reference = modified_gradient(model, data, layer, signal)
                scale = reference.abs().max().item()
                assert scale > 0, (layer, channel, mode)
                error = (projection - reference).abs().max().item()
                assert error <= TOLERANCE * scale, (layer, channel, mode)


def test_digits_every_layer(digits_net, heldout):
    data = digits_net.preprocess(heldout[0][:1])
    layers = ["conv1", "relu1", "pool1", "conv2", "pool2", "conv3", "relu3", "pool3"]
    check_layers(digits_net, data, layers, count=3)


@pytest.mark.parametrize("name", ["caffenet", "alexnet"])
def test_imagenet_nets_with_lrn_groups_and_overlapping_pools(name):
    model = cs.load_model(name, weights="random")
    data = torch.randn(1, *model.input_size)
    check_layers(model, data, ["pool1", "conv2", "pool5"], count=2)


def test_vgg16_top_layer():
    model = cs.load_model("vgg16", weights="random")
    check_layers(model, torch.randn(1, *model.input_size), ["pool5"], count=2)


def test_strongest_activation_mode_keeps_one_unit(digits_net, heldout):
    deconvnet = Deconvnet(digits_net, digits_net.preprocess(heldout[0][:1]))
    signal = deconvnet.start_signal("conv2", 4, "max")
    assert (signal != 0).sum() == 1
    assert signal.max() == deconvnet.activations["conv2"][0, 4].max()


def test_projection_reuses_the_forward_pass(digits_net, heldout):
    deconvnet = Deconvnet(digits_net, digits_net.preprocess(heldout[0][:1]))
    calls = []
    handle = digits_net.conv1.register_forward_hook(lambda *args: calls.append(1))
    try:
        for channel in range(10):
            deconvnet.project("conv3", channel)
    finally:
        handle.remove()
    assert calls == []


def test_in_place_relus_are_handled():
    model = cs.load_model("alexnet", weights="random")
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = True
    data = torch.randn(1, *model.input_size)
    deconvnet = Deconvnet(model, data)
    assert (deconvnet.activations["conv1"] < 0).any()  # conv1's output kept before its ReLU
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    check_layers(model, data, ["conv2"], count=2)


def test_bad_input_names_the_valid_range(digits_net, heldout):
    deconvnet = Deconvnet(digits_net, digits_net.preprocess(heldout[0][:1]))
    with pytest.raises(ConvscopeError, match="valid channels are 0..63"):
        deconvnet.project("conv2", 64)
    with pytest.raises(UnknownNameError, match="conv1, relu1, pool1"):
        deconvnet.project("fc6", 0)
    with pytest.raises(ConvscopeError, match="1 channel"):
        Deconvnet(digits_net, torch.zeros(1, 3, 28, 28))
    with pytest.raises(UnknownNameError, match="max, map"):
        deconvnet.project("conv1", 0, "mean")


def test_units_of_many_passes_walk_back_together_as_one_by_one(digits64, heldout64):
    digits_net, images = digits64, heldout64[0][:5]
    passes = [cs.Deconvnet(digits_net, digits_net.preprocess(image[None])) for image in images]
    # the channel whose weakest image is strongest, and each image's strongest unit of it: every
    # projection is nonzero (an inactive unit would compare zero with zero)
    maps = torch.cat([p.activations["pool2"] for p in passes])  # (5, 64, 4, 4)
    channel = int(maps.flatten(2).amax(2).amin(0).argmax())
    positions = [divmod(int(m.argmax()), 4) for m in maps[:, channel]]
    assert all(m[r, c] > 0 for m, (r, c) in zip(maps[:, channel], positions))
    together = project_units(passes, "pool2", channel, positions)
    for unit, (recorded, position) in enumerate(zip(passes, positions)):
        one = recorded.project_unit("pool2", channel, position)
        assert_within(together[unit], one, NET_FLOAT64)
        whole = recorded.project_unit("pool2", channel, position, crop=False)  # the whole image
        assert_within(together[unit], whole, NET_FLOAT64)
    with pytest.raises(ConvscopeError, match=r"one position \(and value\) per pass"):
        project_units(passes, "pool2", 7, positions[:2])
    with pytest.raises(ConvscopeError, match="row 4 is out of range for pool2"):
        project_units(passes[:1], "pool2", 7, [(4, 0)])
    # passes that kept only their switches, given the units' values, project the same
    light = [
        cs.Deconvnet(digits_net, digits_net.preprocess(image[None]), switches_only=True)
        for image in images
    ]
    values = [p.activations["pool2"][0, channel, r, c] for p, (r, c) in zip(passes, positions)]
    assert_within(project_units(light, "pool2", channel, positions, values), together, NET_FLOAT64)
    assert light[0].activations["pool2"].device.type == "meta"
    with pytest.raises(ConvscopeError, match="kept only its switches"):
        light[0].project("pool2", 7)


def test_every_layers_top_activations_from_one_pass_equal_each_layers_own(digits64, heldout64):
    digits_net, images = digits64, heldout64[0][:60]  # float64: tests/bounds.py
    layers = ["conv1", "pool2", "conv3"]
    together = top_activations_of_layers(digits_net, images, layers, k=5, batch_size=60)
    for layer in layers:
        alone = top_activations(digits_net, images, layer, k=5, batch_size=60)
        # one batch of 60 through the same layers either way: the same bits
        assert torch.equal(together[layer].values, alone.values)
        assert torch.equal(together[layer].images, alone.images)
        assert torch.equal(together[layer].positions, alone.positions)
        # streamed in batches of 7, the same values (equal values may swap places)
        streamed = top_activations_of_layers(digits_net, images, [layer], k=5, batch_size=7)
        assert_within(streamed[layer].values, alone.values, NET_FLOAT64)
    # independently: the strongest activation of conv1's channel 0 over the set, by hand
    with torch.no_grad():
        maps = digits_net.conv1(digits_net.preprocess(images))[:, 0]
    best = maps.flatten(1).max(dim=1).values
    # one conv1 output is a bias plus 25 products; two float64 sums of them differ by at most
    # 2 × 26 × u64 × the terms' magnitudes, which |w|·max|x| + |b| bounds
    weight, bias = (p[0].detach() for p in digits_net.params["conv1"])
    magnitudes = weight.abs().sum() * digits_net.preprocess(images).abs().max() + bias.abs()
    bound = 2 * 26 * U64 * magnitudes.item()
    assert abs(together["conv1"].values[0, 0].item() - best.max().item()) <= bound
    assert int(together["conv1"].images[0, 0]) == int(best.argmax())


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups", "size"),
    [
        (3, 1, 1, 1, 1, 12),
        (5, 2, 2, 1, 2, 13),
        (11, 4, 0, 1, 1, 35),
        (3, 2, 1, 2, 1, 16),
        (4, 3, 1, 1, 4, 17),
    ],
)
def test_the_transposed_conv_on_the_nonzero_box_equals_the_full_one(
    kernel, stride, padding, dilation, groups, size
):
    conv = nn.Conv2d(4, 8, kernel, stride, padding, dilation, groups=groups).double()
    x = torch.zeros(2, 4, size, size, dtype=torch.float64)
    out_shape = conv(x).shape
    signal = torch.zeros(out_shape, dtype=torch.float64)
    signal[0, 3, 1, out_shape[-1] - 1] = 1.5  # a unit at the right edge
    signal[1, :, 0:2, 0:1] = torch.randn(8, 2, 1)  # and a block at the top left
    zeros = torch.zeros(out_shape, dtype=torch.float64)
    for sparse in (signal, torch.randn(out_shape, dtype=torch.float64), zeros):
        full = F.conv_transpose2d(
            sparse,
            conv.weight,
            stride=conv.stride,
            padding=conv.padding,
            groups=groups,
            dilation=conv.dilation,
            output_padding=tuple(
                size
                - ((sparse.shape[2 + a] - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1)
                for a in (0, 1)
            ),
        )
        ours = transposed_conv_where_nonzero(conv, sparse, x.shape)
        if sparse is zeros:
            assert torch.equal(ours, full)  # nothing to walk back: exactly zero
        else:
            assert_within(ours, full, NET_FLOAT64)


def test_passes_recorded_in_one_batch_equal_passes_recorded_alone(digits64, heldout64):
    digits_net, images = digits64, heldout64[0][:6]
    together = cs.Deconvnet.record_many(digits_net, digits_net.preprocess(images))
    for image, recorded in zip(images, together):
        alone = cs.Deconvnet(digits_net, digits_net.preprocess(image[None]), switches_only=True)
        for layer in ("pool1", "conv3"):
            assert recorded.activations[layer].shape == alone.activations[layer].shape
        full = cs.Deconvnet(digits_net, digits_net.preprocess(image[None]))
        strongest = int(full.activations["pool2"][0].argmax())  # an active unit: never zero
        channel, (row, column) = strongest // 16, divmod(strongest % 16, 4)
        value = full.activations["pool2"][0, channel, row, column]
        expected = full.project_unit("pool2", channel, (row, column))
        for light in (alone, recorded):
            projected = project_units([light], "pool2", channel, [(row, column)], [value])[0]
            assert_within(projected, expected, NET_FLOAT64)
    with pytest.raises(ConvscopeError, match="record_many takes preprocessed images"):
        cs.Deconvnet.record_many(digits_net, images[0])


def test_the_deconvnet_from_the_class_score_passes_lrn_through_as_lesson_05():
    """CaffeNet has LRN layers, where Captum's Deconvolution would differ: the reference here
    passes them through, as the deconvnet does."""
    model = cs.load_model("caffenet", weights="random").double()  # float64: tests/bounds.py
    image = torch.rand(3, 227, 227, dtype=torch.float64)
    data = model.preprocess(image[None])
    one_hot = torch.zeros(1, 1000, dtype=torch.float64)
    one_hot[0, 281] = 1.0
    reference = modified_gradient(model, data, "fc8", one_hot)
    assert_within(cs.explain(model, image, 281, "deconvnet").attribution, reference, NET_FLOAT64)


def test_projection_by_rule_gives_the_true_gradient_and_the_deconvnet(heldout):
    digits_net = cs.load_model("digits").double()  # float64: tests/bounds.py
    data = digits_net.preprocess(heldout[0][:1].double())
    deconvnet = Deconvnet(digits_net, data)
    signal = deconvnet.start_signal("conv3", 2, "map")
    rectified = projection_by_rule(digits_net, data, "conv3", signal, "deconvnet")
    assert_within(rectified, deconvnet.project_signal("conv3", signal), NET_FLOAT64)
    x = data.clone().requires_grad_(True)
    h = x
    for name, module in digits_net.named_layers():
        h = module(h)
        if name == "conv3":
            break
    h.backward(signal)
    true = projection_by_rule(digits_net, data, "conv3", signal, "gradient")
    assert_within(true, x.grad[0], NET_FLOAT64)
    # the two rules differ here, by far more than rounding
    assert (true - rectified).abs().max() > 0.01 * true.abs().max()


def test_an_image_too_small_for_the_deconvnet_is_refused_by_size(digits_net):
    for side in (10, 1):
        data = torch.zeros(1, 1, side, side)
        small = rf"image of {side}x{side} is too small for digits up to pool3: .* is 28x28"
        with pytest.raises(ConvscopeError, match=small):
            Deconvnet(digits_net, data)
        with pytest.raises(ConvscopeError, match=r"images of .* too small"):
            Deconvnet.record_many(digits_net, data.expand(2, -1, -1, -1))


def test_top_activations_of_larger_images_at_a_conv_layer(digits_net, heldout):
    """A conv layer reads any size from its field up: 40x40 images (the 28x28 digits padded
    with zeros) stream to conv2, the fc layers above never run. Each channel's strongest
    units are those of a plain pass through the layers up to conv2."""
    images = F.pad(heldout[0][:12], (6, 6, 6, 6))
    found = top_activations(digits_net, images, "conv2", k=3)
    x = digits_net.preprocess(images)
    with torch.no_grad():
        for name, module in digits_net.named_layers():
            x = module(x)
            if name == "conv2":
                break
    best = x.flatten(2).amax(dim=2).T.topk(3, dim=1)  # (channels, k) over the images
    assert torch.equal(found.images, best.indices)
    assert torch.equal(found.values, best.values)  # the same floats: the same operations
