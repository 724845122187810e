"""The ONNX operators a whole converted model runs, as torch functions with the operators' exact semantics.

Each function takes the node's attributes (a dict, defaults applied here) and its inputs in the operator's
positional order (None for an optional input the node leaves out), and returns the node's outputs as a
tuple. The semantics are onnx/docs/Operators.md's, per opset where they changed (``Softmax`` before 13
flattens to 2-D at ``axis``; ``Squeeze`` / ``Unsqueeze`` / ``ReduceSum`` take their axes as an input from 13,
``ReduceMean`` / ``ReduceMax`` / ``ReduceProd`` / ``ReduceMin`` / ``ReduceL2`` / ``ReduceLogSumExp`` from 18;
``Slice`` before 10 takes attributes; ``TopK`` takes ``k`` as an input from 10; ``Clip`` its bounds as inputs
from 11; ``Split`` its sizes as an input from 13 and ``num_outputs`` from 18). Comparisons and logic make bool
tensors, ``ArgMax`` / ``ArgMin`` int64 ones; they flow between nodes in their own types. :class:`OnnxNode` is one
node of a converted graph: its constant inputs are buffers (floating point, in the model's dtype) or values
in its configuration (integers, small tensors), its run-time inputs come from the graph.

The recurrent nodes (``LSTM``, ``GRU``, ``RNN``) are :class:`RecurrentNode`: the node's converted recurrent
module (``compat.lstm.LSTM`` / ``compat.gru.GRU`` / ``compat.simple_rnn.RNN``, their ``compat.convert.modules.Onnx*``
forms where the node reads ``sequence_lens``, torch's own where exact), called as ``rnn(x, hx[, lengths=])`` and
returning ``(y, h_n)`` (the LSTM's ``(y, (h_n, c_n))``) as torch's recurrent modules do, with ONNX's input and
output layouts around it.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

# TensorProto data type codes (onnx/onnx.proto TensorProto.DataType) -> torch dtypes the converter runs
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
               11: "float64"}
FLOAT_CODES = (1, 10, 11)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis + rank if axis < 0 else axis


def _ints(t) -> List[int]:
    return [int(v) for v in (t.reshape(-1).tolist() if isinstance(t, Tensor) else t)]


# ------------------------------------------------------------------------------------------ operators
def _unary(fn):
    return lambda attrs, x: (fn(x),)


def _binary(fn):
    return lambda attrs, a, b: (fn(a, b),)


def _div(a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")   # integer Div truncates (onnxruntime, C++ division)


def _softmax(fn):
    def run(attrs, x):
        opset = attrs["__opset"]
        if opset >= 13:
            return (fn(x, _axis(attrs.get("axis", -1), x.dim())),)
        # before opset 13 the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])] and the
        # function runs over the second axis (Operators.md Softmax-1 / -11)
        axis = _axis(attrs.get("axis", 1), x.dim())
        flat = x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
        return (fn(flat, 1).reshape(x.shape),)
    return run


def _gather(attrs, data, indices):
    axis = _axis(attrs.get("axis", 0), data.dim())
    n = data.shape[axis]
    idx = torch.where(indices < 0, indices + n, indices).long()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"Gather: an index is out of range for axis {axis} of size {n}")
    out = data.index_select(axis, idx.reshape(-1))
    return (out.reshape(data.shape[:axis] + idx.shape + data.shape[axis + 1:]),)


def _gemm(attrs, a, b, c=None):
    a = a.t() if attrs.get("transA", 0) else a
    b = b.t() if attrs.get("transB", 0) else b
    y = attrs.get("alpha", 1.0) * (a @ b)
    if c is not None:
        y = y + attrs.get("beta", 1.0) * c
    return (y,)


def _transpose(attrs, x):
    perm = attrs.get("perm") or list(range(x.dim()))[::-1]
    return (x.permute(*perm),)


def _axes(attrs, given, name="axes"):
    """Axes from the input (newer opsets) or the attribute (older)."""
    if given is not None:
        return _ints(given)
    return attrs.get(name)


def _squeeze(attrs, x, axes=None):
    axes = _axes(attrs, axes)
    if not axes:
        return (x.reshape([d for d in x.shape if d != 1]),)
    axes = sorted({_axis(a, x.dim()) for a in axes})
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"Squeeze: axis {a} has size {x.shape[a]}, not 1")
    return (x.reshape([d for k, d in enumerate(x.shape) if k not in axes]),)


def _unsqueeze(attrs, x, axes=None):
    axes = _axes(attrs, axes)
    rank = x.dim() + len(axes)
    shape = list(x.shape)
    for a in sorted(_axis(a, rank) for a in axes):
        shape.insert(a, 1)
    return (x.reshape(shape),)


def _reshape(attrs, x, shape):
    want = _ints(shape)
    if not attrs.get("allowzero", 0):
        want = [x.shape[k] if d == 0 else d for k, d in enumerate(want)]   # 0 copies the input's dimension
    return (x.reshape(want),)


def _flatten(attrs, x):
    # Operators.md Flatten: axis in [-r, r], a negative one counting from the back (axis + r)
    axis = attrs.get("axis", 1)
    if not -x.dim() <= axis <= x.dim():
        raise ValueError(f"Flatten: axis {axis} is out of range for a tensor of rank {x.dim()}")
    axis = axis + x.dim() if axis < 0 else axis
    return (x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1),)


def _concat(attrs, *xs):
    return (torch.cat(xs, _axis(attrs["axis"], xs[0].dim())),)


def _slice_bound(v: int, dim: int, step: int, end: bool) -> int:
    # Operators.md Slice: negative values count from the end; clamped to [0, dim] for positive steps and
    # [0, dim - 1] (starts) / [-1, dim - 1] (ends) for negative steps
    if v < 0:
        v += dim
    if step > 0:
        return min(max(v, 0), dim)
    return min(max(v, -1 if end else 0), dim - 1)


def _slice(attrs, x, starts=None, ends=None, axes=None, steps=None):
    if attrs["__opset"] < 10:
        starts, ends, axes = attrs["starts"], attrs["ends"], attrs.get("axes")
    else:
        starts, ends = _ints(starts), _ints(ends)
        axes = _ints(axes) if axes is not None else None
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    axes = list(range(len(starts))) if axes is None else axes
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(axis, x.dim())
        dim = x.shape[axis]
        if step == 0:
            raise ValueError("Slice: a step of 0")
        s, e = _slice_bound(start, dim, step, False), _slice_bound(end, dim, step, True)
        index = torch.arange(s, e, step, device=x.device)
        x = x.index_select(axis, index)
    return (x,)


def _shape(attrs, x):
    dims = list(x.shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return (torch.tensor(dims[slice(start, end)], dtype=torch.int64, device=x.device),)


def _reduce(fn, axes_input_since: int):
    def run(attrs, x, axes=None):
        if attrs["__opset"] >= axes_input_since:
            axes = _ints(axes) if axes is not None else []
        else:
            axes = attrs.get("axes") or []
        keep = bool(attrs.get("keepdims", 1))
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return (x,)
            axes = list(range(x.dim()))
        dims = sorted({_axis(a, x.dim()) for a in axes})
        return (fn(x, dims, keep),)
    return run


def _reduce_max(x, dims, keep):
    for d in reversed(dims):
        x = x.amax(d, keepdim=keep) if keep else x.amax(d)
    return x


def _expand(attrs, x, shape):
    # numpy's two-way broadcast of the input against the shape (Operators.md Expand)
    return (x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape)))),)


def _constant_of_shape(attrs, shape, float_dtype):
    fill = attrs.get("value", {"value": 0.0, "dtype": "float32"})   # the operator's default: a float32 zero
    dtype = float_dtype if fill["dtype"].startswith("float") else getattr(torch, fill["dtype"])
    return (torch.full(_ints(shape), fill["value"], dtype=dtype, device=shape.device),)


def _dropout(attrs, x, ratio=None, training_mode=None):
    # inference: the output is the input; the mask (when asked for) is all true
    return x, torch.ones_like(x, dtype=torch.bool)


def _cast(attrs, x, float_dtype):
    name = ONNX_DTYPES[attrs["to"]]
    return (x.to(float_dtype if attrs["to"] in FLOAT_CODES else getattr(torch, name)),)


def _topk(attrs, x, k=None):
    """Operators.md TopK: the k largest (``largest=0``: smallest) along ``axis``, sorted, with their int64
    indices; "given two equivalent values ... the element with the lower index will appear first" (a stable
    sort). ``k`` is an attribute before opset 10, an input from 10; ``sorted=0`` (an order left undefined) is
    refused by the reader."""
    axis = _axis(attrs.get("axis", -1), x.dim())
    k = attrs["k"] if k is None else _ints(k)[0]
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"TopK: k={k} is outside [0, {x.shape[axis]}] for axis {axis}")
    values, indices = torch.sort(x, dim=axis, descending=bool(attrs.get("largest", 1)), stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


MAX_RANGE = 1 << 24


def _range(attrs, start, limit, delta):
    """Operators.md Range: max(ceil((limit - start) / delta), 0) values, each the previous plus delta (the
    operator's function body accumulates, as onnxruntime's range.cc does: for floating types that is not
    start + i * delta)."""
    a, b, d = (t.reshape(()).item() for t in (start, limit, delta))
    if d == 0:
        raise ValueError("Range: a delta of 0")
    n = max(int(np.ceil((b - a) / d)), 0)
    if n > MAX_RANGE:
        raise ValueError(f"Range: {n:,} values; the converted model makes at most {MAX_RANGE:,}")
    if not start.dtype.is_floating_point:
        return (torch.arange(a, a + n * d, d, dtype=start.dtype, device=start.device)[:n],)
    values = np.empty(n, dtype=str(start.dtype).removeprefix("torch."))
    value = values.dtype.type(a)
    for i in range(n):
        values[i] = value
        value = values.dtype.type(value + values.dtype.type(d))
    return (torch.from_numpy(values).to(start.device),)


def _reduce_prod(x, dims, keep):
    for d in reversed(dims):
        x = x.prod(d, keepdim=keep)
    return x


_SCATTER_REDUCTIONS = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter_elements(attrs, data, indices, updates):
    """Operators.md ScatterElements: ``output[indices[i][j]][j] = updates[i][j]`` along ``axis`` (negative
    indices count from the end); ``reduction`` (opset 16, 18) combines with the existing value. With
    reduction none and repeated indices the operator leaves the result undefined."""
    axis = _axis(attrs.get("axis", 0), data.dim())
    n = data.shape[axis]
    idx = torch.where(indices < 0, indices + n, indices).long()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"ScatterElements: an index is out of range for axis {axis} of size {n}")
    reduction = attrs.get("reduction", "none")
    if reduction == "none":
        return (data.scatter(axis, idx, updates),)
    return (data.scatter_reduce(axis, idx, updates, _SCATTER_REDUCTIONS[reduction], include_self=True),)


def _clip(attrs, x, lo=None, hi=None):
    """Operators.md Clip: before opset 11 the bounds are the attributes ``min`` / ``max``, defaulting (from 6)
    to float's ``numeric_limits::lowest()`` / ``max()`` (onnx's schema defaults, a float64 input clipped to
    them too); from 11 the optional inputs, an absent one no bound. ``min`` above ``max`` gives ``max``
    everywhere ("equivalent to Min(max, Max(input, min))"), as torch.clamp does."""
    if attrs["__opset"] < 11:
        lo, hi = attrs.get("min", -FLOAT32_MAX), attrs.get("max", FLOAT32_MAX)
    return (torch.clamp(x, lo, hi) if lo is not None or hi is not None else x,)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _variadic(fn):
    """Max, Min, Sum: the inputs combined left to right, broadcasting as numpy (Operators.md, from opset 8)."""
    def run(attrs, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return (out,)
    return run


def _mean(attrs, *xs):
    """Operators.md Mean: the sum of the inputs (left to right) divided by their count."""
    return (_variadic(torch.add)(attrs, *xs)[0] / len(xs),)


def _softplus(x: Tensor) -> Tensor:
    return torch.logaddexp(x, x.new_zeros(()))    # ln(exp(x) + 1) (Operators.md Softplus), without overflow


def _selu(attrs, x):
    # Operators.md Selu-6: gamma * (alpha * e^x - alpha) for x <= 0, gamma * x for x > 0, the defaults the
    # constants to float32 precision (Selu-1's other defaults are refused by the reader)
    alpha, gamma = attrs.get("alpha", SELU_DEFAULTS[0]), attrs.get("gamma", SELU_DEFAULTS[1])
    return (gamma * torch.where(x > 0, x, alpha * torch.exp(x) - alpha),)


SELU_DEFAULTS = (1.6732631921768188, 1.0507010221481323)


def _hard_sigmoid(attrs, x):
    # Operators.md HardSigmoid: max(0, min(1, alpha * x + beta))
    return (torch.clamp(attrs.get("alpha", 0.2) * x + attrs.get("beta", 0.5), 0, 1),)


def _erf(x: Tensor) -> Tensor:
    # Erf-9 takes integer tensors too (the result in the input's type, as onnx/reference/ops/op_erf.py casts)
    return torch.erf(x) if x.dtype.is_floating_point else torch.erf(x.double()).to(x.dtype)


def split_sizes(attrs, dim: int) -> List[int]:
    """The parts of a Split without sizes (Operators.md Split): ``num_outputs`` (opset 18) parts of
    ceil(dim / n), the last one smaller; before 18, one equal part per output (onnxruntime refuses a dimension
    that does not divide)."""
    n = attrs.get("num_outputs", attrs["__outputs"])
    if "num_outputs" in attrs:
        part = -(-dim // n)
        sizes = [part] * (n - 1) + [dim - part * (n - 1)]
        if sizes[-1] < 0:
            raise ValueError(f"Split: a dimension of {dim} does not make {n} parts of {part}")
        return sizes
    if dim % n:
        raise ValueError(f"Split: a dimension of {dim} does not split into {n} equal parts")
    return [dim // n] * n


def _split(attrs, x, split=None):
    """Operators.md Split: along ``axis`` (default 0), into the sizes of ``split`` (an attribute before opset
    13, an input from 13; opset 1 takes either) or else equal parts (:func:`split_sizes`)."""
    axis = _axis(attrs.get("axis", 0), x.dim())
    sizes = attrs.get("split") if split is None else _ints(split)
    if sizes is None:
        sizes = split_sizes(attrs, x.shape[axis])
    if len(sizes) != attrs["__outputs"] or any(s < 0 for s in sizes) or sum(sizes) != x.shape[axis]:
        raise ValueError(f"Split: parts {sizes} for {attrs['__outputs']} outputs of a dimension of {x.shape[axis]}")
    return tuple(torch.split(x, sizes, axis))


def _arg(fn):
    """ArgMax / ArgMin (Operators.md): int64 indices along ``axis`` (default 0), ``keepdims`` (default 1); of
    equal values the first, or with ``select_last_index`` (opset 12) the last."""
    def run(attrs, x):
        axis = _axis(attrs.get("axis", 0), x.dim())
        keep = bool(attrs.get("keepdims", 1))
        if attrs.get("select_last_index", 0):
            return (x.shape[axis] - 1 - fn(x.flip(axis), axis, keepdim=keep),)
        return (fn(x, axis, keepdim=keep),)
    return run


def _tile(attrs, x, repeats):
    """Operators.md Tile (opset 6): numpy.tile without broadcasting, one repeat count per axis."""
    reps = _ints(repeats)
    if len(reps) != x.dim() or any(r < 0 for r in reps):
        raise ValueError(f"Tile: repeats {reps} for a tensor of rank {x.dim()}")
    return (x.repeat(*reps) if reps else x,)


def _reduce_min(x, dims, keep):
    for d in reversed(dims):
        x = x.amin(d, keepdim=keep) if keep else x.amin(d)
    return x


def _reduce_l2(x, dims, keep):
    # Operators.md ReduceL2: sqrt(sum(x^2)); an integer input's result in its type (as
    # onnx/reference/ops/op_reduce_l2.py casts it)
    return torch.sqrt(torch.sum(x * x, dims, keepdim=keep)).to(x.dtype)


def _reduce_log_sum_exp(x, dims, keep):
    # Operators.md ReduceLogSumExp: log(sum(exp(x))) (torch's without overflow); an integer input's in its type
    return torch.logsumexp(x, dims, keepdim=keep).to(x.dtype)


OPS: Dict[str, Callable[..., Tuple[Tensor, ...]]] = {
    "Identity": lambda attrs, x: (x,),
    "Add": _binary(torch.add), "Sub": _binary(torch.sub), "Mul": _binary(torch.mul), "Div": _binary(_div),
    "Pow": _binary(torch.pow),
    "MatMul": _binary(torch.matmul),
    "Gemm": _gemm,
    "Gather": _gather,
    "Tanh": _unary(torch.tanh), "Sigmoid": _unary(torch.sigmoid), "Relu": _unary(torch.relu),
    "Exp": _unary(torch.exp), "Log": _unary(torch.log), "Neg": _unary(torch.neg), "Sqrt": _unary(torch.sqrt),
    "Abs": _unary(torch.abs), "Reciprocal": _unary(torch.reciprocal),
    "LeakyRelu": lambda attrs, x: (torch.nn.functional.leaky_relu(x, attrs.get("alpha", 0.01)),),
    "Softmax": _softmax(torch.softmax), "LogSoftmax": _softmax(torch.log_softmax),
    "Transpose": _transpose,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Reshape": _reshape, "Flatten": _flatten,
    "Concat": _concat, "Slice": _slice, "Shape": _shape,
    "ReduceMean": _reduce(lambda x, d, k: x.mean(d, keepdim=k), 18),
    "ReduceSum": _reduce(lambda x, d, k: x.sum(d, keepdim=k), 13),
    "ReduceMax": _reduce(_reduce_max, 18),
    "ReduceProd": _reduce(_reduce_prod, 18),
    "TopK": _topk, "Range": _range, "ScatterElements": _scatter_elements,
    "Dropout": _dropout,
    "Expand": _expand,
    "Cast": _cast, "ConstantOfShape": _constant_of_shape,    # these two take the model's float dtype
    # comparisons and logic (bool results; Operators.md Equal, Less, ... from opset 7 with numpy broadcasting)
    "Equal": _binary(torch.eq), "Less": _binary(torch.lt), "Greater": _binary(torch.gt),
    "LessOrEqual": _binary(torch.le), "GreaterOrEqual": _binary(torch.ge),
    "Not": _unary(torch.logical_not), "And": _binary(torch.logical_and), "Or": _binary(torch.logical_or),
    "Where": lambda attrs, c, x, y: (torch.where(c, x, y),),
    "Clip": _clip, "Max": _variadic(torch.maximum), "Min": _variadic(torch.minimum), "Sum": _variadic(torch.add),
    "Mean": _mean,
    "Softplus": _unary(_softplus), "Softsign": _unary(lambda x: x / (1 + torch.abs(x))),
    "Elu": lambda attrs, x: (torch.nn.functional.elu(x, attrs.get("alpha", 1.0)),),
    "Selu": _selu, "HardSigmoid": _hard_sigmoid, "Erf": _unary(_erf), "Sign": _unary(torch.sign),
    "Floor": _unary(torch.floor), "Ceil": _unary(torch.ceil),
    "Split": _split, "ArgMax": _arg(torch.argmax), "ArgMin": _arg(torch.argmin), "Tile": _tile,
    "ReduceMin": _reduce(_reduce_min, 18), "ReduceL2": _reduce(_reduce_l2, 18),
    "ReduceLogSumExp": _reduce(_reduce_log_sum_exp, 18),
}


# ------------------------------------------------------------------------------------------------ nodes
def inline_tensor(slot: dict, float_dtype: torch.dtype, device=None) -> Tensor:
    """A constant stored in a node's configuration: ``{"value": nested list, "dtype": name, "shape": [...]}``."""
    dtype = float_dtype if slot["dtype"].startswith("float") else getattr(torch, slot["dtype"])
    return torch.tensor(np.asarray(slot["value"], dtype=slot["dtype"]).reshape(slot["shape"]), dtype=dtype,
                        device=device)


