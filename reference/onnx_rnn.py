"""Numpy float64 oracle of the ONNX ``GRU`` and ``RNN`` operators (onnx ``docs/Operators.md``, GRU and RNN,
opsets 7-22).

Written from the operators' specification; what it leaves open is settled as onnxruntime's CPU kernels do
(``onnxruntime/core/providers/cpu/rnn/deep_cpu_gru.cc``, ``rnn.cc``, ``rnn_helpers.{h,cc}``), as
:mod:`reference.onnx_lstm` does for the LSTM (whose activation table, the operators' shared list, it
reuses). Imports nothing from the project outside ``reference``. Inputs (``layout=0``)::

    GRU: X [T, B, in]   W [D, 3H, in]   R [D, 3H, H]   B [D, 6H] = [Wb, Rb]   gate blocks z, r, h
    RNN: X [T, B, in]   W [D, H, in]    R [D, H, H]    B [D, 2H] = [Wbi, Rbi]
    sequence_lens [B] (optional)   initial_h [D, B, H] (optional)

GRU equations (defaults f = Sigmoid, g = Tanh)::

    zt = f(Xt Wz^T + Ht-1 Rz^T + Wbz + Rbz)
    rt = f(Xt Wr^T + Ht-1 Rr^T + Wbr + Rbr)
    ht = g(Xt Wh^T + (rt * Ht-1) Rh^T + Rbh + Wbh)          linear_before_reset = 0 (the default)
    ht = g(Xt Wh^T + rt * (Ht-1 Rh^T + Rbh) + Wbh)          linear_before_reset != 0
    Ht = (1 - zt) * ht + zt * Ht-1

RNN equation (default f = Tanh)::

    Ht = f(Xt Wi^T + Ht-1 Ri^T + Wbi + Rbi)

Attributes (both operators):

``clip``: "applied to the input of activations": each pre-activation is clamped to [-clip, clip] before
    its activation (the whole argument of f and g above).
``activations``: the GRU 2 names per direction (f, g), the RNN 1 (forward's first, then reverse's);
    ``activation_alpha`` / ``activation_beta`` consumed in order by the functions that take them, defaults
    as :func:`reference.onnx_lstm.resolve_activations` documents.
``direction``: "forward", "reverse" (with ``sequence_lens`` each sequence's valid prefix is reversed) or
    "bidirectional" (Y[:, 0] forward, Y[:, 1] reverse).
``sequence_lens``: Y past a sequence's length is 0; Y_h is the state at its last valid step, and zeros for a
    length of 0 (onnxruntime, as for the LSTM).
``layout=1``: X [B, T, in], Y [B, T, D, H], initial_h and Y_h [B, D, H].

Outputs ``Y [T, D, B, H]`` and ``Y_h [D, B, H]``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from reference.onnx_lstm import _reverse_valid, resolve_activations  # ReverseSequence, as the LSTM's

GRU_DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh")
RNN_DEFAULT_ACTIVATIONS = ("Tanh",)


def _check(op: str, name: str, a, shape: tuple) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != tuple(shape):
        raise ValueError(f"ONNX {op} input {name} has shape {list(a.shape)}; expected {list(shape)}")
    return a


def _gru_direction(X, W, R, B, h, lens, f_act, g_act, clip, linear_before_reset):
    """GRU recurrence over X [T, B, in] for one direction's [3H, ...] tensors (blocks z, r, h)."""
    T, batch, _ = X.shape
    H = R.shape[1]
    Wz, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
    Rz, Rr, Rh = R[:H], R[H:2 * H], R[2 * H:]
    Wbz, Wbr, Wbh = B[:H], B[H:2 * H], B[2 * H:3 * H]
    Rbz, Rbr, Rbh = B[3 * H:4 * H], B[4 * H:5 * H], B[5 * H:]

    def pre(v):
        return v if clip is None else np.clip(v, -clip, clip)

    Y = np.zeros((T, batch, H))
    for t in range(T):
        xt = X[t]
        zt = f_act(pre(xt @ Wz.T + h @ Rz.T + Wbz + Rbz))
        rt = f_act(pre(xt @ Wr.T + h @ Rr.T + Wbr + Rbr))
        if linear_before_reset:
            ht = g_act(pre(xt @ Wh.T + rt * (h @ Rh.T + Rbh) + Wbh))
        else:
            ht = g_act(pre(xt @ Wh.T + (rt * h) @ Rh.T + Rbh + Wbh))
        Hn = (1.0 - zt) * ht + zt * h
        live = (t < lens)[:, None]
        h = np.where(live, Hn, h)
        Y[t] = np.where(live, Hn, 0.0)
    return Y, np.where((lens == 0)[:, None], 0.0, h)


