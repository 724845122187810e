"""Shapes read from files, checked before any array of that shape exists.

A file can declare any dimensions: ``[0, 2**62, 2**62]``, rank 254, 80,000 dimensions of ``2**62``.
:func:`checked_count` multiplies them with an early exit (the product never grows past about 2**126,
so no big-integer blow-up and no message with thousands of digits) and refuses a shape numpy cannot
hold (more than 64 axes, or ``size * itemsize`` over 2**63 - 1 counting only non-zero dimensions, which is
numpy's own rule). :func:`format_shape` prints a long shape by its head and rank.
"""
from __future__ import annotations

from typing import Callable, NoReturn, Optional, Sequence

NUMPY_MAX_DIMS = 64
MAX_ARRAY_BYTES = (1 << 63) - 1
# The converter's ceiling on one tensor read from a file whose sizes can exceed its own bytes (compressed
# HDF5, .keras and .npz members, ONNX): python -m compat.convert --max-tensor-bytes.
DEFAULT_MAX_TENSOR_BYTES = 4 << 30


def format_shape(shape: Sequence[int], head: int = 8) -> str:
    dims = list(shape)
    if len(dims) <= head:
        return str(dims)
    return "[" + ", ".join(str(d) for d in dims[:head]) + f", ...] (rank {len(dims)})"


def checked_count(shape: Sequence[int], itemsize: int, fail: Callable[[str], NoReturn],
                  max_elements: Optional[int] = None, max_rank: int = NUMPY_MAX_DIMS) -> int:
    """The element count of ``shape`` after checking that numpy can hold such an array; else ``fail(message)``.

    ``max_elements`` is an extra cap on the count (a format's own limit, such as Caffe's INT_MAX).
    """
    if len(shape) > max_rank:
        fail(f"shape {format_shape(shape)} has {len(shape)} axes; at most {max_rank} are supported")
    nonzero = max(int(itemsize), 1)
    empty = False
    for d in shape:
        d = int(d)
        if d < 0:
            fail(f"shape {format_shape(shape)} has a negative dimension")
        if d == 0:
            empty = True
            continue
        nonzero *= d
        if nonzero > MAX_ARRAY_BYTES:
            fail(f"shape {format_shape(shape)} needs more than 2**63 - 1 bytes")
    count = 0 if empty else nonzero // max(int(itemsize), 1)
    if max_elements is not None and count > max_elements:
        fail(f"shape {format_shape(shape)} has {count} elements; at most {max_elements} are allowed")
    return count
