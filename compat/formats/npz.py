""".npz archives read member by member, each checked before a byte of its data is read.

``numpy.load`` on an ``.npz`` trusts the archive: a member's declared size, its ``.npy`` header's shape and
the compressed stream are all taken at their word, so a 5 MB file can hold a member that inflates to
4.8 GB, or a header of shape (10^12,) for which numpy allocates before it finds the data missing. Here an
archive is opened as a regular file, only the members asked for are touched (the others are never
decompressed), and for each one the zip entry's declared size, the ``.npy`` header (version, dtype,
shape) and their agreement (shape x itemsize + header = declared size) are checked against a cap before
the data is read; the read itself stops at the declared size, and zip's CRC check runs at its end. Object
arrays (which need pickle) are refused. Every failure is a :class:`FileFormatError` naming the file and
the member.
"""
from __future__ import annotations

import ast
import io
import os
import struct
import tokenize
import zipfile
import zlib
from typing import Dict, Iterable, Optional, Tuple, Union

import numpy as np

from compat.errors import FileFormatError
from compat.formats import zips
from compat.formats.files import GiB, file_size, open_regular

PathLike = Union[str, os.PathLike]

MAX_MEMBER_BYTES = 1 * GiB       # one array
MAX_TOTAL_BYTES = 2 * GiB        # everything read from one archive
MAX_ARCHIVE_BYTES = 4 * GiB      # the .npz file itself
MAX_HEADER_BYTES = 10_000        # numpy's own default limit on an .npy header
MAX_RANK = 32                    # numpy's own limit is 64
_ALLOWED_KINDS = "biufc"


def _python3_literal(header: str) -> str:
    """An .npy header written by Python 2's numpy, as a Python 3 literal.

    Python 2 wrote integers that did not fit a C long, and every shape entry it got from a ``long``, with an
    ``L`` suffix (``'shape': (5L, 20L)``), which Python 3's literal syntax lacks; numpy drops it
    (numpy/lib/format.py ``_filter_header``). Here every ``L`` or ``l`` token that directly follows a
    number is dropped the same way, with Python's own tokenizer (the header is at most MAX_HEADER_BYTES),
    so an ``L`` inside a string is left alone. Python 2's other literal forms in a header (``u'<f8'``,
    ``True``/``False``) are Python 3 literals already.
    """
    if "L" not in header and "l" not in header:
        return header
    out, previous = [], None
    for token in tokenize.generate_tokens(io.StringIO(header).readline):
        if token.type == tokenize.NAME and token.string in ("L", "l") and previous is not None \
                and previous.type == tokenize.NUMBER and previous.end == token.start:
            previous = token
            continue
        out.append((token.type, token.string))
        previous = token
    return tokenize.untokenize(out)


