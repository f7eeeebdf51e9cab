"""Caffe nets built from prototxt/caffemodel pairs written by the tests, against torch ops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from bounds import NET_FLOAT64, U32, assert_within
from caffe_files import CAFFE_FILES, encode_binary, encode_text
from hypothesis import given, settings
from hypothesis import strategies as st

import convscope as cs
from convscope.__main__ import main
from convscope.caffe.net import build_caffe_net, caffe_blobs
from convscope.caffe.schema import CaffeFormatError
from convscope.caffe.text import parse_text, read_prototxt
from convscope.caffe.weights import convert_to, load_caffe_weights
from convscope.caffe.wire import parse_binary
from convscope.core.geometry import conv_output_size
from convscope.core.meta import layer_table
from convscope.core.net import Crop, GraphNet, Net
from convscope.core.transforms import CaffeTransformer

HERE = CAFFE_FILES


def net_with(layers: list[dict], shape=(1, 3, 8, 8)) -> dict:
    """A NetParameter dict: an Input layer named data, then `layers`."""
    data = {
        "name": "data",
        "type": "Input",
        "top": ["data"],
        "input_param": {"shape": [{"dim": list(shape)}]},
    }
    return {"name": "test", "layer": [data, *layers]}


def blob(array: np.ndarray) -> dict:
    return {"shape": {"dim": list(array.shape)}, "data": array.astype(np.float32).ravel()}


def build(
    layers: list[dict], weights: dict[str, list[np.ndarray]] | None = None, shape=(1, 3, 8, 8)
):
    """Through both readers: the prototxt as text, the weights as a binary caffemodel."""
    net = build_caffe_net(parse_text(encode_text(net_with(layers, shape))))
    if weights:
        model = {
            "name": "test",
            "layer": [
                {"name": name, "type": "X", "blobs": [blob(a) for a in arrays]}
                for name, arrays in weights.items()
            ],
        }
        load_caffe_weights(net, parse_binary(encode_binary(model)))
    return net


def layer(name: str, kind: str, bottoms: list[str], **params) -> dict:
    return {"name": name, "type": kind, "bottom": bottoms, "top": [name], **params}


def rand(*shape) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def t64(array: np.ndarray) -> torch.Tensor:
    """A weight array as the float64 tensor a net converted with `.double()` holds (exact)."""
    return torch.from_numpy(array).double()


# The layer comparisons below run the built net and the torch reference both in float64
# (`net.double()`, float32 weights converted exactly), within `NET_FLOAT64` of the largest value
# (tests/bounds.py: these layers sum at most 192 terms).


def test_convolution_with_groups_and_rectangular_padding():
    w, b = rand(4, 3, 3, 2), rand(4)
    param = {
        "num_output": 4,
        "kernel_h": 3,
        "kernel_w": 2,
        "pad_h": 1,
        "pad_w": 0,
        "stride": [2],
        "group": 1,
    }
    net = build([layer("c", "Convolution", ["data"], convolution_param=param)], {"c": [w, b]})
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    expected = F.conv2d(x, t64(w), t64(b), stride=2, padding=(1, 0))
    assert_within(net.double()(x), expected, NET_FLOAT64)
    grouped = {"num_output": 4, "kernel_size": [3], "group": 2, "bias_term": False, "dilation": [2]}
    w2 = rand(4, 2, 3, 3)
    net = build(
        [layer("g", "Convolution", ["data"], convolution_param=grouped)],
        {"g": [w2]},
        shape=(1, 4, 9, 9),
    )
    x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
    expected = F.conv2d(x, t64(w2), groups=2, dilation=2)
    assert_within(net.double()(x), expected, NET_FLOAT64)


def transposed_by_loops(x: np.ndarray, kernel: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """A channel-wise transposed convolution, scattered pixel by pixel: `(C, H, W)` in, every
    input value spread over a `k`×`k` window of the output at `(i s - p, j s - p)`."""
    channels, height, width = x.shape
    k = kernel.shape[0]
    full = np.zeros((channels, (height - 1) * stride + k, (width - 1) * stride + k))
    for i in range(height):
        for j in range(width):
            full[:, i * stride : i * stride + k, j * stride : j * stride + k] += (
                x[:, i, j, None, None] * kernel
            )
    return full[:, pad : full.shape[1] - pad, pad : full.shape[2] - pad]


def caffe_bilinear_filler(k: int) -> np.ndarray:
    """filler.hpp's BilinearFiller, transcribed: f = ceil(k / 2), c = (k - 1) / (2 f)."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    return np.array(
        [[(1 - abs(x / f - c)) * (1 - abs(y / f - c)) for x in range(k)] for y in range(k)]
    )


