"""TensorFlow 1 checkpoints read and written without TensorFlow (numpy only).

Formats (all little-endian):

* **V2** (``tf.train.Saver`` default since TF 1.0, and ``tf.train.Checkpoint``): ``PREFIX.index`` is a
  LevelDB-style sorted table (``tensorflow/core/lib/io/table_builder.cc``, ``format.cc``): data blocks of
  prefix-compressed entries with restart points, an index block of block handles, a metaindex block and
  a 48-byte footer ending in the magic 0xdb4775248b80fb57; each block is followed by a compression-type
  byte and the masked CRC-32C of block and type. The entry under the empty key is a
  ``BundleHeaderProto`` (num_shards, endianness, version); every other key is a tensor name whose value
  is a ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, masked crc32c of the bytes, slices).
  The bytes live in ``PREFIX.data-NNNNN-of-MMMMM`` (``tensor_bundle.cc``).
* **V1** (``Saver(write_version=V1)``, TF 0.x): one table file whose entries are ``SavedTensorSlices``:
  the empty key holds the ``SavedTensorSliceMeta`` (name, shape, dtype of every tensor), the others a
  ``SavedSlice`` with the values in a ``TensorProto`` (``tensor_slice_writer.h``).
* The **directory form**: a ``checkpoint`` file in text protobuf format (``CheckpointState``) whose
  ``model_checkpoint_path`` names the newest prefix, relative to the directory unless absolute, as
  ``tf.train.latest_checkpoint`` resolves it.

Every length, offset and size read from a file is checked against the file's real size before any
allocation; every checksum is verified. Anything wrong raises :class:`CheckpointError` naming the file
and the field at fault.

Not supported (a clear error says so): partitioned variables (entries with ``slices``, written by
``tf.compat.v1.get_variable(partitioner=...)``), ``DT_VARIANT`` and resource tensors, big-endian bundles,
sharded V1 files (``PREFIX-?????-of-?????``). bfloat16 tensors are returned as float32 (numpy has no
bfloat16); strings as object arrays of bytes.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

import numpy as np

from compat.atomic import atomic_path, atomic_write_text
from compat.crc32c import crc32c, mask, unmask

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "CheckpointReader", "TensorInfo",
    "latest_checkpoint", "resolve_checkpoint", "list_variables", "load_variable", "load_checkpoint",
    "save_checkpoint", "write_checkpoint_state",
]

PathLike = Union[str, os.PathLike]

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two BlockHandles padded to 2 * 20 bytes, then the 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c
MAX_INDEX_FILE_BYTES = 1 << 30
MAX_RANK = 254  # TensorShape::MaxDimensions()
MAX_DIM = (1 << 63) - 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, corrupt or uses a feature this reader lacks."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.detail = message
        super().__init__(f"{path}: {message}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path."""


# ---------------------------------------------------------------------------------------------------
# DataType (tensorflow/core/framework/types.proto) <-> numpy

_DT_TO_NUMPY = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 8: np.dtype("<c8"), 9: np.dtype("<i8"), 10: np.dtype("?"), 11: np.dtype("i1"),
    12: np.dtype("u1"), 13: np.dtype("<i4"), 15: np.dtype("<i2"), 16: np.dtype("<u2"), 17: np.dtype("<u2"),
    18: np.dtype("<c16"), 19: np.dtype("<f2"), 22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
DT_STRING = 7
DT_BFLOAT16 = 14
DT_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16",
    15: "qint16", 16: "quint16", 17: "uint16", 18: "complex128", 19: "float16", 20: "resource",
    21: "variant", 22: "uint32", 23: "uint64",
}
_NUMPY_TO_DT = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.uint8): 4,
    np.dtype(np.int16): 5, np.dtype(np.int8): 6, np.dtype(np.complex64): 8, np.dtype(np.int64): 9,
    np.dtype(np.bool_): 10, np.dtype(np.uint16): 17, np.dtype(np.complex128): 18, np.dtype(np.float16): 19,
    np.dtype(np.uint32): 22, np.dtype(np.uint64): 23,
}


def _item_size(dtype_enum: int) -> int | None:
    if dtype_enum == DT_BFLOAT16:
        return 2
    dt = _DT_TO_NUMPY.get(dtype_enum)
    return None if dt is None else dt.itemsize


# ---------------------------------------------------------------------------------------------------
# Bounded byte reading and the protobuf wire format


class _Cursor:
    """Reads varints and fixed-width integers from ``buf[pos:end]``, raising CheckpointError on overrun."""

    __slots__ = ("buf", "pos", "end", "path", "what")

    def __init__(self, buf: bytes, path, what: str, pos: int = 0, end: int | None = None):
        self.buf, self.pos, self.end, self.path, self.what = buf, pos, len(buf) if end is None else end, path, what

    def fail(self, message: str):
        raise CheckpointError(self.path, f"{self.what}: {message}")

    def varint(self, bits: int = 64) -> int:
        result = shift = 0
        buf, pos, end = self.buf, self.pos, self.end
        while True:
            if pos >= end:
                self.fail("truncated varint")
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 70:
                self.fail("varint longer than 10 bytes")
        if result >> bits:
            self.fail(f"varint {result} overflows {bits} bits")
        self.pos = pos
        return result

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            self.fail(f"length {n} at offset {self.pos} runs past the end ({self.end})")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def fixed32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def fixed64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def done(self) -> bool:
        return self.pos >= self.end


