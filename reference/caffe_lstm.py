"""Numpy float64 oracle of Caffe's two LSTM layers: forward passes and hand-derived backward passes.

Written from the legacy C++ only; imports nothing from ``compat`` or ``ports``.

BVLC Caffe ``LSTM`` (src/caffe/layers/lstm_layer.cpp ``FillUnrolledNet``, lstm_unit_layer.cpp,
recurrent_layer.cpp). Blobs: ``W_xc`` [4H, I], ``b_c`` [4H], optional ``W_xc_static`` [4H, I_static]
(no bias), ``W_hc`` [4H, H] (no bias); gate blocks in the order i, f, o, g. For t = 1..T::

    x_transform_t  = W_xc x_t + b_c                 (one InnerProduct over all steps, axis 2)
    static_term    = W_xc_static x_static           (InnerProduct, axis 1, bias_term false)
    h_conted       = cont_t * h_{t-1}               ("h_conted_{t-1}", a Scale layer, axis 0)
    gate_input_t   = W_hc h_conted + x_transform_t + static_term     (Eltwise SUM)
    LSTMUnit (lstm_unit_layer.cpp Forward_cpu):
        i = sigmoid(X_i)  f = (cont_t == 0) ? 0 : cont_t * sigmoid(X_f)  o = sigmoid(X_o)  g = tanh(X_g)
        c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)

``tanh`` in lstm_unit_layer.cpp is ``2 * sigmoid(2x) - 1``; ``caffe_tanh=True`` computes it that way.

LSTMUnit's Backward_cpu converts the gate gradients with the *stored* f, i.e. d(pre_f) =
dF * f * (1 - f) where f already includes cont_t. For cont in {0, 1} that is the true derivative (f = 0
gives 0; f = sigmoid gives sigmoid' ); for fractional cont it is not: ``caffe_fractional_cont_grad=True``
reproduces it, the default gives the true derivative d(pre_f) = dF * cont * s * (1 - s).

The junhyukoh/caffe-lstm ``Lstm`` layer is :func:`junhyukoh_forward` / :func:`junhyukoh_backward`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def caffe_tanh(x):
    """lstm_unit_layer.cpp ``tanh``: 2 * sigmoid(2x) - 1."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def _flat_steps(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _state(s, n: int, hidden: int) -> np.ndarray:
    if s is None:
        return np.zeros((n, hidden))
    return np.asarray(s, dtype=np.float64).reshape(n, hidden)


# ---------------------------------------------------------------------------------------------- BVLC


def lstm_forward(x, cont, W_xc, b_c, W_hc, h0=None, c0=None, x_static=None, W_xc_static=None, *,
                 caffe_tanh: bool = False, caffe_fractional_cont_grad: bool = False):
    """BVLC Caffe ``LSTM`` forward.

    Args:
        x: [T, N, ...] time-major input (trailing axes flattened, as Caffe's InnerProduct axis 2 does).
        cont: [T, N] continuation indicators (used as numbers).
        W_xc [4H, I], b_c [4H], W_hc [4H, H]: the layer's blobs in gate order i, f, o, g.
        h0, c0: [N, H] or [1, N, H]; zeros when None.
        x_static: [N, ...] with W_xc_static [4H, I_static].

    Returns:
        ``(h [T, N, H], h_T [N, H], c_T [N, H], cache)``.
    """
    x = _flat_steps(x)
    T, N, _ = x.shape
    cont = np.asarray(cont, dtype=np.float64).reshape(T, N)
    W_xc, b_c, W_hc = (np.asarray(a, dtype=np.float64) for a in (W_xc, b_c, W_hc))
    H = W_hc.shape[1]
    th = globals()["caffe_tanh"] if caffe_tanh else np.tanh
    h_prev = _state(h0, N, H)
    c_prev = _state(c0, N, H)
    x_transform = x @ W_xc.T + b_c                      # [T, N, 4H]
    static_term = 0.0
    if x_static is not None:
        xs = np.asarray(x_static, dtype=np.float64).reshape(N, -1)
        static_term = xs @ np.asarray(W_xc_static, dtype=np.float64).T  # [N, 4H]
    else:
        xs = None
    hs = np.zeros((T, N, H))
    steps = []
    h_init, c_init = h_prev, c_prev
    for t in range(T):
        ct = cont[t][:, None]
        h_conted = ct * h_prev
        X = h_conted @ W_hc.T + x_transform[t] + static_term
        i = sigmoid(X[:, :H])
        sf = sigmoid(X[:, H:2 * H])
        f = np.where(ct == 0, 0.0, ct * sf)
        o = sigmoid(X[:, 2 * H:3 * H])
        g = th(X[:, 3 * H:])
        c = f * c_prev + i * g
        tanh_c = th(c)
        h = o * tanh_c
        steps.append(dict(cont=ct, h_conted=h_conted, c_prev=c_prev, i=i, sf=sf, f=f, o=o, g=g, c=c, tanh_c=tanh_c))
        hs[t] = h
        h_prev, c_prev = h, c
    cache = dict(x=x, xs=xs, W_xc=W_xc, W_hc=W_hc, W_xc_static=None if xs is None else np.asarray(W_xc_static, np.float64),
                 steps=steps, h0=h_init, c0=c_init, H=H,
                 caffe_fractional_cont_grad=caffe_fractional_cont_grad)
    return hs, h_prev, c_prev, cache