class OnnxNode(nn.Module):
    """One ONNX node of a converted graph (see the module docstring): ``forward(runtime_inputs=())``."""

    def __init__(self, config: dict):
        super().__init__()
        self.op, self.opset = config["op"], config["opset"]
        self.attributes = dict(config["attributes"], __opset=config["opset"], __outputs=config["outputs"])
        self.slots: List[Any] = list(config["inputs"])
        self.outputs = config["outputs"]
        for slot in self.slots:
            if isinstance(slot, dict) and "tensor" in slot:
                self.register_buffer(slot["tensor"], torch.zeros(slot["shape"], dtype=getattr(torch, slot["dtype"])))
        # the model's floating-point dtype (a Cast to a floating type casts to it; moves with .to(dtype))
        self.register_buffer("float_dtype_probe", torch.zeros(0), persistent=False)
        self._made: Dict[tuple, Tensor] = {}

    def forward(self, runtime: Sequence[Tensor] = ()) -> Tuple[Tensor, ...]:
        runtime = list(runtime)
        args: List[Optional[Tensor]] = []
        float_dtype = self.float_dtype_probe.dtype
        for k, slot in enumerate(self.slots):
            if slot is None:
                args.append(None)
            elif slot == "x":
                args.append(runtime.pop(0))
            elif "tensor" in slot:
                args.append(getattr(self, slot["tensor"]))
            else:
                args.append(self._constant(k, float_dtype))
        while args and args[-1] is None:
            args.pop()
        if self.op in ("Cast", "ConstantOfShape"):
            out = OPS[self.op](self.attributes, args[0], float_dtype)
        else:
            out = OPS[self.op](self.attributes, *args)
        return tuple(out[:self.outputs])

    def _constant(self, k: int, float_dtype: torch.dtype) -> Tensor:
        """Inline constant ``k`` as a tensor, made once per dtype and device (the slot's value never changes)."""
        key = (k, float_dtype, self.float_dtype_probe.device)
        if key not in self._made:
            self._made[key] = inline_tensor(self.slots[k], float_dtype, self.float_dtype_probe.device)
        return self._made[key]

    def extra_repr(self) -> str:
        shown = {k: v for k, v in self.attributes.items() if not k.startswith("__")}
        return f"{self.op} (opset {self.opset}){', ' + str(shown) if shown else ''}"


