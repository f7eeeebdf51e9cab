"""Reading Caffe's model files, the binary .caffemodel and the text .prototxt, without protobuf.

Caffe stores a network as a `NetParameter` protocol buffer: the weights (.caffemodel) in
protobuf's binary *wire format*, the architecture (.prototxt) in protobuf's *text format*. This
module reads both into plain dicts, driven by `MESSAGES` and `ENUMS`: the part of Caffe's public
`caffe.proto` (upstream BVLC field numbers, which published models use) that our layers need.

Why our own reader rather than the `protobuf` package and a generated `caffe_pb2.py`:

- no generated code and no `protoc` build step: the schema is the readable table below, and a
  student can hold it next to caffe.proto line by line;
- we need a small subset of a long .proto, and both formats are simple to read;
- every failure (truncated, corrupt, wrong wire type, unknown enum or field name, bad syntax,
  missing file) becomes one `CaffeFormatError` that says where: byte offset or line:column,
  and the message and field;
- packed float runs (the weights) go straight into NumPy with `np.frombuffer`, one copy.

Dict conventions, the same for both readers:

- keys are caffe.proto's field names; absent fields are absent (no defaults are filled in);
- a `repeated` field is always a list (also with one element); a singular field is a scalar,
  or a dict for a nested message;
- enum values are their names (`"MAX"`, `"ACROSS_CHANNELS"`, V1 types like `"CONVOLUTION"`);
- strings are `str`, bools `bool`, every integer type (int32 ... uint64) `int`;
- `float` fields hold the shortest decimal that rounds to the same float32, so `alpha` reads
  as 0.0001 from the text "0.0001" and from the float32 in a caffemodel alike;
- BlobProto's packed `data`/`diff` are 1-D `np.float32` arrays, `double_data`/`double_diff`
  `np.float64` arrays; BlobShape's `dim` is a list of ints.

The binary reader follows protobuf's rules: unknown field numbers are skipped, repeated numbers
are accepted packed and unpacked, a singular message that occurs twice is merged. A known field
whose wire type does not fit its declared type is an error, and so is an enum number the schema
does not know. The text reader rejects unknown field names and a singular field set twice, as
protobuf's own text parser does.
"""

from __future__ import annotations

import bisect
import difflib
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import ConvscopeError


class CaffeFormatError(ConvscopeError):
    """A Caffe file that cannot be read: missing, truncated, corrupt or not fitting caffe.proto."""


# --- The schema: a subset of BVLC caffe.proto ------------------------------------------------
# Each field reads like its line in caffe.proto: `repeated float data = 5 [packed = true];` is
# "data": ("packed", "float", 5). A type is a scalar type, or the name of a message or an enum.

ENUMS: dict[str, dict[str, int]] = {
    "Phase": {"TRAIN": 0, "TEST": 1},
    "DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1},
    "VarianceNorm": {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2},
    "Engine": {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2},
    "PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2},
    "RoundMode": {"CEIL": 0, "FLOOR": 1},
    "NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1},
    "EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2},
    "NormalizationMode": {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3},
    "DB": {"LEVELDB": 0, "LMDB": 1},
    "LayerType": {  # V1LayerParameter.LayerType
        "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3,
        "CONTRASTIVE_LOSS": 37, "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6,
        "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7, "ELTWISE": 25, "EXP": 38, "FLATTEN": 8,
        "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28, "IM2COL": 11, "IMAGE_DATA": 12,
        "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
        "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18,
        "SIGMOID": 19, "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20,
        "SOFTMAX_LOSS": 21, "SPLIT": 22, "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24,
        "THRESHOLD": 31,
    },
}  # fmt: skip

_O, _R, _P = "optional", "repeated", "packed"

