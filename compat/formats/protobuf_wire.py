"""The protobuf binary wire format, decoded and encoded without the ``protobuf`` package.

Legacy model files are protobuf messages: Caffe's ``.caffemodel`` (``NetParameter``), TF's checkpoint
index entries (``BundleEntryProto``, ``SavedTensorSlices``). Their readers describe the few fields they
need and walk the wire format with :func:`iter_fields`; nothing is generated from ``.proto`` files.

Wire format (developers.google.com/protocol-buffers/docs/encoding): each field is a varint key
``(field_number << 3) | wire_type`` followed by a varint (type 0), 8 bytes (1), a varint length and that
many bytes (2: strings, bytes, nested messages, packed repeated scalars) or 4 bytes (5). Groups (3, 4)
are rejected. Defences against truncated, corrupted or hostile input:

* every read is bounds-checked; a declared length beyond the end of its enclosing message is an error
  raised *before* anything is sliced or allocated (slices are zero-copy ``memoryview`` views);
* varints longer than 10 bytes or above 64 bits, field number 0 and wire types 3, 4, 6, 7 are errors;
* nesting depth is bounded by the caller's schema (nested messages come back as bytes and are parsed
  only where the schema says so);
* packed arrays must be a whole number of elements; packed varints are counted (one vectorised pass)
  before they are decoded, so a caller's cap on their number holds before any list exists.

Errors are raised by the reader's ``error`` class, called as ``error(source, message)``; the message
names the field path and the byte offset. The default is :class:`WireError`.
"""
from __future__ import annotations

import struct
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from compat.errors import FileFormatError

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
WIRE_TYPE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "start-group", 4: "end-group", 5: "32-bit"}

Buffer = Union[bytes, bytearray, memoryview]


class WireError(FileFormatError):
    """Malformed protobuf bytes; the message names the source, the field path and the offset."""

    def __init__(self, source, message: str):
        self.source = str(source)
        self.detail = message
        super().__init__(f"{source}: {message}")


ErrorFactory = Callable[[str, str], Exception]


