"""Reading .prototxt and .caffemodel files: round trips, hand-written bytes, errors, fuzzing."""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from caffe_files import encode_binary, encode_text
from hypothesis import event, given, settings
from hypothesis import strategies as st

from convscope.caffe.schema import ENUMS, MESSAGES, CaffeFormatError
from convscope.caffe.text import parse_text, read_prototxt
from convscope.caffe.wire import parse_binary, read_caffemodel
from convscope.core.errors import ConvscopeError

FUZZ = settings(max_examples=300, deadline=None)


def assert_same(got, expected, where: str = "") -> None:
    """Deep equality with the conventions' types: lists stay lists, arrays keep their dtype."""
    assert type(got) is type(expected), f"{where}: {type(got).__name__} vs {expected!r}"
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), f"{where}: keys {sorted(got)} vs {sorted(expected)}"
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), f"{where}: {got} vs {expected}"
        for index, (item, wanted) in enumerate(zip(got, expected)):
            assert_same(item, wanted, f"{where}[{index}]")
    elif isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and got.ndim == 1, f"{where}: {got.dtype}"
        np.testing.assert_array_equal(got, expected, err_msg=where)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got), f"{where}: {got} is not nan"
    else:
        assert got == expected, f"{where}: {got!r} vs {expected!r}"


# --- Hand-made wire format, independent of caffe_files' writer ------------------------------


def varint(value: int) -> bytes:
    """Base-128, low group first; negative numbers as their 64-bit two's complement."""
    value %= 1 << 64
    groups = [value >> shift & 0x7F for shift in range(0, 64, 7)]
    while len(groups) > 1 and groups[-1] == 0:
        groups.pop()
    return bytes([group | 0x80 for group in groups[:-1]] + groups[-1:])


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def test_hand_encoding_helpers_match_the_protobuf_documentation():
    assert varint(1) == b"\x01" and varint(150) == b"\x96\x01" and varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert key(1, 2) == b"\x0a" and key(100, 2) == b"\xa2\x06" and key(5, 5) == b"\x2d"


WEIGHTS = [0.5, -1.25, 3.0, 1e-3, 2.0, -0.0]


def hand_made_caffemodel() -> bytes:
    """A three-layer NetParameter written field by field, in field-number order like Caffe."""
    filler = length_delimited(1, b"gaussian") + key(6, 5) + struct.pack("<f", 0.01)
    conv = (
        key(1, 0)
        + varint(96)  # num_output
        + key(4, 0)
        + varint(11)  # kernel_size (repeated, not packed)
        + key(5, 0)
        + varint(2)  # group
        + key(6, 0)
        + varint(4)  # stride
        + length_delimited(7, filler)  # weight_filler
    )
    blob = length_delimited(5, struct.pack("<6f", *WEIGHTS)) + length_delimited(
        7,
        length_delimited(1, varint(2) + varint(3)),  # shape { dim: 2 dim: 3 }, packed
    )
    conv1 = (
        length_delimited(1, b"conv1")
        + length_delimited(2, b"Convolution")
        + length_delimited(3, b"data")
        + length_delimited(4, b"conv1")
        + key(5, 5)
        + struct.pack("<f", 1.0)  # loss_weight
        + length_delimited(7, blob)
        + key(10, 0)
        + varint(1)  # phase: TEST
        + length_delimited(106, conv)
    )
    pool = key(1, 0) + varint(1) + key(2, 0) + varint(3) + key(3, 0) + varint(2)
    pool1 = length_delimited(1, b"pool1") + length_delimited(121, pool)
    reshape = length_delimited(1, length_delimited(1, varint(0) + varint(-1)))
    reshape += key(3, 0) + varint(-1)  # num_axes: -1, a ten-byte varint
    flat = length_delimited(1, b"flat") + length_delimited(133, reshape)
    header = length_delimited(1, b"tiny") + length_delimited(3, b"data")
    header += b"".join(key(4, 0) + varint(dim) for dim in (1, 3, 8, 8))
    return header + b"".join(length_delimited(100, layer) for layer in (conv1, pool1, flat))


