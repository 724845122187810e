"""cuDNN's opaque RNN parameter buffer, as TF documents it: what sits where.

From tensorflow/contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py (``CudnnParamsFormatConverter``: the
canonical lists are "weights | biases", each "layer1 | layer2 | ...", each "fwd | bak";
``CudnnOpaqueParamsSaveable``: per layer and direction, tensors 0 .. G-1 apply to the input, G .. 2G-1 to the
recurrent state; with ``num_proj`` a projection matrix follows a pseudo-layer's weights, ``_tf_canonical_to_cu_canonical``)
and jax/experimental/rnn.py (its layout drawn as "the linear weights from all pseudo-layers followed by the
bias weights from all pseudo-layers"). Written from those texts, not from the converter.

:func:`param_shapes` lists every parameter of a buffer in order; :func:`unpack` and :func:`pack` walk that
list. Gate orders: LSTM i, f, c, o; GRU r, u, h; RNN one.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

Key = Tuple[str, int, int, int]   # (kind "W" | "R" | "P" | "bW" | "bR", layer, direction, gate)


def param_shapes(mode: str, input_size: int, num_units: int, num_layers: int, bidirectional: bool,
                 num_proj: int = 0) -> List[Tuple[Key, Tuple[int, ...]]]:
    """Every parameter of the buffer, in buffer order, with its shape."""
    G, H, D = GATES[mode], num_units, 2 if bidirectional else 1
    state = num_proj or H
    weights, biases = [], []
    for layer in range(num_layers):
        width = input_size if layer == 0 else D * state
        for d in range(D):
            weights += [(("W", layer, d, g), (H, width)) for g in range(G)]
            weights += [(("R", layer, d, g), (H, state)) for g in range(G)]
            if num_proj:
                weights.append((("P", layer, d, 0), (num_proj, H)))
            biases += [(("bW", layer, d, g), (H,)) for g in range(G)]
            biases += [(("bR", layer, d, g), (H,)) for g in range(G)]
    return weights + biases


def unpack(buf: np.ndarray, *sizes, **kw) -> Dict[Key, np.ndarray]:
    """The buffer's parameters by key (``sizes``: those of :func:`param_shapes`)."""
    out, pos = {}, 0
    for key, shape in param_shapes(*sizes, **kw):
        n = int(np.prod(shape))
        out[key] = np.asarray(buf[pos:pos + n]).reshape(shape)
        pos += n
    if pos != buf.size:
        raise ValueError(f"a buffer of {buf.size} elements; these sizes make {pos}")
    return out


def pack(params: Dict[Key, np.ndarray], *sizes, **kw) -> np.ndarray:
    """The buffer of ``params`` (the inverse of :func:`unpack`)."""
    return np.concatenate([np.asarray(params[key]).reshape(-1) for key, _ in param_shapes(*sizes, **kw)])


# ------------------------------------------------------------------------------ GRU and simple RNN, one layer
# cuDNN's recurrences (cudnn_rnn_ops.py CudnnGRU / CudnnRNNTanh / CudnnRNNRelu docstrings; NVIDIA's
# cudnnRNNMode_t): per layer and direction, tensor g of "W" applies to the input, of "R" to the state, each
# with its own bias "bW" / "bR". GRU gates in the buffer's order r (reset), u (update), h (candidate); the
# reset multiplies the recurrent product *after* its bias (cuDNN's CUDNN_GRU; the reset-after GRU):
#
#     r = sigmoid(W_r x + bW_r + R_r h + bR_r)     u = sigmoid(W_u x + bW_u + R_u h + bR_u)
#     h~ = tanh(W_h x + bW_h + r * (R_h h + bR_h))  h' = (1 - u) * h~ + u * h
#
# RNN: h' = act(W x + bW + R h + bR), act tanh (CUDNN_RNN_TANH) or relu (CUDNN_RNN_RELU).
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def step(mode: str, params: Dict[Key, np.ndarray], layer: int, direction: int, x: np.ndarray, h: np.ndarray):
    """One step of layer ``layer``, direction ``direction`` of a ``gru`` / ``rnn_tanh`` / ``rnn_relu`` buffer's
    parameters (:func:`unpack`): x [B, in], h [B, H] -> h' [B, H], float64."""
    x, h = np.asarray(x, dtype=np.float64), np.asarray(h, dtype=np.float64)

    def lin(kind, g, v):
        return v @ np.asarray(params[(kind, layer, direction, g)], dtype=np.float64).T + \
            np.asarray(params[("b" + kind, layer, direction, g)], dtype=np.float64)

    if mode == "gru":
        r = _sigmoid(lin("W", 0, x) + lin("R", 0, h))
        u = _sigmoid(lin("W", 1, x) + lin("R", 1, h))
        hh = np.tanh(lin("W", 2, x) + r * lin("R", 2, h))
        return (1.0 - u) * hh + u * h
    pre = lin("W", 0, x) + lin("R", 0, h)
    if mode == "rnn_tanh":
        return np.tanh(pre)
    if mode == "rnn_relu":
        return np.maximum(pre, 0.0)
    raise ValueError(f"mode must be gru, rnn_tanh or rnn_relu; got {mode!r}")


def run(mode: str, params: Dict[Key, np.ndarray], x: np.ndarray, h0: np.ndarray, num_layers: int,
        bidirectional: bool):
    """The stacked (optionally bidirectional) network on x [T, B, in] from h0 [L * D, B, H], as cuDNN runs it
    (each layer reads the previous layer's fw | bw outputs): (output [T, B, D * H], h_n [L * D, B, H])."""
    D = 2 if bidirectional else 1
    inp = np.asarray(x, dtype=np.float64)
    T = inp.shape[0]
    finals = []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            h = np.asarray(h0[layer * D + d], dtype=np.float64)
            ys = [None] * T
            for t in (range(T) if d == 0 else reversed(range(T))):
                h = step(mode, params, layer, d, inp[t], h)
                ys[t] = h
            outs.append(np.stack(ys))
            finals.append(h)
        inp = np.concatenate(outs, axis=2)
    return inp, np.stack(finals)
