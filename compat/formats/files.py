"""Bounded reads of files that may be hostile: regular files only, never more than a stated cap.

A FIFO, a device (``/dev/zero``), a directory or a symlink to one is refused before anything is read, and
a file is read through one open descriptor whose size is checked with ``fstat`` (no race between a size
check and the read), then read to at most ``cap`` bytes.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Union

from compat.errors import FileFormatError

PathLike = Union[str, os.PathLike]

MiB = 1 << 20
GiB = 1 << 30


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: PathLike, what: str = "file") -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (after symlinks); else FileFormatError."""
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not block; it is refused just below.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileFormatError(f"{p}: no such {what}") from None
    except IsADirectoryError:
        raise FileFormatError(f"{p}: is a directory, not a {what}") from None
    except OSError as e:
        raise FileFormatError(f"{p}: cannot open the {what}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileFormatError(f"{p}: is {_describe(mode)}, not a regular {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_size(fh: BinaryIO) -> int:
    return os.fstat(fh.fileno()).st_size


def read_bytes(path: PathLike, cap: int, what: str = "file") -> bytes:
    """The whole of a regular file, refusing files larger than ``cap`` bytes before reading them."""
    with open_regular(path, what) as fh:
        size = file_size(fh)
        if size > cap:
            raise FileFormatError(f"{path}: the {what} has {size:,} bytes; the cap is {cap:,}")
        # read(n) allocates n bytes up front: ask for what fstat reported (plus one byte to notice growth),
        # never for the cap itself, then keep reading while the file grows, up to the cap.
        chunks = [fh.read(size + 1)]
        total = len(chunks[0])
        while total > size and total <= cap:
            chunk = fh.read(min(cap + 1 - total, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > cap:  # it grew while being read
        raise FileFormatError(f"{path}: the {what} is larger than the cap of {cap:,} bytes")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_text(path: PathLike, cap: int, what: str = "file", encoding: str = "utf-8") -> str:
    """:func:`read_bytes` decoded; a decoding error names the file and the byte offset."""
    data = read_bytes(path, cap, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{path}: the {what} is not valid {encoding} (byte {e.start}: {e.reason})") from None