HAND_MADE_NET = {
    "name": "tiny",
    "input": ["data"],
    "input_dim": [1, 3, 8, 8],
    "layer": [
        {
            "name": "conv1",
            "type": "Convolution",
            "bottom": ["data"],
            "top": ["conv1"],
            "loss_weight": [1.0],
            "blobs": [{"data": np.array(WEIGHTS, np.float32), "shape": {"dim": [2, 3]}}],
            "phase": "TEST",
            "convolution_param": {
                "num_output": 96,
                "kernel_size": [11],
                "group": 2,
                "stride": [4],
                "weight_filler": {"type": "gaussian", "std": 0.01},
            },
        },
        {"name": "pool1", "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2}},
        {"name": "flat", "reshape_param": {"shape": {"dim": [0, -1]}, "num_axes": -1}},
    ],
}


def test_hand_written_bytes_read_field_by_field():
    net = parse_binary(hand_made_caffemodel())
    assert_same(net, HAND_MADE_NET)
    conv1 = net["layer"][0]
    assert conv1["blobs"][0]["data"][3] == np.float32(1e-3)
    assert conv1["convolution_param"]["weight_filler"]["std"] == 0.01  # float32 read as 0.01
    assert net["layer"][2]["reshape_param"]["shape"]["dim"] == [0, -1]


def test_the_test_writer_reproduces_the_hand_written_bytes():
    assert encode_binary(HAND_MADE_NET) == hand_made_caffemodel()


# --- Round trips through the test writer -----------------------------------------------------


def blob(shape: tuple[int, ...], seed: int) -> dict:
    values = np.random.default_rng(seed).standard_normal(int(np.prod(shape)))
    return {"shape": {"dim": list(shape)}, "data": values.astype(np.float32)}


CURRENT_NET = {
    "name": "CaffeNet-ish",
    "layer": [
        {
            "name": "data",
            "type": "Input",
            "top": ["data"],
            "input_param": {"shape": [{"dim": [10, 3, 227, 227]}]},
        },
        {
            "name": "conv1",
            "type": "Convolution",
            "bottom": ["data"],
            "top": ["conv1"],
            "param": [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}],
            "blobs": [blob((4, 3, 3, 3), 0), blob((4,), 1)],
            "convolution_param": {
                "num_output": 4,
                "kernel_size": [3],
                "stride": [2],
                "pad": [1],
                "dilation": [1],
                "bias_filler": {"type": "constant", "value": 0.1},
                "engine": "CAFFE",
            },
        },
        {
            "name": "norm1",
            "type": "LRN",
            "bottom": ["conv1"],
            "top": ["norm1"],
            "lrn_param": {
                "local_size": 5,
                "alpha": 0.0001,
                "beta": 0.75,
                "k": 2.0,
                "norm_region": "ACROSS_CHANNELS",
            },
        },
        {
            "name": "bn",
            "type": "BatchNorm",
            "bottom": ["norm1"],
            "top": ["norm1"],
            "blobs": [
                {
                    "shape": {"dim": [4]},
                    "data": np.zeros(4, np.float32),
                    "double_data": np.array([1.5, -2.0]),
                    "diff": np.ones(4, np.float32),
                }
            ],
            "batch_norm_param": {"use_global_stats": True, "eps": 1e-5},
        },
        {
            "name": "fc",
            "type": "InnerProduct",
            "bottom": ["norm1"],
            "top": ["fc"],
            "blobs": [
                {
                    "num": 1,
                    "channels": 1,
                    "height": 2,
                    "width": 6,
                    "data": np.arange(12, dtype=np.float32),
                }
            ],
            "inner_product_param": {"num_output": 2, "transpose": False, "axis": -1},
            "include": [{"phase": "TEST", "stage": ["deploy"], "min_level": -2}],
            "propagate_down": [True, False],
            "loss_weight": [0.5],
        },
        {
            "name": "sum",
            "type": "Eltwise",
            "bottom": ["fc", "fc"],
            "top": ["sum"],
            "eltwise_param": {"operation": "PROD", "coeff": [1.0, -1.0], "stable_prod_grad": True},
        },
        {
            "name": "prob",
            "type": "Softmax",
            "bottom": ["sum"],
            "top": ["prob"],
            "softmax_param": {"axis": 1},
        },
    ],
}

V1_NET = {
    "name": "CaffeNet-V1",
    "input": ["data"],
    "input_dim": [10, 3, 227, 227],
    "layers": [
        {
            "name": "conv1",
            "type": "CONVOLUTION",
            "bottom": ["data"],
            "top": ["conv1"],
            "blobs": [blob((2, 3, 1, 1), 2), blob((2,), 3)],
            "blobs_lr": [1.0, 2.0],
            "weight_decay": [1.0, 0.0],
            "convolution_param": {"num_output": 2, "kernel_size": [1], "group": 1},
        },
        {
            "name": "pool1",
            "type": "POOLING",
            "bottom": ["conv1"],
            "top": ["pool1"],
            "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2},
        },
        {
            "name": "fc8",
            "type": "INNER_PRODUCT",
            "bottom": ["pool1"],
            "top": ["fc8"],
            "blobs": [blob((1, 1, 5, 2), 4)],
            "param": ["shared"],
            "blob_share_mode": ["PERMISSIVE"],
            "inner_product_param": {"num_output": 5, "bias_term": False},
        },
        {"name": "drop", "type": "DROPOUT", "dropout_param": {"dropout_ratio": 0.5}},
        {"name": "prob", "type": "SOFTMAX", "include": [{"phase": "TEST"}]},
    ],
}


@pytest.mark.parametrize("net", [CURRENT_NET, V1_NET], ids=["current", "v1"])
@pytest.mark.parametrize("packed", [None, True, False], ids=["as-caffe", "all-packed", "unpacked"])
def test_binary_round_trip(net, packed):
    assert_same(parse_binary(encode_binary(net, packed=packed)), net)


@pytest.mark.parametrize("net", [CURRENT_NET, V1_NET], ids=["current", "v1"])
def test_text_round_trip_and_both_readers_agree(net):
    from_text = parse_text(encode_text(net))
    assert_same(from_text, net)
    assert_same(from_text, parse_binary(encode_binary(net)))