MESSAGES: dict[str, dict[str, tuple[str, str, int]]] = {
    "NetParameter": {
        "name": (_O, "string", 1), "input": (_R, "string", 3),
        "input_shape": (_R, "BlobShape", 8), "input_dim": (_R, "int32", 4),
        "force_backward": (_O, "bool", 5), "state": (_O, "NetState", 6),
        "debug_info": (_O, "bool", 7), "layer": (_R, "LayerParameter", 100),
        "layers": (_R, "V1LayerParameter", 2),
    },
    "BlobShape": {"dim": (_P, "int64", 1)},
    "BlobProto": {
        "shape": (_O, "BlobShape", 7), "data": (_P, "float", 5), "diff": (_P, "float", 6),
        "double_data": (_P, "double", 8), "double_diff": (_P, "double", 9),
        "num": (_O, "int32", 1), "channels": (_O, "int32", 2), "height": (_O, "int32", 3),
        "width": (_O, "int32", 4),
    },
    "FillerParameter": {
        "type": (_O, "string", 1), "value": (_O, "float", 2), "min": (_O, "float", 3),
        "max": (_O, "float", 4), "mean": (_O, "float", 5), "std": (_O, "float", 6),
        "sparse": (_O, "int32", 7), "variance_norm": (_O, "VarianceNorm", 8),
    },
    "NetState": {
        "phase": (_O, "Phase", 1), "level": (_O, "int32", 2), "stage": (_R, "string", 3),
    },
    "NetStateRule": {
        "phase": (_O, "Phase", 1), "min_level": (_O, "int32", 2), "max_level": (_O, "int32", 3),
        "stage": (_R, "string", 4), "not_stage": (_R, "string", 5),
    },
    "ParamSpec": {
        "name": (_O, "string", 1), "share_mode": (_O, "DimCheckMode", 2),
        "lr_mult": (_O, "float", 3), "decay_mult": (_O, "float", 4),
    },
    "LayerParameter": {
        "name": (_O, "string", 1), "type": (_O, "string", 2), "bottom": (_R, "string", 3),
        "top": (_R, "string", 4), "phase": (_O, "Phase", 10), "loss_weight": (_R, "float", 5),
        "param": (_R, "ParamSpec", 6), "blobs": (_R, "BlobProto", 7),
        "propagate_down": (_R, "bool", 11), "include": (_R, "NetStateRule", 8),
        "exclude": (_R, "NetStateRule", 9),
        "transform_param": (_O, "TransformationParameter", 100),
        "loss_param": (_O, "LossParameter", 101),
        "accuracy_param": (_O, "AccuracyParameter", 102),
        "argmax_param": (_O, "ArgMaxParameter", 103),
        "batch_norm_param": (_O, "BatchNormParameter", 139),
        "bias_param": (_O, "BiasParameter", 141),
        "concat_param": (_O, "ConcatParameter", 104),
        "convolution_param": (_O, "ConvolutionParameter", 106),
        "crop_param": (_O, "CropParameter", 144),
        "data_param": (_O, "DataParameter", 107),
        "dropout_param": (_O, "DropoutParameter", 108),
        "eltwise_param": (_O, "EltwiseParameter", 110),
        "flatten_param": (_O, "FlattenParameter", 135),
        "inner_product_param": (_O, "InnerProductParameter", 117),
        "input_param": (_O, "InputParameter", 143),
        "lrn_param": (_O, "LRNParameter", 118),
        "memory_data_param": (_O, "MemoryDataParameter", 119),
        "pooling_param": (_O, "PoolingParameter", 121),
        "python_param": (_O, "PythonParameter", 130),
        "relu_param": (_O, "ReLUParameter", 123),
        "reshape_param": (_O, "ReshapeParameter", 133),
        "scale_param": (_O, "ScaleParameter", 142),
        "slice_param": (_O, "SliceParameter", 126),
        "softmax_param": (_O, "SoftmaxParameter", 125),
    },
    "TransformationParameter": {
        "scale": (_O, "float", 1), "mirror": (_O, "bool", 2), "crop_size": (_O, "uint32", 3),
        "mean_file": (_O, "string", 4), "mean_value": (_R, "float", 5),
        "force_color": (_O, "bool", 6), "force_gray": (_O, "bool", 7),
    },
    "LossParameter": {
        "ignore_label": (_O, "int32", 1), "normalization": (_O, "NormalizationMode", 3),
        "normalize": (_O, "bool", 2),
    },
    "AccuracyParameter": {
        "top_k": (_O, "uint32", 1), "axis": (_O, "int32", 2), "ignore_label": (_O, "int32", 3),
    },
    "ArgMaxParameter": {
        "out_max_val": (_O, "bool", 1), "top_k": (_O, "uint32", 2), "axis": (_O, "int32", 3),
    },
    "BatchNormParameter": {
        "use_global_stats": (_O, "bool", 1), "moving_average_fraction": (_O, "float", 2),
        "eps": (_O, "float", 3),
    },
    "BiasParameter": {
        "axis": (_O, "int32", 1), "num_axes": (_O, "int32", 2),
        "filler": (_O, "FillerParameter", 3),
    },
    "ConcatParameter": {"axis": (_O, "int32", 2), "concat_dim": (_O, "uint32", 1)},
    "ConvolutionParameter": {
        "num_output": (_O, "uint32", 1), "bias_term": (_O, "bool", 2),
        "pad": (_R, "uint32", 3), "kernel_size": (_R, "uint32", 4), "stride": (_R, "uint32", 6),
        "dilation": (_R, "uint32", 18), "pad_h": (_O, "uint32", 9), "pad_w": (_O, "uint32", 10),
        "kernel_h": (_O, "uint32", 11), "kernel_w": (_O, "uint32", 12),
        "stride_h": (_O, "uint32", 13), "stride_w": (_O, "uint32", 14),
        "group": (_O, "uint32", 5), "weight_filler": (_O, "FillerParameter", 7),
        "bias_filler": (_O, "FillerParameter", 8), "engine": (_O, "Engine", 15),
        "axis": (_O, "int32", 16), "force_nd_im2col": (_O, "bool", 17),
    },
    "CropParameter": {"axis": (_O, "int32", 1), "offset": (_R, "uint32", 2)},
    "DataParameter": {
        "source": (_O, "string", 1), "batch_size": (_O, "uint32", 4),
        "rand_skip": (_O, "uint32", 7), "backend": (_O, "DB", 8), "scale": (_O, "float", 2),
        "mean_file": (_O, "string", 3), "crop_size": (_O, "uint32", 5),
        "mirror": (_O, "bool", 6), "force_encoded_color": (_O, "bool", 9),
        "prefetch": (_O, "uint32", 10),
    },
    "DropoutParameter": {"dropout_ratio": (_O, "float", 1)},
    "EltwiseParameter": {
        "operation": (_O, "EltwiseOp", 1), "coeff": (_R, "float", 2),
        "stable_prod_grad": (_O, "bool", 3),
    },
    "FlattenParameter": {"axis": (_O, "int32", 1), "end_axis": (_O, "int32", 2)},
    "InnerProductParameter": {
        "num_output": (_O, "uint32", 1), "bias_term": (_O, "bool", 2),
        "weight_filler": (_O, "FillerParameter", 3), "bias_filler": (_O, "FillerParameter", 4),
        "axis": (_O, "int32", 5), "transpose": (_O, "bool", 6),
    },
    "InputParameter": {"shape": (_R, "BlobShape", 1)},
    "LRNParameter": {
        "local_size": (_O, "uint32", 1), "alpha": (_O, "float", 2), "beta": (_O, "float", 3),
        "norm_region": (_O, "NormRegion", 4), "k": (_O, "float", 5),
        "engine": (_O, "Engine", 6),
    },
    "MemoryDataParameter": {
        "batch_size": (_O, "uint32", 1), "channels": (_O, "uint32", 2),
        "height": (_O, "uint32", 3), "width": (_O, "uint32", 4),
    },
    "PoolingParameter": {
        "pool": (_O, "PoolMethod", 1), "pad": (_O, "uint32", 4), "pad_h": (_O, "uint32", 9),
        "pad_w": (_O, "uint32", 10), "kernel_size": (_O, "uint32", 2),
        "kernel_h": (_O, "uint32", 5), "kernel_w": (_O, "uint32", 6),
        "stride": (_O, "uint32", 3), "stride_h": (_O, "uint32", 7),
        "stride_w": (_O, "uint32", 8), "engine": (_O, "Engine", 11),
        "global_pooling": (_O, "bool", 12), "round_mode": (_O, "RoundMode", 13),
    },
    "PythonParameter": {
        "module": (_O, "string", 1), "layer": (_O, "string", 2),
        "param_str": (_O, "string", 3), "share_in_parallel": (_O, "bool", 4),
    },
    "ReLUParameter": {"negative_slope": (_O, "float", 1), "engine": (_O, "Engine", 2)},
    "ReshapeParameter": {
        "shape": (_O, "BlobShape", 1), "axis": (_O, "int32", 2), "num_axes": (_O, "int32", 3),
    },
    "ScaleParameter": {
        "axis": (_O, "int32", 1), "num_axes": (_O, "int32", 2),
        "filler": (_O, "FillerParameter", 3), "bias_term": (_O, "bool", 4),
        "bias_filler": (_O, "FillerParameter", 5),
    },
    "SliceParameter": {
        "axis": (_O, "int32", 3), "slice_point": (_R, "uint32", 2),
        "slice_dim": (_O, "uint32", 1),
    },
    "SoftmaxParameter": {"engine": (_O, "Engine", 1), "axis": (_O, "int32", 2)},
    "V1LayerParameter": {
        "bottom": (_R, "string", 2), "top": (_R, "string", 3), "name": (_O, "string", 4),
        "include": (_R, "NetStateRule", 32), "exclude": (_R, "NetStateRule", 33),
        "type": (_O, "LayerType", 5), "blobs": (_R, "BlobProto", 6),
        "param": (_R, "string", 1001), "blob_share_mode": (_R, "DimCheckMode", 1002),
        "blobs_lr": (_R, "float", 7), "weight_decay": (_R, "float", 8),
        "loss_weight": (_R, "float", 35),
        "accuracy_param": (_O, "AccuracyParameter", 27),
        "argmax_param": (_O, "ArgMaxParameter", 23),
        "concat_param": (_O, "ConcatParameter", 9),
        "convolution_param": (_O, "ConvolutionParameter", 10),
        "data_param": (_O, "DataParameter", 11),
        "dropout_param": (_O, "DropoutParameter", 12),
        "eltwise_param": (_O, "EltwiseParameter", 24),
        "inner_product_param": (_O, "InnerProductParameter", 17),
        "lrn_param": (_O, "LRNParameter", 18),
        "memory_data_param": (_O, "MemoryDataParameter", 22),
        "pooling_param": (_O, "PoolingParameter", 19),
        "relu_param": (_O, "ReLUParameter", 30),
        "slice_param": (_O, "SliceParameter", 31),
        "softmax_param": (_O, "SoftmaxParameter", 39),
        "transform_param": (_O, "TransformationParameter", 36),
        "loss_param": (_O, "LossParameter", 42),
    },
}  # fmt: skip