@pytest.mark.parametrize(
    "k, stride, pad", [(2, 1, 0), (3, 2, 1), (4, 2, 1), (6, 3, 1), (7, 4, 2), (16, 8, 4)]
)
def test_deconvolution_with_the_bilinear_filler_against_loops(k, stride, pad):
    param = {
        "num_output": 3,
        "kernel_size": [k],
        "stride": [stride],
        "pad": [pad],
        "group": 3,
        "bias_term": False,
        "weight_filler": {"type": "bilinear"},
    }
    net = build(
        [layer("up", "Deconvolution", ["data"], convolution_param=param)], shape=(1, 3, 5, 4)
    )
    for channel in range(3):
        # the float32 filler against the formula in float64: one rounding of values at most 1
        np.testing.assert_allclose(
            net.params["up"][0][channel, 0].detach().numpy(), caffe_bilinear_filler(k), atol=U32
        )
    x = torch.randn(1, 3, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        ours = net.double()(x)[0].numpy()
    kernel = net.params["up"][0][0, 0].detach().numpy()  # the filler, checked just above
    expected = transposed_by_loops(x[0].numpy(), kernel, stride, pad)
    assert ours.shape == expected.shape
    # float64, at most k² products of magnitudes under 5 per output: under 1e-12
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_the_bilinear_filler_fills_every_channel_pair_and_refuses_non_square_kernels():
    param = {
        "num_output": 2,
        "kernel_size": [4],
        "stride": [2],
        "bias_term": False,
        "weight_filler": {"type": "bilinear"},
    }
    net = build([layer("up", "Deconvolution", ["data"], convolution_param=param)])
    weight = net.params["up"][0].detach()
    assert weight.shape == (3, 2, 4, 4)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(weight[i, j].numpy(), caffe_bilinear_filler(4), atol=U32)
    param = {**param, "kernel_h": 4, "kernel_w": 2}
    del param["kernel_size"]
    with pytest.raises(CaffeFormatError, match="square"):
        build([layer("up", "Deconvolution", ["data"], convolution_param=param)])


def assert_pooled_like_caffe(got: np.ndarray, expected: np.ndarray, mode: str) -> None:
    """MAX picks a value: exactly equal. AVE sums at most k² float64 values under 10 in
    magnitude (normal draws) and divides: a few 1e-15, under 1e-12."""
    if mode == "MAX":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def caffe_pool(x: np.ndarray, k: int, s: int, p: int, mode: str) -> np.ndarray:
    """Caffe's pooling, transcribed loop by loop (pooling_layer.cpp), for one 2-D map."""
    height, width = x.shape
    out_h = int(math.ceil((height + 2 * p - k) / s)) + 1
    out_w = int(math.ceil((width + 2 * p - k) / s)) + 1
    if p and (out_h - 1) * s >= height + p:
        out_h -= 1
    if p and (out_w - 1) * s >= width + p:
        out_w -= 1
    out = np.zeros((out_h, out_w), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, height + p), min(ws + k, width + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, height), min(we, width)
            window = x[hs:he, ws:we]
            out[i, j] = window.max() if mode == "MAX" else window.sum() / size
    return out


@pytest.mark.parametrize("mode", ["MAX", "AVE"])
@pytest.mark.parametrize(("size", "k", "s", "p"), [(7, 3, 2, 0), (8, 3, 2, 1), (10, 2, 2, 1)])
def test_pooling_rounds_and_clips_like_caffe(mode, size, k, s, p):
    param = {"pool": mode, "kernel_size": k, "stride": s, "pad": p}
    net = build([layer("p", "Pooling", ["data"], pooling_param=param)], shape=(1, 1, size, size))
    x = np.random.default_rng(size).standard_normal((size, size))
    got = net.double()(torch.from_numpy(x)[None, None])[0, 0].detach().numpy()
    assert_pooled_like_caffe(got, caffe_pool(x, k, s, p, mode), mode)


def test_global_pooling_relu_slope_dropout_softmax_flatten():
    layers = [
        layer("r", "ReLU", ["data"], relu_param={"negative_slope": 0.1}),
        layer("d", "Dropout", ["r"]),
        layer("g", "Pooling", ["d"], pooling_param={"pool": "AVE", "global_pooling": True}),
        layer("s", "Softmax", ["g"]),
        layer("f", "Flatten", ["s"]),
    ]
    net = build(layers)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = F.leaky_relu(x, 0.1).mean(dim=(2, 3)).softmax(1)
    assert_within(net.double()(x), expected, NET_FLOAT64)


def test_lrn_both_regions():
    across = {"local_size": 3, "alpha": 0.5, "beta": 0.75, "k": 2.0}
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    net = build([layer("n", "LRN", ["data"], lrn_param=across)], shape=(1, 4, 5, 5))
    squares = F.pad(x.pow(2), (0, 0, 0, 0, 1, 1))
    window = sum(squares[:, i : i + 4] for i in range(3))
    assert_within(net.double()(x), x / (2.0 + 0.5 / 3 * window) ** 0.75, NET_FLOAT64)
    within = {"local_size": 3, "alpha": 0.5, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"}
    net = build([layer("n", "LRN", ["data"], lrn_param=within)], shape=(1, 4, 5, 5))
    padded = F.pad(x.pow(2), (1, 1, 1, 1))
    box = sum(padded[..., i : i + 5, j : j + 5] for i in range(3) for j in range(3)) / 9
    assert_within(net.double()(x), x * (1 + 0.5 * box) ** -0.75, NET_FLOAT64)


def test_inner_product_axis_and_transpose():
    w, b = rand(5, 3 * 8 * 8), rand(5)
    net = build(
        [layer("ip", "InnerProduct", ["data"], inner_product_param={"num_output": 5})],
        {"ip": [w, b]},
    )
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert_within(net.double()(x), x.flatten(1) @ t64(w).T + t64(b), NET_FLOAT64)
    param = {"num_output": 5, "axis": 2, "transpose": True, "bias_term": False}
    wt = rand(8 * 8, 5)  # transpose: stored (inputs, outputs)
    net = build([layer("ip", "InnerProduct", ["data"], inner_product_param=param)], {"ip": [wt]})
    assert_within(net.double()(x), x.flatten(2) @ t64(wt), NET_FLOAT64)


def test_crop_eltwise_concat_split_reshape():
    layers = [
        {"name": "split", "type": "Split", "bottom": ["data"], "top": ["a", "b"]},
        layer(
            "small",
            "Pooling",
            ["a"],
            pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2},
        ),
        layer("crop", "Crop", ["b", "small"], crop_param={"axis": 2, "offset": [1, 2]}),
        layer(
            "sum",
            "Eltwise",
            ["small", "crop"],
            eltwise_param={"operation": "SUM", "coeff": [2.0, -1.0]},
        ),
        layer("max", "Eltwise", ["sum", "crop"], eltwise_param={"operation": "MAX"}),
        layer("prod", "Eltwise", ["max", "crop"], eltwise_param={"operation": "PROD"}),
        layer("cat", "Concat", ["prod", "crop"], concat_param={"axis": 1}),
        layer("shape", "Reshape", ["cat"], reshape_param={"shape": {"dim": [0, -1]}}),
    ]
    net = build(layers)
    assert isinstance(net, GraphNet)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    small = F.max_pool2d(x, 2)
    crop = x[:, :, 1:5, 2:6]
    combined = torch.maximum(2 * small - crop, crop) * crop
    assert_within(net.double()(x), torch.cat([combined, crop], 1).reshape(2, -1), NET_FLOAT64)


def test_batch_norm_and_scale():
    mean, var, factor = rand(3), np.abs(rand(3)) + 0.5, np.array([4.0], np.float32)
    gamma, beta = rand(3), rand(3)
    layers = [
        layer("bn", "BatchNorm", ["data"], batch_norm_param={"eps": 1e-3}),
        layer("sc", "Scale", ["bn"], scale_param={"bias_term": True}),
    ]
    net = build(layers, {"bn": [mean, var, factor], "sc": [gamma, beta]})
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    view = (1, 3, 1, 1)
    # Caffe stores the running sums and their scale factor; the net divides them in float32
    # before `.double()`, so the reference divides the float32 values the same way
    normalised = (x - t64(mean / np.float32(4)).view(view)) / torch.sqrt(
        t64(var / np.float32(4)).view(view) + 1e-3
    )
    expected = normalised * t64(gamma).view(view) + t64(beta).view(view)
    assert_within(net.double()(x), expected, NET_FLOAT64)


def conv_relu_pool() -> list[dict]:
    """conv1 -> relu1 (in place, on blob conv1) -> pool1."""
    return [
        layer(
            "conv1",
            "Convolution",
            ["data"],
            convolution_param={"num_output": 2, "kernel_size": [3]},
        ),
        {"name": "relu1", "type": "ReLU", "bottom": ["conv1"], "top": ["conv1"]},
        layer("pool1", "Pooling", ["conv1"], pooling_param={"pool": "MAX", "kernel_size": 2}),
    ]


def test_in_place_layers_and_blob_names():
    layers = conv_relu_pool()
    net = build(layers)
    assert isinstance(net, Net) and net.layer_names == ["conv1", "relu1", "pool1"]
    assert net.blob_layers["conv1"] == "relu1"  # blob conv1 holds the rectified values


def test_legacy_v1_format_with_4d_blobs():
    prototxt = {
        "name": "old",
        "input": ["data"],
        "input_dim": [1, 1, 6, 6],
        "layers": [
            {
                "name": "conv",
                "type": "CONVOLUTION",
                "bottom": ["data"],
                "top": ["conv"],
                "convolution_param": {"num_output": 2, "kernel_size": [3]},
            },
            {"name": "relu", "type": "RELU", "bottom": ["conv"], "top": ["conv"]},
            {
                "name": "ip",
                "type": "INNER_PRODUCT",
                "bottom": ["conv"],
                "top": ["ip"],
                "inner_product_param": {"num_output": 3},
            },
        ],
    }
    w, b, wi, bi = rand(2, 1, 3, 3), rand(2), rand(3, 2 * 4 * 4), rand(3)

    def v1_blob(array, dims):
        return {
            **dict(zip(("num", "channels", "height", "width"), dims)),
            "data": array.astype(np.float32).ravel(),
        }

    weights = {
        "name": "old",
        "layers": [
            {
                "name": "conv",
                "type": "CONVOLUTION",
                "blobs": [v1_blob(w, (2, 1, 3, 3)), v1_blob(b, (1, 1, 1, 2))],
            },
            {
                "name": "ip",
                "type": "INNER_PRODUCT",
                "blobs": [v1_blob(wi, (1, 1, 3, 32)), v1_blob(bi, (1, 1, 1, 3))],
            },
        ],
    }
    net = build_caffe_net(parse_text(encode_text(prototxt)))
    assert load_caffe_weights(net, parse_binary(encode_binary(weights))) == ["conv", "ip"]
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    hidden = F.relu(F.conv2d(x, t64(w.astype(np.float32)), t64(b.astype(np.float32)))).flatten(1)
    expected = hidden @ t64(wi.astype(np.float32)).T + t64(bi.astype(np.float32))
    assert_within(net.double()(x), expected, NET_FLOAT64)


def test_errors_name_the_layer():
    with pytest.raises(CaffeFormatError, match="'mystery'.*'Python'.*Convolution"):
        build([layer("mystery", "Python", ["data"])])
    with pytest.raises(CaffeFormatError, match="'c'.*'nowhere'"):
        build([layer("c", "ReLU", ["nowhere"])])
    param = {"num_output": 4, "kernel_size": [3]}
    wrong_shape = r"'c': weight blob has shape \(10,\); the layer needs \(4, 3, 3, 3\)"
    with pytest.raises(CaffeFormatError, match=wrong_shape):
        build(
            [layer("c", "Convolution", ["data"], convolution_param=param)],
            {"c": [rand(10), rand(4)]},
        )
    with pytest.raises(CaffeFormatError, match="'c' has 1 blobs"):
        build([layer("c", "Convolution", ["data"], convolution_param=param)], {"c": [rand(4)]})


def test_caffenet_prototxt_builds_the_caffenet_of_notebook_03():
    model = cs.load_model(f"caffe:{HERE / 'caffenet_deploy.prototxt'}")
    assert isinstance(model, Net) and "prob" not in model.layer_names  # scores, not softmax
    assert sum(p.numel() for p in model.parameters()) == 60_965_224
    assert len(model.class_names) == 1000 and model.class_names[281] == "tabby"
    assert isinstance(model.preprocess, CaffeTransformer)
    ours = layer_table(cs.load_model("caffenet", weights="random"), (1, 3, 227, 227))
    theirs = layer_table(model, (1, 3, 227, 227))
    expected = dict(zip(ours.column("layer"), ours.column("output")))
    found = dict(zip(theirs.column("layer"), theirs.column("output")))
    assert found == {name: expected[name] for name in found}  # ours adds an explicit flatten
    assert set(expected) - set(found) == {"flatten"}
    cast = cs.fully_convolutional(model)
    assert layer_table(cast, (1, 3, 451, 451)).rows[-1][3] == (1000, 8, 8)


def test_fcn8s_prototxt_gives_notebook_04s_table():
    with torch.device("meta"):
        model = build_caffe_net(read_prototxt(HERE / "fcn8s_deploy.prototxt"))
        ours = cs.load_model("fcn8s", weights="random")
    offsets = {n: m.offset for n, m in model.named_layers() if isinstance(m, Crop)}
    assert offsets == {"score_pool4c": 5, "score_pool3c": 9, "score": 31}
    theirs, expected = (layer_table(m, (1, 3, 500, 334)) for m in (model, ours))
    assert theirs.column("output") == expected.column("output")
    assert theirs.column("start") == expected.column("start")


def test_convert_a_caffe_digit_net_to_the_digits_architecture(tmp_path):
    """A Caffe twin of the digit classifier, converted, gives the same scores in convscope."""

    def conv(name, bottom, n, k):
        param = {"num_output": n, "kernel_size": [k]}
        return layer(name, "Convolution", [bottom], convolution_param=param)

    def pool(name, bottom):
        return layer(
            name, "Pooling", [bottom], pooling_param={"pool": "MAX", "kernel_size": 2, "stride": 2}
        )

    def relu(name, blob):
        return {"name": name, "type": "ReLU", "bottom": [blob], "top": [blob]}

    def ip(name, bottom, n):
        return layer(name, "InnerProduct", [bottom], inner_product_param={"num_output": n})

    layers = [
        conv("conv1", "data", 32, 5),
        relu("relu1", "conv1"),
        pool("pool1", "conv1"),
        conv("conv2", "pool1", 64, 5),
        relu("relu2", "conv2"),
        pool("pool2", "conv2"),
        conv("conv3", "pool2", 64, 3),
        relu("relu3", "conv3"),
        pool("pool3", "conv3"),
        ip("fc6", "pool3", 256),
        relu("relu6", "fc6"),
        ip("fc7", "fc6", 256),
        relu("relu7", "fc7"),
        ip("fc8", "fc7", 10),
    ]
    shapes = {
        "conv1": [(32, 1, 5, 5), (32,)],
        "conv2": [(64, 32, 5, 5), (64,)],
        "conv3": [(64, 64, 3, 3), (64,)],
        "fc6": [(256, 64), (256,)],
        "fc7": [(256, 256), (256,)],
        "fc8": [(10, 256), (10,)],
    }
    weights = {name: [rand(*s) * 0.1 for s in pair] for name, pair in shapes.items()}
    prototxt, caffemodel = tmp_path / "digits.prototxt", tmp_path / "digits.caffemodel"
    prototxt.write_text(encode_text(net_with(layers, (1, 1, 28, 28))))
    entries = [
        {"name": n, "type": "X", "blobs": [blob(a) for a in arrays]}
        for n, arrays in weights.items()
    ]
    caffemodel.write_bytes(encode_binary({"name": "d", "layer": entries}))
    out = tmp_path / "converted.pth"
    assert (
        main(["convert", str(prototxt), str(caffemodel), "--to", "digits", "--out", str(out)]) == 0
    )
    caffe_net = cs.load_model(f"caffe:{prototxt}:{caffemodel}")
    converted = cs.load_model("digits", weights=out)
    x = torch.randn(3, 1, 28, 28)
    # the same weights in the same float32 layers, in another module: the same result
    assert torch.equal(converted(x), caffe_net(x))
    # weights="random" keeps the prototxt's fillers; a path loads a state dict of this net
    fillers = cs.load_model(f"caffe:{prototxt}:{caffemodel}", weights="random")
    assert not torch.equal(fillers.params["conv1"][0], caffe_net.params["conv1"][0])
    saved = tmp_path / "caffe_net.pt"
    cs.save_weights(caffe_net, saved)
    reloaded = cs.load_model(f"caffe:{prototxt}", weights=saved)
    assert torch.equal(reloaded(x), caffe_net(x))
    with pytest.raises(CaffeFormatError, match="no layer 'conv1'"):
        convert_to(build([]), cs.load_model("digits", weights="random"))


def test_blobs_by_caffe_name_follow_in_place_layers():
    layers = conv_relu_pool()
    net = build(layers, {"conv1": [rand(2, 3, 3, 3), rand(2)]})
    x = torch.randn(1, 3, 8, 8)
    blobs = caffe_blobs(net, x)
    assert set(blobs) == {"data", "conv1", "pool1"}
    raw = F.conv2d(x, net.params["conv1"][0], net.params["conv1"][1])
    # the same float32 convolution on the same input: the same bits
    assert torch.equal(blobs["conv1"], raw.clamp(min=0))  # after the in-place ReLU
    assert torch.equal(blobs["pool1"], net(x))


@pytest.mark.parametrize(
    ("prototxt", "target"),
    [("caffenet_deploy.prototxt", "caffenet"), ("fcn8s_deploy.prototxt", "fcn8s")],
)
def test_converter_covers_every_parameter_of_the_architecture(prototxt, target):
    """On the meta device (no memory): names and shapes of the converted state dict."""
    with torch.device("meta"):
        caffe_model = build_caffe_net(read_prototxt(HERE / prototxt))
        ours = cs.load_model(target, weights="random")
    state = convert_to(caffe_model, ours)
    expected = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


pool_configs = st.tuples(
    st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(0, 3)
).filter(lambda c: c[3] <= c[1] // 2 and c[0] + 2 * c[3] >= c[1])


@settings(max_examples=80, deadline=None)
@given(height=pool_configs, width=st.integers(1, 40), mode=st.sampled_from(["MAX", "AVE"]))
def test_pooling_arithmetic_and_table_equal_a_real_forward_pass(height, width, mode):
    """For random kernel, stride, padding and sizes: `conv_output_size(ceil=True)`, the layer
    table and Caffe's loop transcription all give the size a forward pass gives."""
    size, k, s, p = height
    width = max(width, k - 2 * p)
    param = {"pool": mode, "kernel_size": k, "stride": s, "pad": p}
    pooling = [layer("p", "Pooling", ["data"], pooling_param=param)]
    if p == 0 and any(math.ceil((n - k) / s) * s >= n for n in (size, width)):
        # Caffe keeps a last window that starts past the input, which would be empty
        with pytest.raises(CaffeFormatError, match="outside the input"):
            build(pooling, shape=(1, 1, size, width))
        return
    net = build(pooling, shape=(1, 1, size, width))
    x = np.random.default_rng(size * 41 + width).standard_normal((size, width))
    with torch.no_grad():
        got = net.double()(torch.from_numpy(x)[None, None])[0, 0].numpy()
    expected = caffe_pool(x, k, s, p, mode)
    assert_pooled_like_caffe(got, expected, mode)
    arithmetic = (
        conv_output_size(size, k, s, p, ceil=True),
        conv_output_size(width, k, s, p, ceil=True),
    )
    assert arithmetic == got.shape
    assert layer_table(net, (1, 1, size, width)).column("output")[-1] == (1, *got.shape)


@settings(max_examples=60, deadline=None)
@given(config=pool_configs)
def test_convolution_arithmetic_equals_a_real_forward_pass(config):
    size, k, s, p = config
    param = {"num_output": 2, "kernel_size": [k], "stride": [s], "pad": [p]}
    net = build(
        [layer("c", "Convolution", ["data"], convolution_param=param)], shape=(1, 1, size, size)
    )
    with torch.no_grad():
        got = net(torch.zeros(1, 1, size, size)).shape[-1]
    assert conv_output_size(size, k, s, p) == got


def test_pooling_padding_torch_cannot_do_is_refused_by_name():
    param = {"pool": "MAX", "kernel_size": 3, "stride": 1, "pad": 2}  # Caffe allows pad < k
    with pytest.raises(CaffeFormatError, match=r"layer 'p': pooling_param pad 2 .* kernel 3"):
        build([layer("p", "Pooling", ["data"], pooling_param=param)])


def prototxt_blobs(net_param: dict) -> set[str]:
    """Every blob Caffe's `net.blobs` holds for a deploy net: its inputs and every top."""
    found = set(net_param.get("input", []))
    for entry in net_param.get("layer", net_param.get("layers", [])):
        found.update(entry.get("top", []))
    return found


def test_blobs_hold_every_caffe_blob_prob_included():
    """CaffeNet's deploy file, its fc layers made small so the test is quick."""
    text = (HERE / "caffenet_deploy.prototxt").read_text()
    net_param = parse_text(text.replace("num_output: 4096", "num_output: 16"))
    net = build_caffe_net(net_param)
    x = torch.randn(2, 3, 227, 227)
    blobs = caffe_blobs(net, x)
    assert set(blobs) == prototxt_blobs(net_param)
    assert list(blobs)[0] == "data" and list(blobs)[-1] == "prob"
    with torch.no_grad():
        scores = net(x)
    assert torch.equal(blobs["fc8"], scores)
    expected = scores.double().exp() / scores.double().exp().sum(dim=1, keepdim=True)
    # a float32 softmax against float64: exp and the division round each probability (at
    # most 1) by a few 2**-24; the sum of 1,000 terms by at most 1,000 × 2**-24 of 1
    assert (blobs["prob"].double() - expected).abs().max() <= 1000 * U32
    assert blobs["prob"].shape == (2, 1000)


def test_blobs_of_a_graph_net_hold_every_top():
    """FCN-8s's deploy file on the meta device: every blob by name, shapes as Caffe gives."""
    net_param = read_prototxt(HERE / "fcn8s_deploy.prototxt")
    with torch.device("meta"):
        net = build_caffe_net(net_param)
        blobs = caffe_blobs(net, torch.empty(1, 3, 500, 500))
    assert set(blobs) == prototxt_blobs(net_param)
    assert blobs["score"].shape == (1, 21, 500, 500)