def test_files_round_trip(tmp_path):
    (tmp_path / "net.prototxt").write_text(encode_text(V1_NET), encoding="utf-8")
    (tmp_path / "net.caffemodel").write_bytes(encode_binary(CURRENT_NET))
    assert_same(read_prototxt(tmp_path / "net.prototxt"), V1_NET)
    assert_same(read_prototxt(str(tmp_path / "net.prototxt")), V1_NET)
    assert_same(read_caffemodel(str(tmp_path / "net.caffemodel")), CURRENT_NET)


# --- A hand-written prototxt -----------------------------------------------------------------

PROTOTXT = r"""
# CaffeNet's head, old style: input and input_dim at the top level
name: "Tiny\tNet \"q\" \\ \x41\101 caf\u00e9" " + café"   # adjacent strings are joined
input: "data"
input_dim: 1
input_dim: 3
input_dim: 227 input_dim: 227
input_shape { dim: 1 dim: 3 dim: 227 dim: 227 }
state: { phase: TEST stage: 'deploy' }
layer {
  name: "conv1"  # comment after a value
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 2 decay_mult: 0 }
  convolution_param {
    num_output: 96
    kernel_size: 11
    stride: 4
    weight_filler { type: "gaussian" std: 0.01 }
    bias_filler < type: "constant" value: 0 >
  }
}
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1"
  lrn_param { local_size: 5 alpha: 1e-4 beta: .75 norm_region: WITHIN_CHANNEL } }
layer { name: "pool1" type: "Pooling"; bottom: "norm1", top: "pool1"
  pooling_param: { pool: 1 kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "relu" type: "ReLU" relu_param { negative_slope: -0.5 } }
layer { name: "sum" type: "Eltwise" bottom: ["a", "b"]
  eltwise_param { operation: SUM coeff: [1, -1e0] } }
layer { name: "loss" type: "SoftmaxWithLoss" include { phase: TRAIN } loss_weight: 1
  propagate_down: true propagate_down: f }
layer { name: "scale" type: "Scale" scale_param { bias_term: True filler { value: inf }
  bias_filler { value: -Infinity min: nan max: 0x10 } } }
layer { name: "shape" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } axis: 0x1 } }
"""


def test_hand_written_prototxt_field_by_field():
    net = read_prototxt(PROTOTXT)
    assert net["name"] == 'Tiny\tNet "q" \\ AA café + café'
    assert net["input"] == ["data"] and net["input_dim"] == [1, 3, 227, 227]
    assert net["input_shape"] == [{"dim": [1, 3, 227, 227]}]
    assert net["state"] == {"phase": "TEST", "stage": ["deploy"]}
    conv1, norm1, pool1, relu, add, loss, scale, reshape = net["layer"]
    assert conv1 == {
        "name": "conv1",
        "type": "Convolution",
        "bottom": ["data"],
        "top": ["conv1"],
        "param": [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}],
        "convolution_param": {
            "num_output": 96,
            "kernel_size": [11],
            "stride": [4],
            "weight_filler": {"type": "gaussian", "std": 0.01},
            "bias_filler": {"type": "constant", "value": 0.0},
        },
    }
    assert norm1["lrn_param"] == {
        "local_size": 5,
        "alpha": 0.0001,
        "beta": 0.75,
        "norm_region": "WITHIN_CHANNEL",
    }
    assert pool1["bottom"] == ["norm1"] and pool1["top"] == ["pool1"]
    assert pool1["pooling_param"] == {
        "pool": "AVE",
        "kernel_size": 3,
        "stride": 2,
        "round_mode": "FLOOR",
    }
    assert relu["relu_param"] == {"negative_slope": -0.5}
    assert add["bottom"] == ["a", "b"]
    assert add["eltwise_param"] == {"operation": "SUM", "coeff": [1.0, -1.0]}
    assert loss["include"] == [{"phase": "TRAIN"}] and loss["loss_weight"] == [1.0]
    assert loss["propagate_down"] == [True, False]
    assert scale["scale_param"]["bias_term"] is True
    assert scale["scale_param"]["filler"]["value"] == math.inf
    bias_filler = scale["scale_param"]["bias_filler"]
    assert bias_filler["value"] == -math.inf and math.isnan(bias_filler["min"])
    assert bias_filler["max"] == 16.0
    assert reshape["reshape_param"] == {"shape": {"dim": [0, -1]}, "axis": 1}
    assert isinstance(net["input_dim"][0], int) and isinstance(conv1["param"][0]["lr_mult"], float)


def test_v1_prototxt_with_type_names_and_numbers():
    net = parse_text(
        """name: "CaffeNet"
        layers { name: "conv1" type: CONVOLUTION blobs_lr: 1 blobs_lr: 2
                 convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
        layers { name: "pool1" type: POOLING pooling_param { pool: MAX kernel_size: 3 } }
        layers { name: "fc8" type: 14 include: { phase: TEST } }"""
    )
    assert [layer["type"] for layer in net["layers"]] == ["CONVOLUTION", "POOLING", "INNER_PRODUCT"]
    assert net["layers"][0]["blobs_lr"] == [1.0, 2.0]
    assert net["layers"][1]["pooling_param"] == {"pool": "MAX", "kernel_size": 3}