def _proto_fields(data: bytes, path, what: str) -> Iterator[tuple[int, int, object]]:
    """Yield (field_number, wire_type, value) of a serialized message; value is an int or bytes.

    Nested messages come back as bytes and are parsed only where the schema says so, so nesting depth
    is bounded by the schema. Groups (wire types 3, 4) never occur in these protos and are an error.
    """
    cur = _Cursor(data, path, what)
    while not cur.done():
        key = cur.varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            cur.fail("field number 0")
        if wire == 0:
            yield number, wire, cur.varint()
        elif wire == 1:
            yield number, wire, cur.fixed64()
        elif wire == 2:
            yield number, wire, cur.take(cur.varint())
        elif wire == 5:
            yield number, wire, cur.fixed32()
        else:
            cur.fail(f"unsupported wire type {wire} for field {number}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF  # int32 fields are sign-extended to 64 bits on the wire
    return v - (1 << 32) if v >> 31 else v


def _expect(wire: int, wanted: int, cur_path, what: str, number: int):
    if wire != wanted:
        raise CheckpointError(cur_path, f"{what}: field {number} has wire type {wire}, expected {wanted}")


def _parse_shape(data: bytes, path, what: str) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 {int64 size = 1; string name = 2}; bool unknown_rank = 3."""
    dims = []
    for number, wire, value in _proto_fields(data, path, what + " shape"):
        if number == 2:
            _expect(wire, 2, path, what + " shape", number)
            size = 0
            for n2, w2, v2 in _proto_fields(value, path, what + " shape dim"):
                if n2 == 1:
                    _expect(w2, 0, path, what + " shape dim", n2)
                    size = _signed64(v2)
            if size < 0:
                raise CheckpointError(path, f"{what}: dimension {len(dims)} has size {size}")
            dims.append(size)
            if len(dims) > MAX_RANK:
                raise CheckpointError(path, f"{what}: more than {MAX_RANK} dimensions")
        elif number == 3 and wire == 0 and value:
            raise CheckpointError(path, f"{what}: shape of unknown rank")
    return tuple(dims)


def _parse_slice_extents(data: bytes, path, what: str) -> list[tuple[int, int]]:
    """TensorSliceProto: repeated Extent extent = 1 {int64 start = 1; int64 length = 2 (absent: all)}."""
    extents = []
    for number, wire, value in _proto_fields(data, path, what + " slice"):
        if number == 1:
            _expect(wire, 2, path, what + " slice", number)
            start, length = 0, -1
            for n2, w2, v2 in _proto_fields(value, path, what + " slice extent"):
                if n2 in (1, 2):
                    _expect(w2, 0, path, what + " slice extent", n2)
                if n2 == 1:
                    start = _signed64(v2)
                elif n2 == 2:
                    length = _signed64(v2)
            extents.append((start, length))
            if len(extents) > MAX_RANK:
                raise CheckpointError(path, f"{what}: slice of more than {MAX_RANK} dimensions")
    return extents


@dataclass
class TensorInfo:
    """One tensor's metadata: BundleEntryProto for V2, SavedSliceMeta plus SavedSlice for V1."""

    name: str
    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int | None = None
    sliced: bool = False
    v1_slices: list = field(default_factory=list)  # V1: (extents, TensorProto bytes)

    @property
    def dtype(self) -> str:
        return DT_NAMES.get(self.dtype_enum, f"DataType({self.dtype_enum})")

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def _parse_bundle_entry(name: str, data: bytes, path) -> TensorInfo:
    what = f"entry {name!r}"
    info = TensorInfo(name=name, dtype_enum=0, shape=())
    for number, wire, value in _proto_fields(data, path, what):
        if number == 1:
            _expect(wire, 0, path, what, number)
            info.dtype_enum = value
        elif number == 2:
            _expect(wire, 2, path, what, number)
            info.shape = _parse_shape(value, path, what)
        elif number == 3:
            _expect(wire, 0, path, what, number)
            info.shard_id = _signed32(value)
        elif number == 4:
            _expect(wire, 0, path, what, number)
            info.offset = _signed64(value)
        elif number == 5:
            _expect(wire, 0, path, what, number)
            info.size = _signed64(value)
        elif number == 6:
            _expect(wire, 5, path, what, number)
            info.crc32c = value
        elif number == 7:
            info.sliced = True
    if info.offset < 0 or info.size < 0 or info.shard_id < 0:
        raise CheckpointError(path, f"{what}: negative offset, size or shard_id "
                                    f"({info.offset}, {info.size}, {info.shard_id})")
    return info


# ---------------------------------------------------------------------------------------------------
# Snappy (only for tables written with compression; TF's bundle writer never compresses, V1 may)


def _snappy_decompress(data: bytes, path, what: str) -> bytes:
    cur = _Cursor(data, path, what + " (snappy)")
    length = cur.varint(32)
    if length > 64 * len(data) + 64:  # a snappy copy element expands at most 64 / 2 = 32 times
        cur.fail(f"declared uncompressed length {length} is impossible for {len(data)} compressed bytes")
    out = bytearray()
    while not cur.done():
        tag = cur.take(1)[0]
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                n = int.from_bytes(cur.take(n - 59), "little")
            out += cur.take(n + 1)
        else:
            if kind == 1:
                n = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | cur.take(1)[0]
            elif kind == 2:
                n = (tag >> 2) + 1
                offset = int.from_bytes(cur.take(2), "little")
            else:
                n = (tag >> 2) + 1
                offset = int.from_bytes(cur.take(4), "little")
            if offset == 0 or offset > len(out):
                cur.fail(f"copy offset {offset} outside the {len(out)} bytes produced so far")
            start = len(out) - offset
            for i in range(n):  # copies may overlap their own output
                out.append(out[start + i])
        if len(out) > length:
            cur.fail(f"output exceeds the declared length {length}")
    if len(out) != length:
        cur.fail(f"produced {len(out)} bytes, declared {length}")
    return bytes(out)


# ---------------------------------------------------------------------------------------------------
# The sorted table (LevelDB format as tensorflow/core/lib/io keeps it)


def _read_block(buf: bytes, offset: int, size: int, path, what: str) -> bytes:
    if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER_SIZE > len(buf) - FOOTER_SIZE:
        raise CheckpointError(path, f"{what}: block at offset {offset} of size {size} lies outside the "
                                    f"file ({len(buf)} bytes)")
    contents = buf[offset:offset + size]
    kind = buf[offset + size]
    stored = struct.unpack_from("<I", buf, offset + size + 1)[0]
    actual = crc32c(buf[offset:offset + size + 1])
    if unmask(stored) != actual:
        raise CheckpointError(path, f"{what}: block checksum mismatch at offset {offset} "
                                    f"(stored {unmask(stored):08x}, computed {actual:08x})")
    if kind == 0:
        return contents
    if kind == 1:
        return _snappy_decompress(contents, path, what)
    raise CheckpointError(path, f"{what}: unknown block compression type {kind}")


def _block_entries(block: bytes, path, what: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError(path, f"{what}: block of {len(block)} bytes is too short for its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    if num_restarts * 4 + 4 > len(block):
        raise CheckpointError(path, f"{what}: {num_restarts} restart points do not fit in a block of "
                                    f"{len(block)} bytes")
    limit = len(block) - 4 - 4 * num_restarts
    cur = _Cursor(block, path, what, end=limit)
    key = b""
    while not cur.done():
        shared = cur.varint(32)
        non_shared = cur.varint(32)
        value_len = cur.varint(32)
        if shared > len(key):
            cur.fail(f"entry shares {shared} bytes with a previous key of {len(key)} bytes")
        new_key = key[:shared] + cur.take(non_shared)
        value = cur.take(value_len)
        if key and new_key <= key:
            cur.fail(f"keys out of order ({key!r} then {new_key!r})")
        key = new_key
        yield key, value


def _decode_handle(value: bytes, path, what: str) -> tuple[int, int]:
    cur = _Cursor(value, path, what)
    return cur.varint(), cur.varint()


def _table_entries(buf: bytes, path) -> Iterator[tuple[bytes, bytes]]:
    """All (key, value) pairs of a table held in ``buf``, in key order."""
    if len(buf) < FOOTER_SIZE:
        raise CheckpointError(path, f"file of {len(buf)} bytes is too short for a table footer "
                                    f"({FOOTER_SIZE} bytes); truncated or not a checkpoint")
    footer = buf[len(buf) - FOOTER_SIZE:]
    magic = struct.unpack_from("<Q", footer, 40)[0]
    if magic != TABLE_MAGIC:
        raise CheckpointError(path, f"bad table magic {magic:#018x} (expected {TABLE_MAGIC:#018x}); "
                                    "truncated, corrupt or not a TensorFlow checkpoint")
    cur = _Cursor(footer, path, "footer", end=40)
    cur.varint(), cur.varint()  # the metaindex handle: TF writes an empty metaindex block, unused here
    index_handle = (cur.varint(), cur.varint())
    index = _read_block(buf, *index_handle, path, "index block")
    previous_end = 0
    for _sep, handle_bytes in _block_entries(index, path, "index block"):
        offset, size = _decode_handle(handle_bytes, path, "index block handle")
        if offset < previous_end:
            raise CheckpointError(path, f"index block: data block at offset {offset} overlaps the previous "
                                        f"one (ending at {previous_end})")
        previous_end = offset + size + BLOCK_TRAILER_SIZE
        block = _read_block(buf, offset, size, path, f"data block at offset {offset}")
        yield from _block_entries(block, path, f"data block at offset {offset}")


def _put_varint(out: bytearray, v: int):
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _build_block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts = []
    last = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            limit = min(len(last), len(key))
            while shared < limit and last[shared] == key[shared]:
                shared += 1
        _put_varint(out, shared)
        _put_varint(out, len(key) - shared)
        _put_varint(out, len(value))
        out += key[shared:]
        out += value
        last = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def _build_table(entries: list[tuple[bytes, bytes]], block_size: int = 262144,
                 restart_interval: int = 16) -> bytes:
    """A table as TF's TableBuilder writes it without compression (keys must be sorted and unique)."""
    out = bytearray()
    index_entries = []

    def emit(block: bytes) -> tuple[int, int]:
        offset = len(out)
        out.extend(block)
        out.append(0)
        out.extend(struct.pack("<I", mask(crc32c(block + b"\x00"))))
        return offset, len(block)

    pending: list[tuple[bytes, bytes]] = []
    pending_size = 0
    for key, value in entries:
        pending.append((key, value))
        pending_size += len(key) + len(value) + 15
        if pending_size >= block_size:
            offset, size = emit(_build_block(pending, restart_interval))
            index_entries.append((pending[-1][0], offset, size))
            pending, pending_size = [], 0
    if pending:
        offset, size = emit(_build_block(pending, restart_interval))
        index_entries.append((pending[-1][0], offset, size))
    meta_handle = emit(_build_block([], restart_interval))
    index_block = []
    for key, offset, size in index_entries:
        handle = bytearray()
        _put_varint(handle, offset)
        _put_varint(handle, size)
        index_block.append((key, bytes(handle)))
    index_handle = emit(_build_block(index_block, 1))
    footer = bytearray()
    for v in (*meta_handle, *index_handle):
        _put_varint(footer, v)
    footer += b"\x00" * (40 - len(footer))
    footer += struct.pack("<Q", TABLE_MAGIC)
    out += footer
    return bytes(out)


# ---------------------------------------------------------------------------------------------------
# Path resolution (tf.train.latest_checkpoint, checkpoint_management.py)


_TEXT_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "'": "'", '"': '"', "\\": "\\", "a": "\a", "b": "\b",
                 "f": "\f", "v": "\v", "?": "?"}


def _unescape_text_proto(body: str, path) -> str:
    raw = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            raw += ch.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(body):
            raise CheckpointError(path, "checkpoint state: string ends in a lone backslash")
        nxt = body[i + 1]
        if nxt in _TEXT_ESCAPES:
            raw += _TEXT_ESCAPES[nxt].encode()
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            raw.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
        elif nxt == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not m:
                raise CheckpointError(path, "checkpoint state: bad \\x escape")
            raw.append(int(m.group(0), 16))
            i += 2 + len(m.group(0))
        else:
            raise CheckpointError(path, f"checkpoint state: unknown escape \\{nxt}")
    return raw.decode("utf-8", errors="surrogateescape")


_STATE_LINE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*:?\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([^\s#]+))\s*(?:#.*)?$')


def read_checkpoint_state(directory: PathLike, latest_filename: str = "checkpoint") -> dict | None:
    """The directory's CheckpointState as a dict (``model_checkpoint_path``, ``all_model_checkpoint_paths``,
    ...), with relative paths joined to the directory as TF does; None when there is no state file."""
    state_path = Path(directory) / latest_filename
    if not state_path.is_file():
        return None
    if state_path.stat().st_size > (1 << 24):
        raise CheckpointError(state_path, "checkpoint state file larger than 16 MiB")
    text = state_path.read_text(encoding="utf-8", errors="surrogateescape")
    state: dict = {"all_model_checkpoint_paths": [], "all_model_checkpoint_timestamps": []}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _STATE_LINE.match(line)
        if not m:
            raise CheckpointError(state_path, f"line {lineno}: not a text-format CheckpointState field: {line!r}")
        name = m.group(1)
        if m.group(2) is not None or m.group(3) is not None:
            value = _unescape_text_proto(m.group(2) if m.group(2) is not None else m.group(3), state_path)
        else:
            value = m.group(4)
        if name in ("all_model_checkpoint_paths", "all_model_checkpoint_timestamps"):
            state[name].append(value)
        else:
            state[name] = value
    if "model_checkpoint_path" not in state:
        raise CheckpointError(state_path, "checkpoint state has no model_checkpoint_path")

    def absolute(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(str(directory), p)

    state["model_checkpoint_path"] = absolute(state["model_checkpoint_path"])
    state["all_model_checkpoint_paths"] = [absolute(p) for p in state["all_model_checkpoint_paths"]]
    return state


def _v1_files(prefix: str) -> list[str]:
    if os.path.isfile(prefix):
        return [prefix]
    import glob
    return sorted(glob.glob(prefix + "-?????-of-?????"))


def latest_checkpoint(directory: PathLike, latest_filename: str = "checkpoint") -> str | None:
    """As ``tf.train.latest_checkpoint``: the newest prefix named by the state file, if its files exist."""
    state = read_checkpoint_state(directory, latest_filename)
    if state is None:
        return None
    prefix = state["model_checkpoint_path"]
    if os.path.isfile(prefix + ".index") or _v1_files(prefix):
        return prefix
    return None


def resolve_checkpoint(path: PathLike) -> tuple[str, str]:
    """``(kind, location)``: ``("v2", prefix)`` or ``("v1", file)`` for a prefix, a ``.index`` or
    ``.data-*`` file, a V1 file, or a directory holding a ``checkpoint`` state file."""
    p = os.fspath(path)
    if os.path.isdir(p):
        state = read_checkpoint_state(p)
        if state is None:
            raise CheckpointNotFoundError(p, "directory has no 'checkpoint' state file")
        prefix = state["model_checkpoint_path"]
        if os.path.isfile(prefix + ".index"):
            return "v2", prefix
        v1 = _v1_files(prefix)
        if len(v1) == 1:
            return "v1", v1[0]
        if v1:
            raise CheckpointError(p, f"sharded V1 checkpoint {prefix} ({len(v1)} files) is not supported")
        raise CheckpointNotFoundError(p, f"the state file names {prefix!r}, which has no files")
    if p.endswith(".index") and os.path.isfile(p):
        return "v2", p[: -len(".index")]
    m = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", p)
    if m and os.path.isfile(m.group(1) + ".index"):
        return "v2", m.group(1)
    if os.path.isfile(p + ".index"):
        return "v2", p
    if os.path.isfile(p):
        return "v1", p
    raise CheckpointNotFoundError(p, "no checkpoint here (no PREFIX.index, V1 file or directory with a "
                                     "'checkpoint' state file)")


# ---------------------------------------------------------------------------------------------------
# Readers


def _read_file_limited(path: str, limit: int) -> bytes:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CheckpointNotFoundError(path, f"cannot read: {exc.strerror}") from None
    if size > limit:
        raise CheckpointError(path, f"{size} bytes is more than an index table may hold ({limit})")
    with open(path, "rb") as fh:
        return fh.read()


def _decode_bfloat16(raw: bytes) -> np.ndarray:
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


class CheckpointReader:
    """``tf.train.load_checkpoint`` without TensorFlow: metadata at once, tensors on demand."""

    def __init__(self, path: PathLike):
        self.kind, self.location = resolve_checkpoint(path)
        self._tensors: dict[str, TensorInfo] = {}
        if self.kind == "v2":
            self._open_v2()
        else:
            self._open_v1()

    # -- V2 ------------------------------------------------------------------------------------------
    def _open_v2(self):
        index_path = self.location + ".index"
        buf = _read_file_limited(index_path, MAX_INDEX_FILE_BYTES)
        self.index_path = index_path
        header_seen = False
        self.num_shards = 1
        for key, value in _table_entries(buf, index_path):
            if key == b"":
                header_seen = True
                self._parse_header(value, index_path)
                continue
            if not header_seen:
                raise CheckpointError(index_path, "the BundleHeaderProto entry (empty key) is missing")
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                name = key.decode("latin-1")
            info = _parse_bundle_entry(name, value, index_path)
            if info.shard_id >= self.num_shards:
                raise CheckpointError(index_path, f"entry {name!r}: shard_id {info.shard_id} but the header "
                                                  f"declares {self.num_shards} shard(s)")
            self._tensors[name] = info
        if not header_seen:
            raise CheckpointError(index_path, "the BundleHeaderProto entry (empty key) is missing")
        # Keys of partitioned-variable slices are OrderedCode-encoded and begin with a 0 byte; they
        # belong to an entry with `slices`, which is reported when read.
        self._tensors = {k: v for k, v in self._tensors.items() if not k.startswith("\x00")}

    def _parse_header(self, value: bytes, path):
        num_shards, endianness = 0, 0
        producer, min_consumer, bad = 0, 0, []
        for number, wire, v in _proto_fields(value, path, "bundle header"):
            if number in (1, 2):
                _expect(wire, 0, path, "bundle header", number)
            if number == 1:
                num_shards = _signed32(v)
            elif number == 2:
                endianness = v
            elif number == 3 and wire == 2:
                for n2, w2, v2 in _proto_fields(v, path, "bundle header version"):
                    if n2 in (1, 2):
                        _expect(w2, 0, path, "bundle header version", n2)
                    if n2 == 1:
                        producer = _signed32(v2)
                    elif n2 == 2:
                        min_consumer = _signed32(v2)
                    elif n2 == 3 and w2 == 0:
                        bad.append(_signed32(v2))
        if num_shards < 1 or num_shards > 99999:
            raise CheckpointError(path, f"bundle header declares {num_shards} shards")
        if endianness != 0:
            raise CheckpointError(path, "big-endian bundles are not supported")
        if min_consumer > 1 or 1 in bad:
            raise CheckpointError(path, f"bundle format version (producer {producer}, min_consumer "
                                        f"{min_consumer}) is newer than this reader (1)")
        self.num_shards = num_shards

    def _data_path(self, shard: int) -> str:
        return f"{self.location}.data-{shard:05d}-of-{self.num_shards:05d}"

    def _read_v2(self, info: TensorInfo) -> np.ndarray:
        what = f"tensor {info.name!r}"
        if info.sliced:
            raise CheckpointError(self.index_path, f"{what} is a partitioned variable (saved in slices); "
                                                   "partitioned variables are not supported")
        data_path = self._data_path(info.shard_id)
        try:
            file_size = os.path.getsize(data_path)
        except OSError:
            raise CheckpointNotFoundError(data_path, f"data shard for {what} is missing") from None
        if info.offset + info.size > file_size:
            raise CheckpointError(data_path, f"{what}: bytes [{info.offset}, {info.offset + info.size}) lie "
                                             f"past the end of the shard ({file_size} bytes)")
        if info.dtype_enum == DT_STRING:
            if info.size < (4 if info.num_elements else 0) + info.num_elements:
                raise CheckpointError(data_path, f"{what}: {info.size} bytes cannot hold {info.num_elements} strings")
        else:
            itemsize = _item_size(info.dtype_enum)
            if itemsize is None:
                raise CheckpointError(self.index_path, f"{what} has dtype {info.dtype}, which this reader "
                                                       "does not support")
            if info.num_elements * itemsize != info.size:
                raise CheckpointError(self.index_path, f"{what}: shape {list(info.shape)} of {info.dtype} "
                                                       f"needs {info.num_elements * itemsize} bytes, the entry "
                                                       f"says {info.size}")
        with open(data_path, "rb") as fh:
            fh.seek(info.offset)
            raw = fh.read(info.size)
        if len(raw) != info.size:
            raise CheckpointError(data_path, f"{what}: short read ({len(raw)} of {info.size} bytes)")
        if info.dtype_enum == DT_STRING:
            return self._decode_string_tensor(raw, info, data_path)
        if info.crc32c is not None:
            actual = crc32c(raw)
            if unmask(info.crc32c) != actual:
                raise CheckpointError(data_path, f"{what}: checksum mismatch (index says "
                                                 f"{unmask(info.crc32c):08x}, data gives {actual:08x})")
        if info.dtype_enum == DT_BFLOAT16:
            arr = _decode_bfloat16(raw)
        else:
            arr = np.frombuffer(raw, dtype=_DT_TO_NUMPY[info.dtype_enum]).copy()
        return arr.reshape(info.shape)

    def _decode_string_tensor(self, raw: bytes, info: TensorInfo, data_path) -> np.ndarray:
        what = f"tensor {info.name!r}"
        n = info.num_elements
        out = np.empty(n, dtype=object)
        if info.size == 0:
            if n:
                raise CheckpointError(data_path, f"{what}: no bytes for {n} strings")
            return out.reshape(info.shape)
        cur = _Cursor(raw, data_path, what)
        lengths = [cur.varint() for _ in range(n)]
        crc = 0
        for length in lengths:
            crc = crc32c(struct.pack("<I", length) if length <= 0xFFFFFFFF else struct.pack("<Q", length), crc)
        stored = cur.fixed32()
        if unmask(stored) != crc:
            raise CheckpointError(data_path, f"{what}: string length checksum mismatch")
        crc = crc32c(struct.pack("<I", stored), crc)
        for i, length in enumerate(lengths):
            out[i] = cur.take(length)
            crc = crc32c(out[i], crc)
        if not cur.done():
            raise CheckpointError(data_path, f"{what}: {cur.end - cur.pos} bytes left after the strings")
        if info.crc32c is not None and unmask(info.crc32c) != crc:
            raise CheckpointError(data_path, f"{what}: checksum mismatch")
        return out.reshape(info.shape)

    # -- V1 ------------------------------------------------------------------------------------------
    def _open_v1(self):
        path = self.location
        self.index_path = path
        buf = _read_file_limited(path, MAX_INDEX_FILE_BYTES)
        meta_seen = False
        for key, value in _table_entries(buf, path):
            # SavedTensorSlices: SavedTensorSliceMeta meta = 1; SavedSlice data = 2.
            for number, wire, v in _proto_fields(value, path, "saved tensor slices"):
                if number == 1 and wire == 2:
                    meta_seen = True
                    self._parse_v1_meta(v, path)
                elif number == 2 and wire == 2:
                    self._parse_v1_slice(v, path)
        if not meta_seen:
            raise CheckpointError(path, "no SavedTensorSliceMeta entry: not a V1 checkpoint")

    def _parse_v1_meta(self, data: bytes, path):
        # SavedTensorSliceMeta: repeated SavedSliceMeta tensor = 1 {name 1, shape 2, type 3, slice 4}
        for number, wire, v in _proto_fields(data, path, "V1 meta"):
            if number != 1 or wire != 2:
                continue
            name, shape, dtype_enum = None, (), 0
            for n2, w2, v2 in _proto_fields(v, path, "V1 slice meta"):
                if n2 == 1 and w2 == 2:
                    name = v2.decode("utf-8", errors="replace")
                elif n2 == 2 and w2 == 2:
                    shape = _parse_shape(v2, path, "V1 slice meta")
                elif n2 == 3:
                    _expect(w2, 0, path, "V1 slice meta", n2)
                    dtype_enum = v2
            if name is None:
                raise CheckpointError(path, "V1 meta: a tensor without a name")
            old = self._tensors.get(name)
            info = TensorInfo(name=name, dtype_enum=dtype_enum, shape=shape)
            if old is not None:
                info.v1_slices = old.v1_slices
            self._tensors[name] = info

    def _parse_v1_slice(self, data: bytes, path):
        # SavedSlice: string name = 1; TensorSliceProto slice = 2; TensorProto data = 3.
        name, extents, tensor = None, [], b""
        for number, wire, v in _proto_fields(data, path, "V1 saved slice"):
            if number == 1 and wire == 2:
                name = v.decode("utf-8", errors="replace")
            elif number == 2 and wire == 2:
                extents = _parse_slice_extents(v, path, "V1 saved slice")
            elif number == 3 and wire == 2:
                tensor = v
        if name is None:
            raise CheckpointError(path, "V1 saved slice without a name")
        info = self._tensors.setdefault(name, TensorInfo(name=name, dtype_enum=0, shape=()))
        info.v1_slices.append((extents, tensor))

    def _read_v1(self, info: TensorInfo) -> np.ndarray:
        path, what = self.location, f"tensor {info.name!r}"
        if info.dtype_enum == 0:
            raise CheckpointError(path, f"{what} has slices but no metadata")
        if info.dtype_enum == DT_STRING:
            dt = np.dtype(object)
        elif info.dtype_enum in _DT_TO_NUMPY:
            dt = _DT_TO_NUMPY[info.dtype_enum]
        else:
            raise CheckpointError(path, f"{what} has dtype {info.dtype}, which this reader does not support")
        total = info.num_elements
        if total * dt.itemsize > 64 * os.path.getsize(path) + 4096:
            raise CheckpointError(path, f"{what}: declared shape {list(info.shape)} is larger than the file "
                                        "could hold")
        out = np.zeros(info.shape, dtype=dt) if dt.kind != "O" else np.full(info.shape, b"", dtype=object)
        covered = np.zeros(info.shape, dtype=bool)
        for extents, tensor in info.v1_slices:
            if extents and len(extents) != len(info.shape):
                raise CheckpointError(path, f"{what}: slice of rank {len(extents)} for shape {list(info.shape)}")
            index = []
            for d, (start, length) in enumerate(extents or [(0, -1)] * len(info.shape)):
                stop = info.shape[d] if length == -1 else start + length
                if start < 0 or stop > info.shape[d] or stop < start:
                    raise CheckpointError(path, f"{what}: slice [{start}, {stop}) outside dimension {d} "
                                                f"of size {info.shape[d]}")
                index.append(slice(start, stop))
            index = tuple(index)
            target_shape = tuple(s.stop - s.start for s in index)
            count = 1
            for d in target_shape:
                count *= d
            values = _tensor_proto_values(tensor, dt, count, path, what)
            if out.ndim == 0:
                out[()] = values[0]
            else:
                out[index] = values.reshape(target_shape)
            covered[index] = True
        if not covered.all():
            raise CheckpointError(path, f"{what}: the saved slices do not cover the whole tensor")
        return out

    # -- public ---------------------------------------------------------------------------------------
    def tensor_info(self, name: str) -> TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.location}: no tensor named {name!r} in the checkpoint "
                           f"({len(self._tensors)} tensors, e.g. {sorted(self._tensors)[:5]})") from None

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        return {name: list(info.shape) for name, info in self._tensors.items()}

    def get_variable_to_dtype_map(self) -> dict[str, str]:
        return {name: info.dtype for name, info in self._tensors.items()}

    def get_tensor(self, name: str) -> np.ndarray:
        info = self.tensor_info(name)
        return self._read_v2(info) if self.kind == "v2" else self._read_v1(info)

    def names(self) -> list[str]:
        return sorted(self._tensors)


def _tensor_proto_values(data: bytes, dt: np.dtype, count: int, path, what: str) -> np.ndarray:
    """Values of a TensorProto: tensor_content (4) or the typed repeated fields, packed or not."""
    if dt.kind == "O":  # string_val = 8, one bytes field per element
        strings = [v for number, wire, v in _proto_fields(data, path, what + " TensorProto")
                   if number == 8 and wire == 2]
        if len(strings) == 1 and count > 1:
            strings = strings * count
        if len(strings) != count:
            raise CheckpointError(path, f"{what}: {len(strings)} strings for a slice of {count} elements")
        out = np.empty(count, dtype=object)
        out[:] = strings
        return out
    content = None
    chunks: list[np.ndarray] = []
    # float_val 5, double_val 6, int_val 7, int64_val 10, bool_val 11, half_val 13, uint32 16, uint64 17
    for number, wire, v in _proto_fields(data, path, what + " TensorProto"):
        if number == 4 and wire == 2:
            content = v
        elif number in (5, 6) and wire == 2:
            chunks.append(np.frombuffer(v, dtype="<f4" if number == 5 else "<f8", count=len(v) // (4 if number == 5 else 8)))
        elif number == 5 and wire == 5:
            chunks.append(np.frombuffer(struct.pack("<I", v), dtype="<f4"))
        elif number == 6 and wire == 1:
            chunks.append(np.frombuffer(struct.pack("<Q", v), dtype="<f8"))
        elif number in (7, 10, 11, 13, 16, 17):
            if wire == 2:
                cur = _Cursor(v, path, what + " packed values")
                vals = []
                while not cur.done():
                    vals.append(cur.varint())
                    if len(vals) > count:
                        cur.fail(f"more than {count} values")
            else:
                vals = [v]
            signed = number in (7, 10)
            vals = [_signed64(x) if signed else x for x in vals]
            chunks.append(np.array(vals, dtype=np.int64 if signed else np.uint64))
        total = sum(c.size for c in chunks)
        if total > count:
            raise CheckpointError(path, f"{what}: more than {count} values")
    if content is not None:
        if len(content) != count * dt.itemsize:
            raise CheckpointError(path, f"{what}: tensor_content of {len(content)} bytes for {count} values")
        return np.frombuffer(content, dtype=dt).copy()
    values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dt)
    if dt.kind == "f" and dt.itemsize == 2 and values.dtype.kind in "iu":
        values = values.astype(np.uint16).view(np.float16)
    if values.size == 1 and count > 1:  # TensorProto repeats its last value to fill the shape
        values = np.repeat(values, count)
    if values.size != count:
        raise CheckpointError(path, f"{what}: {values.size} values for a slice of {count} elements")
    return values.astype(dt)


# ---------------------------------------------------------------------------------------------------
# Functional API (tf.train.list_variables / load_variable / load_checkpoint)


def list_variables(path: PathLike) -> list[tuple[str, list[int]]]:
    """``[(name, shape)]`` sorted by name, as ``tf.train.list_variables``."""
    reader = CheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(path: PathLike, name: str) -> np.ndarray:
    """One tensor, as ``tf.train.load_variable`` (a trailing ``:0`` is accepted and dropped)."""
    if name.endswith(":0"):
        name = name[:-2]
    return CheckpointReader(path).get_tensor(name)


def load_checkpoint(path: PathLike) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint by name."""
    reader = CheckpointReader(path)
    return {name: reader.get_tensor(name) for name in reader.names()}


# ---------------------------------------------------------------------------------------------------
# Writer


def _encode_entry(dtype_enum: int, shape: Iterable[int], offset: int, size: int, crc: int) -> bytes:
    out = bytearray()
    out += b"\x08"
    _put_varint(out, dtype_enum)
    shape_msg = bytearray()
    for d in shape:
        dim = bytearray(b"\x08")
        _put_varint(dim, int(d))
        if int(d) == 0:
            dim = bytearray()
        shape_msg += b"\x12"
        _put_varint(shape_msg, len(dim))
        shape_msg += dim
    out += b"\x12"
    _put_varint(out, len(shape_msg))
    out += shape_msg
    if offset:
        out += b"\x20"
        _put_varint(out, offset)
    if size:
        out += b"\x28"
        _put_varint(out, size)
    out += b"\x35" + struct.pack("<I", crc)
    return bytes(out)


def _encode_string_tensor(values: np.ndarray) -> tuple[bytes, int]:
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values.ravel()]
    lengths = bytearray()
    crc = 0
    for item in items:
        _put_varint(lengths, len(item))
        crc = crc32c(struct.pack("<I", len(item)) if len(item) <= 0xFFFFFFFF else struct.pack("<Q", len(item)), crc)
    if not items:
        return b"", 0
    length_checksum = mask(crc)
    crc = crc32c(struct.pack("<I", length_checksum), crc)
    body = bytes(lengths) + struct.pack("<I", length_checksum)
    for item in items:
        crc = crc32c(item, crc)
    return body + b"".join(items), crc


def write_checkpoint_state(directory: PathLike, model_checkpoint_path: str,
                           all_model_checkpoint_paths: Iterable[str] | None = None,
                           latest_filename: str = "checkpoint") -> Path:
    """Write the ``checkpoint`` state file as ``tf.train.update_checkpoint_state`` does (paths relative
    to the directory when they lie inside it)."""
    directory = Path(directory)

    def rel(p: str) -> str:
        p = os.fspath(p)
        try:
            r = os.path.relpath(p, directory)
        except ValueError:
            return p
        return p if r.startswith("..") else r

    def quote(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    paths = list(all_model_checkpoint_paths or [])
    if model_checkpoint_path not in paths:
        paths.append(model_checkpoint_path)
    lines = [f"model_checkpoint_path: {quote(rel(model_checkpoint_path))}"]
    lines += [f"all_model_checkpoint_paths: {quote(rel(p))}" for p in paths]
    target = directory / latest_filename
    atomic_write_text(target, "\n".join(lines) + "\n")
    return target


def save_checkpoint(path_prefix: PathLike, variables: Mapping[str, object], *,
                    write_state: bool = True, block_size: int = 262144) -> str:
    """Write ``variables`` (name -> array-like) as a V2 checkpoint at ``path_prefix`` that
    ``tf.compat.v1.train.Saver.restore`` and ``tf.train.load_checkpoint`` read.

    The data shard and the index are written atomically (data first, then the index that points into
    it). With ``write_state`` the directory's ``checkpoint`` file is updated to name this prefix, so
    ``tf.train.latest_checkpoint(directory)`` finds it. ``block_size`` is the index table's target
    block size (TF's default). Returns the prefix.
    """
    prefix = os.fspath(path_prefix)
    if not prefix or prefix.endswith(("/", os.sep)):
        raise ValueError(f"save_checkpoint: {prefix!r} is not a file prefix")
    entries: list[tuple[bytes, bytes]] = []
    data = bytearray()
    for name in sorted(variables, key=lambda n: n.encode("utf-8")):
        if not isinstance(name, str) or not name:
            raise ValueError(f"save_checkpoint: variable names must be non-empty strings, got {name!r}")
        value = variables[name]
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype.kind in "OUS":
            raw, crc = _encode_string_tensor(arr)
            dtype_enum = DT_STRING
        else:
            dt = arr.dtype.newbyteorder("=") if arr.dtype.byteorder == ">" else arr.dtype
            dtype_enum = _NUMPY_TO_DT.get(np.dtype(dt))
            if dtype_enum is None:
                raise ValueError(f"save_checkpoint: variable {name!r} has dtype {arr.dtype}, which has no "
                                 "TensorFlow equivalent")
            raw = np.ascontiguousarray(arr, dtype=np.dtype(dt).newbyteorder("<")).tobytes()
            crc = crc32c(raw)
        entries.append((name.encode("utf-8"), _encode_entry(dtype_enum, arr.shape, len(data), len(raw), mask(crc))))
        data += raw
    header = b"\x08\x01" + b"\x1a\x02\x08\x01"  # num_shards 1, endianness LITTLE (default), version {producer 1}
    table = _build_table([(b"", header)] + entries, block_size=block_size)
    directory = os.path.dirname(prefix) or "."
    os.makedirs(directory, exist_ok=True)
    with atomic_path(f"{prefix}.data-00000-of-00001") as tmp:
        tmp.write_bytes(bytes(data))
    with atomic_path(f"{prefix}.index") as tmp:
        tmp.write_bytes(table)
    if write_state:
        write_checkpoint_state(directory, prefix)
    return prefix
