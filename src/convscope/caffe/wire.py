"""Protobuf's binary wire format, read against the Caffe schema: `.caffemodel` files."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from convscope.caffe.schema import (
    BY_NUMBER,
    ENUM_NAMES,
    NATIVE,
    CaffeFormatError,
    Field,
    bad_enum,
    check_message,
    finish_arrays,
    float32,
    read_file,
    store,
)

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)
_WIRE_NAMES = ("varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit")
_WIRE_OF_KIND = {
    "int32": _VARINT,
    "int64": _VARINT,
    "uint32": _VARINT,
    "uint64": _VARINT,
    "bool": _VARINT,
    "enum": _VARINT,
    "float": _FIXED32,
    "double": _FIXED64,
    "string": _LENGTH,
    "message": _LENGTH,
}
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
        fields, result, arrays = BY_NUMBER[message], {} if into is None else into, {}
        while pos < end:
            key_pos = pos
            key, pos = self.varint(pos, end, path)
            number, wire = key >> 3, key & 7
            field = fields.get(number)
            if field is None:
                pos = self.skip(pos, end, number, wire, key_pos, path, 0)
            else:
                pos = self.field(pos, end, field, wire, key_pos, path, result, arrays)
        finish_arrays(result, arrays)
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
            store(result, arrays, field, value)
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

    def scalar(self, pos: int, end: int, field: Field, path: str) -> tuple[Any, int]:
        """Read one scalar value of `field` at `pos`; return it and the position after it."""
        kind = field.kind
        if kind in ("float", "double"):
            stop = self.span(pos, end, 4 if kind == "float" else 8, path, f"{kind} value")
            value = struct.unpack_from("<f" if kind == "float" else "<d", self.buf, pos)[0]
            return (float32(value) if kind == "float" and not field.is_array else value), stop
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
        name = ENUM_NAMES[field.type].get(_signed(raw, 32))
        if name is None:
            raise self.fail(pos, path, bad_enum(field, _signed(raw, 32)))
        return name, stop

    def packed(self, pos, end, field, path, result, arrays) -> int:
        """Read a packed run of numbers of a repeated `field`; return the position after it."""
        size, start = self.varint(pos, end, path)
        stop = self.span(start, end, size, path, f"packed run of '{field.name}'")
        if size == 0:  # no values: as absent as an empty repeated field always is
            return stop
        if field.kind not in NATIVE:
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
            arrays.setdefault(field, []).append(run.astype(NATIVE[field.kind]))
        elif field.kind == "float":
            result.setdefault(field.name, []).extend(float32(value) for value in run.tolist())
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
    check_message(message)
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise CaffeFormatError(f"parse_binary reads bytes, not {type(data).__name__}")
    return _WireReader(data).message(0, len(data), message, message)


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
    data = read_file(path, "caffemodel")
    try:
        net = parse_binary(data)
    except CaffeFormatError as error:
        raise CaffeFormatError(f"{path}: {error}") from None
    if "layer" not in net and "layers" not in net:
        raise CaffeFormatError(f"{path}: holds no layers ({len(data)} bytes); is it a caffemodel?")
    return net