def test_float_fields_read_the_same_from_text_and_binary():
    """0.1 is no float32; both readers give the shortest decimal of the stored float32."""
    as_bytes = length_delimited(100, length_delimited(118, key(2, 5) + struct.pack("<f", 0.1)))
    from_binary = parse_binary(as_bytes)["layer"][0]["lrn_param"]["alpha"]
    from_text = parse_text("layer { lrn_param { alpha: 0.1 } }")["layer"][0]["lrn_param"]["alpha"]
    assert from_binary == from_text == 0.1
    assert (
        parse_text("layer { lrn_param { alpha: 0.10000000149 } }")["layer"][0]["lrn_param"]["alpha"]
        == 0.1
    )  # the same float32


def test_message_argument_reads_other_messages():
    assert parse_text("dim: 2 dim: 3", "BlobShape") == {"dim": [2, 3]}
    assert parse_binary(key(1, 0) + varint(7), "BlobShape") == {"dim": [7]}
    with pytest.raises(CaffeFormatError, match="unknown message 'Blob'.*BlobShape"):
        parse_text("", "Blob")


# --- Wire-format rules -----------------------------------------------------------------------


def test_packed_and_unpacked_repeated_numbers_are_both_read():
    floats = [1.5, -2.0, 0.25, 8.0, 3.0, 1e-3]
    mixed = (
        b"".join(key(5, 5) + struct.pack("<f", value) for value in floats[:2])  # unpacked
        + length_delimited(5, struct.pack("<3f", *floats[2:5]))  # a packed run
        + key(5, 5)
        + struct.pack("<f", floats[5])  # unpacked again
        + key(1, 0)
        + varint(6)  # the old 4-D num, between data fields
        + length_delimited(8, struct.pack("<2d", 0.5, 1e300))  # double_data, packed
        + key(8, 1)
        + struct.pack("<d", -1.0)  # and unpacked
    )
    blob = parse_binary(mixed, "BlobProto")
    assert_same(
        blob,
        {
            "num": 6,
            "data": np.array(floats, np.float32),
            "double_data": np.array([0.5, 1e300, -1.0]),
        },
    )
    unpacked_dims = key(1, 0) + varint(2) + key(1, 0) + varint(-1)
    assert parse_binary(unpacked_dims, "BlobShape") == {"dim": [2, -1]}
    packed_weights = length_delimited(5, struct.pack("<2f", 0.5, 2.0))  # loss_weight, packed
    assert parse_binary(packed_weights, "LayerParameter") == {"loss_weight": [0.5, 2.0]}
    assert parse_binary(length_delimited(5, b""), "BlobProto") == {}  # empty runs: absent
    assert parse_binary(length_delimited(1, b""), "BlobShape") == {}
    packed_bools = length_delimited(11, varint(1) + varint(0) + varint(2))  # propagate_down
    assert parse_binary(packed_bools, "LayerParameter") == {"propagate_down": [True, False, True]}


def unknown_fields(number: int) -> bytes:
    """One unknown field of every wire type, the group holding a nested field."""
    return (
        key(number, 0)
        + varint(2**63)
        + key(number + 1, 1)
        + b"\x01" * 8
        + length_delimited(number + 2, b"anything")
        + key(number + 3, 5)
        + b"\x02" * 4
        + key(number + 4, 3)
        + key(1, 0)
        + varint(5)
        + key(number + 4, 4)
    )


def test_unknown_fields_are_skipped():
    layer = length_delimited(1, b"conv1") + unknown_fields(148) + length_delimited(2, b"ReLU")
    data = unknown_fields(900) + length_delimited(100, layer) + unknown_fields(20)
    assert parse_binary(data) == {"layer": [{"name": "conv1", "type": "ReLU"}]}


def test_a_singular_message_seen_twice_is_merged_and_scalars_keep_the_last():
    conv = length_delimited(106, key(1, 0) + varint(8)) + length_delimited(106, key(4, 0) + b"\x03")
    layer = length_delimited(1, b"first") + conv + length_delimited(1, b"second")
    assert parse_binary(layer, "LayerParameter") == {
        "name": "second",
        "convolution_param": {"num_output": 8, "kernel_size": [3]},
    }


def single_layer_caffemodel() -> bytes:
    """One top-level field: every proper prefix cuts inside it."""
    layer = {
        "name": "conv",
        "type": "Convolution",
        "bottom": ["data"],
        "top": ["conv"],
        "blobs": [blob((4, 2, 3, 3), 5), blob((4,), 6)],
        "convolution_param": {"num_output": 4, "kernel_size": [3], "pad": [1]},
    }
    return encode_binary({"layer": [layer]})


def test_every_truncation_is_reported_with_its_place():
    data = single_layer_caffemodel()
    assert 300 < len(data) < 1000
    for size in range(1, len(data)):
        with pytest.raises(CaffeFormatError, match=r"^byte \d+: .*truncated") as caught:
            parse_binary(data[:size])
        assert "NetParameter" in str(caught.value)


