"""The nodes of a whole ONNX model as Python (``--emit-python``, :mod:`compat.convert.emit`).

Each operator node is one statement of torch functions computing what :data:`compat.frameworks.onnx.ops.OPS`
computes, with what the conversion decided baked in as literals: the opset's semantics (``Softmax`` before 13
flattens to 2-D at ``axis``; axes as attributes or inputs), the attributes, and every constant stored in the
node's configuration (integer and boolean constants: shapes, axes, indices, ``Slice`` bounds) written as Python
numbers or ``torch.tensor`` literals. A floating-point constant (an initializer: a ``MatMul`` / ``Gemm``
weight, an ``Add`` bias, an embedding table read by ``Gather``, a ``Where``'s constant -inf) is a buffer of the
model loaded from the tensor file by name (±inf where the node kind declares it a constant of the graph,
:data:`compat.frameworks.onnx.layers.INFINITE_INPUTS`). A recurrent node (``LSTM``, ``GRU``, ``RNN``) is the
converted recurrent module's constructor (:func:`compat.convert.emit._recurrent_source`) and the few lines of
:class:`compat.frameworks.onnx.ops.RecurrentNode` that put ONNX's layouts around it.

What one statement cannot say without Python that depends on the values flowing through the model is refused
by node with :class:`compat.convert.emit.EmitError`: a floating-point ``Range`` (onnxruntime accumulates it
value by value), and the operators whose shape, axes or bounds arrive at run time where the operator reads each
value (``Reshape`` without ``allowzero``, ``Slice``, ``Squeeze``, ``Unsqueeze``, the reductions). The
converted model itself (``compat.convert.load``) runs all of them.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from compat.convert.graph import Emitted, emitted
from compat.frameworks.onnx.ops import RECURRENT_INPUTS, RECURRENT_OUTPUTS

UNARY = {"Tanh": "torch.tanh", "Sigmoid": "torch.sigmoid", "Relu": "torch.relu", "Exp": "torch.exp",
         "Log": "torch.log", "Neg": "torch.neg", "Sqrt": "torch.sqrt", "Abs": "torch.abs",
         "Reciprocal": "torch.reciprocal", "Not": "torch.logical_not", "Sign": "torch.sign", "Floor": "torch.floor",
         "Ceil": "torch.ceil"}
BINARY = {"Add": "{} + {}", "Sub": "{} - {}", "Mul": "{} * {}", "Pow": "torch.pow({}, {})", "MatMul": "{} @ {}",
          "Equal": "torch.eq({}, {})", "Less": "torch.lt({}, {})", "Greater": "torch.gt({}, {})",
          "LessOrEqual": "torch.le({}, {})", "GreaterOrEqual": "torch.ge({}, {})",
          "And": "torch.logical_and({}, {})", "Or": "torch.logical_or({}, {})"}
VARIADIC = {"Max": "torch.maximum({}, {})", "Min": "torch.minimum({}, {})", "Sum": "{} + {}", "Mean": "{} + {}"}
_SCATTER_REDUCTIONS = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _error(message: str):
    from compat.convert.emit import EmitError

    return EmitError(message)


def _number(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def _nested(value):
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return _number(value)


def _values(slot: dict):
    """An inline constant's values as nested Python lists (a number for a 0-d constant)."""
    return np.asarray(slot["value"], dtype=slot["dtype"]).reshape(slot["shape"]).tolist()


def _ints(slot: dict) -> List[int]:
    return [int(v) for v in np.asarray(slot["value"]).reshape(-1)]


def _tensor(slot: dict, device: Optional[str], dtype: Optional[str] = None) -> str:
    """An inline constant as a ``torch.tensor`` literal (``dtype``: an expression of its floating type)."""
    where = f", device={device}.device" if device else ""
    kind = dtype if slot["dtype"].startswith("float") and dtype else f"torch.{slot['dtype']}"
    return f"torch.tensor({_nested(_values(slot))}, dtype={kind}{where})"


