"""The converter's verification of TF cells (reference/tf_lstm.py) and cuDNN buffers (reference/onnx_lstm.py)."""
from __future__ import annotations

from functools import partial

import numpy as np
from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _tf(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import tf_lstm

    sem = spec.semantics

    def cell(raw):
        return partial(_tf_cell, tf_lstm.lstm_cell, raw, sem)

    D = 2 if spec.direction == "bidirectional" else 1
    L = spec.num_layers
    states = [(case.c0[k], case.h0[k]) for k in range(L * D)]
    if spec.direction == "bidirectional":
        out, st_fw, st_bw = tf_lstm.stack_bidirectional_dynamic_rnn(
            [cell(layer[0]) for layer in spec.source], [cell(layer[1]) for layer in spec.source], case.x,
            states[0::2], states[1::2], case.lengths)
        final = [s for pair in zip(st_fw, st_bw) for s in pair]
    else:
        run = tf_lstm.reverse_dynamic_rnn if spec.direction == "reverse" else tf_lstm.dynamic_rnn
        out, final = run(tf_lstm.multi_cell([cell(layer[0]) for layer in spec.source]), case.x, states, case.lengths)
    return out, np.stack([m for c, m in final]), np.stack([c for c, m in final])


# TF's activation functions (python/ops/nn_ops.py, math_ops.py) in numpy, for a cell whose graph applies one
# other than tanh; selu's constants are nn_ops.py's.
_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x, 0.0))),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(x, 0.0),
}


def _tf_cell(lstm_cell, raw, sem, x, state):
    return lstm_cell(x, state, _f64(raw["kernel"]), _f64(raw["bias"]), sem["forget_bias"],
                     w_i_diag=_f64(raw.get("w_i_diag")), w_f_diag=_f64(raw.get("w_f_diag")),
                     w_o_diag=_f64(raw.get("w_o_diag")), cell_clip=sem["cell_clip"],
                     proj_kernel=_f64(raw.get("projection/kernel")), proj_clip=sem["proj_clip"],
                     activation=_ACTIVATIONS[sem.get("activation", "tanh")])


def _cudnn(spec: LSTMSpec, case: Case) -> Outputs:
    """The opaque buffer unpacked by reference/cudnn_params.py (written from TF's and cuDNN's description of
    the layout, not from the converter's reader), layer by layer through reference/onnx_lstm.py (cuDNN's gates
    i, f, c, o -> ONNX's i, o, f, c; cuDNN's two biases are ONNX's Wb and Rb)."""
    from reference import cudnn_params, onnx_lstm

    sem = spec.semantics
    if sem["mode"] != "lstm" or sem.get("num_proj"):
        raise ValueError(f"{spec.name}: reference/onnx_lstm.py runs cuDNN LSTMs without a projection only")
    buf = _f64(spec.source[0][0]["buffer"])
    H, L, bidi, n_in = sem["num_units"], sem["num_layers"], sem["bidirectional"], sem["input_size"]
    params = cudnn_params.unpack(buf, "lstm", n_in, H, L, bidi)
    D = 2 if bidi else 1
    onnx_order = [0, 3, 1, 2]
    inp, hs, cs = case.x, [], []
    for k in range(L):
        W = np.stack([np.concatenate([params["W", k, d, g] for g in onnx_order]) for d in range(D)])
        R = np.stack([np.concatenate([params["R", k, d, g] for g in onnx_order]) for d in range(D)])
        B = np.stack([np.concatenate([params[b, k, d, g] for b in ("bW", "bR") for g in onnx_order]) for d in range(D)])
        sl = slice(k * D, (k + 1) * D)
        Y, Y_h, Y_c = onnx_lstm.lstm(inp, W, R, B, case.lengths, case.h0[sl], case.c0[sl],
                                     direction="bidirectional" if D == 2 else "forward")
        T, _, Bn, _ = Y.shape
        inp = Y.transpose(0, 2, 1, 3).reshape(T, Bn, D * H)
        hs += list(Y_h)
        cs += list(Y_c)
    return inp, np.stack(hs), np.stack(cs)


ORACLES = {"tf": _tf, "cudnn": _cudnn}
