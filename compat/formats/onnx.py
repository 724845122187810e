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

MAX_MODEL_BYTES = 2 * GiB  # protobuf's own limit on one message
MISSING_ONNX = "reading ONNX files needs onnx: pip install legacy-lstm[onnx]"

# LSTM's inputs and outputs by position (onnx/docs/Operators.md LSTM).
LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
LSTM_OUTPUTS = ("Y", "Y_h", "Y_c")
LSTM_ATTRIBUTES = ("activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size",
                   "input_forget", "layout", "output_sequence")


RECURRENT_OPS = ("LSTM", "GRU", "RNN")


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


def _attribute(onnx, attr, decode=None):
    if attr.type == onnx.AttributeProto.TENSOR and decode is not None:
        return decode(attr.t, f"attribute {attr.name!r}")
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in value]
    return value


@dataclass
class OnnxModel:
    """A parsed model: its LSTM nodes, its other recurrent nodes, every initializer and which LSTM reads it."""

    lstm_nodes: List[LSTMNode]
    other_recurrent: List[Tuple[str, str]]               # (node name, op type) of GRU and RNN nodes
    initializers: Dict[str, Callable[[], np.ndarray]]     # name -> decode (on demand)
    initializer_shapes: Dict[str, Tuple[int, ...]]
    read_by: Dict[str, str] = field(default_factory=dict)  # initializer -> the LSTM node whose weights it makes
    other_nodes: Dict[str, int] = field(default_factory=dict)   # op type -> count of the remaining nodes


def read_onnx(path) -> OnnxModel:
    """The recurrent nodes and initializers of the model at ``path`` (see the module docstring)."""
    onnx, numpy_helper = _onnx()
    from compat.formats.onnx_fold import Folder, NotConstantError

    data = read_bytes(path, MAX_MODEL_BYTES, "ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others; each is a bad file
        raise OnnxFileError(f"{path}: not an ONNX model ({type(e).__name__}: {e})") from None
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
            return numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001
            raise OnnxFileError(f"{path}: {what} cannot be decoded ({e})") from None

    initializers = {t.name: (lambda t=t: decode(t, f"initializer {t.name!r}")) for t in graph.initializer}
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}

    def dtype_of(code: int) -> np.dtype:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))

    folder = Folder(initializers, graph.node, opset, lambda a: _attribute(onnx, a, decode), lambda t: decode(t, "a tensor"),
                    dtype_of, str(path))
    out, others, read_by, counts = [], [], {}, {}
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in RECURRENT_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            continue
        if node.op_type != "LSTM":
            others.append((node.name or f"{node.op_type}_{index}", node.op_type))
            continue
        name = node.name or f"LSTM_{index}"
        where = f"{path}: LSTM node {name!r}"
        attrs = {}
        for attr in node.attribute:
            if attr.name not in LSTM_ATTRIBUTES:
                raise OnnxFileError(f"{where}: unknown attribute {attr.name!r} (nothing is ignored silently)")
            attrs[attr.name] = _attribute(onnx, attr, decode)
        inputs = {role: n for role, n in zip(LSTM_INPUTS, node.input) if n}
        if len(node.input) > len(LSTM_INPUTS):
            raise OnnxFileError(f"{where}: {len(node.input)} inputs; the LSTM operator has {len(LSTM_INPUTS)}")
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
        outputs = {role: n for role, n in zip(LSTM_OUTPUTS, node.output) if n}
        out.append(LSTMNode(name, index, attrs, tensors, inputs, outputs, opset))
    return OnnxModel(out, others, initializers, shapes, read_by, counts)


def lstm_nodes(path) -> List[LSTMNode]:
    """Every LSTM node of the model at ``path``."""
    return read_onnx(path).lstm_nodes