class _Inputs:
    """A node's inputs in the operator's positional order: each a Python expression (or None) and whether it
    is a run-time value, a buffer (a floating-point constant) or a constant stored inline."""

    def __init__(self, config: dict, e):
        runtime = e.items(0) if e.args else []
        self.slots = list(config["inputs"])
        self.exprs: List[Optional[str]] = []
        self.device = runtime[0] if runtime else None    # a run-time input: where new tensors are made
        for k, slot in enumerate(self.slots):
            if slot is None:
                self.exprs.append(None)
            elif slot == "x":
                self.exprs.append(runtime.pop(0))
            elif "tensor" in slot:
                self.exprs.append(e.buffer(slot["tensor"]))
            else:
                self.exprs.append(None)     # an inline constant: each operator writes it as it reads it

    def __len__(self):
        return len(self.slots)

    def given(self, k: int) -> bool:
        return k < len(self.slots) and self.slots[k] is not None

    def inline(self, k: int) -> Optional[dict]:
        slot = self.slots[k] if k < len(self.slots) else None
        return slot if isinstance(slot, dict) and "value" in slot else None

    def tensor(self, k: int) -> str:
        """Input ``k`` as a tensor expression."""
        inline = self.inline(k)
        return _tensor(inline, self.device) if inline is not None else self.exprs[k]

    def float_kind(self, k: int) -> Optional[bool]:
        """Whether input ``k`` is floating point, where the conversion knows (a constant); None at run time."""
        slot = self.slots[k]
        return None if slot == "x" else slot["dtype"].startswith("float")


def _axis_list(op: str, config: dict, inputs: _Inputs, k: int, since: int) -> Optional[List[int]]:
    """The axes of a node: its attribute before opset ``since``, its constant input ``k`` from it (refused
    where the input arrives at run time)."""
    if config["opset"] < since:
        return config["attributes"].get("axes")
    if not inputs.given(k):
        return None
    if inputs.inline(k) is None:
        raise _error(f"{op} with its axes a run-time input: the axes decide the statement")
    return _ints(inputs.inline(k))


def _shape_tail(x: str, axis: int) -> str:
    """``x.shape[axis + 1:]`` with Python's slicing of a negative axis spelled out."""
    return "" if axis == -1 else f" + {x}.shape[{axis + 1}:]"


def _gather(config, i: _Inputs) -> str:
    axis = config["attributes"].get("axis", 0)
    data = i.tensor(0)
    lead = ":, " * axis if axis >= 0 else ""
    trail = ", :" * (-axis - 1) if axis < 0 else ""
    dots = "..., " if axis < 0 else ""
    inline = i.inline(1)
    if inline is not None and not inline["shape"]:
        return f"{data}[{lead}{dots}{int(_values(inline))}{trail}]  # Gather axis {axis}: index {int(_values(inline))}"
    index = i.tensor(1) if inline is not None else f"{i.exprs[1]}.long()"
    return f"{data}[{lead}{dots}{index}{trail}]  # Gather axis {axis} (negative indices count from the end)"


def _gemm(config, i: _Inputs) -> str:
    a = config["attributes"]
    x, w = i.tensor(0), i.tensor(1)
    x = f"{x}.t()" if a.get("transA", 0) else x
    w = f"{w}.t()" if a.get("transB", 0) else w
    y = f"({x} @ {w})"
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    y = f"{_number(alpha)} * {y}" if alpha != 1.0 else y[1:-1]
    if i.given(2):
        c = i.tensor(2)
        y += f" + {_number(beta)} * {c}" if beta != 1.0 else f" + {c}"
    return y


def _softmax(config, i: _Inputs, fn: str) -> str:
    x = i.tensor(0)
    if config["opset"] >= 13:
        return f"{fn}({x}, {config['attributes'].get('axis', -1)})"
    axis = config["attributes"].get("axis", 1)
    # before opset 13 the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])] (Operators.md
    # Softmax-1 / -11)
    return (f"{fn}({x}.reshape({x}.shape[:{axis}].numel(), -1), 1).reshape({x}.shape)  # opset {config['opset']}: "
            f"over the axes from {axis} as one")