_SCALARS = ("int32", "int64", "uint32", "uint64", "bool", "float", "double", "string")


class _Field(NamedTuple):
    """One field of the schema, with its `kind`: the scalar type, "enum" or "message"."""

    name: str
    label: str
    type: str
    number: int
    kind: str

    @property
    def repeated(self) -> bool:
        return self.label != _O

    @property
    def is_array(self) -> bool:
        """Packed floats and doubles (BlobProto's data) are read into NumPy arrays."""
        return self.label == _P and self.kind in ("float", "double")

    def __str__(self) -> str:  # as caffe.proto writes it
        label, packed = (_R, " [packed = true]") if self.label == _P else (self.label, "")
        return f"{label} {self.type} {self.name} = {self.number}{packed}"


def _kind(type_name: str) -> str:
    if type_name in _SCALARS:
        return type_name
    if type_name in ENUMS:
        return "enum"
    if type_name in MESSAGES:
        return "message"
    raise TypeError(f"schema error: type {type_name!r} is neither scalar, enum nor message")


_BY_NAME = {
    message: {name: _Field(name, *spec, _kind(spec[1])) for name, spec in fields.items()}
    for message, fields in MESSAGES.items()
}
_BY_NUMBER = {
    message: {field.number: field for field in fields.values()}
    for message, fields in _BY_NAME.items()
}
_ENUM_NAMES = {
    enum: {number: name for name, number in values.items()} for enum, values in ENUMS.items()
}
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "enum": (-(2**31), 2**31 - 1),
}
_NATIVE = {"float": np.float32, "double": np.float64}


