"""Numpy float64 oracle of the ONNX ``LSTM`` operator, forward direction (onnx ``docs/Operators.md``).

Written from the operator's specification; imports nothing from the project. Inputs (``layout=0``)::

    X [T, B, in]   W [1, 4H, in]   R [1, 4H, H]   B [1, 8H] = [Wb, Rb]   (gate blocks i, o, f, c)
    sequence_lens [B] (optional)   initial_h [1, B, H]   initial_c [1, B, H]   P [1, 3H] peepholes (i, o, f)

Equations (defaults f = Sigmoid, g = Tanh, h = Tanh)::

    it = f(Xt W_i^T + Ht-1 R_i^T + Pi * Ct-1 + Wb_i + Rb_i)
    ft = f(Xt W_f^T + Ht-1 R_f^T + Pf * Ct-1 + Wb_f + Rb_f)
    ct = g(Xt W_c^T + Ht-1 R_c^T + Wb_c + Rb_c)
    Ct = ft * Ct-1 + it * ct
    ot = f(Xt W_o^T + Ht-1 R_o^T + Po * Ct + Wb_o + Rb_o)
    Ht = ot * h(Ct)

``clip`` (optional) clamps every pre-activation to [-clip, clip]; ``input_forget=1`` couples the
forget gate to the input gate (ft = 1 - it). Outputs ``Y [T, 1, B, H]``, ``Y_h [1, B, H]``,
``Y_c [1, B, H]``. With ``sequence_lens`` the state of a sequence stops at its length; Y past the length
is 0 (the specification leaves it open; onnxruntime writes zeros) and Y_h / Y_c are the states at the
sequence's last step (the initial state for a length of 0).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Sigmoid(x) = 1 / (1 + e^-x), computed without overflow."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


ACTIVATIONS = {
    "Sigmoid": sigmoid,
    "Tanh": np.tanh,
    "Relu": lambda x: np.maximum(x, 0.0),
    "HardSigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),  # default alpha 0.2, beta 0.5
    "Softsign": lambda x: x / (1.0 + np.abs(x)),
}

DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")


def _activation(a) -> Callable[[np.ndarray], np.ndarray]:
    if callable(a):
        return a
    try:
        return ACTIVATIONS[a]
    except KeyError:
        raise ValueError(f"unknown activation {a!r}; known: {sorted(ACTIVATIONS)}") from None


def _check(name: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != tuple(shape):
        raise ValueError(f"ONNX LSTM input {name} has shape {list(a.shape)}; expected {list(shape)}")
    return a


def lstm(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: Optional[np.ndarray] = None,
         sequence_lens: Optional[np.ndarray] = None, initial_h: Optional[np.ndarray] = None,
         initial_c: Optional[np.ndarray] = None, P: Optional[np.ndarray] = None, *,
         activations: Sequence = DEFAULT_ACTIVATIONS, clip: Optional[float] = None, input_forget: int = 0
         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ONNX LSTM operator, ``direction="forward"``, ``layout=0``: returns ``(Y, Y_h, Y_c)``.

    ``activations``: (f, g, h), names from :data:`ACTIVATIONS` or callables.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"ONNX LSTM input X has shape {list(X.shape)}; expected [seq_length, batch_size, input_size]")
    T, batch, n_in = X.shape
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] != 1 or R.shape[1] != 4 * R.shape[2]:
        raise ValueError(f"ONNX LSTM input R has shape {list(R.shape)}; expected [1, 4*hidden_size, hidden_size]")
    H = R.shape[2]
    W = _check("W", W, (1, 4 * H, n_in))
    B = np.zeros((1, 8 * H)) if B is None else _check("B", B, (1, 8 * H))
    h = np.zeros((batch, H)) if initial_h is None else _check("initial_h", initial_h, (1, batch, H))[0]
    c = np.zeros((batch, H)) if initial_c is None else _check("initial_c", initial_c, (1, batch, H))[0]
    P = np.zeros((1, 3 * H)) if P is None else _check("P", P, (1, 3 * H))
    if sequence_lens is None:
        lens = np.full(batch, T)
    else:
        lens = np.asarray(sequence_lens)
        if lens.shape != (batch,) or (lens < 0).any() or (lens > T).any():
            raise ValueError(f"ONNX LSTM input sequence_lens {lens.tolist()} must be [batch_size] in [0, {T}]")
    f_act, g_act, h_act = (_activation(a) for a in activations)

    def block(a, k):
        return a[k * H:(k + 1) * H]

    Wi, Wo, Wf, Wc = (block(W[0], k) for k in range(4))
    Ri, Ro, Rf, Rc = (block(R[0], k) for k in range(4))
    Wbi, Wbo, Wbf, Wbc = (block(B[0, :4 * H], k) for k in range(4))
    Rbi, Rbo, Rbf, Rbc = (block(B[0, 4 * H:], k) for k in range(4))
    Pi, Po, Pf = (block(P[0], k) for k in range(3))

    def pre(v):
        return v if clip is None else np.clip(v, -clip, clip)

    Y = np.zeros((T, 1, batch, H))
    for t in range(T):
        xt = X[t]
        it = f_act(pre(xt @ Wi.T + h @ Ri.T + Pi * c + Wbi + Rbi))
        if input_forget:
            ft = 1.0 - it
        else:
            ft = f_act(pre(xt @ Wf.T + h @ Rf.T + Pf * c + Wbf + Rbf))
        ct = g_act(pre(xt @ Wc.T + h @ Rc.T + Wbc + Rbc))
        C = ft * c + it * ct
        ot = f_act(pre(xt @ Wo.T + h @ Ro.T + Po * C + Wbo + Rbo))
        Hn = ot * h_act(C)
        live = (t < lens)[:, None]
        h = np.where(live, Hn, h)
        c = np.where(live, C, c)
        Y[t, 0] = np.where(live, Hn, 0.0)
    return Y, h[None], c[None]
