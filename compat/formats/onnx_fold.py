"""Weights that an ONNX graph computes from its initializers, folded without running the model.

PyTorch's exporter up to 1.4 (``torch/onnx/symbolic_opset9.py`` ``_generic_rnn``: ``reform_weights``,
``transform_weights``) did not fold constants by default: an ``LSTM`` node's ``W``, ``R`` and ``B`` are
``Unsqueeze(Concat(Slice(weight_ih_l0, ...), ...))`` over the module's parameters, which sit in the graph as
initializers (the gate blocks reordered from torch's i, f, g, o to ONNX's i, o, f, c; the two biases
concatenated). :class:`Folder` evaluates such a subgraph when everything it reads is a constant
(initializers and ``Constant`` nodes), with a fixed set of shape and indexing operators (``FOLDABLE``; their
semantics from onnx/docs/Operators.md, each opset's attribute and input forms), and refuses, naming the
node, anything that depends on a graph input or uses another operator. It is bounded: at most
``MAX_NODES`` nodes per graph and ``MAX_DEPTH`` deep, and no intermediate larger than ``MAX_ELEMENTS``
elements, checked from the shapes before the array is made. No arithmetic is done on the values (the
operators only move, select and cast them).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from compat.errors import FileFormatError

FOLDABLE = ("Identity", "Constant", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Concat",
            "Gather", "Split", "Flatten")
MAX_NODES = 10_000
MAX_DEPTH = 200
MAX_ELEMENTS = 1 << 28


class NotConstantError(FileFormatError):
    """A tensor the graph computes from a graph input, or with an operator this folder does not evaluate."""


class Folder:
    """Evaluates tensors of one ONNX graph from its constants (see the module docstring).

    ``constants``: name -> a function returning the numpy array (initializers, decoded on demand);
    ``nodes``: the graph's nodes (protobuf ``NodeProto``); ``attribute``: ``(AttributeProto) -> value``;
    ``tensor``: ``(TensorProto) -> numpy``; ``where``: the file, for messages; ``max_tensor_bytes``: the
    largest tensor it makes; ``max_total_bytes``: what it may make in all (constants decoded included).
    """

    def __init__(self, constants: Mapping[str, Callable[[], np.ndarray]], nodes: Sequence, opset: int,
                 attribute: Callable, tensor: Callable, dtype_of: Callable[[int], np.dtype], where: str, *,
                 max_tensor_bytes: int, max_total_bytes: int):
        self.constants = dict(constants)
        self.producer: Dict[str, object] = {}
        for node in nodes:
            for out in node.output:
                if out:
                    self.producer[out] = node
        self.opset, self.attribute, self.tensor, self.dtype_of, self.where = opset, attribute, tensor, dtype_of, where
        self.values: Dict[str, np.ndarray] = {}
        self.evaluated = 0
        self.max_tensor_bytes, self.max_total_bytes = max_tensor_bytes, max_total_bytes
        self.made = 0   # bytes of every array made so far

    def charge(self, count: int, itemsize: int, what: str) -> None:
        """Account for an array of ``count`` elements about to be made; ValueError past a bound."""
        _cap(count, what)
        nbytes = count * itemsize
        if nbytes > self.max_tensor_bytes:
            raise ValueError(f"{what} would have {nbytes:,} bytes; the ceiling is {self.max_tensor_bytes:,} "
                             "(--max-tensor-bytes raises it)")
        self.made += nbytes
        if self.made > self.max_total_bytes:
            raise ValueError(f"folding would make more than {self.max_total_bytes:,} bytes of tensors in all, "
                             "far more than the model holds")

    def value(self, name: str) -> np.ndarray:
        """The tensor ``name`` if the graph makes it from constants alone; else :class:`NotConstantError`."""
        return self._value(name, 0)

    def _value(self, name: str, depth: int) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            value = self.constants[name]()
            try:
                self.charge(value.size, value.itemsize, f"constant {name!r}")
            except ValueError as e:
                raise FileFormatError(f"{self.where}: {e}") from None
            self.values[name] = value
            return self.values[name]
        node = self.producer.get(name)
        if node is None:
            raise NotConstantError(f"{self.where}: {name!r} is a graph input, not a constant: its value is given at "
                                   "run time")
        if depth > MAX_DEPTH:
            raise NotConstantError(f"{self.where}: {name!r} is computed by a chain of more than {MAX_DEPTH} nodes")
        self.evaluated += 1
        if self.evaluated > MAX_NODES:
            raise NotConstantError(f"{self.where}: folding {name!r} needs more than {MAX_NODES} nodes")
        label = f"node {node.name or node.op_type!r} ({node.op_type})"
        if node.domain not in ("", "ai.onnx") or node.op_type not in FOLDABLE:
            raise NotConstantError(f"{self.where}: {name!r} is computed at run time by {label}, which the converter "
                                   f"does not fold (it folds {', '.join(FOLDABLE)} over constants)")
        attrs = {a.name: self.attribute(a) for a in node.attribute}
        if node.op_type == "Split":
            attrs.setdefault("num_outputs", len(node.output))
        inputs = [None if not n else self._value(n, depth + 1) for n in node.input]
        try:
            outputs = _OPS[node.op_type](self, attrs, inputs)
        except NotConstantError:
            raise
        except (ValueError, IndexError, TypeError, KeyError, OverflowError, AttributeError) as e:   # a missing input
            raise FileFormatError(f"{self.where}: {label} cannot be folded: {type(e).__name__}: {e}") from None
        for out, arr in zip(node.output, outputs):
            if out:
                self.values[out] = arr
        if name not in self.values:
            raise FileFormatError(f"{self.where}: {label} does not produce {name!r}")
        return self.values[name]


    def constants_read(self, name: str) -> List[str]:
        """The constants (initializers) that ``name`` is computed from (``name`` itself when it is one)."""
        seen, out, todo = set(), [], [name]
        while todo and len(seen) <= MAX_NODES:
            n = todo.pop()
            if n in seen or not n:
                continue
            seen.add(n)
            if n in self.constants:
                out.append(n)
            elif n in self.producer:
                todo.extend(self.producer[n].input)
        return sorted(out)


def _cap(count: int, what: str) -> None:
    if count > MAX_ELEMENTS:
        raise ValueError(f"{what} would have {count:,} elements (the cap is {MAX_ELEMENTS:,})")


def _ints(values, what: str) -> List[int]:
    a = np.asarray(values)
    if a.dtype.kind not in "iu" or a.ndim > 1:
        raise ValueError(f"{what} must be a list of integers")
    return [int(v) for v in a.reshape(-1)]


def _axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"{what} {axis} out of range for rank {rank}")
    return axis % rank


def _input_or_attr(f: Folder, inputs, position: int, attrs: dict, name: str, since: int, default=None):
    """An operand given as an attribute before opset ``since`` and as an input from it on."""
    if f.opset >= since:
        if len(inputs) > position and inputs[position] is not None:
            return _ints(inputs[position], name)
        return default
    return list(attrs[name]) if name in attrs else default


def _identity(f, attrs, inputs):
    return [inputs[0]]


def _constant(f, attrs, inputs):
    if "value" in attrs:
        value = np.asarray(attrs["value"])
        f.charge(value.size, value.itemsize, "the Constant")
        return [value]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            value = np.asarray(attrs[key], dtype=dtype)
            f.charge(value.size, value.itemsize, "the Constant")
            return [value]
    raise ValueError(f"a Constant without a value attribute this folder reads ({sorted(attrs)})")


def _cast(f, attrs, inputs):
    to = attrs["to"]
    dtype = np.dtype(to.lower()) if isinstance(to, str) else f.dtype_of(int(to))
    if dtype.kind not in "biuf":
        raise ValueError(f"a Cast to {dtype}")
    f.charge(inputs[0].size, dtype.itemsize, "the Cast")
    return [inputs[0].astype(dtype)]


def _reshape(f, attrs, inputs):
    x = inputs[0]
    shape = _input_or_attr(f, inputs, 1, attrs, "shape", 5)
    if shape is None:
        raise ValueError("no shape")
    allowzero = int(attrs.get("allowzero", 0))
    shape = [x.shape[i] if d == 0 and not allowzero and i < x.ndim else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


def _squeeze(f, attrs, inputs):
    x = inputs[0]
    axes = _input_or_attr(f, inputs, 1, attrs, "axes", 13)
    if axes is None:
        return [np.squeeze(x)]
    axes = tuple(_axis(a, x.ndim) for a in axes)
    if any(x.shape[a] != 1 for a in axes):
        raise ValueError(f"Squeeze of axes {list(axes)} of a tensor of shape {list(x.shape)}")
    return [np.squeeze(x, axis=axes)]


def _unsqueeze(f, attrs, inputs):
    x = inputs[0]
    axes = _input_or_attr(f, inputs, 1, attrs, "axes", 13)
    if axes is None:
        raise ValueError("no axes")
    rank = x.ndim + len(axes)
    out = x
    for a in sorted(_axis(a, rank) for a in axes):
        out = np.expand_dims(out, a)
    return [out]


def _flatten(f, attrs, inputs):
    x = inputs[0]
    axis = _axis(int(attrs.get("axis", 1)), x.ndim + 1)
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(outer, -1) if x.size else x.reshape(outer, int(np.prod(x.shape[axis:], dtype=np.int64)))]


def _transpose(f, attrs, inputs):
    x = inputs[0]
    perm = attrs.get("perm")
    return [np.transpose(x, None if perm is None else list(perm))]


def _slice_bound(v: int, dim: int, step: int, is_end: bool) -> Optional[int]:
    # onnx/docs/Operators.md Slice: negative values count from the end; clamped to [0, dim] for positive
    # steps and to [-1, dim - 1] for negative ones (-1 there meaning "before the first element").
    if v < 0:
        v += dim
    if step > 0:
        return min(max(v, 0), dim)
    v = min(max(v, -1), dim - 1)
    return None if (is_end and v == -1) else v


def _slice(f, attrs, inputs):
    x = inputs[0]
    if f.opset >= 10:
        starts, ends = _ints(inputs[1], "starts"), _ints(inputs[2], "ends")
        axes = _ints(inputs[3], "axes") if len(inputs) > 3 and inputs[3] is not None else list(range(len(starts)))
        steps = _ints(inputs[4], "steps") if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    else:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError("starts, ends, axes and steps of different lengths")
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ValueError("a step of 0")
        a = _axis(a, x.ndim)
        dim = x.shape[a]
        index[a] = slice(_slice_bound(s, dim, st, False), _slice_bound(e, dim, st, True), st)
    return [x[tuple(index)]]


def _concat(f, attrs, inputs):
    parts = [p for p in inputs if p is not None]
    if not parts:
        raise ValueError("no inputs")
    f.charge(sum(p.size for p in parts), max(p.dtype.itemsize for p in parts), "the Concat")
    return [np.concatenate(parts, axis=_axis(int(attrs["axis"]), parts[0].ndim))]


def _gather(f, attrs, inputs):
    x, indices = inputs[0], np.asarray(inputs[1])
    if indices.dtype.kind not in "iu":
        raise ValueError("indices must be integers")
    axis = _axis(int(attrs.get("axis", 0)), x.ndim)
    dim = x.shape[axis]
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise ValueError(f"an index out of range for a dimension of {dim}")
    f.charge(indices.size * (x.size // max(dim, 1)), x.dtype.itemsize, "the Gather")
    return [np.take(x, np.where(indices < 0, indices + dim, indices), axis=axis)]


def _split(f, attrs, inputs):
    x = inputs[0]
    axis = _axis(int(attrs.get("axis", 0)), x.ndim)
    split = _input_or_attr(f, inputs, 1, attrs, "split", 13)
    n = attrs.get("num_outputs")
    if split is None:
        parts = int(n) if n is not None else None
        if parts is None:
            raise ValueError("Split without split sizes: the number of outputs decides, pass them")
        size = -(-x.shape[axis] // parts)
        split = [min(size, x.shape[axis] - k * size) for k in range(parts)]
    if sum(split) != x.shape[axis] or any(s < 0 for s in split):
        raise ValueError(f"split sizes {split} do not add up to {x.shape[axis]}")
    return np.split(x, np.cumsum(split)[:-1], axis=axis)


_OPS = {"Identity": _identity, "Constant": _constant, "Cast": _cast, "Reshape": _reshape, "Squeeze": _squeeze,
        "Unsqueeze": _unsqueeze, "Transpose": _transpose, "Slice": _slice, "Concat": _concat, "Gather": _gather,
        "Split": _split, "Flatten": _flatten}

__all__ = ["Folder", "NotConstantError", "FOLDABLE", "MAX_NODES", "MAX_DEPTH", "MAX_ELEMENTS"]
