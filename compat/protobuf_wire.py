"""A minimal, defensive protobuf binary wire-format decoder and encoder (no ``protobuf`` dependency).

Legacy model files are protobuf messages: Caffe's ``.caffemodel`` (``NetParameter``), TF's checkpoint
index entries (``BundleEntryProto``), ``GraphDef``. Readers in this project describe the few fields they
need and walk the wire format with :func:`iter_fields`; nothing is generated from ``.proto`` files.

Wire format (developers.google.com/protocol-buffers/docs/encoding): each field is a varint key
``(field_number << 3) | wire_type`` followed by a varint (type 0), 8 bytes (1), a varint length and that
many bytes (2: strings, bytes, nested messages, packed repeated scalars) or 4 bytes (5). Groups (3, 4)
are rejected. Defences against truncated, corrupted or hostile input:

* every read is bounds-checked; a declared length beyond the end of its enclosing message is an error
  raised *before* anything is sliced or allocated (slices are zero-copy ``memoryview`` views);
* varints longer than 10 bytes, field number 0 and wire types 3, 4, 6, 7 are errors;
* nesting depth is bounded by the caller's schema (:data:`MAX_DEPTH` for generic walks);
* packed arrays must be a whole number of elements.

Errors are :class:`WireError` naming the source, the message path and the byte offset.
"""
from __future__ import annotations

import struct
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

MAX_DEPTH = 32
VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
WIRE_TYPE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group", 4: "end-group", 5: "32-bit"}

Buffer = Union[bytes, bytearray, memoryview]


class WireError(ValueError):
    """Malformed protobuf bytes; the message names the source, the field path and the offset."""


class Reader:
    """Bounds-checked view over ``data[start:end]``; ``base`` is its offset in the whole file (for errors)."""

    __slots__ = ("view", "pos", "end", "base", "source", "path")

    def __init__(self, data: Buffer, source: str = "<bytes>", path: str = "", base: int = 0):
        self.view = data if isinstance(data, memoryview) else memoryview(data)
        if self.view.ndim != 1 or self.view.itemsize != 1:
            self.view = self.view.cast("B")
        self.pos, self.end, self.base = 0, len(self.view), base
        self.source, self.path = source, path

    def fail(self, message: str, at: Optional[int] = None) -> None:
        where = self.base + (self.pos if at is None else at)
        path = f" in {self.path}" if self.path else ""
        raise WireError(f"{self.source}: {message}{path} at byte {where}")

    def varint(self) -> int:
        result = shift = 0
        start = self.pos
        while True:
            if self.pos >= self.end:
                self.fail("truncated varint", start)
            b = self.view[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift >= 70:
                self.fail("varint longer than 10 bytes", start)

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.end - self.pos:
            self.fail(f"{what} declares {n} bytes but only {self.end - self.pos} remain")
        v = self.view[self.pos:self.pos + n]
        self.pos += n
        return v

    def sub(self, view: memoryview, offset: int, name: str) -> "Reader":
        return Reader(view, self.source, f"{self.path}.{name}" if self.path else name, self.base + offset)


def iter_fields(reader: Reader) -> Iterator[Tuple[int, int, object, int]]:
    """Yield ``(field_number, wire_type, value, offset)``; value: int (varint, fixed32/64 raw) or memoryview."""
    while reader.pos < reader.end:
        offset = reader.pos
        key = reader.varint()
        field, wire = key >> 3, key & 7
        if field == 0:
            reader.fail("field number 0", offset)
        if wire == VARINT:
            value = reader.varint()
        elif wire == FIXED64:
            value = int.from_bytes(reader.take(8, f"field {field} (64-bit)"), "little")
        elif wire == LEN:
            n = reader.varint()
            value = reader.take(n, f"field {field} (length-delimited)")
        elif wire == FIXED32:
            value = int.from_bytes(reader.take(4, f"field {field} (32-bit)"), "little")
        else:
            reader.fail(f"field {field} has unsupported wire type {wire} ({WIRE_TYPE_NAMES.get(wire, 'invalid')})",
                        offset)
        yield field, wire, value, offset


def signed64(v: int) -> int:
    """A varint read as int64/int32 (negative values are 10-byte two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def as_string(reader: Reader, value, field_name: str) -> str:
    if not isinstance(value, memoryview):
        reader.fail(f"field {field_name} should be length-delimited (a string)")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        reader.fail(f"field {field_name} is not valid UTF-8")


def packed_scalars(reader: Reader, wire: int, value, dtype: str, field_name: str) -> np.ndarray:
    """One occurrence of a repeated float/double field: packed (LEN) or a single unpacked element."""
    size = np.dtype(dtype).itemsize
    if wire == LEN:
        if len(value) % size:
            reader.fail(f"packed field {field_name} has {len(value)} bytes, not a multiple of {size}")
        return np.frombuffer(value, dtype=dtype)
    expected = FIXED32 if size == 4 else FIXED64
    if wire != expected:
        reader.fail(f"field {field_name} has wire type {WIRE_TYPE_NAMES.get(wire)}; expected "
                    f"{WIRE_TYPE_NAMES[expected]} or packed")
    return np.frombuffer(int(value).to_bytes(size, "little"), dtype=dtype)


def packed_varints(reader: Reader, wire: int, value, field_name: str, parent: Reader) -> List[int]:
    """One occurrence of a repeated integer field: packed (LEN) or a single varint."""
    if wire == VARINT:
        return [signed64(value)]
    if wire != LEN:
        parent.fail(f"field {field_name} has wire type {WIRE_TYPE_NAMES.get(wire)}; expected varint or packed")
    inner = Reader(value, parent.source, parent.path, parent.base)
    out = []
    while inner.pos < inner.end:
        out.append(signed64(inner.varint()))
    return out


# ------------------------------------------------------------------------------------------- encoding


def encode_varint(v: int) -> bytes:
    if v < 0:
        v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return encode_varint((field << 3) | wire)


class Writer:
    """Append-only encoder: ``Writer().string(1, "x").message(7, sub).packed_floats(5, arr).bytes()``."""

    def __init__(self):
        self.parts: List[bytes] = []

    def varint(self, field: int, v: int) -> "Writer":
        self.parts += [key(field, VARINT), encode_varint(int(v))]
        return self

    def length_delimited(self, field: int, payload: bytes) -> "Writer":
        self.parts += [key(field, LEN), encode_varint(len(payload)), payload]
        return self

    def string(self, field: int, s: str) -> "Writer":
        return self.length_delimited(field, s.encode("utf-8"))

    def message(self, field: int, sub: "Writer") -> "Writer":
        return self.length_delimited(field, sub.bytes())

    def packed_varints(self, field: int, values: Sequence[int]) -> "Writer":
        return self.length_delimited(field, b"".join(encode_varint(int(v)) for v in values))

    def packed_floats(self, field: int, values, dtype: str = "<f4") -> "Writer":
        return self.length_delimited(field, np.ascontiguousarray(np.asarray(values).reshape(-1), dtype=dtype).tobytes())

    def fixed32_float(self, field: int, v: float) -> "Writer":
        self.parts += [key(field, FIXED32), struct.pack("<f", v)]
        return self

    def bytes(self) -> bytes:
        return b"".join(self.parts)