def _reshape(config, i: _Inputs) -> str:
    x = i.tensor(0)
    inline = i.inline(1)
    allowzero = config["attributes"].get("allowzero", 0)
    if inline is None:
        if not allowzero:
            raise _error("Reshape of a run-time shape without allowzero: a 0 in the shape copies the input's "
                         "dimension, decided value by value")
        return f"{x}.reshape({i.exprs[1]}.tolist())"
    dims = _ints(inline)
    shape = [f"{x}.shape[{k}]" if d == 0 and not allowzero else str(d) for k, d in enumerate(dims)]
    return f"{x}.reshape({', '.join(shape)}{',' if len(shape) == 1 else ''})" if shape else f"{x}.reshape(())"


def _flatten(config, i: _Inputs) -> str:
    x = i.tensor(0)
    axis = config["attributes"].get("axis", 1)
    return f"{x}.reshape({x}.shape[:{axis}].numel(), -1)"   # [prod(shape[:axis]), prod(shape[axis:])]


def _slice(config, i: _Inputs) -> str:
    x = i.tensor(0)
    if config["opset"] < 10:
        a = config["attributes"]
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        bounds = []
        for k in range(1, 5):
            if i.given(k) and i.inline(k) is None:
                raise _error("Slice with a run-time start, end, axis or step: its bounds are clamped value by value")
            bounds.append(_ints(i.inline(k)) if i.given(k) else None)
        starts, ends, axes, steps = bounds
    steps = steps or [1] * len(starts)
    axes = list(range(len(starts))) if axes is None else axes
    if any(s == 0 for s in steps):
        raise _error("Slice with a step of 0")
    out = x
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if step > 0:     # Python's slicing clamps as Operators.md Slice does
            span = _slice_text(start, end, step)
            out += f"[{':, ' * axis}{span}]" if axis >= 0 else f"[..., {span}{', :' * (-axis - 1)}]"
            continue
        # a negative step: start clamped to [0, dim - 1], end to [-1, dim - 1] (ops._slice_bound)
        n = f"{x}.shape[{axis}]"
        s = f"min(max({start} + {n}, 0), {n} - 1)" if start < 0 else f"min({start}, {n} - 1)"
        e = f"min(max({end} + {n}, -1), {n} - 1)" if end < 0 else f"min({end}, {n} - 1)"
        out = f"{out}.index_select({axis}, torch.arange({s}, {e}, {step}, device={x}.device))"
    return out


def _slice_text(start: int, end: int, step: int) -> str:
    big = 1 << 62
    s = "" if start == 0 else str(start)
    e = "" if end >= big else str(end)
    return f"{s}:{e}" + ("" if step == 1 else f":{step}")


def _squeeze(config, i: _Inputs) -> str:
    axes = _axis_list("Squeeze", config, i, 1, 13)
    x = i.tensor(0)
    if not axes:
        return f"{x}.squeeze()"
    return f"{x}.squeeze({tuple(axes)!r})"


def _unsqueeze(config, i: _Inputs) -> str:
    axes = _axis_list("Unsqueeze", config, i, 1, 13) or []
    x = i.tensor(0)
    if all(a >= 0 for a in axes):
        return x + "".join(f".unsqueeze({a})" for a in sorted(axes))
    if all(a < 0 for a in axes):
        n = len(axes)    # each insertion counted from the end of the tensor it is made in
        return x + "".join(f".unsqueeze({a + n - k})" for k, a in enumerate(sorted(axes), start=1))
    raise _error(f"Unsqueeze with axes {axes} of both signs: their order depends on the input's rank")


