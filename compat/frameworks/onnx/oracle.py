"""The converter's verification of ONNX LSTM, GRU and RNN nodes against reference/onnx_lstm.py and onnx_rnn.py."""
from __future__ import annotations

from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _onnx(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import onnx_lstm

    attrs = dict(spec.semantics)
    t = {k: _f64(v) for k, v in spec.source[0][0].items()}
    layout = int(attrs.pop("layout", 0))
    X, h0, c0 = case.x, case.h0, case.c0
    if layout:
        X, h0, c0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
    Y, Y_h, Y_c = onnx_lstm.lstm(X, t["W"], t["R"], t.get("B"), case.lengths, h0, c0, t.get("P"),
                                 activations=attrs.get("activations"), activation_alpha=attrs.get("activation_alpha", ()),
                                 activation_beta=attrs.get("activation_beta", ()), clip=attrs.get("clip"),
                                 input_forget=int(attrs.get("input_forget", 0)),
                                 direction=attrs.get("direction", "forward"), layout=layout)
    if layout:   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h, Y_c = Y.transpose(1, 2, 0, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H), Y_h, Y_c


def _onnx_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """An ONNX GRU or RNN node by reference/onnx_rnn.py with the node's attributes."""
    from compat.convert.verify import NO_CELL
    from reference import onnx_rnn

    attrs = dict(spec.semantics)
    op = attrs.pop("op")
    t = {k: _f64(v) for k, v in spec.source[0][0].items()}
    layout = int(attrs.pop("layout", 0))
    X, h0 = case.x, case.h0
    if layout:
        X, h0 = X.transpose(1, 0, 2), h0.transpose(1, 0, 2)
    extra = {"linear_before_reset": int(attrs.get("linear_before_reset", 0))} if op == "GRU" else {}
    Y, Y_h = (onnx_rnn.gru if op == "GRU" else onnx_rnn.rnn)(
        X, t["W"], t["R"], t.get("B"), case.lengths, h0, activations=attrs.get("activations"),
        activation_alpha=attrs.get("activation_alpha", ()) or (), activation_beta=attrs.get("activation_beta", ()) or (),
        clip=attrs.get("clip"), direction=attrs.get("direction", "forward"), layout=layout, **extra)
    if layout:   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Y_h = Y.transpose(1, 2, 0, 3), Y_h.transpose(1, 0, 2)
    T, D, B, H = Y.shape
    return Y.transpose(0, 2, 1, 3).reshape(T, B, D * H), Y_h, NO_CELL


ORACLES = {"onnx": _onnx, "onnx_rnn": _onnx_rnn}
