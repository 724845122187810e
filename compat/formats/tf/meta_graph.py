"""A TF1 ``.meta`` file (a serialized ``MetaGraphDef``) read as data: the graph's nodes, never run.

Fields read (tensorflow/core/protobuf/meta_graph.proto, core/framework/graph.proto, node_def.proto,
attr_value.proto, tensor.proto, function.proto); everything else is skipped::

    MetaGraphDef      graph_def 2 (GraphDef)
    GraphDef          node 1 (NodeDef), library 2 (FunctionDefLibrary)
    FunctionDefLibrary function 1 (FunctionDef: signature 1 (OpDef: name 1), node_def 3 (NodeDef))
    NodeDef           name 1, op 2, input 3, attr 5 (map entry: key 1, value 2 (AttrValue))
    AttrValue         tensor 8 (TensorProto), type 6, i 3, f 4, b 5, shape 7 (TensorShapeProto)
    TensorProto       dtype 1, tensor_shape 2 (TensorShapeProto: dim 2 (size 1)), tensor_content 4,
                      float_val 5, double_val 6, int_val 7, int64_val 10, bool_val 11

Besides a ``Const``'s value, the scalar attributes (``i``, ``f``, ``b``, ``type``) and shapes of every node are
kept (``attrs``: ``axis`` and ``num`` of an ``Unpack``, ``transpose_a`` / ``transpose_b`` of a ``MatMul``, a
``Placeholder``'s ``dtype`` and ``shape``; an attribute left at its default may be absent, as
``strip_default_attrs`` writes it). A ``Const`` node's value is decoded only when it is small (at most :data:`MAX_CONST_VALUES` values: the
scalars and short vectors the run-time settings are); larger constants are kept as their shape alone. The
nodes of the graph's function library (the bodies of TF 2's ``while_v2`` loops) are read too, named
``<function>/<node>``.

Hostile files: the file is read only if it is a regular file of at most :data:`MAX_FILE_BYTES`; the number of
nodes, inputs and attributes is capped; every length is checked before it is sliced
(:mod:`compat.formats.protobuf_wire`). Errors are :class:`MetaGraphError` naming the file and the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from compat.formats.files import read_bytes
from compat.formats.protobuf_wire import (FIXED32, LEN, VARINT, Reader, WireError, as_string, expect_wire,
                                          iter_fields, packed_scalars, packed_varints, signed64)
from compat.formats.tf.errors import CheckpointError

MAX_FILE_BYTES = 512 * 2 ** 20
MAX_NODES = 1_000_000
MAX_INPUTS = 10_000       # per node
MAX_ATTRS = 1_000         # per node
MAX_CONST_VALUES = 64
MAX_DIMS = 64
# DataType (tensorflow/core/framework/types.proto) -> numpy, for the constants decoded
DTYPES = {1: "float32", 2: "float64", 3: "int32", 9: "int64", 10: "bool", 19: "float16"}


class MetaGraphError(CheckpointError):
    """A ``.meta`` file that is not a readable MetaGraphDef; the message names the file, field and offset."""


@dataclass
class GraphNode:
    """One node of the graph: its name, op, data inputs (``name`` or ``name:k``; control inputs ``^name``
    are dropped), and for a ``Const`` its value (``None`` when larger than :data:`MAX_CONST_VALUES`)."""

    name: str
    op: str
    inputs: List[str] = field(default_factory=list)
    value: Optional[np.ndarray] = None
    shape: Optional[Tuple[int, ...]] = None
    # scalar attributes (int, float, bool, DataType enum as int) and shapes (a tuple, -1 for an unknown dim;
    # None for an unknown rank), by name
    attrs: Dict[str, object] = field(default_factory=dict)


def _error(source: str, message: str) -> MetaGraphError:
    return MetaGraphError(source, message)


def _sub(r: Reader, value, offset: int, name: str) -> Reader:
    if not isinstance(value, memoryview):
        r.fail(f"field {name} should be a length-delimited message", offset)
    return r.sub(value, offset, name)


def _shape(r: Reader) -> Tuple[int, ...]:
    dims: List[int] = []
    for f, wire, value, offset in iter_fields(r):
        if f == 2:
            d = _sub(r, value, offset, "dim")
            size = 0
            for f2, w2, v2, o2 in iter_fields(d):
                if f2 == 1:
                    expect_wire(d, w2, VARINT, "dim.size", o2)
                    size = signed64(v2)
            if len(dims) >= MAX_DIMS:
                r.fail(f"more than {MAX_DIMS} dims", offset)
            dims.append(size)
    return tuple(dims)


def _attr_shape(r: Reader) -> Optional[Tuple[int, ...]]:
    """A TensorShapeProto attribute: its dims (-1 unknown), or None when its rank is unknown (unknown_rank 3)."""
    dims: List[int] = []
    for f, wire, value, offset in iter_fields(r):
        if f == 3 and wire == VARINT and value:
            return None
        if f == 2:
            d = _sub(r, value, offset, "dim")
            size = 0
            for f2, w2, v2, o2 in iter_fields(d):
                if f2 == 1:
                    expect_wire(d, w2, VARINT, "dim.size", o2)
                    size = signed64(v2)
            if len(dims) >= MAX_DIMS:
                r.fail(f"more than {MAX_DIMS} dims", offset)
            dims.append(size)
    return tuple(dims)


def _tensor(r: Reader) -> Tuple[Optional[np.ndarray], Tuple[int, ...]]:
    dtype, shape, content = 0, (), None
    values: Dict[int, List[np.ndarray]] = {}
    for f, wire, value, offset in iter_fields(r):
        if f == 1:
            expect_wire(r, wire, VARINT, "dtype", offset)
            dtype = value
        elif f == 2:
            shape = _shape(_sub(r, value, offset, "tensor_shape"))
        elif f == 4:
            expect_wire(r, wire, LEN, "tensor_content", offset)
            content = value
        elif f in (5, 6):
            values.setdefault(f, []).append(packed_scalars(r, wire, value, "<f4" if f == 5 else "<f8",
                                                           "float_val" if f == 5 else "double_val"))
        elif f in (7, 10, 11):
            name = {7: "int_val", 10: "int64_val", 11: "bool_val"}[f]
            if wire == VARINT:
                values.setdefault(f, []).append(np.array([signed64(value)], dtype=np.int64))
            else:
                values.setdefault(f, []).append(packed_varints(r, wire, value, name, limit=MAX_CONST_VALUES + 1)
                                                .astype(np.int64))
    if any(d < 0 for d in shape):
        r.fail(f"tensor_shape {list(shape)} has a negative dim")
    count = 1
    for d in shape:
        count = min(count * d, MAX_CONST_VALUES + 1)
    np_dtype = DTYPES.get(dtype)
    if np_dtype is None or count > MAX_CONST_VALUES:
        return None, shape
    if content is not None:
        itemsize = np.dtype(np_dtype).itemsize
        if len(content) != count * itemsize:
            r.fail(f"tensor_content has {len(content)} bytes; a {np_dtype} tensor of shape {list(shape)} has "
                   f"{count * itemsize}")
        return np.frombuffer(content, dtype="<" + np.dtype(np_dtype).str[1:]).astype(np_dtype).reshape(shape), shape
    field_of = {"float32": 5, "float64": 6, "int32": 7, "int64": 10, "bool": 11, "float16": 7}[np_dtype]
    flat = np.concatenate(values[field_of]) if values.get(field_of) else np.zeros(0)
    if flat.size > MAX_CONST_VALUES:
        return None, shape
    if flat.size == 0:
        flat = np.zeros(1)
    if flat.size == 1 and count > 1:    # TF stores a splat of one value once
        flat = np.repeat(flat, count)
    if flat.size != count:
        r.fail(f"a constant of shape {list(shape)} holds {flat.size} values")
    return flat.astype(np_dtype if np_dtype != "float16" else "float32").reshape(shape), shape


def _node(r: Reader, prefix: str) -> GraphNode:
    node = GraphNode("", "")
    attrs = 0
    for f, wire, value, offset in iter_fields(r):
        if f == 1:
            node.name = prefix + as_string(r, value, "name", offset)
        elif f == 2:
            node.op = as_string(r, value, "op", offset)
        elif f == 3:
            text = as_string(r, value, "input", offset)
            if len(node.inputs) >= MAX_INPUTS:
                r.fail(f"a node with more than {MAX_INPUTS:,} inputs", offset)
            if not text.startswith("^"):
                node.inputs.append(prefix + text if prefix else text)
        elif f == 5:
            attrs += 1
            if attrs > MAX_ATTRS:
                r.fail(f"a node with more than {MAX_ATTRS:,} attributes", offset)
            entry = _sub(r, value, offset, "attr")
            key, attr_value, attr_offset = "", None, 0
            for f2, w2, v2, o2 in iter_fields(entry):
                if f2 == 1:
                    key = as_string(entry, v2, "attr.key", o2)
                elif f2 == 2:
                    attr_value, attr_offset = v2, o2
            if attr_value is None:
                continue
            a = _sub(entry, attr_value, attr_offset, f"attr[{key[:40]}]")
            for f3, w3, v3, o3 in iter_fields(a):
                if f3 == 8 and key == "value":
                    node.value, node.shape = _tensor(_sub(a, v3, o3, "tensor"))
                elif f3 in (3, 6) and w3 == VARINT:
                    node.attrs[key] = signed64(v3)
                elif f3 == 5 and w3 == VARINT:
                    node.attrs[key] = bool(v3)
                elif f3 == 4 and w3 == FIXED32:
                    node.attrs[key] = float(np.array([v3], "<u4").view("<f4")[0])
                elif f3 == 7:
                    node.attrs[key] = _attr_shape(_sub(a, v3, o3, "shape"))
    return node


def parse_meta_graph(data, source: str = "<meta graph>") -> List[GraphNode]:
    """Every node of a serialized MetaGraphDef's graph and of its function library."""
    top = Reader(data, source, "MetaGraphDef", error=_error)
    nodes: List[GraphNode] = []

    def add(n: GraphNode, r: Reader, offset: int):
        if len(nodes) >= MAX_NODES:
            r.fail(f"more than {MAX_NODES:,} nodes", offset)
        nodes.append(n)

    for f, wire, value, offset in iter_fields(top):
        if f != 2:
            continue
        g = _sub(top, value, offset, "graph_def")
        for f2, w2, v2, o2 in iter_fields(g):
            if f2 == 1:
                add(_node(_sub(g, v2, o2, "node"), ""), g, o2)
            elif f2 == 2:
                lib = _sub(g, v2, o2, "library")
                for f3, w3, v3, o3 in iter_fields(lib):
                    if f3 != 1:
                        continue
                    fn = _sub(lib, v3, o3, "function")
                    name, bodies = "", []
                    for f4, w4, v4, o4 in iter_fields(fn):
                        if f4 == 1:
                            sig = _sub(fn, v4, o4, "signature")
                            for f5, w5, v5, o5 in iter_fields(sig):
                                if f5 == 1:
                                    name = as_string(sig, v5, "signature.name", o5)
                        elif f4 == 3:
                            bodies.append((v4, o4))
                    for v4, o4 in bodies:
                        add(_node(_sub(fn, v4, o4, "node_def"), f"{name}/"), fn, o4)
    return nodes


def read_meta_graph(path) -> List[GraphNode]:
    """The nodes of the ``.meta`` file at ``path`` (see the module docstring for the bounds)."""
    data = read_bytes(path, MAX_FILE_BYTES, "MetaGraphDef (.meta) file")
    try:
        return parse_meta_graph(data, str(path))
    except WireError as e:
        raise MetaGraphError(str(path), e.detail) from None


def meta_file_of(prefix) -> Optional[Path]:
    """``PREFIX.meta`` beside a checkpoint prefix, when it is a file."""
    p = Path(str(prefix) + ".meta")
    return p if p.is_file() else None