def _reduce(config, i: _Inputs, op: str, since: int) -> str:
    a = config["attributes"]
    x = i.tensor(0)
    keep = bool(a.get("keepdims", 1))
    prod = "functools.reduce(lambda t, d: t.prod(d, keepdim={}), {}, {})"    # one axis at a time, the last first
    if config["opset"] >= since and i.given(1) and i.inline(1) is None:      # the axes a run-time input
        if a.get("noop_with_empty_axes", 0):
            raise _error(f"{op} with run-time axes and noop_with_empty_axes: whether it reduces depends on them")
        dims = f"sorted({{d % {x}.dim() for d in {i.exprs[1]}.tolist()}} or range({x}.dim()))"
        if op == "ReduceProd":
            return prod.format(keep, f"reversed({dims})", x) + "  # its axes, or every axis where none"
        return f"{_reduced(op, x, dims, keep)}  # its axes, or every axis where none"
    axes = _axis_list(op, config, i, 1, since) or []
    if not axes and a.get("noop_with_empty_axes", 0):
        return f"{x}  # {op} with no axes and noop_with_empty_axes"
    dims = f"list(range({x}.dim()))" if not axes else repr(sorted(set(axes)))
    if op != "ReduceProd":
        return _reduced(op, x, dims, keep)
    if len(axes) == 1:
        return f"{x}.prod({axes[0]}, keepdim={keep})"
    order = f"reversed(range({x}.dim()))" if not axes else \
        f"sorted({{d % {x}.dim() for d in {sorted(set(axes))!r}}}, reverse=True)"
    return prod.format(keep, order, x)


_REDUCTIONS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin"}


def _reduced(op: str, x: str, dims: str, keep: bool) -> str:
    """ReduceMean / Sum / Max / Min as a method; ReduceL2 and ReduceLogSumExp as ops._reduce_l2 and
    ops._reduce_log_sum_exp compute them."""
    if op == "ReduceL2":
        return f"torch.sqrt(torch.sum({x} * {x}, {dims}, keepdim={keep})).to({x}.dtype)"
    if op == "ReduceLogSumExp":
        return f"torch.logsumexp({x}, {dims}, keepdim={keep}).to({x}.dtype)"
    return f"{x}.{_REDUCTIONS[op]}({dims}, keepdim={keep})"


def _topk(config, i: _Inputs, outs: List[str]) -> str:
    a = config["attributes"]
    axis = a.get("axis", -1)
    if "k" in a and not i.given(1):
        k = str(a["k"])
    elif i.inline(1) is not None:
        k = str(_ints(i.inline(1))[0])
    else:
        k = f"int({i.exprs[1]})"
    descending = bool(a.get("largest", 1))
    sort = f"torch.sort({i.tensor(0)}, dim={axis}, descending={descending}, stable=True)"
    if len(outs) == 1:
        return f"{outs[0]} = {sort}[0].narrow({axis}, 0, {k})"
    return f"{', '.join(outs)} = (t.narrow({axis}, 0, {k}) for t in {sort})  # TopK: ties keep the lower index first"


def _range(config, i: _Inputs) -> str:
    start, delta = i.inline(0), i.inline(2)
    if start is None or delta is None or start["dtype"].startswith("float"):
        raise _error("Range whose start or delta is a run-time value or floating point: onnxruntime accumulates "
                     "a floating-point Range value by value")
    a, d = int(_values(start)), int(_values(delta))
    if d == 0:
        raise _error("Range with a delta of 0")
    limit = str(int(_values(i.inline(1)))) if i.inline(1) is not None else f"int({i.exprs[1]})"
    bound = f"max({limit}, {a})" if d > 0 else f"min({limit}, {a})"
    device = f", device={i.device}.device" if i.device else ""
    return f"torch.arange({a}, {bound}, {d}, dtype=torch.{start['dtype']}{device})"


def _scatter(config, i: _Inputs) -> str:
    a = config["attributes"]
    axis = a.get("axis", 0)
    data, idx, updates = i.tensor(0), i.tensor(1), i.tensor(2)
    index = f"torch.where({idx} < 0, {idx} + {data}.shape[{axis}], {idx}).long()"
    reduction = a.get("reduction", "none")
    if reduction == "none":
        return f"{data}.scatter({axis}, {index}, {updates})"
    return (f"{data}.scatter_reduce({axis}, {index}, {updates}, {_SCATTER_REDUCTIONS[reduction]!r}, "
            "include_self=True)")


def _cast(config, i: _Inputs, e) -> str:
    from compat.frameworks.onnx.ops import FLOAT_CODES, ONNX_DTYPES

    to = config["attributes"]["to"]
    dtype = e.float_dtype() if to in FLOAT_CODES else f"torch.{ONNX_DTYPES[to]}"
    return f"{i.tensor(0)}.to({dtype})"