def _rnn_direction(X, W, R, B, h, lens, f_act, clip):
    """RNN recurrence over X [T, B, in] for one direction's [H, ...] tensors."""
    T, batch, _ = X.shape
    H = R.shape[1]
    Wbi, Rbi = B[:H], B[H:]
    Y = np.zeros((T, batch, H))
    for t in range(T):
        v = X[t] @ W.T + h @ R.T + Wbi + Rbi
        Hn = f_act(v if clip is None else np.clip(v, -clip, clip))
        live = (t < lens)[:, None]
        h = np.where(live, Hn, h)
        Y[t] = np.where(live, Hn, 0.0)
    return Y, np.where((lens == 0)[:, None], 0.0, h)


def _run(op: str, gates: int, X, W, R, B, sequence_lens, initial_h, activations, defaults, activation_alpha,
         activation_beta, clip, direction, layout, one_direction):
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"ONNX {op} direction must be forward, reverse or bidirectional; got {direction!r}")
    if layout not in (0, 1):
        raise ValueError(f"ONNX {op} layout must be 0 or 1; got {layout!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"ONNX {op} clip must be > 0; got {clip}")
    D = 2 if direction == "bidirectional" else 1
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"ONNX {op} input X has shape {list(X.shape)}; expected 3 dimensions")
    if layout == 1:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else np.asarray(initial_h).transpose(1, 0, 2)
    T, batch, n_in = X.shape
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] != D or R.shape[1] != gates * R.shape[2]:
        raise ValueError(f"ONNX {op} input R has shape {list(R.shape)}; expected [{D}, {gates}*hidden_size, "
                         "hidden_size]")
    H = R.shape[2]
    W = _check(op, "W", W, (D, gates * H, n_in))
    B = np.zeros((D, 2 * gates * H)) if B is None else _check(op, "B", B, (D, 2 * gates * H))
    h0 = np.zeros((D, batch, H)) if initial_h is None else _check(op, "initial_h", initial_h, (D, batch, H))
    if sequence_lens is None:
        lens = np.full(batch, T)
    else:
        lens = np.asarray(sequence_lens)
        if lens.shape != (batch,) or (lens < 0).any() or (lens > T).any():
            raise ValueError(f"ONNX {op} input sequence_lens {lens.tolist()} must be [batch_size] in [0, {T}]")
    per = len(defaults)
    names = list(defaults) * D if activations is None else list(activations)
    if len(names) != per * D:
        raise ValueError(f"ONNX {op} with direction={direction!r} takes {per * D} activations; got {len(names)}")
    acts = [fn for _, fn in resolve_activations(names, activation_alpha, activation_beta)]
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    for d in range(D):
        backwards = direction == "reverse" or d == 1
        Xd = _reverse_valid(X, lens) if backwards else X
        Yd, Y_h[d] = one_direction(Xd, W[d], R[d], B[d], h0[d], lens, acts[per * d:per * (d + 1)])
        Y[:, d] = _reverse_valid(Yd, lens) if backwards else Yd
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Y_h.transpose(1, 0, 2)
    return Y, Y_h


def gru(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: Optional[np.ndarray] = None,
        sequence_lens: Optional[np.ndarray] = None, initial_h: Optional[np.ndarray] = None, *,
        activations: Optional[Sequence] = None, activation_alpha: Sequence[float] = (),
        activation_beta: Sequence[float] = (), clip: Optional[float] = None, direction: str = "forward",
        linear_before_reset: int = 0, layout: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The ONNX GRU operator: returns ``(Y, Y_h)`` (see the module docstring for the attributes)."""
    def one(Xd, W, R, B, h0, lens, acts):
        return _gru_direction(Xd, W, R, B, h0, lens, acts[0], acts[1], clip, linear_before_reset)

    return _run("GRU", 3, X, W, R, B, sequence_lens, initial_h, activations, GRU_DEFAULT_ACTIVATIONS,
                activation_alpha, activation_beta, clip, direction, layout, one)


def rnn(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: Optional[np.ndarray] = None,
        sequence_lens: Optional[np.ndarray] = None, initial_h: Optional[np.ndarray] = None, *,
        activations: Optional[Sequence] = None, activation_alpha: Sequence[float] = (),
        activation_beta: Sequence[float] = (), clip: Optional[float] = None, direction: str = "forward",
        layout: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The ONNX RNN operator: returns ``(Y, Y_h)``."""
    def one(Xd, W, R, B, h0, lens, acts):
        return _rnn_direction(Xd, W, R, B, h0, lens, acts[0], clip)

    return _run("RNN", 1, X, W, R, B, sequence_lens, initial_h, activations, RNN_DEFAULT_ACTIVATIONS,
                activation_alpha, activation_beta, clip, direction, layout, one)


__all__ = ["GRU_DEFAULT_ACTIVATIONS", "RNN_DEFAULT_ACTIVATIONS", "gru", "rnn"]
