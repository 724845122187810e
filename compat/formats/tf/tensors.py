"""What V1 and V2 checkpoints say about a tensor: its DataType, its shape, where its bytes are.

``DataType`` numbers are tensorflow/core/framework/types.proto; ``TensorShapeProto`` is
tensor_shape.proto (``repeated Dim dim = 2 {int64 size = 1; string name = 2}; bool unknown_rank = 3``).
TensorFlow allows at most 254 dimensions (``TensorShape::MaxDimensions``) and 2**63 - 1 elements; numpy
allows at most 64 axes, which :func:`array_count` checks before any array is made.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from compat.formats.protobuf_wire import LEN, VARINT, Reader, expect_wire, iter_fields, signed64
from compat.formats.shapes import checked_count, format_shape
from compat.formats.tf.errors import CheckpointError

MAX_RANK = 254  # TensorShape::MaxDimensions()
MAX_ELEMENTS = (1 << 63) - 1

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_COMPLEX64, DT_INT64, DT_BOOL, DT_QINT8, DT_QUINT8, DT_QINT32, DT_BFLOAT16 = 8, 9, 10, 11, 12, 13, 14
DT_QINT16, DT_QUINT16, DT_UINT16, DT_COMPLEX128, DT_HALF = 15, 16, 17, 18, 19
DT_RESOURCE, DT_VARIANT, DT_UINT32, DT_UINT64 = 20, 21, 22, 23

NUMPY_DTYPES = {
    DT_FLOAT: np.dtype("<f4"), DT_DOUBLE: np.dtype("<f8"), DT_INT32: np.dtype("<i4"), DT_UINT8: np.dtype("u1"),
    DT_INT16: np.dtype("<i2"), DT_INT8: np.dtype("i1"), DT_COMPLEX64: np.dtype("<c8"), DT_INT64: np.dtype("<i8"),
    DT_BOOL: np.dtype("?"), DT_QINT8: np.dtype("i1"), DT_QUINT8: np.dtype("u1"), DT_QINT32: np.dtype("<i4"),
    DT_QINT16: np.dtype("<i2"), DT_QUINT16: np.dtype("<u2"), DT_UINT16: np.dtype("<u2"),
    DT_COMPLEX128: np.dtype("<c16"), DT_HALF: np.dtype("<f2"), DT_UINT32: np.dtype("<u4"),
    DT_UINT64: np.dtype("<u8"),
}
DT_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16",
    15: "qint16", 16: "quint16", 17: "uint16", 18: "complex128", 19: "float16", 20: "resource",
    21: "variant", 22: "uint32", 23: "uint64",
}
FROM_NUMPY = {
    np.dtype(np.float32): DT_FLOAT, np.dtype(np.float64): DT_DOUBLE, np.dtype(np.int32): DT_INT32,
    np.dtype(np.uint8): DT_UINT8, np.dtype(np.int16): DT_INT16, np.dtype(np.int8): DT_INT8,
    np.dtype(np.complex64): DT_COMPLEX64, np.dtype(np.int64): DT_INT64, np.dtype(np.bool_): DT_BOOL,
    np.dtype(np.uint16): DT_UINT16, np.dtype(np.complex128): DT_COMPLEX128, np.dtype(np.float16): DT_HALF,
    np.dtype(np.uint32): DT_UINT32, np.dtype(np.uint64): DT_UINT64,
}


def dtype_name(dtype_enum: int) -> str:
    return DT_NAMES.get(dtype_enum, f"DataType({dtype_enum})")


def item_size(dtype_enum: int) -> Optional[int]:
    """Bytes per element in a V2 data shard (bfloat16: 2); None for strings and unsupported types."""
    if dtype_enum == DT_BFLOAT16:
        return 2
    dt = NUMPY_DTYPES.get(dtype_enum)
    return None if dt is None else dt.itemsize


class TensorInfo:
    """One tensor's metadata: a BundleEntryProto (V2), or a SavedSliceMeta and its slices (V1)."""

    __slots__ = ("name", "dtype_enum", "shape", "shard_id", "offset", "size", "crc32c", "sliced", "v1_slices")

    def __init__(self, name: str, dtype_enum: int = 0, shape: tuple = ()):
        self.name, self.dtype_enum, self.shape = name, dtype_enum, shape
        self.shard_id = self.offset = self.size = 0
        self.crc32c: Optional[int] = None
        self.sliced = False
        self.v1_slices: list = []  # V1: (extents, TensorProto bytes, byte offset for errors)

    @property
    def dtype(self) -> str:
        return dtype_name(self.dtype_enum)

    def __repr__(self) -> str:
        return f"TensorInfo({self.name!r}, {self.dtype}, {format_shape(self.shape)})"


def array_count(path, info: TensorInfo, itemsize: int) -> int:
    """The number of elements of ``info``'s tensor, after checking numpy can hold it (rank, bytes)."""
    def fail(message: str):
        raise CheckpointError(path, f"tensor {info.name!r} ({info.dtype}): {message}")

    return checked_count(info.shape, itemsize, fail)


def parse_shape(r: Reader) -> tuple:
    """A TensorShapeProto; more than :data:`MAX_RANK` dimensions, negative or unknown sizes are errors."""
    dims = []
    for number, wire, value, offset in iter_fields(r):
        if number == 2:
            expect_wire(r, wire, LEN, "TensorShapeProto.dim", offset)
            if len(dims) >= MAX_RANK:
                r.fail(f"more than {MAX_RANK} dimensions", offset)
            size = 0
            dim = r.sub(value, offset, f"dim[{len(dims)}]")
            for n2, w2, v2, o2 in iter_fields(dim):
                if n2 == 1:
                    expect_wire(dim, w2, VARINT, "Dim.size", o2)
                    size = signed64(v2)
            if size < 0:
                r.fail(f"dimension {len(dims)} has size {size}", offset)
            dims.append(size)
        elif number == 3:
            expect_wire(r, wire, VARINT, "TensorShapeProto.unknown_rank", offset)
            if value:
                r.fail("shape of unknown rank", offset)
    return tuple(dims)


def parse_slice_extents(r: Reader) -> list:
    """TensorSliceProto: repeated Extent extent = 1 {int64 start = 1; int64 length = 2 (absent: all)}."""
    extents = []
    for number, wire, value, offset in iter_fields(r):
        if number == 1:
            expect_wire(r, wire, LEN, "TensorSliceProto.extent", offset)
            if len(extents) >= MAX_RANK:
                r.fail(f"a slice of more than {MAX_RANK} dimensions", offset)
            start, length = 0, -1
            ext = r.sub(value, offset, f"extent[{len(extents)}]")
            for n2, w2, v2, o2 in iter_fields(ext):
                if n2 == 1:
                    expect_wire(ext, w2, VARINT, "Extent.start", o2)
                    start = signed64(v2)
                elif n2 == 2:
                    expect_wire(ext, w2, VARINT, "Extent.length", o2)
                    length = signed64(v2)
            extents.append((start, length))
    return extents