def _constant_of_shape(config, i: _Inputs, e) -> str:
    fill = config["attributes"].get("value", {"value": 0.0, "dtype": "float32"})
    dtype = e.float_dtype() if fill["dtype"].startswith("float") else f"torch.{fill['dtype']}"
    inline = i.inline(0)
    shape = repr(_ints(inline)) if inline is not None else f"{i.exprs[0]}.tolist()"
    device = f", device={i.device}.device" if i.device else ""
    return f"torch.full({shape}, {_number(fill['value'])}, dtype={dtype}{device})"


def _expand(config, i: _Inputs) -> str:
    x = i.tensor(0)
    inline = i.inline(1)
    shape = repr(tuple(_ints(inline))) if inline is not None else f"tuple({i.exprs[1]}.tolist())"
    return f"{x}.expand(torch.broadcast_shapes({x}.shape, {shape}))"


def _shape(config, i: _Inputs) -> str:
    a = config["attributes"]
    x = i.tensor(0)
    part = f"[{a['start'] if a.get('start') else ''}:{a['end'] if 'end' in a else ''}]" if {"start", "end"} & set(a) \
        else ""
    return f"torch.tensor({x}.shape{part}, dtype=torch.int64, device={x}.device)"


def _clip(config, i: _Inputs) -> str:
    from compat.frameworks.onnx.ops import FLOAT32_MAX

    x = i.tensor(0)
    if config["opset"] < 11:     # the attributes, float's lowest / max where absent (Operators.md Clip-6)
        a = config["attributes"]
        return f"torch.clamp({x}, {_number(a.get('min', -FLOAT32_MAX))}, {_number(a.get('max', FLOAT32_MAX))})"
    lo, hi = (i.tensor(k) if i.given(k) else "None" for k in (1, 2))
    return f"torch.clamp({x}, {lo}, {hi})" if (lo, hi) != ("None", "None") else f"{x}  # Clip without bounds"


def _variadic(op: str, i: _Inputs) -> str:
    """Max, Min, Sum, Mean: the inputs combined left to right (as ops._variadic), Mean divided by their count."""
    y = i.tensor(0)
    for k in range(1, len(i)):
        y = VARIADIC[op].format(y, i.tensor(k))
    return f"({y}) / {len(i)}" if op == "Mean" else y


def _activation(op: str, config, i: _Inputs) -> str:
    from compat.frameworks.onnx.ops import SELU_DEFAULTS

    a, x = config["attributes"], i.tensor(0)
    if op == "Softplus":
        return f"torch.logaddexp({x}, {x}.new_zeros(()))  # ln(exp(x) + 1)"
    if op == "Softsign":
        return f"{x} / (1 + torch.abs({x}))"
    if op == "Elu":
        return f"F.elu({x}, {_number(a.get('alpha', 1.0))})"
    if op == "Selu":
        alpha, gamma = _number(a.get("alpha", SELU_DEFAULTS[0])), _number(a.get("gamma", SELU_DEFAULTS[1]))
        return f"{gamma} * torch.where({x} > 0, {x}, {alpha} * torch.exp({x}) - {alpha})"
    if op == "HardSigmoid":
        return f"torch.clamp({_number(a.get('alpha', 0.2))} * {x} + {_number(a.get('beta', 0.5))}, 0, 1)"
    # Erf: an integer input's result in its type (ops._erf)
    return f"torch.erf({x}) if {x}.is_floating_point() else torch.erf({x}.double()).to({x}.dtype)"


def _split(config, i: _Inputs, outs: List[str]) -> str:
    a = config["attributes"]
    axis = a.get("axis", 0)
    x = i.tensor(0)
    n = config["outputs"]
    if "split" in a:
        sizes = repr(list(a["split"]))
    elif i.given(1):
        sizes = repr(_ints(i.inline(1))) if i.inline(1) is not None else f"{i.exprs[1]}.tolist()"
    elif "num_outputs" in a:      # parts of ceil(dim / n), the last one smaller (ops.split_sizes)
        dim = f"{x}.shape[{axis}]"
        part = f"-(-{dim} // {n})"
        sizes = f"[{part}] * {n - 1} + [{dim} - {n - 1} * {part}]"
    else:                          # equal parts (torch.split refuses sizes that do not add up to the dimension)
        sizes = f"[{x}.shape[{axis}] // {n}] * {n}"
    return f"{', '.join(outs)}{',' if len(outs) == 1 else ''} = torch.split({x}, {sizes}, {axis})"


