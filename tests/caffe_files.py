"""A small writer of Caffe files for tests: NetParameter dicts to .caffemodel bytes and .prototxt.

It uses the schema of `convscope.caffe.schema` and writes what Caffe writes: fields in number
order, fields declared `[packed = true]` packed (so blob `data` is one run of float32), other
repeated numbers one value per field. Dicts follow the readers' conventions: lists for repeated
fields, enum names (or numbers), NumPy arrays or lists for blob data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from convscope.caffe.schema import ENUMS, MESSAGES

CAFFE_FILES = Path(__file__).parent / "caffe"  # the CaffeNet, FCN-8s and LeNet deploy prototxts


def _field(message: str, name: str) -> tuple[str, str, int]:
    """The (label, type, number) of a field, or a KeyError naming the valid fields."""
    if name not in MESSAGES[message]:
        raise KeyError(
            f"{message} has no field {name!r}; fields are {', '.join(MESSAGES[message])}"
        )
    return MESSAGES[message][name]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 are written as ten-byte two's complement
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _enum_number(type_name: str, value: str | int) -> int:
    return value if isinstance(value, int) else ENUMS[type_name][value]


def _number_bytes(type_name: str, values) -> bytes:
    """The bytes of numeric `values` without tags, as in a packed run."""
    if type_name == "float":
        return np.asarray(values, dtype="<f4").tobytes()
    if type_name == "double":
        return np.asarray(values, dtype="<f8").tobytes()
    if type_name in ENUMS:
        return b"".join(_varint(_enum_number(type_name, value)) for value in values)
    return b"".join(_varint(int(value)) for value in values)


def _wire_type(type_name: str) -> int:
    if type_name in MESSAGES or type_name == "string":
        return 2  # length-delimited
    return {"float": 5, "double": 1}.get(type_name, 0)  # 32-bit, 64-bit, else varint


def _one_value(type_name: str, value) -> bytes:
    """One value without its tag: a number, or a length-prefixed string or message."""
    if type_name in MESSAGES:
        body = encode_binary(value, type_name)
    elif type_name == "string":
        body = value.encode("utf-8")
    else:
        return _number_bytes(type_name, [value])
    return _varint(len(body)) + body


def encode_binary(obj: dict, message: str = "NetParameter", packed: bool | None = None) -> bytes:
    """Encode a message dict in protobuf wire format, as Caffe would write it.

    Args:
        obj: the message as a dict with the readers' conventions.
        message: the caffe.proto message name.
        packed: None to pack exactly the fields caffe.proto declares packed; True to pack every
            repeated number, False to pack none (both must be read back the same).

    Returns:
        The serialized bytes.
    """
    out = bytearray()
    for name in sorted(obj, key=lambda name: _field(message, name)[2]):
        label, type_name, number = _field(message, name)
        values = [obj[name]] if label == "optional" else obj[name]
        numeric = type_name not in MESSAGES and type_name != "string"
        if label != "optional" and numeric and (label == "packed" if packed is None else packed):
            run = _number_bytes(type_name, values)
            out += _tag(number, 2) + _varint(len(run)) + run
            continue
        for value in values:
            out += _tag(number, _wire_type(type_name)) + _one_value(type_name, value)
    return bytes(out)


def _text_value(type_name: str, value) -> str:
    if type_name == "string":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if type_name == "bool":
        return "true" if value else "false"
    if type_name in ENUMS:
        names = {number: name for name, number in ENUMS[type_name].items()}
        return value if isinstance(value, str) else names[value]
    if type_name in ("float", "double"):
        value = float(value)
        return repr(value) if math.isfinite(value) else str(value)  # inf, -inf, nan
    return str(int(value))


def encode_text(obj: dict, message: str = "NetParameter", indent: int = 0) -> str:
    """Write a message dict as protobuf text format (a .prototxt), two spaces per level.

    Args:
        obj: the message as a dict with the readers' conventions.
        message: the caffe.proto message name.
        indent: the nesting level of the fields (0 for a whole file).

    Returns:
        The text, one field per line.
    """
    lines, pad = [], "  " * indent
    for name, value in obj.items():
        label, type_name, _ = _field(message, name)
        for item in [value] if label == "optional" else list(value):
            if type_name in MESSAGES:
                inner = encode_text(item, type_name, indent + 1)
                lines.append(f"{pad}{name} {{\n{inner}{pad}}}\n")
            else:
                lines.append(f"{pad}{name}: {_text_value(type_name, item)}\n")
    return "".join(lines)
