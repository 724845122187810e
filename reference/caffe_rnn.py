"""Numpy float64 oracle of BVLC Caffe's ``RNN`` layer.

Written from BVLC/caffe ``src/caffe/layers/rnn_layer.cpp`` (``RNNLayer::FillUnrolledNet``) and
``recurrent_layer.cpp``; imports nothing from the project. The layer unrolls into, at each step t = 1..T::

    h_conted_{t-1} = cont_t * h_{t-1}                       (Eltwise SUM with coeff_blob: resets at cont_t = 0)
    h_t = tanh(W_hh h_conted_{t-1} + W_xh x_t + b_h [+ W_xh_static x_static])
    o_t = tanh(W_ho h_t + b_o)                              (the layer's output is o, not h)

Its blobs, in the order the unrolled net creates their named params: ``W_xh [H, in]``, ``b_h [H]``,
(``W_xh_static [H, in_static]`` only with a static input), ``W_hh [H, H]``, ``W_ho [H, H]``, ``b_o [H]``,
with ``recurrent_param.num_output`` = H. Inputs are time-major: x [T, N, in], cont [T, N]; with
``expose_hidden`` the layer also takes h_0 [1, N, H] and returns h_T.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

BLOBS = ("W_xh", "b_h", "W_hh", "W_ho", "b_o")
BLOBS_STATIC = ("W_xh", "b_h", "W_xh_static", "W_hh", "W_ho", "b_o")


def rnn_layer(x: np.ndarray, cont: Optional[np.ndarray], blobs: Sequence[np.ndarray], h0: Optional[np.ndarray] = None,
              x_static: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The layer on x [T, N, in] with ``cont`` [T, N] (None: all ones): (o [T, N, H], h_T [N, H]).

    ``blobs`` in the layer's order (:data:`BLOBS`, or :data:`BLOBS_STATIC` with ``x_static`` [N, ...], its axes after
    N flattened to in_static)."""
    x = np.asarray(x, dtype=np.float64)
    T, N, _ = x.shape
    names = BLOBS_STATIC if x_static is not None else BLOBS
    if len(blobs) != len(names):
        raise ValueError(f"the RNN layer has {len(names)} blobs {list(names)}; got {len(blobs)}")
    p = {n: np.asarray(b, dtype=np.float64) for n, b in zip(names, blobs)}
    H = p["W_hh"].shape[0]
    cont = np.ones((T, N)) if cont is None else np.asarray(cont, dtype=np.float64)
    h = np.zeros((N, H)) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(N, H)
    # W_xh_x_static: an InnerProduct with axis 1 (x_static's axes after N flattened), no bias, reshaped to [1, N, H]
    static = 0.0 if x_static is None else np.asarray(x_static, dtype=np.float64).reshape(N, -1) @ p["W_xh_static"].T
    W_xh_x = x @ p["W_xh"].T + p["b_h"]              # the x_transform InnerProduct (axis 2), all steps at once
    o = np.empty((T, N, H))
    for t in range(T):
        h_conted = cont[t][:, None] * h
        h = np.tanh(h_conted @ p["W_hh"].T + W_xh_x[t] + static)
        o[t] = np.tanh(h @ p["W_ho"].T + p["b_o"])
    return o, h
