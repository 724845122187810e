"""V2 checkpoints (``tf.train.Saver`` since TF 1.0, ``tf.train.Checkpoint``): ``PREFIX.index`` and
``PREFIX.data-NNNNN-of-MMMMM`` (tensorflow/core/util/tensor_bundle/tensor_bundle.cc).

The index is a table (:mod:`compat.formats.tf.table`) whose empty key holds the ``BundleHeaderProto``
(``num_shards`` 1, ``endianness`` 2, ``version`` 3) and whose other keys are tensor names with a
``BundleEntryProto`` each (``dtype`` 1, ``shape`` 2, ``shard_id`` 3, ``offset`` 4, ``size`` 5, ``crc32c`` 6
(masked CRC-32C of the tensor's bytes), ``slices`` 7). A numeric tensor's bytes are its little-endian
elements; a string tensor's are the varint lengths, a masked CRC-32C of those lengths (as uint32/uint64
values), then the strings (tensor_bundle.cc ``WriteStringTensor``).

A tensor's declared shape must be one numpy can hold and must need exactly the entry's ``size`` bytes;
its bytes must lie inside its shard and match their checksum; all of this is checked before the bytes
are read. Keys of partitioned-variable slices (they begin with a 0 byte) are skipped; an entry with
``slices`` is reported when read.
"""
from __future__ import annotations

import os
import struct
from typing import Dict, Iterable, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import file_size, open_regular
from compat.formats.protobuf_wire import (FIXED32, LEN, VARINT, Reader, expect_wire, iter_fields, put_varint,
                                          signed32, signed64)
from compat.formats.tf.crc32c import crc32c, mask, unmask
from compat.formats.tf.errors import CheckpointError, CheckpointNotFoundError
from compat.formats.tf.table import read_table_file, table_entries
from compat.formats.tf.tensors import (DT_BFLOAT16, DT_STRING, NUMPY_DTYPES, TensorInfo, array_count, item_size,
                                       parse_shape)

MAX_SHARDS = 99999  # the data file names have five digits


def _parse_header(value, path) -> int:
    num_shards, endianness = 0, 0
    min_consumer, bad = 0, []
    r = Reader(value, str(path), "bundle header", error=CheckpointError)
    for number, wire, v, offset in iter_fields(r):
        if number == 1:
            expect_wire(r, wire, VARINT, "num_shards", offset)
            num_shards = signed32(v)
        elif number == 2:
            expect_wire(r, wire, VARINT, "endianness", offset)
            endianness = v
        elif number == 3:
            expect_wire(r, wire, LEN, "version", offset)
            version = r.sub(v, offset, "version")
            for n2, w2, v2, o2 in iter_fields(version):
                if n2 in (1, 2, 3):
                    expect_wire(version, w2, VARINT, ("producer", "min_consumer", "bad_consumers")[n2 - 1], o2)
                if n2 == 2:
                    min_consumer = signed32(v2)
                elif n2 == 3:
                    bad.append(signed32(v2))
    if num_shards < 1 or num_shards > MAX_SHARDS:
        raise CheckpointError(path, f"bundle header declares {num_shards} shards")
    if endianness != 0:
        raise CheckpointError(path, "big-endian bundles are not supported")
    if min_consumer > 1 or 1 in bad:
        raise CheckpointError(path, f"bundle format version (min_consumer {min_consumer}) is newer than this "
                                    "reader (1)")
    return num_shards


def _parse_entry(name: str, value, path) -> TensorInfo:
    r = Reader(value, str(path), f"entry {name!r}", error=CheckpointError)
    info = TensorInfo(name)
    for number, wire, v, offset in iter_fields(r):
        if number == 1:
            expect_wire(r, wire, VARINT, "dtype", offset)
            info.dtype_enum = v
        elif number == 2:
            expect_wire(r, wire, LEN, "shape", offset)
            info.shape = parse_shape(r.sub(v, offset, "shape"))
        elif number == 3:
            expect_wire(r, wire, VARINT, "shard_id", offset)
            info.shard_id = signed32(v)
        elif number == 4:
            expect_wire(r, wire, VARINT, "offset", offset)
            info.offset = signed64(v)
        elif number == 5:
            expect_wire(r, wire, VARINT, "size", offset)
            info.size = signed64(v)
        elif number == 6:
            expect_wire(r, wire, FIXED32, "crc32c", offset)
            info.crc32c = v
        elif number == 7:
            info.sliced = True
    if info.offset < 0 or info.size < 0 or info.shard_id < 0:
        raise CheckpointError(path, f"entry {name!r}: negative offset, size or shard_id "
                                    f"({info.offset}, {info.size}, {info.shard_id})")
    return info


