"""Caffe ``.caffemodel`` files (binary ``NetParameter``) read and written without Caffe or ``protobuf``.

Fields used (BVLC caffe src/caffe/proto/caffe.proto; the junhyukoh fork numbers them the same)::

    NetParameter      name 1, layer 100 (LayerParameter), layers 2 (V1LayerParameter, legacy)
    LayerParameter    name 1, type 2 (string), bottom 3, top 4, blobs 7
    V1LayerParameter  name 4, type 5 (enum LayerType), bottom 2, top 3, blobs 6, layer 1 (V0LayerParameter)
    V0LayerParameter  name 1, type 2 (string), blobs 50
    BlobProto         shape 7 (BlobShape: dim 1, packed int64), data 5 (packed float), double_data 8
                      (packed double), legacy num 1, channels 2, height 3, width 4; diff 6 / double_diff 9
                      are skipped

Everything else (layer parameters, fillers, phases) is skipped: the weights live in ``blobs``. Blob
shapes follow ``Blob::FromProto`` (blob.cpp): the legacy 4-D (num, channels, height, width) when any of
those fields is present, else ``shape`` (absent: no axes, one value); the values come from
``double_data`` when it is non-empty, else ``data``; their count must equal the shape's product.

Hostile files: the file is read only if it is a regular file of at most :data:`MAX_FILE_BYTES`; every
length is checked before it is sliced; a shape may have at most :data:`MAX_BLOB_AXES` axes (Caffe's
``kMaxBlobAxes``), each at most INT_MAX, and at most INT_MAX values (``Blob::Reshape``'s "blob size
exceeds INT_MAX"), all checked before any array exists; the number of layers and blobs is capped
(:data:`MAX_LAYERS`, :data:`MAX_BLOBS`). Errors are :class:`CaffeModelError` naming the file, the layer,
the blob and the byte offset.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from compat.atomic import atomic_write_bytes
from compat.errors import FileFormatError
from compat.formats.files import read_bytes
from compat.formats.protobuf_wire import (FIXED32, FIXED64, LEN, VARINT, WIRE_TYPE_NAMES, Reader, WireError, Writer,
                                          as_string, iter_fields, packed_scalars, packed_varints, signed32)
from compat.formats.shapes import checked_count, format_shape

MAX_FILE_BYTES = 2 ** 31 - 1  # protobuf's own limit on one message
MAX_BLOB_AXES = 32            # blob.hpp kMaxBlobAxes
INT_MAX = 2 ** 31 - 1         # Blob::Reshape: every dimension and the count are ints
MAX_LAYERS = 100_000
MAX_BLOBS = 50_000

# V1LayerParameter.LayerType -> the type string Caffe's UpgradeV1LayerType gives it.
V1_LAYER_TYPES = {
    0: "", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat", 37: "ContrastiveLoss",
    4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout", 32: "DummyData", 7: "EuclideanLoss",
    25: "Eltwise", 38: "Exp", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col",
    12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU", 19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split",
    33: "Slice", 23: "TanH", 24: "WindowData", 31: "Threshold",
}
V1_TYPE_CODES = {v: k for k, v in V1_LAYER_TYPES.items() if v}

CaffeModel = Dict[str, Tuple[str, List[np.ndarray]]]


class CaffeModelError(WireError):
    """A .caffemodel that cannot be read; the message names the file, layer, blob and byte offset."""


class _Values:
    """The occurrences of one repeated float field, packed chunks and unpacked scalars, in file order."""

    __slots__ = ("dtype", "chunks", "scalars", "count")

    def __init__(self, dtype: str):
        self.dtype, self.chunks, self.scalars, self.count = dtype, [], [], 0

    def add(self, r: Reader, wire: int, value, name: str) -> None:
        if wire == LEN:
            self._flush()
            chunk = packed_scalars(r, wire, value, self.dtype, name)
            self.chunks.append(chunk)
            self.count += chunk.size
        else:
            expected = FIXED32 if self.dtype == "<f4" else FIXED64
            if wire != expected:
                r.fail(f"field {name} has wire type {WIRE_TYPE_NAMES.get(wire, wire)}; expected "
                       f"{WIRE_TYPE_NAMES[expected]} or packed")
            self.scalars.append(value)
            self.count += 1

    def _flush(self) -> None:
        if self.scalars:
            raw = np.array(self.scalars, dtype="<u4" if self.dtype == "<f4" else "<u8")
            self.chunks.append(raw.view(self.dtype))
            self.scalars = []

    def array(self, dtype) -> np.ndarray:
        self._flush()
        if not self.chunks:
            return np.zeros(0, dtype)
        if len(self.chunks) == 1:
            return self.chunks[0].astype(dtype)  # a writable copy, not a view of the file's bytes
        return np.concatenate(self.chunks).astype(dtype, copy=False)


def _read_shape(r: Reader) -> List[int]:
    dims: List[int] = []
    for field, wire, value, _ in iter_fields(r):
        if field == 1:
            dims += packed_varints(r, wire, value, "BlobShape.dim", limit=MAX_BLOB_AXES - len(dims)).tolist()
    return dims


def _read_blob(r: Reader) -> np.ndarray:
    shape = None
    legacy = {}
    data, double = _Values("<f4"), _Values("<f8")
    for field, wire, value, offset in iter_fields(r):
        if field == 7:
            if wire != LEN:
                r.fail("BlobProto.shape is not a message", offset)
            shape = _read_shape(r.sub(value, offset, "shape"))
        elif field == 5:
            data.add(r, wire, value, "BlobProto.data")
        elif field == 8:
            double.add(r, wire, value, "BlobProto.double_data")
        elif field in (1, 2, 3, 4):
            if wire != VARINT:
                r.fail(f"BlobProto legacy dimension field {field} is not a varint", offset)
            legacy[field] = signed32(value)
    if legacy:  # Blob::FromProto: any legacy field means the 4-D (num, channels, height, width)
        shape = [legacy.get(k, 0) for k in (1, 2, 3, 4)]
    elif shape is None:
        shape = []
    for d in shape:
        if d < 0:
            r.fail(f"blob shape {format_shape(shape)} has a negative dimension")
        if d > INT_MAX:
            r.fail(f"blob shape {format_shape(shape)} has a dimension above INT_MAX")
    values = double if double.count else data
    dtype = np.float64 if values is double else np.float32
    count = checked_count(shape, np.dtype(dtype).itemsize, r.fail, max_elements=INT_MAX, max_rank=MAX_BLOB_AXES)
    if values.count != count:
        r.fail(f"blob of shape {format_shape(shape)} ({count} values) holds {values.count} values")
    return values.array(dtype).reshape(shape)


class _Budget:
    __slots__ = ("blobs",)

    def __init__(self):
        self.blobs = 0

    def blob(self, r: Reader, offset: int) -> None:
        self.blobs += 1
        if self.blobs > MAX_BLOBS:
            r.fail(f"more than {MAX_BLOBS:,} blobs in the file", offset)


def _read_layer(r: Reader, v1: bool, budget: _Budget) -> Tuple[str, str, List[np.ndarray]]:
    name, ltype, blobs = "", "", []
    name_f, type_f, blobs_f = (4, 5, 6) if v1 else (1, 2, 7)
    for field, wire, value, offset in iter_fields(r):
        if field == name_f:
            name = as_string(r, value, "name", offset)
        elif field == type_f:
            if v1:
                if wire != VARINT:
                    r.fail("V1LayerParameter.type is not an enum varint", offset)
                ltype = V1_LAYER_TYPES.get(int(value), f"V1LayerType{int(value)}")
            else:
                ltype = as_string(r, value, "type", offset)
        elif field == blobs_f:
            if wire != LEN:
                r.fail(f"blob {len(blobs)} is not a message", offset)
            budget.blob(r, offset)
            blobs.append(_read_blob(r.sub(value, offset, f"blobs[{len(blobs)}]")))
        elif v1 and field == 1 and wire == LEN:  # V0LayerParameter inside a V1 layer
            v0 = r.sub(value, offset, "layer(V0)")
            for f0, w0, val0, off0 in iter_fields(v0):
                if f0 == 1:
                    name = name or as_string(v0, val0, "name", off0)
                elif f0 == 2:
                    ltype = ltype or as_string(v0, val0, "type", off0)
                elif f0 == 50:
                    if w0 != LEN:
                        v0.fail("blob is not a message", off0)
                    budget.blob(v0, off0)
                    blobs.append(_read_blob(v0.sub(val0, off0, f"blobs[{len(blobs)}]")))
    return name, ltype, blobs


def parse_caffemodel(data, source: str = "<bytes>") -> CaffeModel:
    """{layer name: (type, [numpy blobs])} from NetParameter bytes; layers without blobs are included."""
    r = Reader(data, str(source), error=CaffeModelError)
    out: CaffeModel = {}
    budget = _Budget()
    layers = 0
    for field, wire, value, offset in iter_fields(r):
        if field in (100, 2):
            if wire != LEN:
                r.fail(f"NetParameter.{'layer' if field == 100 else 'layers'} is not a message", offset)
            layers += 1
            if layers > MAX_LAYERS:
                r.fail(f"more than {MAX_LAYERS:,} layers in the file", offset)
            index = len(out)
            sub = r.sub(value, offset, f"{'layer' if field == 100 else 'layers'}[{index}]")
            name, ltype, blobs = _read_layer(sub, field == 2, budget)
            if name in out and (blobs or out[name][1]):
                r.fail(f"two layers named {name!r} carry blobs", offset)
            if name not in out or blobs:
                out[name] = (ltype, blobs)
        elif field == 1 and wire != LEN:
            r.fail("NetParameter.name is not a string", offset)
    return out


def read_caffemodel(path) -> CaffeModel:
    """Read a binary .caffemodel: {layer name: (type, [numpy blobs in Caffe's order])}."""
    try:
        data = read_bytes(path, MAX_FILE_BYTES, ".caffemodel")
    except FileFormatError as exc:
        raise CaffeModelError(path, f"cannot read: {str(exc).removeprefix(f'{path}: ')}") from None
    if data[:1].isalpha() or data[:5] in (b"name:", b"layer", b"input"):
        raise CaffeModelError(path, "looks like a text .prototxt, not a binary .caffemodel (read it with "
                                    "read_prototxt)")
    return parse_caffemodel(data, str(path))


def _blob_message(blob, legacy_4d: bool) -> Writer:
    arr = np.asarray(blob)
    w = Writer()
    if legacy_4d:
        if arr.ndim > 4:
            raise ValueError(f"a blob of shape {list(arr.shape)} has more than 4 axes; legacy 4-D cannot hold it")
        dims = [1] * (4 - arr.ndim) + list(arr.shape)
        for field, d in zip((1, 2, 3, 4), dims):
            w.varint(field, d)
    else:
        w.message(7, Writer().packed_varints(1, arr.shape))
    if arr.dtype == np.float64:
        w.packed_floats(8, arr, "<f8")
    else:
        w.packed_floats(5, arr, "<f4")
    return w


def caffemodel_bytes(layers: Union[Mapping[str, Tuple[str, Sequence]], Sequence[Tuple[str, str, Sequence]]],
                     name: str = "", *, legacy_v1: bool = False) -> bytes:
    """NetParameter bytes from {name: (type, blobs)} or [(name, type, blobs)].

    float64 blobs go to ``double_data``, others to ``data`` (float32). ``legacy_v1`` writes the deprecated
    ``layers`` field with V1 enum types and 4-D num/channels/height/width shapes.
    """
    items = [(n, t, b) for n, (t, b) in layers.items()] if isinstance(layers, Mapping) else list(layers)
    net = Writer()
    if name:
        net.string(1, name)
    for lname, ltype, blobs in items:
        lw = Writer()
        if legacy_v1:
            if ltype not in V1_TYPE_CODES:
                raise ValueError(f"layer {lname!r}: type {ltype!r} has no V1 LayerType enum value")
            lw.string(4, lname).varint(5, V1_TYPE_CODES[ltype])
            for blob in blobs:
                lw.message(6, _blob_message(blob, True))
            net.message(2, lw)
        else:
            lw.string(1, lname).string(2, ltype)
            for blob in blobs:
                lw.message(7, _blob_message(blob, False))
            net.message(100, lw)
    return net.bytes()


def write_caffemodel(path, layers, name: str = "", *, legacy_v1: bool = False) -> None:
    """Write a .caffemodel atomically (see :func:`caffemodel_bytes`); Caffe's CopyTrainedLayersFrom reads it."""
    atomic_write_bytes(path, caffemodel_bytes(layers, name, legacy_v1=legacy_v1))
