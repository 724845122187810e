"""Zip members (``.npz`` arrays, ``.keras`` files) checked before they are inflated, and inflated in bounded chunks.

A zip entry declares its uncompressed size, but nothing stops a stream from inflating past it, or from
declaring far more than its compressed bytes can hold. :func:`check_member` refuses, before a byte is
inflated: a compression other than stored or deflate (bzip2 and lzma reach ratios of millions), a stored
member whose two sizes differ, a deflated member declaring more than deflate's largest ratio (1032:1) of
its compressed size, and a declared size over the caller's cap (which the caller derives from the shapes
the member must hold). :func:`read_into` and :func:`copy_member` then inflate in chunks of 1 MiB into a
buffer or file sized from the declared size, stop there, and read one more byte so that zip's CRC check
runs. Every failure of :mod:`zipfile` or :mod:`zlib` is one of :data:`ZIP_ERRORS`, which callers turn
into an error naming the file and member.
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from typing import BinaryIO, Callable, NoReturn

MiB = 1 << 20
CHUNK = MiB
DEFLATE_MAX_RATIO = 1032   # deflate's largest expansion: a 258-byte match in under 2 bits, and block overhead
DEFLATE_SLACK = 1024       # a tiny member's stream headers

ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error,
              NotImplementedError, zlib.error, UnicodeDecodeError, RuntimeError, OverflowError)

Fail = Callable[[str], NoReturn]


def check_member(info: zipfile.ZipInfo, cap: int, fail: Fail) -> int:
    """The member's declared uncompressed size, after the checks above; else ``fail(message)``."""
    size, packed = info.file_size, info.compress_size
    if info.flag_bits & 0x1:
        fail("is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if size != packed:
            fail(f"is stored uncompressed but declares {size:,} bytes in {packed:,}")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if size > packed * DEFLATE_MAX_RATIO + DEFLATE_SLACK:
            fail(f"declares {size:,} bytes uncompressed from {packed:,} deflated bytes, more than deflate can "
                 f"produce ({DEFLATE_MAX_RATIO}:1)")
    else:
        fail(f"uses zip compression method {info.compress_type}; only stored and deflate are read")
    if size > cap:
        fail(f"declares {size:,} bytes uncompressed; the cap is {cap:,}")
    return size


def read_into(member: BinaryIO, view: memoryview, fail: Fail) -> None:
    """Fill ``view`` from ``member`` in chunks, then check that the member ends there (and its CRC)."""
    got, n = 0, len(view)
    while got < n:
        k = member.readinto(view[got:got + CHUNK])
        if not k:
            fail(f"holds {got:,} bytes; it declares {n:,} (truncated or corrupt)")
        got += k
    if member.read(1):
        fail("holds more data than it declares")


def copy_member(member: BinaryIO, out: BinaryIO, size: int, fail: Fail,
                first: Callable[[bytes], None] = lambda chunk: None) -> None:
    """Copy ``size`` declared bytes of ``member`` to ``out`` in chunks; ``first`` sees the first chunk
    before anything else is inflated (to check a header against the declared size)."""
    got = 0
    while got < size:
        chunk = member.read(min(CHUNK, size - got))
        if not chunk:
            fail(f"holds {got:,} bytes; it declares {size:,} (truncated or corrupt)")
        if got == 0:
            first(chunk)
        out.write(chunk)
        got += len(chunk)
    if member.read(1):
        fail("holds more data than it declares")
