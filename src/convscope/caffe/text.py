"""Protobuf's text format, read against the Caffe schema: `.prototxt` files."""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from convscope.caffe.schema import (
    BY_NAME,
    ENUM_NAMES,
    ENUMS,
    INT_RANGES,
    MESSAGES,
    CaffeFormatError,
    Field,
    bad_enum,
    check_message,
    finish_arrays,
    float32,
    read_file,
    store,
)

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
            field = BY_NAME[message].get(token.text)
            if field is None:
                raise self.fail(token.offset, _unknown_field(message, token.text), path)
            self.field(field, token, f"{path}.{field.name}", result, arrays)
            if self.token.text in (";", ",") and self.token.kind == "symbol":
                self.advance()
        if closing:
            self.advance()
        finish_arrays(result, arrays)
        return result

    def field(self, field: Field, name: _Token, path: str, result: dict, arrays: dict) -> None:
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

    def value(self, field: Field, path: str, result: dict, arrays: dict) -> None:
        """Read one value of `field` (a scalar or a whole `{ ... }` message) into `result`."""
        if field.kind != "message":
            store(result, arrays, field, self.scalar(field, path))
            return
        opener = self.expect(("{", "<"), f"to open '{field.name}' ({field.type})", path)
        if field.repeated:
            items = result.setdefault(field.name, [])
            items.append(self.message(field.type, f"{path}[{len(items)}]", opener))
        else:
            result[field.name] = self.message(field.type, path, opener)

    def scalar(self, field: Field, path: str) -> Any:
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
                raise self.fail(token.offset, bad_enum(field, token.text), path)
            return token.text
        if kind in ("float", "double"):
            value = _parse_float(token)
            if value is not None:
                value = -value if negative else value
                return float32(value) if kind == "float" and not field.is_array else value
        if kind in INT_RANGES and token.kind == "number":
            value = _parse_int(token.text)
            if value is not None:
                shown = f"-{token.text}" if negative else token.text
                return self.integer(-value if negative else value, shown, token, field, path)
        raise self.fail(
            token.offset,
            f"expected {_a(field.type)} for '{field.name}', found {token.shown()}",
            path,
        )

    def integer(self, value: int, shown: str, token: _Token, field: Field, path: str):
        """Check `value` (written as `shown`) against the field's range; enums become names."""
        low, high = INT_RANGES[field.kind]
        shown = shown if len(shown) < 40 else f"{shown[:20]}...({len(shown)} digits)"
        if not low <= value <= high:
            raise self.fail(
                token.offset,
                f"{shown} is out of range for {field.type} '{field.name}' ({low} to {high})",
                path,
            )
        if field.kind != "enum":
            return value
        if value not in ENUM_NAMES[field.type]:
            raise self.fail(token.offset, bad_enum(field, value), path)
        return ENUM_NAMES[field.type][value]

    def string(self, token: _Token, field: Field, path: str) -> str:
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
    check_message(message)
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
    data = read_file(source, "prototxt")
    try:
        return parse_text(data.decode("utf-8-sig"))  # -sig: skip a byte order mark
    except UnicodeDecodeError as error:
        raise CaffeFormatError(f"{source}: byte {error.start}: not UTF-8 text") from None
    except CaffeFormatError as error:
        raise CaffeFormatError(f"{source}: {error}") from None
