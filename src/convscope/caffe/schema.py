"""The part of Caffe's public caffe.proto that convscope reads (upstream BVLC field numbers),
as tables, plus the helpers both readers share (`caffe_proto` explains the design)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from convscope.core.errors import ConvscopeError
from convscope.core.files import readable_file


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
        "NONE": 0,
        "ABSVAL": 35,
        "ACCURACY": 1,
        "ARGMAX": 30,
        "BNLL": 2,
        "CONCAT": 3,
        "CONTRASTIVE_LOSS": 37,
        "CONVOLUTION": 4,
        "DATA": 5,
        "DECONVOLUTION": 39,
        "DROPOUT": 6,
        "DUMMY_DATA": 32,
        "EUCLIDEAN_LOSS": 7,
        "ELTWISE": 25,
        "EXP": 38,
        "FLATTEN": 8,
        "HDF5_DATA": 9,
        "HDF5_OUTPUT": 10,
        "HINGE_LOSS": 28,
        "IM2COL": 11,
        "IMAGE_DATA": 12,
        "INFOGAIN_LOSS": 13,
        "INNER_PRODUCT": 14,
        "LRN": 15,
        "MEMORY_DATA": 29,
        "MULTINOMIAL_LOGISTIC_LOSS": 16,
        "MVN": 34,
        "POOLING": 17,
        "POWER": 26,
        "RELU": 18,
        "SIGMOID": 19,
        "SIGMOID_CROSS_ENTROPY_LOSS": 27,
        "SILENCE": 36,
        "SOFTMAX": 20,
        "SOFTMAX_LOSS": 21,
        "SPLIT": 22,
        "SLICE": 33,
        "TANH": 23,
        "WINDOW_DATA": 24,
        "THRESHOLD": 31,
    },
}

_O, _R, _P = "optional", "repeated", "packed"

MESSAGES: dict[str, dict[str, tuple[str, str, int]]] = {
    "NetParameter": {
        "name": (_O, "string", 1),
        "input": (_R, "string", 3),
        "input_shape": (_R, "BlobShape", 8),
        "input_dim": (_R, "int32", 4),
        "force_backward": (_O, "bool", 5),
        "state": (_O, "NetState", 6),
        "debug_info": (_O, "bool", 7),
        "layer": (_R, "LayerParameter", 100),
        "layers": (_R, "V1LayerParameter", 2),
    },
    "BlobShape": {"dim": (_P, "int64", 1)},
    "BlobProto": {
        "shape": (_O, "BlobShape", 7),
        "data": (_P, "float", 5),
        "diff": (_P, "float", 6),
        "double_data": (_P, "double", 8),
        "double_diff": (_P, "double", 9),
        "num": (_O, "int32", 1),
        "channels": (_O, "int32", 2),
        "height": (_O, "int32", 3),
        "width": (_O, "int32", 4),
    },
    "FillerParameter": {
        "type": (_O, "string", 1),
        "value": (_O, "float", 2),
        "min": (_O, "float", 3),
        "max": (_O, "float", 4),
        "mean": (_O, "float", 5),
        "std": (_O, "float", 6),
        "sparse": (_O, "int32", 7),
        "variance_norm": (_O, "VarianceNorm", 8),
    },
    "NetState": {
        "phase": (_O, "Phase", 1),
        "level": (_O, "int32", 2),
        "stage": (_R, "string", 3),
    },
    "NetStateRule": {
        "phase": (_O, "Phase", 1),
        "min_level": (_O, "int32", 2),
        "max_level": (_O, "int32", 3),
        "stage": (_R, "string", 4),
        "not_stage": (_R, "string", 5),
    },
    "ParamSpec": {
        "name": (_O, "string", 1),
        "share_mode": (_O, "DimCheckMode", 2),
        "lr_mult": (_O, "float", 3),
        "decay_mult": (_O, "float", 4),
    },
    "LayerParameter": {
        "name": (_O, "string", 1),
        "type": (_O, "string", 2),
        "bottom": (_R, "string", 3),
        "top": (_R, "string", 4),
        "phase": (_O, "Phase", 10),
        "loss_weight": (_R, "float", 5),
        "param": (_R, "ParamSpec", 6),
        "blobs": (_R, "BlobProto", 7),
        "propagate_down": (_R, "bool", 11),
        "include": (_R, "NetStateRule", 8),
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
        "scale": (_O, "float", 1),
        "mirror": (_O, "bool", 2),
        "crop_size": (_O, "uint32", 3),
        "mean_file": (_O, "string", 4),
        "mean_value": (_R, "float", 5),
        "force_color": (_O, "bool", 6),
        "force_gray": (_O, "bool", 7),
    },
    "LossParameter": {
        "ignore_label": (_O, "int32", 1),
        "normalization": (_O, "NormalizationMode", 3),
        "normalize": (_O, "bool", 2),
    },
    "AccuracyParameter": {
        "top_k": (_O, "uint32", 1),
        "axis": (_O, "int32", 2),
        "ignore_label": (_O, "int32", 3),
    },
    "ArgMaxParameter": {
        "out_max_val": (_O, "bool", 1),
        "top_k": (_O, "uint32", 2),
        "axis": (_O, "int32", 3),
    },
    "BatchNormParameter": {
        "use_global_stats": (_O, "bool", 1),
        "moving_average_fraction": (_O, "float", 2),
        "eps": (_O, "float", 3),
    },
    "BiasParameter": {
        "axis": (_O, "int32", 1),
        "num_axes": (_O, "int32", 2),
        "filler": (_O, "FillerParameter", 3),
    },
    "ConcatParameter": {"axis": (_O, "int32", 2), "concat_dim": (_O, "uint32", 1)},
    "ConvolutionParameter": {
        "num_output": (_O, "uint32", 1),
        "bias_term": (_O, "bool", 2),
        "pad": (_R, "uint32", 3),
        "kernel_size": (_R, "uint32", 4),
        "stride": (_R, "uint32", 6),
        "dilation": (_R, "uint32", 18),
        "pad_h": (_O, "uint32", 9),
        "pad_w": (_O, "uint32", 10),
        "kernel_h": (_O, "uint32", 11),
        "kernel_w": (_O, "uint32", 12),
        "stride_h": (_O, "uint32", 13),
        "stride_w": (_O, "uint32", 14),
        "group": (_O, "uint32", 5),
        "weight_filler": (_O, "FillerParameter", 7),
        "bias_filler": (_O, "FillerParameter", 8),
        "engine": (_O, "Engine", 15),
        "axis": (_O, "int32", 16),
        "force_nd_im2col": (_O, "bool", 17),
    },
    "CropParameter": {"axis": (_O, "int32", 1), "offset": (_R, "uint32", 2)},
    "DataParameter": {
        "source": (_O, "string", 1),
        "batch_size": (_O, "uint32", 4),
        "rand_skip": (_O, "uint32", 7),
        "backend": (_O, "DB", 8),
        "scale": (_O, "float", 2),
        "mean_file": (_O, "string", 3),
        "crop_size": (_O, "uint32", 5),
        "mirror": (_O, "bool", 6),
        "force_encoded_color": (_O, "bool", 9),
        "prefetch": (_O, "uint32", 10),
    },
    "DropoutParameter": {"dropout_ratio": (_O, "float", 1)},
    "EltwiseParameter": {
        "operation": (_O, "EltwiseOp", 1),
        "coeff": (_R, "float", 2),
        "stable_prod_grad": (_O, "bool", 3),
    },
    "FlattenParameter": {"axis": (_O, "int32", 1), "end_axis": (_O, "int32", 2)},
    "InnerProductParameter": {
        "num_output": (_O, "uint32", 1),
        "bias_term": (_O, "bool", 2),
        "weight_filler": (_O, "FillerParameter", 3),
        "bias_filler": (_O, "FillerParameter", 4),
        "axis": (_O, "int32", 5),
        "transpose": (_O, "bool", 6),
    },
    "InputParameter": {"shape": (_R, "BlobShape", 1)},
    "LRNParameter": {
        "local_size": (_O, "uint32", 1),
        "alpha": (_O, "float", 2),
        "beta": (_O, "float", 3),
        "norm_region": (_O, "NormRegion", 4),
        "k": (_O, "float", 5),
        "engine": (_O, "Engine", 6),
    },
    "MemoryDataParameter": {
        "batch_size": (_O, "uint32", 1),
        "channels": (_O, "uint32", 2),
        "height": (_O, "uint32", 3),
        "width": (_O, "uint32", 4),
    },
    "PoolingParameter": {
        "pool": (_O, "PoolMethod", 1),
        "pad": (_O, "uint32", 4),
        "pad_h": (_O, "uint32", 9),
        "pad_w": (_O, "uint32", 10),
        "kernel_size": (_O, "uint32", 2),
        "kernel_h": (_O, "uint32", 5),
        "kernel_w": (_O, "uint32", 6),
        "stride": (_O, "uint32", 3),
        "stride_h": (_O, "uint32", 7),
        "stride_w": (_O, "uint32", 8),
        "engine": (_O, "Engine", 11),
        "global_pooling": (_O, "bool", 12),
        "round_mode": (_O, "RoundMode", 13),
    },
    "PythonParameter": {
        "module": (_O, "string", 1),
        "layer": (_O, "string", 2),
        "param_str": (_O, "string", 3),
        "share_in_parallel": (_O, "bool", 4),
    },
    "ReLUParameter": {"negative_slope": (_O, "float", 1), "engine": (_O, "Engine", 2)},
    "ReshapeParameter": {
        "shape": (_O, "BlobShape", 1),
        "axis": (_O, "int32", 2),
        "num_axes": (_O, "int32", 3),
    },
    "ScaleParameter": {
        "axis": (_O, "int32", 1),
        "num_axes": (_O, "int32", 2),
        "filler": (_O, "FillerParameter", 3),
        "bias_term": (_O, "bool", 4),
        "bias_filler": (_O, "FillerParameter", 5),
    },
    "SliceParameter": {
        "axis": (_O, "int32", 3),
        "slice_point": (_R, "uint32", 2),
        "slice_dim": (_O, "uint32", 1),
    },
    "SoftmaxParameter": {"engine": (_O, "Engine", 1), "axis": (_O, "int32", 2)},
    "V1LayerParameter": {
        "bottom": (_R, "string", 2),
        "top": (_R, "string", 3),
        "name": (_O, "string", 4),
        "include": (_R, "NetStateRule", 32),
        "exclude": (_R, "NetStateRule", 33),
        "type": (_O, "LayerType", 5),
        "blobs": (_R, "BlobProto", 6),
        "param": (_R, "string", 1001),
        "blob_share_mode": (_R, "DimCheckMode", 1002),
        "blobs_lr": (_R, "float", 7),
        "weight_decay": (_R, "float", 8),
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
}

_SCALARS = ("int32", "int64", "uint32", "uint64", "bool", "float", "double", "string")


class Field(NamedTuple):
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


BY_NAME = {
    message: {name: Field(name, *spec, _kind(spec[1])) for name, spec in fields.items()}
    for message, fields in MESSAGES.items()
}
BY_NUMBER = {
    message: {field.number: field for field in fields.values()}
    for message, fields in BY_NAME.items()
}
ENUM_NAMES = {
    enum: {number: name for name, number in values.items()} for enum, values in ENUMS.items()
}
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "enum": (-(2**31), 2**31 - 1),
}
NATIVE = {"float": np.float32, "double": np.float64}


def check_message(message: str) -> None:
    if message not in MESSAGES:
        raise CaffeFormatError(f"unknown message {message!r}; messages are: {', '.join(MESSAGES)}")


def bad_enum(field: Field, value: object) -> str:
    choices = ", ".join(f"{name}={number}" for name, number in ENUMS[field.type].items())
    return f"{value!r} is not a {field.type} for '{field.name}'; choose one of: {choices}"


def float32(value: float) -> float:
    """`value` rounded to float32, as the shortest decimal that rounds back to it (0.1f -> 0.1)."""
    with np.errstate(over="ignore"):
        return float(str(np.float32(value)))


def store(result: dict, arrays: dict, field: Field, value: Any) -> None:
    if field.is_array:
        arrays.setdefault(field, []).append(value)
    elif field.repeated:
        result.setdefault(field.name, []).append(value)
    else:
        result[field.name] = value


def finish_arrays(result: dict, arrays: dict[Field, list]) -> None:
    """Join the pieces of each array field (packed runs as arrays, unpacked values as floats)."""
    for field, items in arrays.items():
        dtype = NATIVE[field.kind]
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


# The largest Caffe file read, in bytes (2 GiB: VGG16's caffemodel is 0.55 GB); change it
# with the environment variable CONVSCOPE_MAX_CAFFE_BYTES.
MAX_CAFFE_BYTES = 2 * 1024**3


def read_file(path: str | Path, what: str) -> bytes:
    """The bytes of a regular file of at most `$CONVSCOPE_MAX_CAFFE_BYTES` (`MAX_CAFFE_BYTES`);
    a FIFO, a device or a folder is refused before it is opened."""
    path = readable_file(what, path, CaffeFormatError)
    limit = int(os.environ.get("CONVSCOPE_MAX_CAFFE_BYTES", MAX_CAFFE_BYTES))
    size = path.stat().st_size
    if size > limit:
        raise CaffeFormatError(
            f"{what} file {path} has {size:,} bytes, over the limit of {limit:,} "
            "(CONVSCOPE_MAX_CAFFE_BYTES)"
        )
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except OSError as error:
        raise CaffeFormatError(f"cannot read {what} file {path}: {error.strerror}") from None
