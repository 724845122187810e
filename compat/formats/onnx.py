"""ONNX models read with the ``onnx`` package (protobuf parsing only; nothing in the model is run).

:func:`lstm_nodes` returns every ``LSTM`` node of the main graph with its attributes and the constant
tensors it reads (``W``, ``R``, ``B``, ``P`` from initializers or ``Constant`` nodes). A node whose weights
are computed at run time, or a model with external data files, is refused with a message naming the
node and input. The ``onnx`` package is an optional dependency (``pip install legacy-lstm[onnx]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

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


def _attribute(onnx, attr):
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


def _constant(onnx, numpy_helper, t, where: str, role: str, max_tensor_bytes: int) -> np.ndarray:
    """A constant tensor's values, its declared dims and size checked before anything is decoded."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raise OnnxFileError(f"{where}: input {role} is stored in an external data file; "
                            "not supported (save the model with its weights inside)")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
    except Exception:  # noqa: BLE001 - an unknown or undefined data_type
        raise OnnxFileError(f"{where}: input {role} has data_type {t.data_type}, not a numeric ONNX type") from None
    if dtype.kind != "f":
        raise OnnxFileError(f"{where}: input {role} has dtype {dtype}; expected floating point")
    dims = list(t.dims)

    def fail(message: str):
        raise OnnxFileError(f"{where}: input {role}: {message}")

    nbytes = checked_count(dims, dtype.itemsize, fail) * dtype.itemsize
    if nbytes > max_tensor_bytes:
        fail(f"has {nbytes:,} bytes; the ceiling is {max_tensor_bytes:,} (--max-tensor-bytes raises it)")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - a tensor whose data does not match its dims, and the like
        raise OnnxFileError(f"{where}: input {role} cannot be decoded ({type(e).__name__}: {e})") from None
    if list(arr.shape) != dims:
        fail(f"decodes to shape {list(arr.shape)}, not its dims {format_shape(dims)}")
    return arr


def lstm_nodes(path, *, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> List[LSTMNode]:
    """Every LSTM node of the model at ``path``.

    Refused as onnx.checker refuses them: two constants of one name, a name that is not UTF-8, a negative
    dimension, weights of different types (the operator's ``T`` is one type for all of its inputs).
    """
    onnx, numpy_helper = _onnx()
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
    constants: Dict[str, object] = {}

    def define(name, tensor, what: str) -> None:
        name = _name(name, f"{path}", f"the name of {what}")
        if name in constants:
            raise OnnxFileError(f"{path}: two constants are named {name[:80]!r} ({what}); onnx.checker refuses a "
                                "name defined twice")
        constants[name] = tensor

    for t in graph.initializer:
        define(t.name, t, "an initializer")
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for attr in node.attribute:
                if attr.name == "value" and node.output:
                    define(node.output[0], attr.t, "a Constant node's output")
    out = []
    for index, node in enumerate(graph.node):
        if node.op_type != "LSTM" or node.domain not in ("", "ai.onnx"):
            continue
        name = _name(node.name, f"{path}: LSTM node {index}", "its name") or f"LSTM_{index}"
        where = f"{path}: LSTM node {name!r}"
        attrs = {}
        for attr in node.attribute:
            if attr.name not in LSTM_ATTRIBUTES:
                raise OnnxFileError(f"{where}: unknown attribute {_name(attr.name, where, 'an attribute name')!r} "
                                    "(nothing is ignored silently)")
            attrs[attr.name] = _attribute(onnx, attr)
        if len(node.input) > len(LSTM_INPUTS):
            raise OnnxFileError(f"{where}: {len(node.input)} inputs; the LSTM operator has {len(LSTM_INPUTS)}")
        inputs = {role: _name(n, where, f"input {role}'s name") for role, n in zip(LSTM_INPUTS, node.input) if n}
        tensors = {}
        for role in ("W", "R", "B", "P"):
            if role not in inputs:
                if role in ("W", "R"):
                    raise OnnxFileError(f"{where}: the required input {role} is missing")
                continue
            t = constants.get(inputs[role])
            if t is None:
                raise OnnxFileError(f"{where}: input {role} ({inputs[role]!r}) is computed at run time, not a constant: "
                                    "its weights are not in the file")
            tensors[role] = _constant(onnx, numpy_helper, t, where, role, max_tensor_bytes)
        dtypes = {role: str(a.dtype) for role, a in tensors.items()}
        if len(set(dtypes.values())) > 1:
            raise OnnxFileError(f"{where}: inputs of different types {dtypes}; the LSTM operator's T is one type for "
                                "all of them")
        outputs = {role: _name(n, where, f"output {role}'s name") for role, n in zip(LSTM_OUTPUTS, node.output) if n}
        out.append(LSTMNode(name, index, attrs, tensors, inputs, outputs, opset))
    return out


def is_onnx(path) -> bool:
    """A cheap guess from the suffix (ONNX files have no magic number)."""
    return Path(path).suffix.lower() == ".onnx"
