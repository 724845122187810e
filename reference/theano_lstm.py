"""Numpy oracle of the Theano tutorial's LSTM layer (DeepLearningTutorials ``code/lstm.py`` ``lstm_layer``).

Float64, step by step, written from the tutorial's ``_step``::

    state_below = x @ W + b                                # once, before the scan
    preact = h_prev @ U + state_below[t]
    i, f, o = sigmoid(preact[:, 0:H]), sigmoid(preact[:, H:2H]), sigmoid(preact[:, 2H:3H])
    c_new = tanh(preact[:, 3H:4H])
    c = f * c_prev + i * c_new
    c = m * c + (1 - m) * c_prev                           # mask carry of the cell
    h = o * tanh(c)                                        # from the carried c
    h = m * h + (1 - m) * h_prev                           # mask carry of the output

The backward pass is derived by hand from these lines (no autodiff).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _init_state(state: Optional[np.ndarray], n: int, hidden: int) -> np.ndarray:
    return np.zeros((n, hidden)) if state is None else np.asarray(state, dtype=np.float64)


def _forward(state_below, mask, W, U, b, h0, c0):
    x = np.asarray(state_below, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    W, U, b = (np.asarray(a, dtype=np.float64) for a in (W, U, b))
    T, n, _ = x.shape
    H = U.shape[0]
    proj = x @ W + b
    h_prev = _init_state(h0, n, H)
    c_prev = _init_state(c0, n, H)
    hs, cs, cache = [], [], []
    for t in range(T):
        preact = h_prev @ U + proj[t]
        i = sigmoid(preact[:, 0:H])
        f = sigmoid(preact[:, H:2 * H])
        o = sigmoid(preact[:, 2 * H:3 * H])
        g = np.tanh(preact[:, 3 * H:4 * H])
        mt = m[t][:, None]
        c = mt * (f * c_prev + i * g) + (1.0 - mt) * c_prev
        tc = np.tanh(c)
        h = mt * (o * tc) + (1.0 - mt) * h_prev
        cache.append((h_prev, c_prev, i, f, o, g, tc, mt))
        hs.append(h)
        cs.append(c)
        h_prev, c_prev = h, c
    return np.stack(hs), np.stack(cs), cache


def lstm_layer(state_below: np.ndarray, mask: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray,
               h0: Optional[np.ndarray] = None, c0: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(h [T, n, H], c [T, n, H])`` for input ``state_below`` [T, n, in] and ``mask`` [T, n].

    ``W [in, 4H]``, ``U [H, 4H]``, ``b [4H]`` in the tutorial's gate order i, f, o, c. Zero initial
    state when ``h0`` / ``c0`` are None (``tensor.alloc(0., n_samples, dim_proj)``).
    """
    h, c, _ = _forward(state_below, mask, W, U, b, h0, c0)
    return h, c


def lstm_layer_backward(dh: np.ndarray, state_below: np.ndarray, mask: np.ndarray, W: np.ndarray, U: np.ndarray,
                        b: np.ndarray, h0: Optional[np.ndarray] = None, c0: Optional[np.ndarray] = None,
                        dc: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Gradients of a loss with ``dL/dh = dh`` [T, n, H] (and ``dL/dc = dc``, optional) through the layer.

    Returns ``{"state_below", "W", "U", "b", "h0", "c0"}``.
    """
    x = np.asarray(state_below, dtype=np.float64)
    W, U = np.asarray(W, dtype=np.float64), np.asarray(U, dtype=np.float64)
    _, _, cache = _forward(x, mask, W, U, b, h0, c0)
    T, n, _ = x.shape
    H = U.shape[0]
    dh = np.asarray(dh, dtype=np.float64)
    dc_out = np.zeros_like(dh) if dc is None else np.asarray(dc, dtype=np.float64)
    dpre = np.zeros((T, n, 4 * H))
    dU = np.zeros_like(U)
    dh_next = np.zeros((n, H))
    dc_next = np.zeros((n, H))
    for t in reversed(range(T)):
        h_prev, c_prev, i, f, o, g, tc, mt = cache[t]
        dh_t = dh[t] + dh_next
        dc_t = dc_out[t] + dc_next
        # h = m * (o * tanh(c)) + (1 - m) * h_prev
        dh_new = mt * dh_t
        dh_prev = (1.0 - mt) * dh_t
        do = dh_new * tc
        dc_t = dc_t + dh_new * o * (1.0 - tc ** 2)
        # c = m * (f * c_prev + i * g) + (1 - m) * c_prev
        dc_new = mt * dc_t
        dc_prev = (1.0 - mt) * dc_t + dc_new * f
        di = dc_new * g
        df = dc_new * c_prev
        dg = dc_new * i
        dp = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), do * o * (1.0 - o), dg * (1.0 - g ** 2)], axis=1)
        dpre[t] = dp
        dU += h_prev.T @ dp
        dh_prev = dh_prev + dp @ U.T
        dh_next, dc_next = dh_prev, dc_prev
    flat_x = x.reshape(T * n, -1)
    flat_d = dpre.reshape(T * n, 4 * H)
    return {"state_below": dpre @ W.T, "W": flat_x.T @ flat_d, "U": dU, "b": flat_d.sum(axis=0),
            "h0": dh_next, "c0": dc_next}