def test_a_corrupt_inner_length_names_the_field_path():
    layer = length_delimited(1, b"conv") + key(7, 2) + varint(50) + b"\0" * 10
    with pytest.raises(CaffeFormatError) as caught:
        parse_binary(length_delimited(100, layer))
    assert str(caught.value) == (
        "byte 11: BlobProto 'blobs' needs 50 bytes, only 10 remain (truncated file) "
        "[in NetParameter.layer[0].blobs]"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (key(1, 0) + varint(5), r"byte 0: field 1 is stored as varint.*'optional string name = 1'"),
        (key(100, 5) + b"\0" * 4, r"byte 0: .*32-bit.*\[in NetParameter\.layer\]"),
        (
            length_delimited(100, length_delimited(7, key(5, 1) + b"\0" * 8)),
            r"byte 5: .*'repeated float data = 5 \[packed = true\]'.*layer\[0\]\.blobs\[0\]\.data",
        ),
        (key(3, 3) + key(3, 4), r"start-group.*NetParameter\.input"),
        (key(7, 4), r"end-group"),
        (key(0, 0) + b"\x01", r"field number 0"),
        (key(9, 6), r"invalid wire type 6"),
        (b"\xff" * 11, r"varint longer than 10 bytes"),
        (key(1, 2) + varint(2) + b"\xc3\x28", r"byte 2: string is not UTF-8"),
        (key(99, 3) * 40, r"groups nested over 32 deep"),
        (key(99, 3) + key(98, 4), r"group 99 ended as 98"),
        (key(99, 3) + key(1, 0) + b"\x01", r"group 99 is never closed"),
    ],
    ids=[
        "string-as-varint",
        "message-as-32-bit",
        "floats-as-64-bit",
        "string-as-group",
        "stray-end-group",
        "field-0",
        "wire-type-6",
        "long-varint",
        "bad-utf8",
        "deep-groups",
        "group-mismatch",
        "open-group",
    ],
)
def test_corrupt_binary_is_a_caffe_format_error(data, message):
    with pytest.raises(CaffeFormatError, match=message):
        parse_binary(data)


def test_packed_float_run_of_a_wrong_length():
    with pytest.raises(CaffeFormatError, match=r"byte 2: packed run of 3 bytes .* floats"):
        parse_binary(length_delimited(5, b"\0\0\0"), "BlobProto")


def test_unknown_enum_number_lists_the_choices():
    layer = length_delimited(121, key(1, 0) + varint(7))
    with pytest.raises(CaffeFormatError, match=r"7 is not a PoolMethod for 'pool'.*MAX=0, AVE=1"):
        parse_binary(layer, "LayerParameter")


def test_errors_are_convscope_errors():
    assert issubclass(CaffeFormatError, ConvscopeError)


# --- Text errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name: "x"\nlayer {\n  name: "a"\n', r"line 4:1: '}' missing for the '{' at line 2:7"),
        ("layer { nme: 1 }", r"line 1:9: unknown field 'nme' in LayerParameter \(did you mean "),
        ('name: "abc', r"line 1:7: string '\"' is not closed"),
        ('layer { name "a" }', r"line 1:14: expected ':' after 'name', found '\"a\"'"),
        ("layer {\n pooling_param { pool: MAXIMUM } }", r"line 2:24: 'MAXIMUM' is not a Pool"),
        ("layer { pooling_param { pool: 5 } }", r"line 1:31: 5 is not a PoolMethod.*MAX=0"),
        ('name: "a" name: "b"', r"line 1:11: 'name' is set twice"),
        ("layer { convolution_param { num_output: 1.5 } }", r"1:41: expected a uint32"),
        ("layer { convolution_param { num_output: -1 } }", r"-1 is out of range for uint32"),
        ("input_dim: 3000000000", r"1:12: 3000000000 is out of range for int32"),
        ('name: "a\\q"', r"line 1:9: invalid escape '\\\\q'"),
        ('layer { name: "a" } }', r"line 1:21: expected a field name of NetParameter, found '}'"),
        ("input_dim: 12abc", r"line 1:12: invalid number '12abc'"),
        ("layer: 5", r"line 1:8: expected '{' or '<' to open 'layer'"),
        ("layer { type: Convolution }", r"line 1:15: expected a quoted string for 'type'"),
        ('name: "a" $', r"line 1:11: unexpected character '\$'"),
        ("force_backward: yes", r"line 1:17: expected a bool for 'force_backward'"),
        ('layer { bottom: ["a" "b", }', r"expected a quoted string for 'bottom', found '}'"),
        ('layer { bottom: ["a" }', r"line 1:22: expected ',' between values of 'bottom'"),
        ("layer { pooling_param { pool: MAX } > ", r"line 1:37: expected a field name"),
        ("layer { include { phase: TEST } ", r"'}' missing for the '{' at line 1:7"),
        ("input_dim: ", r"line 1:12: expected an int32 for 'input_dim', found the end"),
        ('name: "\\xZZ"', r"invalid escape"),
        ('name: "\\377"', r"string is not UTF-8"),
        ("input_dim: 09", r"expected an int32"),
        ("input_dim: --1", r"expected an int32"),
        ("input_dim: " + "9" * 5000, r"1:12: 99999999999999999999\.\.\.\(5000 digits\) is out of"),
        ("input_dim: \u0663", r"1:12: unexpected character '\u0663'"),  # an Arabic-Indic 3
    ],
)
def test_text_errors_name_line_and_column(text, message):
    with pytest.raises(CaffeFormatError, match=message):
        parse_text(text)


