"""The sorted string table of a V2 ``.index`` and of a V1 checkpoint (LevelDB's format, as TensorFlow keeps it).

tensorflow/core/lib/io/table_builder.cc, block_builder.cc, format.cc: data blocks of prefix-compressed
entries (``shared``, ``non_shared``, ``value_length`` varints, the key's new bytes, the value) ending in
an array of restart offsets and their count; an index block whose values are the data blocks' handles
(offset, size varints); a metaindex block; a 48-byte footer (two handles padded to 40 bytes, then the
magic 0xdb4775248b80fb57). Each block is followed by a compression byte (0 none, 1 snappy) and the
masked CRC-32C of block and byte.

Hostile tables: every handle is checked against the file before the block is sliced, every block's
checksum is verified, data blocks must follow each other without overlap (so the total work is linear in
the file), keys must increase strictly across the whole table, and the caps below hold before the
memory they guard is used: a key whose shared prefix is 100 KB long costs 100 KB, so the total bytes of
all keys is bounded by the file's size, not only each key.
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator, List, Tuple

from compat.errors import FileFormatError
from compat.formats.files import GiB, MiB, read_bytes
from compat.formats.protobuf_wire import Reader, put_varint
from compat.formats.tf import snappy
from compat.formats.tf.crc32c import crc32c, mask, unmask
from compat.formats.tf.errors import CheckpointError, CheckpointNotFoundError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c

MAX_TABLE_BYTES = 1 * GiB       # the file, and separately all its blocks once decompressed
MAX_ENTRIES = 1_000_000         # entries (tensors, V1 slices) in one table
MAX_KEY_BYTES = 64 * 1024       # one key (a tensor name)
KEY_BYTES_PER_FILE_BYTE = 16    # all keys together: at most 16 x the file size + 1 MiB


def read_table_file(path, what: str = "checkpoint table") -> bytes:
    """The bytes of a table file: a regular file of at most :data:`MAX_TABLE_BYTES`."""
    try:
        return read_bytes(path, MAX_TABLE_BYTES, what)
    except FileFormatError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        if "no such" in message:
            raise CheckpointNotFoundError(path, message) from None
        raise CheckpointError(path, message) from None


def _read_block(buf: bytes, offset: int, size: int, path, what: str, budget: List[int]):
    if offset + size + BLOCK_TRAILER_SIZE > len(buf) - FOOTER_SIZE:
        raise CheckpointError(path, f"{what}: block at offset {offset} of size {size} lies outside the "
                                    f"file ({len(buf)} bytes)")
    view = memoryview(buf)
    kind = buf[offset + size]
    stored = struct.unpack_from("<I", buf, offset + size + 1)[0]
    actual = crc32c(view[offset:offset + size + 1])
    if unmask(stored) != actual:
        raise CheckpointError(path, f"{what}: block checksum mismatch at offset {offset} "
                                    f"(stored {unmask(stored):08x}, computed {actual:08x})")
    if kind == 0:
        block = view[offset:offset + size]
    elif kind == 1:
        block = memoryview(snappy.decompress(view[offset:offset + size], path, what, budget[0]))
    else:
        raise CheckpointError(path, f"{what}: unknown block compression type {kind}")
    budget[0] -= len(block)
    if budget[0] < 0:
        raise CheckpointError(path, f"{what}: the table's blocks hold more than {MAX_TABLE_BYTES:,} bytes")
    return block


class _Limits:
    __slots__ = ("entries", "key_bytes", "last_key")

    def __init__(self, file_size: int):
        self.entries = 0
        self.key_bytes = KEY_BYTES_PER_FILE_BYTE * file_size + MiB
        self.last_key = None


def _block_entries(block: memoryview, path, what: str, limits: _Limits) -> Iterator[Tuple[bytes, memoryview]]:
    if len(block) < 4:
        raise CheckpointError(path, f"{what}: block of {len(block)} bytes is too short for its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    if num_restarts * 4 + 4 > len(block):
        raise CheckpointError(path, f"{what}: {num_restarts} restart points do not fit in a block of "
                                    f"{len(block)} bytes")
    r = Reader(block[:len(block) - 4 - 4 * num_restarts], str(path), what, error=CheckpointError)
    key = b""
    while not r.done():
        at = r.pos
        shared = r.varint(32)
        non_shared = r.varint(32)
        value_len = r.varint(32)
        if shared > len(key):
            r.fail(f"entry shares {shared} bytes with a previous key of {len(key)} bytes", at)
        if shared + non_shared > MAX_KEY_BYTES:
            r.fail(f"a key of {shared + non_shared} bytes (at most {MAX_KEY_BYTES} are allowed)", at)
        limits.key_bytes -= shared + non_shared
        if limits.key_bytes < 0:
            r.fail("the keys together are far longer than the file could hold (prefix-compression bomb)", at)
        limits.entries += 1
        if limits.entries > MAX_ENTRIES:
            r.fail(f"more than {MAX_ENTRIES:,} entries", at)
        key = key[:shared] + bytes(r.take(non_shared, "key"))
        value = r.take(value_len, "value")
        if limits.last_key is not None and key <= limits.last_key:
            r.fail(f"keys out of order ({_show(limits.last_key)} then {_show(key)})", at)
        limits.last_key = key
        yield key, value


def _show(key: bytes, limit: int = 60) -> str:
    text = repr(bytes(key[:limit]))
    return text + ("..." if len(key) > limit else "")


def table_entries(buf: bytes, path) -> Iterator[Tuple[bytes, memoryview]]:
    """All (key, value) pairs of a table held in ``buf``, in key order."""
    if len(buf) < FOOTER_SIZE:
        raise CheckpointError(path, f"file of {len(buf)} bytes is too short for a table footer "
                                    f"({FOOTER_SIZE} bytes); truncated or not a checkpoint")
    magic = struct.unpack_from("<Q", buf, len(buf) - 8)[0]
    if magic != TABLE_MAGIC:
        raise CheckpointError(path, f"bad table magic {magic:#018x} (expected {TABLE_MAGIC:#018x}); "
                                    "truncated, corrupt or not a TensorFlow checkpoint")
    footer = Reader(memoryview(buf)[len(buf) - FOOTER_SIZE:len(buf) - 8], str(path), "footer",
                    base=len(buf) - FOOTER_SIZE, error=CheckpointError)
    footer.varint(), footer.varint()  # the metaindex handle: TF writes an empty metaindex block, unused here
    index_handle = (footer.varint(), footer.varint())
    budget = [MAX_TABLE_BYTES]
    limits = _Limits(len(buf))
    index = _read_block(buf, *index_handle, path, "index block", budget)
    previous_end = 0
    index_limits = _Limits(len(buf))
    for _sep, handle_bytes in _block_entries(index, path, "index block", index_limits):
        handle = Reader(handle_bytes, str(path), "index block handle", error=CheckpointError)
        offset, size = handle.varint(), handle.varint()
        if offset < previous_end:
            raise CheckpointError(path, f"index block: data block at offset {offset} overlaps the previous "
                                        f"one (ending at {previous_end})")
        previous_end = offset + size + BLOCK_TRAILER_SIZE
        block = _read_block(buf, offset, size, path, f"data block at offset {offset}", budget)
        yield from _block_entries(block, path, f"data block at offset {offset}", limits)


# ------------------------------------------------------------------------------------------- writing


def build_block(entries: List[Tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out = bytearray()
    restarts = []
    last = b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            limit = min(len(last), len(key))
            while shared < limit and last[shared] == key[shared]:
                shared += 1
        put_varint(out, shared)
        put_varint(out, len(key) - shared)
        put_varint(out, len(value))
        out += key[shared:]
        out += value
        last = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts))
    return bytes(out)


def build_table(entries: Iterable[Tuple[bytes, bytes]], block_size: int = 262144,
                restart_interval: int = 16) -> bytes:
    """A table as TF's TableBuilder writes it without compression (keys must be sorted and unique)."""
    out = bytearray()
    index_entries = []

    def emit(block: bytes) -> Tuple[int, int]:
        offset = len(out)
        out.extend(block)
        out.append(0)
        out.extend(struct.pack("<I", mask(crc32c(block + b"\x00"))))
        return offset, len(block)

    pending: List[Tuple[bytes, bytes]] = []
    pending_size = 0
    for key, value in entries:
        pending.append((key, value))
        pending_size += len(key) + len(value) + 15
        if pending_size >= block_size:
            offset, size = emit(build_block(pending, restart_interval))
            index_entries.append((pending[-1][0], offset, size))
            pending, pending_size = [], 0
    if pending:
        offset, size = emit(build_block(pending, restart_interval))
        index_entries.append((pending[-1][0], offset, size))
    meta_handle = emit(build_block([], restart_interval))
    index_block = []
    for key, offset, size in index_entries:
        handle = bytearray()
        put_varint(handle, offset)
        put_varint(handle, size)
        index_block.append((key, bytes(handle)))
    index_handle = emit(build_block(index_block, 1))
    footer = bytearray()
    for v in (*meta_handle, *index_handle):
        put_varint(footer, v)
    footer += b"\x00" * (40 - len(footer))
    footer += struct.pack("<Q", TABLE_MAGIC)
    out += footer
    return bytes(out)