def read_index(prefix: str) -> Tuple[int, Dict[str, TensorInfo]]:
    """``(num_shards, {name: TensorInfo})`` from ``PREFIX.index``."""
    index_path = prefix + ".index"
    buf = read_table_file(index_path, "checkpoint index")
    num_shards = None
    tensors: Dict[str, TensorInfo] = {}
    for key, value in table_entries(buf, index_path):
        if key == b"":
            num_shards = _parse_header(value, index_path)
            continue
        if num_shards is None:
            raise CheckpointError(index_path, "the BundleHeaderProto entry (empty key) is missing")
        if key[:1] == b"\x00":  # an OrderedCode slice key of a partitioned variable
            continue
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError(index_path, f"tensor name {key[:60]!r} is not valid UTF-8 (byte {exc.start})") from None
        info = _parse_entry(name, value, index_path)
        if info.shard_id >= num_shards:
            raise CheckpointError(index_path, f"entry {name!r}: shard_id {info.shard_id} but the header "
                                              f"declares {num_shards} shard(s)")
        tensors[name] = info
    if num_shards is None:
        raise CheckpointError(index_path, "the BundleHeaderProto entry (empty key) is missing")
    return num_shards, tensors


def data_path(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def read_tensor(prefix: str, num_shards: int, info: TensorInfo) -> np.ndarray:
    """One tensor's values from its data shard, every size and checksum verified first."""
    index_path = prefix + ".index"
    what = f"tensor {info.name!r}"
    if info.sliced:
        raise CheckpointError(index_path, f"{what} is a partitioned variable (saved in slices); "
                                          "partitioned variables are not supported")
    if info.dtype_enum == DT_STRING:
        count = array_count(index_path, info, 8)  # an object array holds 8-byte pointers
        if info.size < (4 if count else 0) + count:
            raise CheckpointError(index_path, f"{what}: {info.size} bytes cannot hold {count} strings")
    else:
        itemsize = item_size(info.dtype_enum)
        if itemsize is None:
            raise CheckpointError(index_path, f"{what} has dtype {info.dtype}, which this reader does not support")
        count = array_count(index_path, info, itemsize)
        if count * itemsize != info.size:
            raise CheckpointError(index_path, f"{what}: shape {list(info.shape)} of {info.dtype} needs "
                                              f"{count * itemsize} bytes, the entry says {info.size}")
    path = data_path(prefix, info.shard_id, num_shards)
    if not os.path.lexists(path):
        raise CheckpointNotFoundError(path, f"data shard for {what} is missing")
    try:
        fh = open_regular(path, "checkpoint data shard")
    except FileFormatError as exc:
        raise CheckpointError(path, str(exc).removeprefix(f"{path}: ")) from None
    with fh:
        size = file_size(fh)
        if info.offset + info.size > size:
            raise CheckpointError(path, f"{what}: bytes [{info.offset}, {info.offset + info.size}) lie past the "
                                        f"end of the shard ({size} bytes)")
        fh.seek(info.offset)
        if info.dtype_enum == DT_STRING:
            raw = fh.read(info.size)
            if len(raw) != info.size:
                raise CheckpointError(path, f"{what}: short read ({len(raw)} of {info.size} bytes)")
            return _decode_strings(raw, info, count, path)
        # numpy has no bfloat16: its bytes are read as uint16, then widened to the upper half of a float32.
        arr = np.empty(count, dtype="<u2" if info.dtype_enum == DT_BFLOAT16 else NUMPY_DTYPES[info.dtype_enum])
        actual = _read_into(fh, arr.view(np.uint8), path, what, checksum=info.crc32c is not None)
    if info.crc32c is not None and unmask(info.crc32c) != actual:
        raise CheckpointError(path, f"{what}: checksum mismatch (index says {unmask(info.crc32c):08x}, "
                                    f"data gives {actual:08x})")
    if info.dtype_enum == DT_BFLOAT16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.reshape(info.shape)


#: Bytes read, checksummed and copied into the array at a time. Reading the tensor whole into one bytes object
#: and copying that into the array held two full-size buffers and read the second copy from memory; a chunk is
#: copied while it is still in cache (2.5-4x faster on 256 MiB, benchmarks/tf_checkpoint_crc.py).
READ_CHUNK = 4 << 20


def _read_into(fh, out: np.ndarray, path, what: str, checksum: bool) -> int:
    """Fill the bytes ``out`` (uint8, 1-D) from ``fh``'s position, chunk by chunk; returns their CRC-32C
    (0 without ``checksum``)."""
    crc, pos, size = 0, 0, out.shape[0]
    while pos < size:
        chunk = fh.read(min(READ_CHUNK, size - pos))
        if not chunk:
            raise CheckpointError(path, f"{what}: short read ({pos} of {size} bytes)")
        if checksum:
            crc = crc32c(chunk, crc)
        out[pos:pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        pos += len(chunk)
    return crc


def _length_bytes(length: int) -> bytes:
    return struct.pack("<I", length) if length <= 0xFFFFFFFF else struct.pack("<Q", length)


def _decode_strings(raw: bytes, info: TensorInfo, count: int, path) -> np.ndarray:
    what = f"tensor {info.name!r}"
    out = np.empty(count, dtype=object)
    if info.size == 0:
        if count:
            raise CheckpointError(path, f"{what}: no bytes for {count} strings")
        return out.reshape(info.shape)
    r = Reader(raw, str(path), what, base=info.offset, error=CheckpointError)
    lengths = [r.varint() for _ in range(count)]
    crc = 0
    for length in lengths:
        crc = crc32c(_length_bytes(length), crc)
    stored = r.fixed32("length checksum")
    if unmask(stored) != crc:
        raise CheckpointError(path, f"{what}: string length checksum mismatch")
    crc = crc32c(struct.pack("<I", stored), crc)
    for i, length in enumerate(lengths):
        out[i] = bytes(r.take(length, f"string {i}"))
        crc = crc32c(out[i], crc)
    if not r.done():
        raise CheckpointError(path, f"{what}: {r.end - r.pos} bytes left after the strings")
    if info.crc32c is not None and unmask(info.crc32c) != crc:
        raise CheckpointError(path, f"{what}: checksum mismatch")
    return out.reshape(info.shape)


# ------------------------------------------------------------------------------------------- writing

HEADER = b"\x08\x01" + b"\x1a\x02\x08\x01"  # num_shards 1, endianness LITTLE (default), version {producer 1}


def encode_entry(dtype_enum: int, shape: Iterable[int], offset: int, size: int, crc: int) -> bytes:
    """A BundleEntryProto as TF serialises it (fields in number order, zero scalars omitted)."""
    out = bytearray()
    out += b"\x08"
    put_varint(out, dtype_enum)
    shape_msg = bytearray()
    for d in shape:
        dim = bytearray()
        if int(d):
            dim += b"\x08"
            put_varint(dim, int(d))
        shape_msg += b"\x12"
        put_varint(shape_msg, len(dim))
        shape_msg += dim
    out += b"\x12"
    put_varint(out, len(shape_msg))
    out += shape_msg
    if offset:
        out += b"\x20"
        put_varint(out, offset)
    if size:
        out += b"\x28"
        put_varint(out, size)
    out += b"\x35" + struct.pack("<I", crc)
    return bytes(out)


def encode_string_tensor(values: np.ndarray) -> Tuple[bytes, int]:
    """The data-shard bytes of a string tensor and their (unmasked) CRC-32C."""
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values.ravel()]
    if not items:
        return b"", 0
    lengths = bytearray()
    crc = 0
    for item in items:
        put_varint(lengths, len(item))
        crc = crc32c(_length_bytes(len(item)), crc)
    length_checksum = mask(crc)
    crc = crc32c(struct.pack("<I", length_checksum), crc)
    for item in items:
        crc = crc32c(item, crc)
    return bytes(lengths) + struct.pack("<I", length_checksum) + b"".join(items), crc