class NpzArchive:
    """An open ``.npz``: ``names`` lists its arrays; :meth:`read` returns one after checking it."""

    def __init__(self, path: PathLike, what: str = "archive", *, max_archive_bytes: int = MAX_ARCHIVE_BYTES):
        self.path = str(path)
        self.what = what
        self._fh = open_regular(path, what)
        try:
            size = file_size(self._fh)
            if size > max_archive_bytes:
                raise FileFormatError(f"{self.path}: the {what} has {size:,} bytes; the cap is {max_archive_bytes:,}")
            self._zip = zipfile.ZipFile(self._fh)
            self._members = {}
            for info in self._zip.infolist():
                name = info.filename
                key = name[:-4] if name.endswith(".npy") else name
                self._members.setdefault(key, info)
        except FileFormatError:
            self._fh.close()
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error,
                UnicodeDecodeError, NotImplementedError, zlib.error) as e:
            self._fh.close()
            raise FileFormatError(f"{self.path}: not a readable .npz {what} ({type(e).__name__}: {e})") from None

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._zip.close()
        finally:
            self._fh.close()

    @property
    def names(self) -> list:
        return list(self._members)

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def _bad(self, name: str, message: str) -> FileFormatError:
        return FileFormatError(f"{self.path}: array {name!r}: {message}")

    def header(self, name: str, *, max_bytes: int = MAX_MEMBER_BYTES) -> Tuple[np.dtype, Tuple[int, ...], bool, int]:
        """``(dtype, shape, fortran_order, data_bytes)`` of member ``name``, from its header alone."""
        info = self._members.get(name)
        if info is None:
            raise self._bad(name, f"not in the {self.what} (it holds {sorted(self._members)[:20]})")
        self._check_member(name, info, max_bytes)
        with self._open(name, info) as member:
            return self._read_header(name, info, member, max_bytes)[:4]

    def _check_member(self, name: str, info: zipfile.ZipInfo, max_bytes: int) -> None:
        """The zip entry's sizes and method, before anything is inflated (compat.formats.zips)."""
        def fail(message: str):
            raise self._bad(name, message)

        zips.check_member(info, max_bytes, fail)

    def _open(self, name: str, info: zipfile.ZipInfo):
        try:
            return self._zip.open(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, NotImplementedError,
                zlib.error, RuntimeError) as e:
            raise self._bad(name, f"cannot be opened ({type(e).__name__}: {e})") from None

    def _read_header(self, name: str, info: zipfile.ZipInfo, member, max_bytes: int):
        if info.file_size > max_bytes:
            raise self._bad(name, f"declares {info.file_size:,} bytes uncompressed; the cap is {max_bytes:,}")
        try:
            magic = member.read(8)
            if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
                raise self._bad(name, "not an .npy array (bad magic)")
            major = magic[6]
            if major == 1:
                hlen_bytes, width = member.read(2), 2
            elif major in (2, 3):
                hlen_bytes, width = member.read(4), 4
            else:
                raise self._bad(name, f"unsupported .npy format version {major}.{magic[7]}")
            if len(hlen_bytes) < width:
                raise self._bad(name, "the .npy header is truncated")
            hlen = int.from_bytes(hlen_bytes, "little")
            if hlen > MAX_HEADER_BYTES:
                raise self._bad(name, f"an .npy header of {hlen:,} bytes (the cap is {MAX_HEADER_BYTES:,})")
            text = member.read(hlen)
        except FileFormatError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, zlib.error, NotImplementedError) as e:
            raise self._bad(name, f"cannot be read ({type(e).__name__}: {e})") from None
        if len(text) < hlen:
            raise self._bad(name, "the .npy header is truncated")
        try:
            header = ast.literal_eval(_python3_literal(text.decode("utf-8" if major == 3 else "latin-1")))
        except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError, TypeError,
                tokenize.TokenError, IndentationError):
            raise self._bad(name, "the .npy header is not a readable dict") from None
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise self._bad(name, "the .npy header must hold exactly descr, fortran_order and shape")
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        if not isinstance(descr, str):
            raise self._bad(name, "a structured dtype (only plain numeric arrays are read)")
        try:
            dtype = np.dtype(descr)
        except (TypeError, ValueError):
            raise self._bad(name, f"unknown dtype {descr[:40]!r}") from None
        if dtype.hasobject:
            raise self._bad(name, "holds pickled (object) arrays, which are refused: only plain numeric arrays are "
                                  "read (allow_pickle is off)")
        if dtype.kind not in _ALLOWED_KINDS:
            raise self._bad(name, f"dtype {dtype} is not numeric")
        if not isinstance(fortran, bool):
            raise self._bad(name, "fortran_order is not a bool")
        if not isinstance(shape, tuple) or len(shape) > MAX_RANK or \
                not all(type(d) is int and d >= 0 for d in shape):
            raise self._bad(name, f"shape must be a tuple of at most {MAX_RANK} non-negative ints")
        count = 1
        for d in shape:
            count *= d
            if count * dtype.itemsize > info.file_size:
                break
        nbytes = count * dtype.itemsize
        header_total = (10 if major == 1 else 12) + hlen
        if nbytes + header_total != info.file_size:
            dims = "x".join(str(d) if d < 10 ** 15 else "(huge)" for d in shape) or "scalar"
            raise self._bad(name, f"header says shape {dims} of {dtype} but the member holds "
                                  f"{info.file_size - header_total:,} data bytes")
        return dtype, tuple(shape), fortran, nbytes

    def read(self, name: str, *, max_bytes: int = MAX_MEMBER_BYTES) -> np.ndarray:
        """Member ``name`` as an array, after its header and declared size are checked."""
        info = self._members.get(name)
        if info is None:
            raise self._bad(name, f"not in the {self.what} (it holds {sorted(self._members)[:20]})")
        self._check_member(name, info, max_bytes)
        with self._open(name, info) as member:
            dtype, shape, fortran, nbytes = self._read_header(name, info, member, max_bytes)
            buf = bytearray(nbytes)
            try:
                view = memoryview(buf)
                got = 0
                while got < nbytes:  # in chunks: zipfile's readinto allocates what it is asked for
                    n = member.readinto(view[got:got + zips.CHUNK])
                    if not n:
                        break
                    got += n
                extra = member.read(1)  # reaching the end of the member runs zip's CRC check
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, zlib.error,
                    NotImplementedError) as e:
                raise self._bad(name, f"the data cannot be read ({type(e).__name__}: {e})") from None
            if got < nbytes or extra:
                raise self._bad(name, "the data does not match its declared size (truncated or corrupt)")
        array = np.frombuffer(buf, dtype=dtype)
        return array.reshape(shape, order="F" if fortran else "C")


def read_npz(path: PathLike, names: Optional[Iterable[str]] = None, *, what: str = "archive",
             required: bool = True, max_member_bytes: int = MAX_MEMBER_BYTES,
             max_total_bytes: int = MAX_TOTAL_BYTES) -> Dict[str, np.ndarray]:
    """The arrays ``names`` (all of them when None) of an ``.npz``, each checked before it is read.

    With ``required=False`` names missing from the archive are left out of the result. Members not asked
    for are never decompressed.
    """
    with NpzArchive(path, what) as archive:
        wanted = archive.names if names is None else list(names)
        total = 0
        headers = {}
        for name in wanted:
            if name not in archive:
                if required:
                    raise FileFormatError(f"{path}: {name} is not in the {what} (it holds {sorted(archive.names)[:20]})")
                continue
            dtype, shape, _, nbytes = archive.header(name, max_bytes=max_member_bytes)
            total += nbytes
            if total > max_total_bytes:
                raise FileFormatError(f"{path}: the arrays read from the {what} exceed the cap of "
                                      f"{max_total_bytes:,} bytes")
            headers[name] = (dtype, shape)
        return {name: archive.read(name, max_bytes=max_member_bytes) for name in headers}


__all__ = ["NpzArchive", "read_npz", "MAX_MEMBER_BYTES", "MAX_TOTAL_BYTES", "MAX_ARCHIVE_BYTES"]