def _arg(op: str, config, i: _Inputs) -> str:
    a = config["attributes"]
    axis, keep, fn = a.get("axis", 0), bool(a.get("keepdims", 1)), f"torch.{op.lower()}"
    x = i.tensor(0)
    if a.get("select_last_index", 0):
        return f"{x}.shape[{axis}] - 1 - {fn}({x}.flip({axis}), {axis}, keepdim={keep})  # the last of equal values"
    return f"{fn}({x}, {axis}, keepdim={keep})"


def _tile(config, i: _Inputs) -> str:
    inline = i.inline(1)
    reps = repr(_ints(inline)) if inline is not None else f"{i.exprs[1]}.tolist()"
    return f"{i.tensor(0)}.repeat({reps})"


def _div(i: _Inputs) -> str:
    a, b = i.tensor(0), i.tensor(1)
    kinds = (i.float_kind(0), i.float_kind(1))
    if True in kinds:
        return f"{a} / {b}"
    if kinds == (False, False):
        return f"torch.div({a}, {b}, rounding_mode='trunc')"
    # integer Div truncates (onnxruntime, C++ division); the conversion does not know the run-time dtype
    return (f"{a} / {b} if {a}.is_floating_point() or {b}.is_floating_point() else "
            f"torch.div({a}, {b}, rounding_mode='trunc')")


def emit_op(config: dict, e) -> Emitted:
    """One operator node as one statement (see the module docstring)."""
    op = config["op"]
    i = _Inputs(config, e)
    outs = e.outs
    imports: tuple = ()
    if op == "TopK":
        return emitted(None, [_topk(config, i, outs)])
    if op == "Split":
        return emitted(None, [_split(config, i, outs)])
    if op == "Dropout":
        line = f"{outs[0]} = {i.tensor(0)}  # Dropout: the identity at inference"
        if len(outs) > 1:
            line = (f"{outs[0]}, {outs[1]} = {i.tensor(0)}, torch.ones_like({i.tensor(0)}, dtype=torch.bool)"
                    "  # Dropout at inference: the input, and an all-true mask")
        return emitted(None, [line])
    if op == "Identity":
        y = i.tensor(0)
    elif op in UNARY:
        y = f"{UNARY[op]}({i.tensor(0)})"
    elif op in BINARY:
        y = BINARY[op].format(i.tensor(0), i.tensor(1))
    elif op == "Div":
        y = _div(i)
    elif op == "LeakyRelu":
        y = f"F.leaky_relu({i.tensor(0)}, {_number(config['attributes'].get('alpha', 0.01))})"
    elif op == "Gemm":
        y = _gemm(config, i)
    elif op == "Gather":
        y = _gather(config, i)
    elif op in ("Softmax", "LogSoftmax"):
        y = _softmax(config, i, "torch.softmax" if op == "Softmax" else "torch.log_softmax")
    elif op == "Transpose":
        perm = config["attributes"].get("perm")
        y = f"{i.tensor(0)}.permute({', '.join(map(str, perm))})" if perm else \
            f"{i.tensor(0)}.permute(*reversed(range({i.tensor(0)}.dim())))"
    elif op == "Squeeze":
        y = _squeeze(config, i)
    elif op == "Unsqueeze":
        y = _unsqueeze(config, i)
    elif op == "Reshape":
        y = _reshape(config, i)
    elif op == "Flatten":
        y = _flatten(config, i)
    elif op == "Concat":
        y = f"torch.cat([{', '.join(i.tensor(k) for k in range(len(i)))}], {config['attributes']['axis']})"
    elif op == "Slice":
        y = _slice(config, i)
    elif op == "Shape":
        y = _shape(config, i)
    elif op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceProd", "ReduceMin", "ReduceL2", "ReduceLogSumExp"):
        y = _reduce(config, i, op, {"ReduceSum": 13}.get(op, 18))
        imports = ("import functools",) if y.startswith("functools.") else ()
    elif op == "Range":
        y = _range(config, i)
    elif op == "ScatterElements":
        y = _scatter(config, i)
    elif op == "Cast":
        y = _cast(config, i, e)
    elif op == "ConstantOfShape":
        y = _constant_of_shape(config, i, e)
    elif op == "Expand":
        y = _expand(config, i)
    elif op == "Where":
        y = f"torch.where({i.tensor(0)}, {i.tensor(1)}, {i.tensor(2)})"
    elif op == "Clip":
        y = _clip(config, i)
    elif op in VARIADIC:
        y = _variadic(op, i)
    elif op in ("Softplus", "Softsign", "Elu", "Selu", "HardSigmoid", "Erf"):
        y = _activation(op, config, i)
    elif op in ("ArgMax", "ArgMin"):
        y = _arg(op, config, i)
    elif op == "Tile":
        y = _tile(config, i)
    else:
        raise _error(f"the operator {op!r} has no Python form")
    return emitted(None, [f"{outs[0]} = {y}"], imports=imports)