# ONNX's recurrent operators: their inputs after the weights, and their outputs (Operators.md LSTM, GRU, RNN)
RECURRENT_INPUTS = {"LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
                    "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
                    "RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h")}
RECURRENT_OUTPUTS = {"LSTM": 3, "GRU": 2, "RNN": 2}
WEIGHT_ROLES = ("W", "R", "B", "P")


class RecurrentNode(nn.Module):
    """An ONNX ``LSTM`` / ``GRU`` / ``RNN`` node around the converted recurrent module ``rnn``.

    ``forward(runtime_inputs)`` takes X and whichever of ``sequence_lens``, ``initial_h``, ``initial_c`` the
    node reads at run time, and returns ``(Y, Y_h[, Y_c])`` in ONNX's layouts: ``Y`` is ``[T, directions, B,
    H]`` (``[B, T, directions, H]`` with ``layout=1``), the states ``[directions, B, H]`` (``[B, directions,
    H]``). The module's own output is ``[T, B, directions * H]`` (batch-first with ``layout=1``) and its
    states ``[directions, B, H]`` (:mod:`compat.convert.modules`).
    """

    def __init__(self, config: dict, rnn: Optional[nn.Module]):
        super().__init__()
        self.op, self.layout, self.directions = config["op"], config["layout"], config["directions"]
        self.slots = list(config["inputs"])
        self.outputs = RECURRENT_OUTPUTS[self.op]
        self.register_buffer("float_dtype_probe", torch.zeros(0), persistent=False)
        if rnn is not None:
            self.rnn = rnn

    def forward(self, runtime: Sequence[Tensor] = ()) -> Tuple[Tensor, ...]:
        runtime = list(runtime)
        given: Dict[str, Tensor] = {}
        for role, slot in zip(RECURRENT_INPUTS[self.op], self.slots):
            if slot == "x":
                given[role] = runtime.pop(0)
            elif isinstance(slot, dict):
                given[role] = inline_tensor(slot, self.float_dtype_probe.dtype, self.float_dtype_probe.device)
        x = given["X"]
        batch = x.shape[0] if self.layout else x.shape[1]
        hidden = self.rnn.hidden_size
        states = []
        for role in ("initial_h", "initial_c")[:self.outputs - 1]:
            s = given.get(role)
            if s is not None and self.layout:
                s = s.transpose(0, 1)          # ONNX layout=1: [B, directions, H]
            states.append(s)
        hx = None
        if any(s is not None for s in states):
            zeros = x.new_zeros(self.directions, batch, hidden)
            hx = tuple(zeros if s is None else s.to(x.dtype) for s in states)
            hx = hx if self.op == "LSTM" else hx[0]
        lengths = given.get("sequence_lens")
        if lengths is not None:
            y, state = self.rnn(x, hx, lengths=lengths)
        else:
            y, state = self.rnn(x, hx)
        state = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        if self.layout:
            B, T = y.shape[:2]
            Y = y.reshape(B, T, self.directions, hidden)
            state = tuple(s.transpose(0, 1) for s in state)
        else:
            T, B = y.shape[:2]
            Y = y.reshape(T, B, self.directions, hidden).transpose(1, 2)
        return (Y, *state)