def test_text_errors_name_the_field_path():
    text = 'layer { name: "a" }\nlayer {\n  convolution_param { weight_filler { std: x } } }'
    with pytest.raises(CaffeFormatError) as caught:
        parse_text(text)
    assert str(caught.value).startswith("line 3:44: expected a float for 'std'")
    assert "[in NetParameter.layer[1].convolution_param.weight_filler.std]" in str(caught.value)


# --- Files -----------------------------------------------------------------------------------


def test_file_errors(tmp_path: Path):
    with pytest.raises(CaffeFormatError, match="prototxt file not found: .*nowhere.prototxt"):
        read_prototxt(tmp_path / "nowhere.prototxt")
    with pytest.raises(CaffeFormatError, match="caffemodel file not found"):
        read_caffemodel(str(tmp_path / "nowhere.caffemodel"))
    with pytest.raises(CaffeFormatError, match="caffemodel .* is a folder"):
        read_caffemodel(tmp_path)
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(CaffeFormatError, match="holds no layers"):
        read_caffemodel(tmp_path / "empty.caffemodel")
    (tmp_path / "text.caffemodel").write_text(encode_text(V1_NET))
    with pytest.raises(CaffeFormatError, match=r"text.caffemodel: byte 0: "):
        read_caffemodel(tmp_path / "text.caffemodel")
    (tmp_path / "bad.prototxt").write_text('name: "x"\nlayer { nam: "y" }\n')
    with pytest.raises(CaffeFormatError, match=r"bad.prototxt: line 2:9: unknown field 'nam'"):
        read_prototxt(str(tmp_path / "bad.prototxt"))
    (tmp_path / "latin1.prototxt").write_bytes('name: "café"'.encode("latin-1"))
    with pytest.raises(CaffeFormatError, match=r"latin1.prototxt: byte 10: not UTF-8"):
        read_prototxt(tmp_path / "latin1.prototxt")
    (tmp_path / "bom.prototxt").write_bytes('\ufeffname: "x"'.encode())  # Windows editors
    assert read_prototxt(tmp_path / "bom.prototxt") == {"name": "x"}
    with pytest.raises(
        CaffeFormatError, match=r"prototxt must be a file path \(str or Path\); got b"
    ):
        read_prototxt(b"name: 'x'")


def test_text_or_path_rule():
    """A str with a newline or '{' is text; any other str is a path."""
    assert read_prototxt('name: "x" layer { name: "y" }') == {"name": "x", "layer": [{"name": "y"}]}
    assert read_prototxt('name: "x"\n') == {"name": "x"}
    with pytest.raises(CaffeFormatError, match="file not found"):
        read_prototxt('name: "x"')


# --- Property tests --------------------------------------------------------------------------

MESSAGE_NAMES = ["NetParameter", "LayerParameter", "V1LayerParameter", "BlobProto"]


def read_or_reject(reader, data, message: str = "NetParameter") -> None:
    """Either a dict or a CaffeFormatError, never anything else."""
    try:
        result = reader(data, message)
    except CaffeFormatError as error:
        assert str(error)
        event("rejected")
        return
    assert isinstance(result, dict)
    event("read")


@FUZZ
@given(data=st.binary(max_size=300), message=st.sampled_from(MESSAGE_NAMES))
def test_random_bytes(data, message):
    read_or_reject(parse_binary, data, message)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
def test_mutated_caffemodel(edits):
    data = bytearray(hand_made_caffemodel())
    for position, byte in edits:
        data[position % len(data)] = byte
    read_or_reject(parse_binary, bytes(data))


TEXT_PIECES = [
    "layer",
    "layers",
    "name",
    "type",
    "bottom",
    "convolution_param",
    "pooling_param",
    "num_output",
    "pool",
    "kernel_size",
    "blobs",
    "data",
    "shape",
    "dim",
    "input_dim",
    "phase",
    "include",
    "MAX",
    "TEST",
    "inf",
    "nan",
    "true",
    "{",
    "}",
    "<",
    ">",
    ":",
    ";",
    ",",
    "[",
    "]",
    "-",
    '"x"',
    "'y'",
    '"\\n\\101"',
    '"',
    "1",
    "0x1F",
    "-2",
    "1e-4",
    ".5",
    "07",
    "#",
    "\n",
    " ",
]


@FUZZ
@given(st.lists(st.sampled_from(TEXT_PIECES), max_size=40).map(" ".join))
def test_random_token_sequences(text):
    read_or_reject(parse_text, text)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text):
    read_or_reject(parse_text, text)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.sampled_from("{}:\"' #\\-.1aé\n")),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_prototxt(edits):
    text = PROTOTXT
    for position, length, replacement in edits:
        position %= len(text)
        text = text[:position] + replacement + text[position + length :]
    read_or_reject(parse_text, text)