def _check_message(message: str) -> None:
    if message not in MESSAGES:
        raise CaffeFormatError(f"unknown message {message!r}; messages are: {', '.join(MESSAGES)}")


def _bad_enum(field: _Field, value: object) -> str:
    choices = ", ".join(f"{name}={number}" for name, number in ENUMS[field.type].items())
    return f"{value!r} is not a {field.type} for '{field.name}'; choose one of: {choices}"


def _float32(value: float) -> float:
    """`value` rounded to float32, as the shortest decimal that rounds back to it (0.1f -> 0.1)."""
    with np.errstate(over="ignore"):
        return float(str(np.float32(value)))


def _store(result: dict, arrays: dict, field: _Field, value: Any) -> None:
    if field.is_array:
        arrays.setdefault(field, []).append(value)
    elif field.repeated:
        result.setdefault(field.name, []).append(value)
    else:
        result[field.name] = value


def _finish_arrays(result: dict, arrays: dict[_Field, list]) -> None:
    """Join the pieces of each array field (packed runs as arrays, unpacked values as floats)."""
    for field, items in arrays.items():
        dtype = _NATIVE[field.kind]
        parts = [result[field.name]] if field.name in result else []
        loose: list[float] = []
        for item in [*items, None]:
            if isinstance(item, float):
                loose.append(item)
                continue
            if loose:
                with np.errstate(over="ignore"):
                    parts.append(np.array(loose, dtype=dtype))
                loose = []
            if item is not None:
                parts.append(item)
        result[field.name] = parts[0] if len(parts) == 1 else np.concatenate(parts)


# --- Binary wire format ----------------------------------------------------------------------

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)
_WIRE_NAMES = ("varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit")
_WIRE_OF_KIND = {
    "int32": _VARINT, "int64": _VARINT, "uint32": _VARINT, "uint64": _VARINT, "bool": _VARINT,
    "enum": _VARINT, "float": _FIXED32, "double": _FIXED64, "string": _LENGTH,
    "message": _LENGTH,
}  # fmt: skip
_MASK64 = (1 << 64) - 1
_MAX_GROUP_DEPTH = 32


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


_FROM_VARINT = {
    "int32": lambda raw: _signed(raw, 32),
    "int64": lambda raw: _signed(raw, 64),
    "uint32": lambda raw: raw & 0xFFFFFFFF,
    "uint64": lambda raw: raw,
    "bool": lambda raw: raw != 0,
}


def _wire_name(wire: int) -> str:
    return _WIRE_NAMES[wire] if wire < len(_WIRE_NAMES) else f"invalid wire type {wire}"