def emit_recurrent(config: dict, e) -> Emitted:
    """An LSTM / GRU / RNN node: the converted module, called as :class:`compat.frameworks.onnx.ops.RecurrentNode`
    calls it, with ONNX's layouts around it."""
    op, layout, directions = config["op"], config["layout"], config["directions"]
    runtime = e.items(0)
    given = {}
    for role, slot in zip(RECURRENT_INPUTS[op], config["inputs"]):
        if slot == "x":
            given[role] = runtime.pop(0)
        elif isinstance(slot, dict):
            given[role] = slot
    x = given["X"]
    out = e.outs[0]
    lines = []
    states = []
    for role in ("initial_h", "initial_c")[:RECURRENT_OUTPUTS[op] - 1]:
        s = given.get(role)
        if isinstance(s, dict):
            s = _tensor(s, x, f"{x}.dtype")
        elif s is not None:
            s = f"{s}.to({x}.dtype)"
        if s is not None and layout:
            s = f"{s}.transpose(0, 1)"      # ONNX layout=1: [B, directions, H]
        states.append(s)
    call = [x]
    if any(s is not None for s in states):
        batch = f"{x}.shape[{0 if layout else 1}]"
        zeros = f"{x}.new_zeros({directions}, {batch}, {e.self}.hidden_size)"
        hx = [zeros if s is None else s for s in states]
        lines.append(f"{out}_hx = ({', '.join(hx)})  # (h0, c0) [directions, B, H]" if op == "LSTM" else
                     f"{out}_hx = {hx[0]}  # h0 [directions, B, H]")
        call.append(f"{out}_hx")
    if "sequence_lens" in given:
        lengths = given["sequence_lens"]
        call.append(f"lengths={_tensor(lengths, x) if isinstance(lengths, dict) else lengths}")
    state = f"({out}_h, {out}_c)" if op == "LSTM" else f"{out}_h"
    lines.append(f"{out}_y, {state} = {e.self}({', '.join(call)})")
    if layout:
        lines.append(f"{out} = {out}_y.reshape({out}_y.shape[0], {out}_y.shape[1], {directions}, {e.self}.hidden_size)"
                     "  # ONNX's Y [B, T, directions, H]")
    else:
        lines.append(f"{out} = {out}_y.reshape({out}_y.shape[0], {out}_y.shape[1], {directions}, "
                     f"{e.self}.hidden_size).transpose(1, 2)  # ONNX's Y [T, directions, B, H]")
    names = ["h", "c"][:RECURRENT_OUTPUTS[op] - 1]
    for o, n in zip(e.outs[1:], names):
        lines.append(f"{o} = {out}_{n}.transpose(0, 1)  # ONNX's Y_{n} [B, directions, H]" if layout else
                     f"{o} = {out}_{n}  # ONNX's Y_{n} [directions, B, H]")
    return emitted(e.recurrent_init, lines, e.recurrent_weights, e.recurrent_imports)


__all__ = ["emit_op", "emit_recurrent"]
