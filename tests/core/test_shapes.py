"""Layer tables, receptive fields, crop offsets and MACs, against the FCN paper's numbers."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convscope as cs
from convscope.core.errors import ConvscopeError
from convscope.core.geometry import crop_offset, geometries
from convscope.core.meta import layer_table, total_macs
from convscope.core.net import Crop
from convscope.models.fcn import vgg16_fcn


def meta_fcn(variant: str):
    with torch.device("meta"):
        return vgg16_fcn(variant)


def crop_offsets(net) -> dict[str, int]:
    return {name: m.offset for name, m in net.named_layers() if isinstance(m, Crop)}


def test_crop_offsets_are_fcns():
    assert crop_offsets(meta_fcn("8s")) == {"score_pool4c": 5, "score_pool3c": 9, "score": 31}
    assert crop_offsets(meta_fcn("16s")) == {"score_pool4c": 5, "score": 27}
    assert crop_offsets(meta_fcn("32s")) == {"score": 19}


def test_fcn8s_sizes_for_a_500_by_334_image():
    table = layer_table(meta_fcn("8s"), (1, 3, 500, 334))
    outputs = {
        name: tuple(shape) for name, shape in zip(table.column("layer"), table.column("output"))
    }
    layers = [
        "conv1_1",
        "pool1",
        "pool2",
        "pool3",
        "pool4",
        "pool5",
        "fc6",
        "fc7",
        "score_fr",
        "upscore2",
        "upscore_pool4",
        "upscore8",
        "score",
    ]
    heights = [698, 349, 175, 88, 44, 22, 16, 16, 16, 34, 70, 568, 500]
    widths = [532, 266, 133, 67, 34, 17, 11, 11, 11, 24, 50, 408, 334]
    assert [outputs[name][1] for name in layers] == heights
    assert [outputs[name][2] for name in layers] == widths
    assert outputs["score"][0] == 21


def test_layer_table_holds_shapes_as_data_and_prints_them_as_caffe_did():
    table = layer_table(cs.load_shapes_only("fcn32s"), (3, 500, 334))
    assert table.rows[-1][3] == (21, 500, 334) and isinstance(table.rows[-1][3], tuple)
    assert str(table.rows[-1][3]) == "21×500×334" and "21×500×334" in str(table)


def conv_geometry_by_brute_force(layers, size=64):
    """Receptive field and first centre of the last layer, by marking which inputs change
    output unit 0 (gradient of unit 0 w.r.t. the input), an independent method."""
    net = nn.Sequential(*layers).double()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.constant_(module.weight, 1.0)
    data = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    net(data)[0, 0, 0, 0].backward()
    rows = data.grad[0, 0].abs().sum(1).nonzero().flatten()
    return rows.max().item() - rows.min().item() + 1, (rows.max().item() + rows.min().item()) / 2


def test_receptive_field_and_start_match_brute_force():
    # average pooling: every input in a window gets gradient (max pooling would pick one)
    layers = [
        nn.Conv2d(1, 1, 5),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(1, 1, 3),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(1, 1, 3, padding=1),
    ]
    net = cs.Net(
        OrderedDict((str(i), m) for i, m in enumerate(layers)),
        name="t",
        input_size=(1, 64, 64),
        class_names=[],
        preprocess=lambda x: x,
    )
    found = geometries(net)
    field, centre = conv_geometry_by_brute_force(layers[:4])
    assert (found["3"].field, found["3"].start, found["3"].jump) == (field, centre, 4)
    # padding 1: unit 0's 3x3 window starts one step (4 px) before the image, so its centre
    # sits where pool2's unit 0 is, and its field grows by two steps
    assert found["4"].start == found["3"].start and found["4"].field == field + 8


def test_crop_offset_rejects_misaligned_grids():
    from convscope.core.geometry import Geometry

    with pytest.raises(ConvscopeError, match="0.5 units"):
        crop_offset(Geometry(4, -10.5, 16), Geometry(4, -8.5, 36))
    with pytest.raises(ConvscopeError, match="jumps"):
        crop_offset(Geometry(4, 0, 1), Geometry(2, 0, 1))


def counted_macs(net: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """Each layer's multiply-accumulates for one image, counted by running the layer itself
    on ones: with every input (padding included) and every weight 1, each output of a
    convolution or linear layer is the number of products summed into it, so the sum of
    the outputs is the layer's MACs (transposed convolutions: each input is spread over its
    kernel, so the full, uncropped output sums to the same count). Sums in float64 are exact
    (integers under 2**53)."""
    counts, names = {}, {module: name for name, module in net.named_layers()}

    def count(module, inputs, output):
        ones = torch.ones_like(inputs[0][:1], dtype=torch.float64)
        weight = torch.ones_like(module.weight, dtype=torch.float64)
        if isinstance(module, nn.Linear):
            total = F.linear(ones, weight)
        elif isinstance(module, nn.ConvTranspose2d):
            total = F.conv_transpose2d(
                ones, weight, stride=module.stride, groups=module.groups, dilation=module.dilation
            )
        else:
            pad = module.padding
            padded = F.pad(ones, (pad[1], pad[1], pad[0], pad[0]), value=1.0)
            total = F.conv2d(
                padded, weight, stride=module.stride, groups=module.groups, dilation=module.dilation
            )
        counts[names[module]] = int(total.sum().item())

    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    handles = [m.register_forward_hook(count) for m in layers]
    try:
        with torch.no_grad():
            net(torch.zeros(1, *shape))
    finally:
        for handle in handles:
            handle.remove()
    return counts


@pytest.mark.parametrize(
    ("name", "shape"),
    [("alexnet", (3, 224, 224)), ("caffenet", (3, 227, 227)), ("fcn8s", (3, 64, 48))],
)
def test_macs_equal_the_products_each_layer_sums(name, shape):
    net = cs.load_model(name, weights="random")
    table = layer_table(net, (1, *shape))
    ours = {layer: macs for layer, macs in zip(table.column("layer"), table.column("MACs")) if macs}
    assert ours == counted_macs(net, shape)
    assert total_macs(net, (1, *shape)) == sum(ours.values())


def test_too_small_inputs_name_the_smallest_size():
    with pytest.raises(ConvscopeError, match="smallest it reads is 28x28"):
        layer_table(cs.load_model("digits"), (1, 1, 20, 28))
    with pytest.raises(ConvscopeError, match=r"smallest it reads is 63x63"):
        layer_table(cs.load_model("alexnet", weights="random"), (1, 3, 40, 40))


def test_fcn_parameter_count_by_formula():
    def conv(c_in, c_out, k, bias=True):
        return c_in * c_out * k * k + (c_out if bias else 0)

    vgg_convs = 14_714_688  # VGG16's 13 convolutions, as torchvision counts them
    head = conv(512, 4096, 7) + conv(4096, 4096, 1) + conv(4096, 21, 1)
    skips = conv(512, 21, 1) + conv(256, 21, 1)
    upsampling = 2 * conv(21, 21, 4, bias=False) + conv(21, 21, 16, bias=False)
    net = meta_fcn("8s")
    assert sum(p.numel() for p in net.parameters()) == vgg_convs + head + skips + upsampling
    assert math.isclose(
        sum(p.numel() for p in cs.load_model("vgg16", weights="random").features.parameters()),
        vgg_convs,
    )


def test_crop_table_and_model_for_shapes():
    from convscope.core.geometry import derive_crop_offsets
    from convscope.fully_conv.shapes import crop_table, model_for_shapes

    fcn16s = model_for_shapes("fcn16s")
    table = crop_table(fcn16s)
    assert table.column("crop") == ["score_pool4c", "score"]
    assert table.column("layer offset") == [5, 27]
    assert list(derive_crop_offsets(fcn16s).values()) == [5, 27]
    assert table.column("derived offset")[1].endswith("= 27")
    cast = model_for_shapes("alexnet")  # a classifier comes cast: any input size
    assert len(crop_table(cast)) == 0
    assert cs.layer_table(cast, (3, 300, 300)).column("output")[-1] == (1000, 3, 3)
