"""CRC-32C (Castagnoli), as TensorFlow checksums its checkpoint files: google-crc32c's C code where it is
installed (``pip install legacy-lstm[fast-crc32c]``: GB/s), else this module's numpy code (tens of MB/s;
docs/performance.md, "Reading TF checkpoints"). Both give the same values (tests/test_tf_checkpoint.py).

TensorFlow's ``tensorflow/core/lib/hash/crc32c.h`` (from LevelDB): the reflected polynomial
0x82F63B78, initial value and final xor 0xFFFFFFFF, and a *masked* form for values stored next to
the data they cover: ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32).

The numpy code: short inputs run a byte-at-a-time table loop. Long inputs are cut into equal rows whose raw CRCs are
computed together, one numpy gather per column, and then folded: the CRC register is linear over
GF(2), so ``raw(a || b) = shift_len(b)(raw(a)) ^ raw(b)`` where ``shift_n`` (feeding n zero bytes) is
itself a linear map, applied through four 256-entry tables.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["BACKEND", "crc32c", "crc32c_numpy", "mask", "unmask"]


def _fast_extend():
    """google-crc32c's ``extend(crc, data)`` where its C extension is installed; None otherwise (its own
    fallback is pure Python, slower than the numpy code here)."""
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c.extend if getattr(google_crc32c, "implementation", "") == "c" else None


_FAST_EXTEND = _fast_extend()
BACKEND = "google-crc32c" if _FAST_EXTEND is not None else "numpy"  # which code crc32c() runs

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_SCALAR_LIMIT = 4096  # below this many bytes a plain loop is faster than the numpy setup


def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _raw_scalar(crc: int, data) -> int:
    table = _TABLE_LIST
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


@functools.lru_cache(maxsize=16)
def _shift_tables(n_zero_bytes: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """Tables for the linear map 'feed n zero bytes', one per byte position of the register."""
    basis = (np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32))[:, None]).ravel()
    v = basis.copy()
    for _ in range(n_zero_bytes):
        v = _TABLE[v & 0xFF] ^ (v >> 8)
    v = v.reshape(4, 256)
    return tuple([int(x) for x in row] for row in v)  # type: ignore[return-value]


def _raw_vectorized(crc: int, buf: np.ndarray) -> int:
    n = buf.size
    width = max(64, int(np.sqrt(n)))
    rows = n // width
    body = buf[: rows * width].reshape(rows, width).T.copy()  # [width, rows], each column of the loop contiguous
    reg = np.zeros(rows, dtype=np.uint32)
    reg[0] = crc
    table = _TABLE
    for column in body:
        reg = table[(reg ^ column) & 0xFF] ^ (reg >> 8)
    t0, t1, t2, t3 = _shift_tables(width)
    acc = int(reg[0])
    for row_crc in reg[1:].tolist():
        acc = (t0[acc & 0xFF] ^ t1[(acc >> 8) & 0xFF] ^ t2[(acc >> 16) & 0xFF] ^ t3[acc >> 24]) ^ row_crc
    return _raw_scalar(acc, buf[rows * width:].tolist())


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of ``data``, continuing ``crc`` (TensorFlow's ``crc32c::Extend(crc, data, n)``).

    Args:
        data: bytes, or any bytes-like object or numpy array (its memory, in order).
        crc: the CRC-32C of the bytes before ``data`` (0: none).

    Returns:
        The CRC-32C as an int in [0, 2**32), from google-crc32c where installed (:data:`BACKEND`), else
        from :func:`crc32c_numpy`: the same value.
    """
    if _FAST_EXTEND is not None:
        if not isinstance(data, bytes):  # google-crc32c takes read-only bytes only
            data = np.ascontiguousarray(data).tobytes() if isinstance(data, np.ndarray) else bytes(data)
        return _FAST_EXTEND(crc & 0xFFFFFFFF, data)
    return crc32c_numpy(data, crc)


def crc32c_numpy(data, crc: int = 0) -> int:
    """:func:`crc32c` in numpy: the fallback without google-crc32c (see the module docstring)."""
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.ascontiguousarray(data).view(np.uint8).ravel()
    reg = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    if buf.size < _SCALAR_LIMIT:
        reg = _raw_scalar(reg, buf.tobytes())
    else:
        reg = _raw_vectorized(reg, buf)
    return reg ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """The masked form TensorFlow stores beside checksummed data (crc32c.h ``Mask``)."""
    crc &= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
