"""The protobuf wire format, for the handful of tfplugin6 messages the stand-in uses.

Why hand-written: generating stubs needs protoc/grpcio-tools and a copy of Terraform's
.proto; the provider needs to read about ten request shapes and write about ten responses,
which is a varint, a tag and a length prefix. Field numbers are cited at each use from
Terraform's `docs/plugin-protocol/tfplugin6.8.proto` (the protocol Terraform 1.11 speaks).

Decoding is schema-less: :func:`decode` gives ``{field number: [values]}`` where a value is an
``int`` (varint) or ``bytes`` (length-delimited: a string, bytes or a nested message); the
caller knows which. Encoding builds a message from ``(field number, value)`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

Value: TypeAlias = "int | bool | str | bytes | None"

VARINT = 0
I64 = 1
LEN = 2
I32 = 5


class WireError(ValueError):
    """The bytes are not a protobuf message this codec can read."""


def encode_varint(n: int) -> bytes:
    if n < 0:  # int64 negatives take ten bytes, two's complement
        n += 1 << 64
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def field(number: int, value: Value) -> bytes:
    """One field; ``None``, ``False``, ``0`` and empty values are proto3 defaults: omitted."""
    if value is None or value is False or value == 0 or value in (b"", ""):
        return b""
    if isinstance(value, bool | int):
        return encode_varint(number << 3 | VARINT) + encode_varint(int(value))
    raw = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | LEN) + encode_varint(len(raw)) + raw


def message(fields: Iterable[tuple[int, Value]]) -> bytes:
    return b"".join(field(n, v) for n, v in fields)


def submessage(number: int, body: bytes) -> bytes:
    """A nested message field, written even when empty (presence matters for messages)."""
    return encode_varint(number << 3 | LEN) + encode_varint(len(body)) + body


def decode(data: bytes) -> dict[int, list[int | bytes]]:
    out: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, kind = key >> 3, key & 7
        value: int | bytes
        if kind == VARINT:
            value, pos = decode_varint(data, pos)
        elif kind == LEN:
            size, pos = decode_varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number}: length {size} runs past the message")
            value, pos = data[pos:pos + size], pos + size
        elif kind == I64:
            value, pos = int.from_bytes(data[pos:pos + 8], "little"), pos + 8
        elif kind == I32:
            value, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
        else:
            raise WireError(f"field {number}: unsupported wire type {kind}")
        if number == 0:
            raise WireError("field number 0")
        out.setdefault(number, []).append(value)
    return out


def get_bytes(fields: dict[int, list[int | bytes]], number: int) -> bytes | None:
    """The last occurrence of a length-delimited field (proto3: last one wins)."""
    values = fields.get(number)
    if not values:
        return None
    value = values[-1]
    if not isinstance(value, bytes):
        raise WireError(f"field {number}: expected a length-delimited value")
    return value


def get_str(fields: dict[int, list[int | bytes]], number: int) -> str:
    raw = get_bytes(fields, number)
    return "" if raw is None else raw.decode("utf-8")


def get_int(fields: dict[int, list[int | bytes]], number: int) -> int:
    values = fields.get(number)
    if not values:
        return 0
    value = values[-1]
    if not isinstance(value, int):
        raise WireError(f"field {number}: expected a varint")
    return value
