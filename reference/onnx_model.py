"""Numpy float64 oracle of a whole ONNX model: onnx's own reference evaluator (``onnx.reference``, the
operators' numpy implementations that ship with the onnx package) with every ``LSTM`` node run by
reference/onnx_lstm.py (every attribute: peepholes, clip, input_forget, activations, sequence_lens,
layout, directions, onnxruntime's conventions where the operator text is open), every ``GRU`` and ``RNN``
node by reference/onnx_rnn.py (onnx docs/Operators.md GRU, RNN: every attribute likewise, and
linear_before_reset), ``Softmax`` / ``LogSoftmax`` with their semantics before opset 13, which
onnx.reference does not distinguish, and ``Erf`` in float64 (onnx.reference's rounds to float32).

onnx.reference's own recurrent operators (onnx 1.14-1.23 ``onnx/reference/ops/op_lstm.py``, ``op_gru.py``,
``op_rnn.py``) are not the specification: none applies ``clip`` or ``sequence_lens``; its LSTM and GRU run
Sigmoid and Tanh whatever the node's ``activations``, and its RNN knows only Tanh and Affine (``Relu``
raises "Unknown activation function").

:func:`run` widens the model to float64 first: float32 initializers, ``Constant`` values, ``Cast`` targets
and declared element types become float64, so the oracle computes each operator in float64 whatever the
model's own type. Imports nothing from the project.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

FLOAT, DOUBLE = 1, 11


def _widen_tensor(t) -> None:
    from onnx import numpy_helper

    if t.data_type == FLOAT:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))


def widened(model):
    """A copy of ``model`` computing in float64 (see the module docstring)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for t in g.initializer:
        _widen_tensor(t)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == FLOAT:
            vi.type.tensor_type.elem_type = DOUBLE
    for node in g.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                _widen_tensor(attr.t)
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = DOUBLE
    return m


def _text(value, default=None):
    return value.decode() if isinstance(value, bytes) else (default if value is None else str(value))


class _Recurrent:
    """What LSTM, GRU and RNN share: the attributes as reference/onnx_lstm.py and onnx_rnn.py take them, read
    from the node itself. onnx.reference fills an attribute the node leaves out with the schema's default,
    and the RNN schema's ``activations`` default is ``["Tanh", "Tanh"]`` whatever the direction; the
    operator text's default is one Tanh per direction, which the oracles apply to an absent attribute."""

    def given(self, name: str, value):
        return value if any(a.name == name for a in self.onnx_node.attribute) else None

    def shared(self, activations, activation_alpha, activation_beta, clip, direction, layout) -> dict:
        activations = self.given("activations", activations)
        return {"activations": [_text(a) for a in activations] if activations else None,
                "activation_alpha": list(self.given("activation_alpha", activation_alpha) or ()),
                "activation_beta": list(self.given("activation_beta", activation_beta) or ()),
                "clip": self.given("clip", clip), "direction": _text(direction, "forward"),
                "layout": int(layout or 0)}


def _recurrent_ops():
    """LSTM by reference/onnx_lstm.py; GRU and RNN by reference/onnx_rnn.py (onnx docs/Operators.md LSTM, GRU,
    RNN). An output the node does not name is computed and dropped by the evaluator."""
    from onnx.reference.op_run import OpRun

    from reference import onnx_lstm, onnx_rnn

    class LSTM(_Recurrent, OpRun):
        op_domain = ""

        def _run(self, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None,
                 activation_alpha=None, activation_beta=None, activations=None, clip=None, direction=None,
                 hidden_size=None, input_forget=None, layout=None, output_sequence=None):
            shared = self.shared(activations, activation_alpha, activation_beta, clip, direction, layout)
            return onnx_lstm.lstm(X, W, R, B, sequence_lens, initial_h, initial_c, P,
                                  input_forget=int(input_forget or 0), **shared)

    class GRU(_Recurrent, OpRun):
        op_domain = ""

        def _run(self, X, W, R, B=None, sequence_lens=None, initial_h=None, activation_alpha=None,
                 activation_beta=None, activations=None, clip=None, direction=None, hidden_size=None, layout=None,
                 linear_before_reset=None):
            return onnx_rnn.gru(X, W, R, B, sequence_lens, initial_h,
                                linear_before_reset=int(linear_before_reset or 0),
                                **self.shared(activations, activation_alpha, activation_beta, clip, direction, layout))

    class RNN(_Recurrent, OpRun):
        op_domain = ""

        def _run(self, X, W, R, B=None, sequence_lens=None, initial_h=None, activation_alpha=None,
                 activation_beta=None, activations=None, clip=None, direction=None, hidden_size=None, layout=None):
            return onnx_rnn.rnn(X, W, R, B, sequence_lens, initial_h,
                                **self.shared(activations, activation_alpha, activation_beta, clip, direction, layout))

    return [LSTM, GRU, RNN]


def _softmax_ops(opset: int):
    """Softmax and LogSoftmax before opset 13 (Operators.md Softmax-1 / -11): the input coerced to 2-D
    ``[prod(shape[:axis]), prod(shape[axis:])]`` (axis default 1) and normalized over the second axis;
    onnx.reference runs every opset with opset 13's one-axis form."""
    from onnx.reference.op_run import OpRun

    def make(name, log):
        def _run(self, x, axis=None):
            if opset >= 13:
                a = -1 if axis is None else axis
                a = a + x.ndim if a < 0 else a
                m = x - x.max(axis=a, keepdims=True)
                e = np.exp(m)
                s = e.sum(axis=a, keepdims=True)
                return ((m - np.log(s)) if log else e / s,)
            a = 1 if axis is None else axis
            a = a + x.ndim if a < 0 else a
            flat = x.reshape(int(np.prod(x.shape[:a])), -1)
            m = flat - flat.max(axis=1, keepdims=True)
            e = np.exp(m)
            s = e.sum(axis=1, keepdims=True)
            return (((m - np.log(s)) if log else e / s).reshape(x.shape),)

        return type(name, (OpRun,), {"op_domain": "", "_run": _run})

    return [make("Softmax", False), make("LogSoftmax", True)]


def _erf_op():
    """Erf in float64: onnx.reference's (``onnx/reference/ops/op_erf.py``) vectorizes math.erf with a float32
    result whatever the input's type; the operator's result has the input's type (Operators.md Erf)."""
    from math import erf

    from onnx.reference.op_run import OpRun

    vectorized = np.vectorize(erf, otypes=[np.float64])

    def _run(self, x):
        return (vectorized(x).astype(x.dtype),)

    return type("Erf", (OpRun,), {"op_domain": "", "_run": _run})


def _opset(model) -> int:
    return max([int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")] or [1])


def run(model, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The outputs of ``model`` (a ModelProto) on ``inputs`` (in the graph's input order, initializers
    excluded), in float64."""
    from onnx.reference import ReferenceEvaluator

    m = widened(model)
    initializers = {t.name for t in m.graph.initializer}
    names = [vi.name for vi in m.graph.input if vi.name not in initializers]
    feeds = {n: (x.astype(np.float64) if x.dtype.kind == "f" else x) for n, x in zip(names, inputs)}
    outs = ReferenceEvaluator(m, new_ops=[*_recurrent_ops(), *_softmax_ops(_opset(m)), _erf_op()]).run(None, feeds)
    return [np.asarray(o, dtype=np.float64) for o in outs]