# --- Random messages through both writers and readers ---------------------------------------

INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


def float32_values() -> st.SearchStrategy[float]:
    """Floats as the readers give them: the shortest decimal of a float32.

    No subnormals: the suite's seeding helper flushes them to zero (torch.set_flush_denormal).
    """
    return st.floats(width=32, allow_subnormal=False).map(
        lambda value: float(str(np.float32(value)))
    )


def scalar_values(type_name: str) -> st.SearchStrategy:
    if type_name in ENUMS:
        return st.sampled_from(sorted(ENUMS[type_name]))
    if type_name in INT_RANGES:
        return st.integers(*INT_RANGES[type_name])
    return {
        "bool": st.booleans(),
        "float": float32_values(),
        "double": st.floats(allow_subnormal=False),
        "string": st.text(max_size=8),
    }[type_name]


@functools.cache
def message_values(message: str, depth: int = 0) -> st.SearchStrategy[dict]:
    """Random dicts of `message` following the conventions (no empty lists), 4 levels deep."""
    fields = {}
    for name, (label, type_name, _) in MESSAGES[message].items():
        if type_name in MESSAGES:
            if depth >= 3:
                continue
            value = message_values(type_name, depth + 1)
        else:
            value = scalar_values(type_name)
        if label == "packed" and type_name in ("float", "double"):
            dtype = np.float32 if type_name == "float" else np.float64
            value = st.lists(value, min_size=1, max_size=5).map(lambda v, d=dtype: np.array(v, d))
        elif label != "optional":
            value = st.lists(value, min_size=1, max_size=2)
        fields[name] = value
    return st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=150, deadline=None)
@given(net=message_values("NetParameter"), packed=st.sampled_from([None, True, False]))
def test_random_nets_round_trip_through_both_formats(net, packed):
    assert_same(parse_binary(encode_binary(net, packed=packed)), net)
    assert_same(parse_text(encode_text(net)), net)


@settings(max_examples=150, deadline=None)
@given(layer=message_values("LayerParameter", 1))
def test_random_layers_round_trip_through_both_formats(layer):
    assert_same(parse_binary(encode_binary(layer, "LayerParameter"), "LayerParameter"), layer)
    assert_same(parse_text(encode_text(layer, "LayerParameter"), "LayerParameter"), layer)


# --- The schema against upstream BVLC caffe.proto --------------------------------------------

