"""ONNX models read with the ``onnx`` package (protobuf parsing only; nothing in the model is run).

:func:`lstm_nodes` returns every ``LSTM`` node of the main graph with its attributes and the constant
tensors it reads (``W``, ``R``, ``B``, ``P`` from initializers or ``Constant`` nodes). A node whose weights
are computed at run time, or a model with external data files, is refused with a message naming the
node and input. The ``onnx`` package is an optional dependency (``pip install legacy-lstm[onnx]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np

from compat.errors import FileFormatError
from compat.formats.files import GiB, read_bytes
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES, checked_count, format_shape

MAX_MODEL_BYTES = 2 * GiB  # protobuf's own limit on one message
MISSING_ONNX = "reading ONNX files needs onnx: pip install legacy-lstm[onnx]"

# LSTM's inputs and outputs by position (onnx/docs/Operators.md LSTM).
LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
LSTM_OUTPUTS = ("Y", "Y_h", "Y_c")
LSTM_ATTRIBUTES = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
                   "input_forget", "layout", "output_sequence")


RECURRENT_OPS = ("LSTM", "GRU", "RNN")
# The GRU and RNN operators (onnx/docs/Operators.md GRU, RNN): no initial_c, no P, no Y_c; the GRU's
# linear_before_reset, neither's input_forget.
OP_INPUTS = {"LSTM": LSTM_INPUTS, "GRU": LSTM_INPUTS[:6], "RNN": LSTM_INPUTS[:6]}
OP_OUTPUTS = {"LSTM": LSTM_OUTPUTS, "GRU": LSTM_OUTPUTS[:2], "RNN": LSTM_OUTPUTS[:2]}
OP_ATTRIBUTES = {"LSTM": LSTM_ATTRIBUTES,
                 "GRU": tuple(a for a in LSTM_ATTRIBUTES if a != "input_forget") + ("linear_before_reset",),
                 "RNN": tuple(a for a in LSTM_ATTRIBUTES if a != "input_forget")}
# What folding may compute in all (onnx_fold.Folder's intermediates): this many times the model's size, plus
# FOLD_SLACK. An exporter's folded weights are slices and concatenations of the initializers, a few times
# their size; a graph that concatenates one tensor with itself over and over is refused before it allocates.
FOLD_EXPANSION = 16
FOLD_SLACK = 64 << 20


class OnnxFileError(FileFormatError):
    """An ONNX file or node that cannot be read; the message names the file and the node."""


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise OnnxFileError(MISSING_ONNX) from None
    return onnx, numpy_helper


@dataclass
class LSTMNode:
    """One ONNX LSTM node: its name, attributes, constant inputs and which inputs/outputs it uses."""

    name: str
    index: int
    attributes: Dict[str, object]
    tensors: Dict[str, np.ndarray]                # W, R and, when given, B, P
    inputs: Dict[str, str] = field(default_factory=dict)    # every non-empty input name by role
    outputs: Dict[str, str] = field(default_factory=dict)
    opset: int = 0
    op: str = "LSTM"                              # the operator: LSTM, GRU or RNN


def _attribute(onnx, attr, decode=None):
    if attr.type == onnx.AttributeProto.TENSOR and decode is not None:
        return decode(attr.t, f"attribute {attr.name!r}")
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in value]
    return value


def _name(value, where: str, what: str) -> str:
    """A name of the model (protobuf hands back bytes where the file's string is not UTF-8)."""
    if isinstance(value, bytes):
        raise OnnxFileError(f"{where}: {what} is not UTF-8 ({value[:40]!r}); ONNX names are UTF-8 strings")
    return value


@dataclass
class OnnxModel:
    """A parsed model: its LSTM nodes, its other recurrent nodes, every initializer and which LSTM reads it."""

    lstm_nodes: List[LSTMNode]
    other_recurrent: List[Tuple[str, str]]               # (node name, op type) of GRU and RNN nodes
    initializers: Dict[str, Callable[[], np.ndarray]]     # name -> decode (on demand, under the ceiling)
    initializer_shapes: Dict[str, Tuple[int, ...]]
    read_by: Dict[str, str] = field(default_factory=dict)  # initializer -> the LSTM node whose weights it makes
    other_nodes: Dict[str, int] = field(default_factory=dict)   # op type -> count of the remaining nodes
    rnn_nodes: List[LSTMNode] = field(default_factory=list)     # the GRU and RNN nodes, read as the LSTM's
    # for the whole-model reader (compat.frameworks.onnx.model): the parsed ModelProto, its opset, and the
    # bounded folder of constant subgraphs
    proto: object = None
    opset: int = 0
    folder: object = None


def read_onnx(path, *, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> OnnxModel:
    """The recurrent nodes and initializers of the model at ``path`` (see the module docstring).

    Every tensor is decoded only after its declared dims and size are checked against ``max_tensor_bytes``;
    the weights folded from constants (:mod:`compat.formats.onnx_fold`) are held to the same ceiling, and
    all they compute together to :data:`FOLD_EXPANSION` times the model's size. Refused as onnx.checker
    refuses them: a name defined twice (initializers, ``Constant`` nodes and every node output share one
    namespace), a name that is not UTF-8, a negative dimension, an LSTM's weights of different types (the
    operator's ``T`` is one type for all of its inputs).
    """
    onnx, numpy_helper = _onnx()
    from compat.formats.onnx_fold import Folder, NotConstantError

    data = read_bytes(path, MAX_MODEL_BYTES, "ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise OnnxFileError(f"{path}: not a readable ONNX model ({e})") from None
    graph = model.graph
    opset = 0
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)

    def decode(t, what):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise OnnxFileError(f"{path}: {what} is stored in an external data file; not supported (save the model "
                                "with its weights inside)")
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
        except Exception:  # noqa: BLE001 - an unknown or undefined data_type
            raise OnnxFileError(f"{path}: {what} has data_type {t.data_type}, not a numeric ONNX type") from None
        dims = [int(d) for d in t.dims]

        def fail(message: str):
            raise OnnxFileError(f"{path}: {what}: {message}")

        nbytes = checked_count(dims, dtype.itemsize, fail) * dtype.itemsize
        if nbytes > max_tensor_bytes:
            fail(f"has {nbytes:,} bytes; the ceiling is {max_tensor_bytes:,} (--max-tensor-bytes raises it)")
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001 - a tensor whose data does not match its dims, and the like
            raise OnnxFileError(f"{path}: {what} cannot be decoded ({type(e).__name__}: {e})") from None
        if list(arr.shape) != dims:
            fail(f"decodes to shape {list(arr.shape)}, not its dims {format_shape(dims)}")
        return arr

    defined: Dict[str, str] = {}

    def define(name, what: str) -> str:
        name = _name(name, str(path), f"the name of {what}")
        if name in defined:
            raise OnnxFileError(f"{path}: {name[:80]!r} is defined twice ({defined[name]} and {what}); onnx.checker "
                                "refuses a name defined twice")
        defined[name] = what
        return name

    initializers, shapes = {}, {}
    for t in graph.initializer:
        name = define(t.name, "an initializer")
        initializers[name] = lambda t=t, name=name: decode(t, f"initializer {name!r}")
        shapes[name] = tuple(int(d) for d in t.dims)
    for index, node in enumerate(graph.node):
        _name(node.op_type, f"{path}: node {index}", "its op_type")
        for out in node.output:
            if out:
                define(out, f"an output of node {index} ({node.op_type})")

    def dtype_of(code: int) -> np.dtype:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))

    folder = Folder(initializers, graph.node, opset, lambda a: _attribute(onnx, a, decode), lambda t: decode(t, "a tensor"),
                    dtype_of, str(path), max_tensor_bytes=max_tensor_bytes,
                    max_total_bytes=FOLD_EXPANSION * len(data) + FOLD_SLACK)
    out, others, read_by, counts, rnns = [], [], {}, {}, []
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in RECURRENT_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            continue
        op = node.op_type
        name = _name(node.name, f"{path}: {op} node {index}", "its name") or f"{op}_{index}"
        where = f"{path}: {op} node {name!r}"
        attrs = {}
        for attr in node.attribute:
            if attr.name not in OP_ATTRIBUTES[op]:
                raise OnnxFileError(f"{where}: unknown attribute {_name(attr.name, where, 'an attribute name')!r} "
                                    "(nothing is ignored silently)")
            attrs[attr.name] = _attribute(onnx, attr, decode)
        if len(node.input) > len(OP_INPUTS[op]):
            raise OnnxFileError(f"{where}: {len(node.input)} inputs; the {op} operator has {len(OP_INPUTS[op])}")
        inputs = {role: _name(n, where, f"input {role}'s name") for role, n in zip(OP_INPUTS[op], node.input) if n}
        tensors = {}
        for role in ("W", "R", "B", "P"):
            if role not in inputs:
                if role in ("W", "R"):
                    raise OnnxFileError(f"{where}: the required input {role} is missing")
                continue
            try:
                arr = np.asarray(folder.value(inputs[role]))
            except NotConstantError as e:
                raise OnnxFileError(f"{where}: input {role} ({inputs[role]!r}) depends on what the model is given at "
                                    f"run time, so its weights are not in the file: "
                                    f"{str(e).removeprefix(f'{path}: ')}") from None
            if arr.dtype.kind != "f":
                raise OnnxFileError(f"{where}: input {role} has dtype {arr.dtype}; expected floating point")
            tensors[role] = arr
            for const in folder.constants_read(inputs[role]):
                read_by.setdefault(const, name)
        dtypes = {role: str(a.dtype) for role, a in tensors.items()}
        if len(set(dtypes.values())) > 1:
            raise OnnxFileError(f"{where}: inputs of different types {dtypes}; the {op} operator's T is one type for "
                                "all of them")
        outputs = {role: _name(n, where, f"output {role}'s name") for role, n in zip(OP_OUTPUTS[op], node.output) if n}
        (out if op == "LSTM" else rnns).append(LSTMNode(name, index, attrs, tensors, inputs, outputs, opset, op))
    return OnnxModel(out, others, initializers, shapes, read_by, counts, rnns, model, opset, folder)


def lstm_nodes(path, *, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> List[LSTMNode]:
    """Every LSTM node of the model at ``path``."""
    return read_onnx(path, max_tensor_bytes=max_tensor_bytes).lstm_nodes