class Reader:
    """Bounds-checked view over ``data``; ``base`` is its offset in the whole file (for errors)."""

    __slots__ = ("view", "pos", "end", "base", "source", "path", "error")

    def __init__(self, data: Buffer, source: str = "<bytes>", path: str = "", base: int = 0,
                 error: ErrorFactory = WireError):
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1 or view.format != "B":
            view = view.cast("B")
        self.view = view
        self.pos, self.end, self.base = 0, len(view), base
        self.source, self.path, self.error = source, path, error

    def fail(self, message: str, at: Optional[int] = None):
        where = self.base + (self.pos if at is None else at)
        path = f" in {self.path}" if self.path else ""
        raise self.error(self.source, f"{message}{path} at byte {where}")

    def done(self) -> bool:
        return self.pos >= self.end

    def varint(self, bits: int = 64) -> int:
        result = shift = 0
        view, pos, end = self.view, self.pos, self.end
        start = pos
        while True:
            if pos >= end:
                self.fail("truncated varint", start)
            b = view[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift >= 70:
                self.fail("varint longer than 10 bytes", start)
        if result >> bits:
            self.fail(f"varint overflows {bits} bits", start)
        self.pos = pos
        return result

    def take(self, n: int, what: str = "field") -> memoryview:
        if n < 0 or n > self.end - self.pos:
            self.fail(f"{what} declares {n} bytes but only {self.end - self.pos} remain")
        v = self.view[self.pos:self.pos + n]
        self.pos += n
        return v

    def fixed32(self, what: str = "32-bit field") -> int:
        return int.from_bytes(self.take(4, what), "little")

    def fixed64(self, what: str = "64-bit field") -> int:
        return int.from_bytes(self.take(8, what), "little")

    def sub(self, view: memoryview, offset: int, name: str) -> "Reader":
        """A reader of a nested message found at ``offset`` of this one (errors keep the field path)."""
        return Reader(view, self.source, f"{self.path}.{name}" if self.path else name, self.base + offset,
                      self.error)


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
            value = reader.fixed64(f"field {field} (64-bit)")
        elif wire == LEN:
            n = reader.varint()
            value = reader.take(n, f"field {field} (length-delimited)")
        elif wire == FIXED32:
            value = reader.fixed32(f"field {field} (32-bit)")
        else:
            reader.fail(f"field {field} has unsupported wire type {wire} ({WIRE_TYPE_NAMES.get(wire, 'invalid')})",
                        offset)
        yield field, wire, value, offset


def expect_wire(reader: Reader, wire: int, wanted: int, field_name: str, offset: Optional[int] = None) -> None:
    if wire != wanted:
        reader.fail(f"field {field_name} has wire type {WIRE_TYPE_NAMES.get(wire, wire)}; expected "
                    f"{WIRE_TYPE_NAMES[wanted]}", offset)


def signed64(v: int) -> int:
    """A varint read as int64 (negative values are 10-byte two's complement)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def signed32(v: int) -> int:
    """A varint read as int32 (sign-extended to 64 bits on the wire; the upper bits are dropped, as protobuf does)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def as_string(reader: Reader, value, field_name: str, offset: Optional[int] = None) -> str:
    if not isinstance(value, memoryview):
        reader.fail(f"field {field_name} should be length-delimited (a string)", offset)
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        reader.fail(f"field {field_name} is not valid UTF-8", offset)


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


def count_packed_varints(value: Buffer) -> int:
    """How many varints a packed field holds (its bytes below 0x80), without decoding them."""
    if len(value) <= 64:
        return sum(1 for b in memoryview(value).cast("B") if b < 0x80)
    buf = np.frombuffer(value, dtype=np.uint8)
    return int(np.count_nonzero(buf < 0x80))


def decode_packed_varints(reader: Reader, value: Buffer, field_name: str) -> np.ndarray:
    """The varints of a packed field as uint64, decoded in one vectorised pass (no per-element Python loop)."""
    buf = np.frombuffer(value, dtype=np.uint8)
    if buf.size == 0:
        return np.zeros(0, dtype=np.uint64)
    ends = np.flatnonzero(buf < 0x80)
    if ends.size == 0 or ends[-1] != buf.size - 1:
        reader.fail(f"packed field {field_name} ends in a truncated varint")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        reader.fail(f"packed field {field_name} holds a varint longer than 10 bytes")
    if longest == 10 and np.any(buf[ends[lengths == 10]] > 1):
        reader.fail(f"packed field {field_name} holds a varint that overflows 64 bits")
    out = np.zeros(ends.size, dtype=np.uint64)
    for k in range(longest):
        rows = np.flatnonzero(lengths > k)
        out[rows] |= (buf[starts[rows] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return out


def packed_varints(reader: Reader, wire: int, value, field_name: str, limit: Optional[int] = None) -> np.ndarray:
    """One occurrence of a repeated int64 field as int64: packed (LEN) or a single varint.

    With ``limit``, more than ``limit`` values is an error raised before any of them is decoded.
    """
    if wire == VARINT:
        return np.array([signed64(value)], dtype=np.int64)
    if wire != LEN:
        reader.fail(f"field {field_name} has wire type {WIRE_TYPE_NAMES.get(wire)}; expected varint or packed")
    if limit is not None:
        n = count_packed_varints(value)
        if n > limit:
            reader.fail(f"field {field_name} holds {n} values; at most {limit} are allowed")
    if len(value) <= 64:  # a few values: a plain loop beats numpy's per-call overhead
        inner = Reader(value, reader.source, reader.path, reader.base, reader.error)
        out = []
        while not inner.done():
            out.append(signed64(inner.varint()))
        return np.array(out, dtype=np.int64)
    return decode_packed_varints(reader, value, field_name).view(np.int64)


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


def put_varint(out: bytearray, v: int) -> None:
    """Append the varint of ``v`` (negative values as 10-byte two's complement) to ``out``."""
    out += encode_varint(v)


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
        self.parts += [key(field, LEN), encode_varint(len(payload)), bytes(payload)]
        return self

    def string(self, field: int, s: str) -> "Writer":
        return self.length_delimited(field, s.encode("utf-8"))

    def message(self, field: int, sub: "Writer") -> "Writer":
        return self.length_delimited(field, sub.bytes())

    def packed_varints(self, field: int, values: Sequence[int]) -> "Writer":
        return self.length_delimited(field, b"".join(encode_varint(int(v)) for v in values))

    def packed_floats(self, field: int, values, dtype: str = "<f4") -> "Writer":
        return self.length_delimited(field, np.ascontiguousarray(np.asarray(values).reshape(-1), dtype=dtype).tobytes())

    def fixed32(self, field: int, v: int) -> "Writer":
        self.parts += [key(field, FIXED32), struct.pack("<I", v & 0xFFFFFFFF)]
        return self

    def fixed32_float(self, field: int, v: float) -> "Writer":
        self.parts += [key(field, FIXED32), struct.pack("<f", v)]
        return self

    def bytes(self) -> bytes:
        return b"".join(self.parts)