class _WireReader:
    """Reads protobuf wire format from one bytes object; every error names its byte offset."""

    def __init__(self, data: bytes):
        self.buf = data

    def fail(self, pos: int, path: str, problem: str) -> CaffeFormatError:
        return CaffeFormatError(f"byte {pos}: {problem} [in {path}]")

    def varint(self, pos: int, end: int, path: str) -> tuple[int, int]:
        """Read a base-128 varint at `pos`; return it and the position after it."""
        buf, start, result, shift = self.buf, pos, 0, 0
        while pos < end:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result & _MASK64, pos
            shift += 7
            if shift >= 70:
                raise self.fail(start, path, "varint longer than 10 bytes (corrupt data)")
        raise self.fail(start, path, "data ends inside a varint (truncated file)")

    def span(self, pos: int, end: int, size: int, path: str, what: str) -> int:
        """Check that `size` bytes of `what` follow `pos`; return where they end."""
        if size > end - pos:
            raise self.fail(
                pos, path, f"{what} needs {size} bytes, only {end - pos} remain (truncated file)"
            )
        return pos + size

    def message(self, pos: int, end: int, message: str, path: str, into: dict | None = None):
        """Read the fields of `message` in `[pos, end)` into a dict (or merge into `into`)."""
        fields, result, arrays = _BY_NUMBER[message], {} if into is None else into, {}
        while pos < end:
            key_pos = pos
            key, pos = self.varint(pos, end, path)
            number, wire = key >> 3, key & 7
            field = fields.get(number)
            if field is None:
                pos = self.skip(pos, end, number, wire, key_pos, path, 0)
            else:
                pos = self.field(pos, end, field, wire, key_pos, path, result, arrays)
        _finish_arrays(result, arrays)
        return result

    def field(self, pos, end, field, wire, key_pos, path, result, arrays) -> int:
        """Read one occurrence of a known `field`; return the position after it."""
        path = f"{path}.{field.name}"
        expected = _WIRE_OF_KIND[field.kind]
        if wire == _LENGTH and expected != _LENGTH and field.repeated:
            return self.packed(pos, end, field, path, result, arrays)
        if wire != expected:
            raise self.fail(
                key_pos,
                path,
                f"field {field.number} is stored as {_wire_name(wire)}, but caffe.proto declares "
                f"'{field}', which is stored as {_wire_name(expected)} (corrupt data?)",
            )
        if field.kind != "message":
            value, pos = self.scalar(pos, end, field, path)
            _store(result, arrays, field, value)
            return pos
        size, start = self.varint(pos, end, path)
        stop = self.span(start, end, size, path, f"{field.type} '{field.name}'")
        if field.repeated:
            items = result.setdefault(field.name, [])
            items.append(self.message(start, stop, field.type, f"{path}[{len(items)}]"))
        else:  # a singular message seen twice is merged, as protobuf does
            previous = result.get(field.name)
            result[field.name] = self.message(start, stop, field.type, path, previous)
        return stop

    def scalar(self, pos: int, end: int, field: _Field, path: str) -> tuple[Any, int]:
        """Read one scalar value of `field` at `pos`; return it and the position after it."""
        kind = field.kind
        if kind in ("float", "double"):
            stop = self.span(pos, end, 4 if kind == "float" else 8, path, f"{kind} value")
            value = struct.unpack_from("<f" if kind == "float" else "<d", self.buf, pos)[0]
            return (_float32(value) if kind == "float" and not field.is_array else value), stop
        if kind == "string":
            size, start = self.varint(pos, end, path)
            stop = self.span(start, end, size, path, "string")
            try:
                return self.buf[start:stop].decode("utf-8"), stop
            except UnicodeDecodeError as error:
                raise self.fail(start + error.start, path, "string is not UTF-8") from None
        raw, stop = self.varint(pos, end, path)
        if kind != "enum":
            return _FROM_VARINT[kind](raw), stop
        name = _ENUM_NAMES[field.type].get(_signed(raw, 32))
        if name is None:
            raise self.fail(pos, path, _bad_enum(field, _signed(raw, 32)))
        return name, stop

    def packed(self, pos, end, field, path, result, arrays) -> int:
        """Read a packed run of numbers of a repeated `field`; return the position after it."""
        size, start = self.varint(pos, end, path)
        stop = self.span(start, end, size, path, f"packed run of '{field.name}'")
        if size == 0:  # no values: as absent as an empty repeated field always is
            return stop
        if field.kind not in _NATIVE:
            values, pos = [], start
            while pos < stop:
                value, pos = self.scalar(pos, stop, field, path)
                values.append(value)
            result.setdefault(field.name, []).extend(values)
            return stop
        dtype = np.dtype("<f4" if field.kind == "float" else "<f8")
        if size % dtype.itemsize:
            raise self.fail(
                start, path, f"packed run of {size} bytes is not a whole number of {field.kind}s"
            )
        run = np.frombuffer(self.buf, dtype=dtype, count=size // dtype.itemsize, offset=start)
        if field.is_array:
            arrays.setdefault(field, []).append(run.astype(_NATIVE[field.kind]))
        elif field.kind == "float":
            result.setdefault(field.name, []).extend(_float32(value) for value in run.tolist())
        else:
            result.setdefault(field.name, []).extend(run.tolist())
        return stop

    def skip(self, pos, end, number, wire, key_pos, path, depth) -> int:
        """Skip a field the schema does not know; return the position after it."""
        if number == 0:
            raise self.fail(key_pos, path, "field number 0 does not exist (corrupt data)")
        if wire == _VARINT:
            return self.varint(pos, end, path)[1]
        if wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            return self.span(pos, end, size, path, f"unknown field {number}")
        if wire == _LENGTH:
            size, start = self.varint(pos, end, path)
            return self.span(start, end, size, path, f"unknown field {number}")
        if wire == _START_GROUP and depth >= _MAX_GROUP_DEPTH:
            raise self.fail(key_pos, path, f"groups nested over {depth} deep (corrupt data)")
        if wire == _START_GROUP:
            return self.skip_group(pos, end, number, key_pos, path, depth)
        raise self.fail(
            key_pos, path, f"field {number} with {_wire_name(wire)} at this place (corrupt data)"
        )

    def skip_group(self, pos, end, number, key_pos, path, depth) -> int:
        """Skip the fields of an unknown (long deprecated) group up to its end-group tag."""
        while pos < end:
            inner_pos = pos
            key, pos = self.varint(pos, end, path)
            if key & 7 == _END_GROUP:
                if key >> 3 != number:
                    raise self.fail(inner_pos, path, f"group {number} ended as {key >> 3}")
                return pos
            pos = self.skip(pos, end, key >> 3, key & 7, inner_pos, path, depth + 1)
        raise self.fail(key_pos, path, f"group {number} is never closed (truncated file)")


def parse_binary(data: bytes, message: str = "NetParameter") -> dict:
    """Read protobuf wire-format bytes as a Caffe `message` (see the module doc for the dict).

    Args:
        data: the serialized message, e.g. a whole .caffemodel file.
        message: the caffe.proto message `data` holds, a key of `MESSAGES`.

    Returns:
        The message as a dict: field name -> value, lists for repeated fields, NumPy arrays for
        blob data.

    Raises:
        CaffeFormatError: truncated or corrupt data, a wire type that does not fit the field, an
            unknown enum number; the message gives the byte offset and the field's path.
    """
    _check_message(message)
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise CaffeFormatError(f"parse_binary reads bytes, not {type(data).__name__}")
    return _WireReader(data).message(0, len(data), message, message)


def _read_file(path: str | Path, what: str) -> bytes:
    if not isinstance(path, str | Path):
        raise CaffeFormatError(f"a {what} path is a str or Path, not {type(path).__name__}")
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CaffeFormatError(f"{what} file not found: {path}") from None
    except OSError as error:
        raise CaffeFormatError(f"cannot read {what} file {path}: {error.strerror}") from None


def read_caffemodel(path: str | Path) -> dict:
    """Read a binary .caffemodel as its NetParameter dict.

    Both formats are read: the current one with `layer` (field 100, `type` a string like
    "Convolution") and the legacy V1 one with `layers` (field 2, `type` like "CONVOLUTION").

    Args:
        path: the .caffemodel file.

    Returns:
        The NetParameter as a dict; each layer's `blobs` hold `shape` and a float32 `data` array.

    Raises:
        CaffeFormatError: the file is missing, empty, truncated or corrupt, or holds no layers.
    """
    data = _read_file(path, "caffemodel")
    try:
        net = parse_binary(data)
    except CaffeFormatError as error:
        raise CaffeFormatError(f"{path}: {error}") from None
    if "layer" not in net and "layers" not in net:
        raise CaffeFormatError(f"{path}: holds no layers ({len(data)} bytes); is it a caffemodel?")
    return net


# --- Text format -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<skip>[ \t\r\n\f\v]+|\#[^\n]*)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.]))
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<symbol>[{}<>:;,\[\]-])
      | (?P<bad_number>[\d.][\w.]*)
      | (?P<bad_string>["'])
      | (?P<bad>.)""",
    re.VERBOSE | re.ASCII,
)
_BAD_TOKENS = {
    "bad_number": "invalid number {!r}",
    "bad_string": "string {!r} is not closed on its line",
    "bad": "unexpected character {!r}",
}
_ESCAPE = re.compile(
    r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))"
)
_ESCAPES = dict(zip("abfnrtv\\'\"?", b"\a\b\f\n\r\t\v\\'\"?"))  # \n -> newline, ...
_TRUE, _FALSE = ("true", "True", "t", "1"), ("false", "False", "f", "0")
_CLOSING = {"{": "}", "<": ">"}


class _Token(NamedTuple):
    kind: str  # ident, number, string, symbol or eof
    text: str
    offset: int

    def shown(self) -> str:
        return repr(self.text) if self.kind != "eof" else "the end of the text"


def _parse_int(text: str) -> int | None:
    """protobuf's integer literals: decimal, 0x hexadecimal, 0 octal; None if not an integer."""
    if text[:2] in ("0x", "0X"):
        return int(text, 16)
    if not text.isdigit():
        return None
    if len(text) > 1 and text[0] == "0":
        return int(text, 8) if set(text) <= set("01234567") else None
    return int(text) if len(text) < 100 else 1 << 400  # Python limits long decimal strings


def _parse_float(token: _Token) -> float | None:
    if token.kind == "ident":
        lowered = token.text.lower()
        return float(lowered) if lowered in ("inf", "infinity", "nan") else None
    if token.kind != "number":
        return None
    if token.text[:2] in ("0x", "0X"):
        return float(int(token.text, 16))
    return float(token.text.rstrip("fF"))


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeioAEIO' else 'a'} {word}"


def _unknown_field(message: str, name: str) -> str:
    fields = list(MESSAGES[message])
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}' in {message}{hint}; fields are: {', '.join(fields)}"


class _TextReader:
    """Reads protobuf text format; every error names its line and column."""

    def __init__(self, text: str):
        self.text = text
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
        self.tokens = self.tokenize()
        self.token = next(self.tokens)

    def where(self, offset: int) -> str:
        line = bisect.bisect_right(self.line_starts, offset)
        return f"line {line}:{offset - self.line_starts[line - 1] + 1}"

    def fail(self, offset: int, problem: str, path: str | None = None) -> CaffeFormatError:
        return CaffeFormatError(
            f"{self.where(offset)}: {problem}" + (f" [in {path}]" if path else "")
        )

    def tokenize(self) -> Iterator[_Token]:
        for match in _TOKEN.finditer(self.text):
            kind = match.lastgroup
            if kind in _BAD_TOKENS:
                raise self.fail(match.start(), _BAD_TOKENS[kind].format(match.group()))
            if kind != "skip":
                yield _Token(kind, match.group(), match.start())
        yield _Token("eof", "", len(self.text))

    def advance(self) -> _Token:
        token, self.token = self.token, next(self.tokens, self.token)
        return token

    def expect(self, symbols: tuple[str, ...], context: str, path: str) -> _Token:
        if self.token.kind != "symbol" or self.token.text not in symbols:
            wanted = " or ".join(repr(symbol) for symbol in symbols)
            raise self.fail(
                self.token.offset, f"expected {wanted} {context}, found {self.token.shown()}", path
            )
        return self.advance()

    def message(self, message: str, path: str, opener: _Token | None = None) -> dict:
        """Read fields of `message` up to the symbol closing `opener` (or to the end)."""
        result: dict = {}
        arrays: dict = {}
        closing = _CLOSING[opener.text] if opener else None
        while not (closing and self.token.text == closing and self.token.kind == "symbol"):
            token = self.advance()
            if token.kind == "eof":
                if closing is None:
                    break
                where = self.where(opener.offset)
                raise self.fail(
                    token.offset, f"'{closing}' missing for the '{opener.text}' at {where}", path
                )
            if token.kind != "ident":
                raise self.fail(
                    token.offset, f"expected a field name of {message}, found {token.shown()}", path
                )
            field = _BY_NAME[message].get(token.text)
            if field is None:
                raise self.fail(token.offset, _unknown_field(message, token.text), path)
            self.field(field, token, f"{path}.{field.name}", result, arrays)
            if self.token.text in (";", ",") and self.token.kind == "symbol":
                self.advance()
        if closing:
            self.advance()
        _finish_arrays(result, arrays)
        return result

    def field(self, field: _Field, name: _Token, path: str, result: dict, arrays: dict) -> None:
        """Read `: value`, `{ ... }` or `: [value, ...]` after the field's name."""
        if field.kind != "message":
            self.expect((":",), f"after '{field.name}'", path)
        elif self.token.text == ":" and self.token.kind == "symbol":
            self.advance()
        if field.repeated and self.token.text == "[" and self.token.kind == "symbol":
            self.advance()
            while not (self.token.text == "]" and self.token.kind == "symbol"):
                self.value(field, path, result, arrays)
                if self.token.text != "]":
                    self.expect((",",), f"between values of '{field.name}'", path)
            self.advance()
            return
        if not field.repeated and field.name in result:
            raise self.fail(name.offset, f"'{field.name}' is set twice but is not repeated", path)
        self.value(field, path, result, arrays)

    def value(self, field: _Field, path: str, result: dict, arrays: dict) -> None:
        """Read one value of `field` (a scalar or a whole `{ ... }` message) into `result`."""
        if field.kind != "message":
            _store(result, arrays, field, self.scalar(field, path))
            return
        opener = self.expect(("{", "<"), f"to open '{field.name}' ({field.type})", path)
        if field.repeated:
            items = result.setdefault(field.name, [])
            items.append(self.message(field.type, f"{path}[{len(items)}]", opener))
        else:
            result[field.name] = self.message(field.type, path, opener)

    def scalar(self, field: _Field, path: str) -> Any:
        """Read one scalar value of `field`: a number, name, bool or quoted string."""
        token, kind = self.advance(), field.kind
        if kind == "string":
            return self.string(token, field, path)
        negative = token.text == "-" and token.kind == "symbol"
        if negative:
            token = self.advance()
        if kind == "bool" and not negative and token.text in _TRUE + _FALSE:
            return token.text in _TRUE
        if kind == "enum" and not negative and token.kind == "ident":
            if token.text not in ENUMS[field.type]:
                raise self.fail(token.offset, _bad_enum(field, token.text), path)
            return token.text
        if kind in ("float", "double"):
            value = _parse_float(token)
            if value is not None:
                value = -value if negative else value
                return _float32(value) if kind == "float" and not field.is_array else value
        if kind in _INT_RANGES and token.kind == "number":
            value = _parse_int(token.text)
            if value is not None:
                shown = f"-{token.text}" if negative else token.text
                return self.integer(-value if negative else value, shown, token, field, path)
        raise self.fail(
            token.offset,
            f"expected {_a(field.type)} for '{field.name}', found {token.shown()}",
            path,
        )

    def integer(self, value: int, shown: str, token: _Token, field: _Field, path: str):
        """Check `value` (written as `shown`) against the field's range; enums become names."""
        low, high = _INT_RANGES[field.kind]
        shown = shown if len(shown) < 40 else f"{shown[:20]}...({len(shown)} digits)"
        if not low <= value <= high:
            raise self.fail(
                token.offset,
                f"{shown} is out of range for {field.type} '{field.name}' ({low} to {high})",
                path,
            )
        if field.kind != "enum":
            return value
        if value not in _ENUM_NAMES[field.type]:
            raise self.fail(token.offset, _bad_enum(field, value), path)
        return _ENUM_NAMES[field.type][value]

    def string(self, token: _Token, field: _Field, path: str) -> str:
        """Read a quoted string (adjacent strings are joined, as in C) and decode its escapes."""
        if token.kind != "string":
            raise self.fail(
                token.offset,
                f"expected a quoted string for '{field.name}', found {token.shown()}",
                path,
            )
        data = self.unescape(token, path)
        while self.token.kind == "string":
            data += self.unescape(self.advance(), path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(token.offset, "string is not UTF-8 after its escapes", path) from None

    def unescape(self, token: _Token, path: str) -> bytes:
        body, data, last = token.text[1:-1], bytearray(), 0
        try:
            for match in _ESCAPE.finditer(body):
                data += body[last : match.start()].encode("utf-8")
                octal, hex2, hex4, hex8, other = match.groups()
                if octal and int(octal, 8) < 256:
                    data.append(int(octal, 8))
                elif hex2:
                    data.append(int(hex2, 16))
                elif (hex4 or hex8) and int(hex4 or hex8, 16) <= 0x10FFFF:
                    data += chr(int(hex4 or hex8, 16)).encode("utf-8")
                elif other in _ESCAPES:
                    data.append(_ESCAPES[other])
                else:
                    offset = token.offset + 1 + match.start()
                    raise self.fail(offset, f"invalid escape {match.group()!r} in a string", path)
                last = match.end()
            data += body[last:].encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which no file can hold
            raise self.fail(token.offset, "string holds an invalid character", path) from None
        return bytes(data)


def parse_text(text: str, message: str = "NetParameter") -> dict:
    """Read protobuf text format (a .prototxt's content) as a Caffe `message`.

    Accepts `#` comments, `field: value`, `field { ... }` and `field: { ... }` (or `< ... >`),
    `field: [v1, v2]` for repeated fields, optional `;`/`,` separators, quoted strings with C
    escapes, numbers like `1e-4`, `-0.5`, `0x10`, `inf`, `nan`, and enums by name or number.

    Args:
        text: the text of the message.
        message: the caffe.proto message the text holds, a key of `MESSAGES`.

    Returns:
        The message as a dict, with the same conventions as `parse_binary`.

    Raises:
        CaffeFormatError: bad syntax, an unknown field or enum name, a value of the wrong type
            or range; the message gives line:column and the field's path.
    """
    _check_message(message)
    if not isinstance(text, str):
        raise CaffeFormatError(f"parse_text reads a str, not {type(text).__name__}")
    return _TextReader(text).message(message, message)


def read_prototxt(source: str | Path) -> dict:
    """Read a .prototxt as its NetParameter dict.

    Args:
        source: a path to the file; or the text itself, recognised as a `str` that contains a
            newline or a '{' (no file name does). A `Path` is always a file.

    Returns:
        The NetParameter as a dict (see the module doc for the conventions).

    Raises:
        CaffeFormatError: the file is missing, not UTF-8, or not a valid NetParameter.
    """
    if isinstance(source, str) and ("\n" in source or "{" in source):
        return parse_text(source)
    data = _read_file(source, "prototxt")
    try:
        return parse_text(data.decode("utf-8-sig"))  # -sig: skip a byte order mark
    except UnicodeDecodeError as error:
        raise CaffeFormatError(f"{source}: byte {error.start}: not UTF-8 text") from None
    except CaffeFormatError as error:
        raise CaffeFormatError(f"{source}: {error}") from None
