"""Snappy decompression (github.com/google/snappy format_description.txt), for table blocks.

TF's bundle writer never compresses its ``.index``; older V1 files and TF 1.1 indexes may hold snappy
blocks. The stream starts with the uncompressed length (a varint, at most 2**32 - 1), then literals and
back-references. The declared length is checked against what the compressed bytes could produce (a
3-byte copy element yields at most 64 bytes) and against the caller's budget before anything is built.
"""
from __future__ import annotations

from typing import Optional

from compat.formats.protobuf_wire import Reader
from compat.formats.tf.errors import CheckpointError

MAX_EXPANSION = 64  # bytes of output per byte of input, with slack over snappy's real bound (about 22)


def decompress(data, path, what: str, budget: Optional[int] = None) -> bytes:
    """The uncompressed bytes of one snappy stream; ``budget`` caps its declared length."""
    r = Reader(data, str(path), f"{what} (snappy)", error=CheckpointError)
    length = r.varint(32)
    if length > MAX_EXPANSION * len(r.view) + 64:
        r.fail(f"declared uncompressed length {length} is impossible for {len(r.view)} compressed bytes")
    if budget is not None and length > budget:
        r.fail(f"declared uncompressed length {length} is over the remaining budget of {budget} bytes")
    out = bytearray()
    while not r.done():
        tag = r.take(1, "tag")[0]
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                n = int.from_bytes(r.take(n - 59, "literal length"), "little")
            if len(out) + n + 1 > length:
                r.fail(f"output exceeds the declared length {length}")
            out += r.take(n + 1, "literal")
            continue
        if kind == 1:
            n = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | r.take(1, "copy offset")[0]
        elif kind == 2:
            n = (tag >> 2) + 1
            offset = int.from_bytes(r.take(2, "copy offset"), "little")
        else:
            n = (tag >> 2) + 1
            offset = int.from_bytes(r.take(4, "copy offset"), "little")
        if offset == 0 or offset > len(out):
            r.fail(f"copy offset {offset} outside the {len(out)} bytes produced so far")
        if len(out) + n > length:
            r.fail(f"output exceeds the declared length {length}")
        start = len(out) - offset
        if offset >= n:
            out += out[start:start + n]
        else:  # the copy overlaps its own output: the last `offset` bytes repeat
            pattern = bytes(out[start:])
            out += (pattern * (n // offset + 1))[:n]
    if len(out) != length:
        r.fail(f"produced {len(out)} bytes, declared {length}")
    return bytes(out)
