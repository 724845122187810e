"""V1 checkpoints (``Saver(write_version=V1)``, TF 0.x): one table of ``SavedTensorSlices``
(tensorflow/core/util/tensor_slice_writer.h, saved_tensor_slice.proto).

The empty key holds ``meta`` (field 1): a ``SavedTensorSliceMeta`` whose ``tensor`` entries (field 1) are
``SavedSliceMeta`` {name 1, shape 2, type 3, slice 4}. Every other key holds ``data`` (field 2): a
``SavedSlice`` {name 1, slice 2 (``TensorSliceProto``), data 3 (``TensorProto``)}. A tensor may be saved
in several slices; together they must cover it exactly once (TF's ``TensorSliceSet`` refuses overlaps).

The values of a slice are in the one ``TensorProto`` field TF's writer uses for the tensor's type
(saved_tensor_slice_util.h ``TENSOR_PROTO_EXTRACT_TYPE``): ``float_val`` for float32, ``int_val`` for
int32, int16, int8, uint8, uint16 and the quantized 8/16-bit types, ``int64_val``, ``bool_val``,
``half_val`` (float16 bits), ``double_val``, ``scomplex_val``/``dcomplex_val`` (pairs), ``uint32_val``,
``uint64_val``, ``string_val``. Values in any other field (``float_val`` in an int32 tensor, say), a count
that differs from the slice's, or an integer out of the type's range are errors, never a silent cast.

Hostile files: every slice's element count is checked against the bytes that hold its values when the
file is opened (so the slices of a tensor together can never claim more elements than the file has
bytes), and against the tensor's shape before the tensor is allocated.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from compat.formats.protobuf_wire import (FIXED32, FIXED64, LEN, VARINT, Reader, as_string, count_packed_varints,
                                          decode_packed_varints, expect_wire, iter_fields)
from compat.formats.shapes import format_shape
from compat.formats.tf.errors import CheckpointError
from compat.formats.tf.table import read_table_file, table_entries
from compat.formats.tf.tensors import (DT_BOOL, DT_COMPLEX64, DT_COMPLEX128, DT_DOUBLE, DT_FLOAT, DT_HALF,
                                       DT_INT8, DT_INT16, DT_INT32, DT_INT64, DT_QINT8, DT_QINT32, DT_QUINT8,
                                       DT_QUINT16, DT_STRING, DT_UINT8, DT_UINT16, DT_UINT32, DT_UINT64,
                                       NUMPY_DTYPES, TensorInfo, array_count, dtype_name, parse_shape,
                                       parse_slice_extents)

# DataType -> (TensorProto field number, field name, wire encoding, numbers per element)
_FIELDS = {
    DT_FLOAT: (5, "float_val", "<f4", 1), DT_DOUBLE: (6, "double_val", "<f8", 1),
    DT_COMPLEX64: (9, "scomplex_val", "<f4", 2), DT_COMPLEX128: (12, "dcomplex_val", "<f8", 2),
    DT_INT64: (10, "int64_val", "varint", 1), DT_UINT64: (17, "uint64_val", "varint", 1),
    DT_UINT32: (16, "uint32_val", "varint", 1), DT_BOOL: (11, "bool_val", "varint", 1),
    DT_HALF: (13, "half_val", "varint", 1), DT_STRING: (8, "string_val", "bytes", 1),
    **{dt: (7, "int_val", "varint", 1) for dt in (DT_INT32, DT_INT16, DT_INT8, DT_UINT8, DT_UINT16, DT_QINT8,
                                                  DT_QUINT8, DT_QUINT16, DT_QINT32)},
}
_VALUE_FIELDS = {4: "tensor_content", 5: "float_val", 6: "double_val", 7: "int_val", 8: "string_val",
                 9: "scomplex_val", 10: "int64_val", 11: "bool_val", 12: "dcomplex_val", 13: "half_val",
                 14: "resource_handle_val", 15: "variant_val", 16: "uint32_val", 17: "uint64_val"}
# The integer range each varint-stored type allows (half_val holds the 16 bits of a float16).
_RANGES = {DT_INT32: (-2**31, 2**31 - 1), DT_QINT32: (-2**31, 2**31 - 1), DT_INT16: (-2**15, 2**15 - 1),
           DT_INT8: (-128, 127), DT_QINT8: (-128, 127), DT_UINT8: (0, 255), DT_QUINT8: (0, 255),
           DT_UINT16: (0, 65535), DT_QUINT16: (0, 65535), DT_HALF: (0, 65535), DT_UINT32: (0, 2**32 - 1)}


def _min_bytes(dtype_enum: int) -> int:
    """The fewest bytes a TensorProto can spend on one element of this type (packed, or tag + length)."""
    _number, _name, encoding, per = _FIELDS.get(dtype_enum, (0, "", "varint", 1))
    return {"<f4": 4, "<f8": 8, "varint": 1, "bytes": 2}[encoding] * per


class V1Reader:
    """The tensors of one V1 file: metadata at once, values on demand."""

    def __init__(self, path: str):
        self.path = path
        buf = read_table_file(path, "V1 checkpoint")
        self.tensors: Dict[str, TensorInfo] = {}
        meta_seen = False
        for key, value in table_entries(buf, path):
            r = Reader(value, str(path), f"entry {bytes(key[:60])!r}", error=CheckpointError)
            for number, wire, v, offset in iter_fields(r):
                if key == b"" and number == 1:
                    expect_wire(r, wire, LEN, "SavedTensorSlices.meta", offset)
                    meta_seen = True
                    self._parse_meta(r.sub(v, offset, "meta"))
                elif key != b"" and number == 2:
                    expect_wire(r, wire, LEN, "SavedTensorSlices.data", offset)
                    if not meta_seen:
                        raise CheckpointError(path, "a saved slice comes before the SavedTensorSliceMeta entry")
                    self._parse_slice(r.sub(v, offset, "data"))
        if not meta_seen:
            raise CheckpointError(path, "no SavedTensorSliceMeta entry: not a V1 checkpoint")

    def _parse_meta(self, r: Reader) -> None:
        for number, wire, v, offset in iter_fields(r):
            if number != 1:
                continue
            expect_wire(r, wire, LEN, "SavedTensorSliceMeta.tensor", offset)
            m = r.sub(v, offset, f"tensor[{len(self.tensors)}]")
            name, shape, dtype_enum = None, (), 0
            for n2, w2, v2, o2 in iter_fields(m):
                if n2 == 1:
                    name = as_string(m, v2, "name", o2)
                elif n2 == 2:
                    expect_wire(m, w2, LEN, "shape", o2)
                    shape = parse_shape(m.sub(v2, o2, "shape"))
                elif n2 == 3:
                    expect_wire(m, w2, VARINT, "type", o2)
                    dtype_enum = v2
            if name is None:
                r.fail("a tensor without a name", offset)
            if name in self.tensors:
                r.fail(f"tensor {name!r} is listed twice", offset)
            self.tensors[name] = TensorInfo(name, dtype_enum, shape)

    def _parse_slice(self, r: Reader) -> None:
        name, extents, tensor = None, None, None
        for number, wire, v, offset in iter_fields(r):
            if number == 1:
                name = as_string(r, v, "name", offset)
            elif number == 2:
                expect_wire(r, wire, LEN, "slice", offset)
                extents = parse_slice_extents(r.sub(v, offset, "slice"))
            elif number == 3:
                expect_wire(r, wire, LEN, "data", offset)
                tensor = v
        if name is None:
            r.fail("a saved slice without a name")
        info = self.tensors.get(name)
        if info is None:
            r.fail(f"a saved slice of {name!r}, which the metadata does not list")
        what = f"tensor {name!r}"
        shape = info.shape
        if not extents:
            extents = [(0, -1)] * len(shape)
        if len(extents) != len(shape):
            raise CheckpointError(self.path, f"{what}: slice of rank {len(extents)} for shape {format_shape(shape)}")
        bounds = []
        for d, (start, length) in enumerate(extents):
            stop = shape[d] if length == -1 else start + length
            if start < 0 or length < -1 or stop > shape[d]:
                raise CheckpointError(self.path, f"{what}: slice [{start}, {stop}) outside dimension {d} "
                                                 f"of size {shape[d]}")
            bounds.append((start, stop))
        tensor = tensor if tensor is not None else memoryview(b"")
        limit = len(tensor) // _min_bytes(info.dtype_enum)
        count = 1
        for start, stop in bounds:
            count *= stop - start
            if count > limit:
                break
        if count > limit:
            raise CheckpointError(self.path, f"{what}: a slice of shape {format_shape([b - a for a, b in bounds])} "
                                             f"has more elements than its {len(tensor)} bytes of values can hold")
        info.v1_slices.append((bounds, count, tensor))

    def read(self, info: TensorInfo) -> np.ndarray:
        path, what = self.path, f"tensor {info.name!r}"
        if info.dtype_enum not in _FIELDS:
            raise CheckpointError(path, f"{what} has dtype {info.dtype}, which this reader does not support")
        dt = np.dtype(object) if info.dtype_enum == DT_STRING else NUMPY_DTYPES[info.dtype_enum]
        total = array_count(path, info, dt.itemsize)
        held = sum(count for _, count, _ in info.v1_slices)
        if held < total:
            raise CheckpointError(path, f"{what}: the saved slices do not cover the whole tensor "
                                        f"({held} of {total} elements)")
        if held > total:
            raise CheckpointError(path, f"{what}: the saved slices overlap ({held} elements for {total})")
        out = np.empty(info.shape, dtype=dt)
        covered = np.zeros(info.shape, dtype=bool)
        for bounds, count, tensor in info.v1_slices:
            index = tuple(slice(a, b) for a, b in bounds)
            if covered[index].any():
                raise CheckpointError(path, f"{what}: overlapping slices ({[list(b) for b in bounds]})")
            covered[index] = True
            values = _slice_values(tensor, info.dtype_enum, count, path, what)
            if out.ndim == 0:
                out[()] = values[0]  # (an object array would store a 0-d array as the element)
            else:
                out[index] = values.reshape([b - a for a, b in bounds])
        return out


def _slice_values(data, dtype_enum: int, count: int, path, what: str) -> np.ndarray:
    """The ``count`` values of one SavedSlice's TensorProto, from the field TF's writer uses for the type."""
    number, field_name, encoding, per = _FIELDS[dtype_enum]
    r = Reader(data, str(path), f"{what} TensorProto", error=CheckpointError)
    occurrences: List[Tuple[int, object]] = []
    n = 0
    for field, wire, value, offset in iter_fields(r):
        if field == number:
            occurrences.append((wire, value))
            if encoding == "bytes":
                expect_wire(r, wire, LEN, field_name, offset)
                n += 1
            elif wire == LEN:
                n += count_packed_varints(value) if encoding == "varint" else len(value) // int(encoding[-1])
            else:
                expect_wire(r, wire, {"varint": VARINT, "<f4": FIXED32, "<f8": FIXED64}[encoding], field_name, offset)
                n += 1
        elif field in _VALUE_FIELDS and (wire != LEN or len(value)):
            r.fail(f"values in {_VALUE_FIELDS[field]}, but TF stores a {dtype_name(dtype_enum)} tensor in "
                   f"{field_name}", offset)
    if n != count * per:
        r.fail(f"{n // per if per > 1 else n} values for a slice of {count} elements", 0)
    if encoding == "bytes":
        out = np.empty(count, dtype=object)
        out[:] = [bytes(v) for _, v in occurrences]
        return out
    if encoding == "varint":
        chunks = [decode_packed_varints(r, v, field_name) if wire == LEN else np.array([v], dtype=np.uint64)
                  for wire, v in occurrences]
        raw = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
        if dtype_enum == DT_BOOL:
            return raw != 0  # protobuf reads any non-zero varint as true
        if dtype_enum in (DT_INT64, DT_UINT64):
            return raw.view(np.int64) if dtype_enum == DT_INT64 else raw
        signed = raw.view(np.int64)
        lo, hi = _RANGES[dtype_enum]
        if signed.size and (signed.min() < lo or signed.max() > hi):
            r.fail(f"a value in {field_name} is outside the {dtype_name(dtype_enum)} range [{lo}, {hi}]", 0)
        if dtype_enum == DT_HALF:
            return signed.astype(np.uint16).view(np.float16)
        return signed.astype(NUMPY_DTYPES[dtype_enum])
    itemsize = int(encoding[-1])
    chunks = []
    for wire, v in occurrences:
        if wire == LEN:
            if len(v) % itemsize:
                r.fail(f"packed {field_name} of {len(v)} bytes is not a whole number of values", 0)
            chunks.append(np.frombuffer(v, dtype=encoding))
        else:
            chunks.append(np.frombuffer(int(v).to_bytes(itemsize, "little"), dtype=encoding))
    values = np.concatenate(chunks)
    if per == 2:
        values = values.view(np.complex64 if itemsize == 4 else np.complex128)
    return values