# Field declarations as BVLC's caffe.proto writes them (label, type, number): facts read from
# upstream, independent of the package's schema tables.
UPSTREAM_FIELDS = [
    ("NetParameter", "layer", "repeated LayerParameter 100"),
    ("NetParameter", "layers", "repeated V1LayerParameter 2"),
    ("NetParameter", "input_shape", "repeated BlobShape 8"),
    ("NetParameter", "input_dim", "repeated int32 4"),
    ("BlobShape", "dim", "packed int64 1"),
    ("BlobProto", "data", "packed float 5"),
    ("BlobProto", "double_data", "packed double 8"),
    ("BlobProto", "shape", "optional BlobShape 7"),
    ("LayerParameter", "phase", "optional Phase 10"),
    ("LayerParameter", "propagate_down", "repeated bool 11"),
    ("LayerParameter", "convolution_param", "optional ConvolutionParameter 106"),
    ("LayerParameter", "pooling_param", "optional PoolingParameter 121"),
    ("LayerParameter", "inner_product_param", "optional InnerProductParameter 117"),
    ("LayerParameter", "batch_norm_param", "optional BatchNormParameter 139"),
    ("LayerParameter", "crop_param", "optional CropParameter 144"),
    ("LayerParameter", "input_param", "optional InputParameter 143"),
    ("ConvolutionParameter", "dilation", "repeated uint32 18"),
    ("ConvolutionParameter", "stride", "repeated uint32 6"),
    ("PoolingParameter", "round_mode", "optional RoundMode 13"),
    ("PoolingParameter", "stride", "optional uint32 3"),
    ("V1LayerParameter", "type", "optional LayerType 5"),
    ("V1LayerParameter", "convolution_param", "optional ConvolutionParameter 10"),
    ("V1LayerParameter", "param", "repeated string 1001"),
    # every other field the round trips above write, as BVLC's caffe.proto declares it
    ("NetParameter", "name", "optional string 1"),
    ("NetParameter", "input", "repeated string 3"),
    ("BlobProto", "num", "optional int32 1"),
    ("BlobProto", "channels", "optional int32 2"),
    ("BlobProto", "height", "optional int32 3"),
    ("BlobProto", "width", "optional int32 4"),
    ("BlobProto", "diff", "packed float 6"),
    ("LayerParameter", "name", "optional string 1"),
    ("LayerParameter", "type", "optional string 2"),
    ("LayerParameter", "bottom", "repeated string 3"),
    ("LayerParameter", "top", "repeated string 4"),
    ("LayerParameter", "loss_weight", "repeated float 5"),
    ("LayerParameter", "param", "repeated ParamSpec 6"),
    ("LayerParameter", "blobs", "repeated BlobProto 7"),
    ("LayerParameter", "include", "repeated NetStateRule 8"),
    ("LayerParameter", "eltwise_param", "optional EltwiseParameter 110"),
    ("LayerParameter", "lrn_param", "optional LRNParameter 118"),
    ("LayerParameter", "softmax_param", "optional SoftmaxParameter 125"),
    ("ParamSpec", "lr_mult", "optional float 3"),
    ("ParamSpec", "decay_mult", "optional float 4"),
    ("NetStateRule", "phase", "optional Phase 1"),
    ("NetStateRule", "min_level", "optional int32 2"),
    ("NetStateRule", "stage", "repeated string 4"),
    ("FillerParameter", "type", "optional string 1"),
    ("FillerParameter", "value", "optional float 2"),
    ("ConvolutionParameter", "num_output", "optional uint32 1"),
    ("ConvolutionParameter", "pad", "repeated uint32 3"),
    ("ConvolutionParameter", "kernel_size", "repeated uint32 4"),
    ("ConvolutionParameter", "group", "optional uint32 5"),
    ("ConvolutionParameter", "bias_filler", "optional FillerParameter 8"),
    ("ConvolutionParameter", "engine", "optional Engine 15"),
    ("PoolingParameter", "pool", "optional PoolMethod 1"),
    ("PoolingParameter", "kernel_size", "optional uint32 2"),
    ("InnerProductParameter", "num_output", "optional uint32 1"),
    ("InnerProductParameter", "bias_term", "optional bool 2"),
    ("InnerProductParameter", "axis", "optional int32 5"),
    ("InnerProductParameter", "transpose", "optional bool 6"),
    ("InputParameter", "shape", "repeated BlobShape 1"),
    ("LRNParameter", "local_size", "optional uint32 1"),
    ("LRNParameter", "alpha", "optional float 2"),
    ("LRNParameter", "beta", "optional float 3"),
    ("LRNParameter", "norm_region", "optional NormRegion 4"),
    ("LRNParameter", "k", "optional float 5"),
    ("DropoutParameter", "dropout_ratio", "optional float 1"),
    ("EltwiseParameter", "operation", "optional EltwiseOp 1"),
    ("EltwiseParameter", "coeff", "repeated float 2"),
    ("EltwiseParameter", "stable_prod_grad", "optional bool 3"),
    ("SoftmaxParameter", "axis", "optional int32 2"),
    ("BatchNormParameter", "use_global_stats", "optional bool 1"),
    ("BatchNormParameter", "eps", "optional float 3"),
    ("V1LayerParameter", "bottom", "repeated string 2"),
    ("V1LayerParameter", "top", "repeated string 3"),
    ("V1LayerParameter", "name", "optional string 4"),
    ("V1LayerParameter", "blobs", "repeated BlobProto 6"),
    ("V1LayerParameter", "blobs_lr", "repeated float 7"),
    ("V1LayerParameter", "weight_decay", "repeated float 8"),
    ("V1LayerParameter", "dropout_param", "optional DropoutParameter 12"),
    ("V1LayerParameter", "inner_product_param", "optional InnerProductParameter 17"),
    ("V1LayerParameter", "pooling_param", "optional PoolingParameter 19"),
    ("V1LayerParameter", "include", "repeated NetStateRule 32"),
    ("V1LayerParameter", "blob_share_mode", "repeated DimCheckMode 1002"),
]


def _fields_written(message: str, value: dict, found: set) -> set:
    for name, item in value.items():
        found.add((message, name))
        type_name = MESSAGES[message][name][1]
        if type_name in MESSAGES:
            for each in item if isinstance(item, list) else [item]:
                _fields_written(type_name, each, found)
    return found


def test_every_field_the_round_trips_write_is_checked_against_upstream():
    """The round trips write and read with the package's schema, so a wrong field number
    would survive them; every field they use is in the table of upstream declarations."""
    written = set()
    for net in (CURRENT_NET, V1_NET):
        _fields_written("NetParameter", net, written)
    assert written - {(message, field) for message, field, _ in UPSTREAM_FIELDS} == set()


@pytest.mark.parametrize(("message", "field", "declared"), UPSTREAM_FIELDS)
def test_schema_matches_upstream_caffe_proto(message, field, declared):
    label, type_name, number = declared.split()
    assert MESSAGES[message][field] == (label, type_name, int(number))


def test_v1_layer_type_numbers():
    expected = {
        "CONVOLUTION": 4,
        "POOLING": 17,
        "RELU": 18,
        "INNER_PRODUCT": 14,
        "LRN": 15,
        "DROPOUT": 6,
        "SOFTMAX": 20,
        "CONCAT": 3,
        "ELTWISE": 25,
        "SPLIT": 22,
        "FLATTEN": 8,
        "DECONVOLUTION": 39,
        "DATA": 5,
        "SOFTMAX_LOSS": 21,
        "ACCURACY": 1,
    }
    assert {name: ENUMS["LayerType"][name] for name in expected} == expected
    assert len(set(ENUMS["LayerType"].values())) == len(ENUMS["LayerType"]) == 40
