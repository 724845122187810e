"""Numpy float64 oracle of the ONNX ``LSTM`` operator (onnx ``docs/Operators.md``, LSTM, opsets 7-22).

Written from the operator's specification, with onnxruntime's CPU kernel
(``onnxruntime/core/providers/cpu/rnn/uni_directional_lstm.cc``, ``rnn_helpers.{h,cc}``) settling what the
specification leaves open; imports nothing from the project. Inputs (``layout=0``)::

    X [T, B, in]   W [D, 4H, in]   R [D, 4H, H]   B [D, 8H] = [Wb, Rb]   (gate blocks i, o, f, c)
    sequence_lens [B] (optional)   initial_h [D, B, H]   initial_c [D, B, H]   P [D, 3H] peepholes (i, o, f)

``D`` (num_directions) is 2 for ``direction="bidirectional"``, else 1. Equations (defaults f = Sigmoid,
g = Tanh, h = Tanh)::

    it = f(Xt W_i^T + Ht-1 R_i^T + Pi * Ct-1 + Wb_i + Rb_i)
    ft = f(Xt W_f^T + Ht-1 R_f^T + Pf * Ct-1 + Wb_f + Rb_f)
    ct = g(Xt W_c^T + Ht-1 R_c^T + Wb_c + Rb_c)
    Ct = ft * Ct-1 + it * ct
    ot = f(Xt W_o^T + Ht-1 R_o^T + Po * Ct + Wb_o + Rb_o)
    Ht = ot * h(Ct)

Attributes:

``clip``: "applied to the input of activations": every gate pre-activation (peephole term included) is
    clamped to [-clip, clip] before f or g (``GateComputations``: ``clip_with_bias_ptr_`` then
    ``activation_f_.func``); the cell state itself is not clipped, nor is the input of h.
``input_forget=1``: "couple the input and forget gates": ``ft = 1 - it`` (``pf[i] = 1.0f - pi[i]``).
``activations``: 3 names (6 when bidirectional: forward f, g, h then reverse f, g, h), from the operator's
    list; ``activation_alpha`` / ``activation_beta`` are consumed in order by the functions that take
    them, as ``rnn_helpers.cc`` ``NormalizeActivationArgumentAndGetAlphaBetaCount`` does (Affine and
    ScaledTanh take alpha and beta, LeakyRelu, ThresholdedRelu and Elu alpha, HardSigmoid both); a function
    whose value the lists do not reach gets onnxruntime's default: LeakyRelu 0.01, HardSigmoid 0.2 / 0.5,
    Elu 1.0, anything else 0.0 (the specification says "the same as of corresponding ONNX operators",
    which would make ThresholdedRelu's 1.0 and Affine's 1.0 / 0.0; onnxruntime uses 0.0; give the values
    explicitly to stay clear of the difference).
``direction``: "forward", "reverse" (the sequence is read back to front; with ``sequence_lens`` only each
    sequence's valid prefix is reversed, ``rnn_helpers.h`` ``ReverseSequence``; Y is written back in the
    original time order) or "bidirectional" (both; Y[:, 0] forward, Y[:, 1] reverse).
``sequence_lens``: a sequence's state stops at its length; Y past the length is 0; Y_h / Y_c are the
    states at its last valid step, and **zeros for a length of 0** (onnxruntime ``ComputeImpl``:
    "zero out final_hidden_state if seq_len == 0", and ``final_cell_state`` filled with ``T{}``); the
    specification leaves both open.
``layout=1``: X [B, T, in], Y [B, T, D, H], initial and final states [B, D, H].

Outputs ``Y [T, D, B, H]``, ``Y_h [D, B, H]``, ``Y_c [D, B, H]``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from reference.numerics import sigmoid


def _softplus(x):
    return np.logaddexp(0.0, x)


# name: (function of (x, alpha, beta), takes alpha, takes beta, default alpha, default beta)
# Formulas from the operator's "Activation functions" list.
_TABLE = {
    "Relu": (lambda x, a, b: np.maximum(x, 0.0), False, False, 0.0, 0.0),
    "Tanh": (lambda x, a, b: np.tanh(x), False, False, 0.0, 0.0),
    "Sigmoid": (lambda x, a, b: sigmoid(x), False, False, 0.0, 0.0),
    "Affine": (lambda x, a, b: a * x + b, True, True, 0.0, 0.0),
    "LeakyRelu": (lambda x, a, b: np.where(x >= 0, x, a * x), True, False, 0.01, 0.0),
    # The LSTM operator's list says "x if x >= alpha"; the ThresholdedRelu operator and onnxruntime's
    # rnn_helpers keep x only where x > alpha (an input equal to alpha gives 0 in onnxruntime).
    "ThresholdedRelu": (lambda x, a, b: np.where(x > a, x, 0.0), True, False, 0.0, 0.0),
    "ScaledTanh": (lambda x, a, b: a * np.tanh(b * x), True, True, 0.0, 0.0),
    "HardSigmoid": (lambda x, a, b: np.minimum(np.maximum(a * x + b, 0.0), 1.0), True, True, 0.2, 0.5),
    "Elu": (lambda x, a, b: np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0.0))), True, False, 1.0, 0.0),
    "Softsign": (lambda x, a, b: x / (1.0 + np.abs(x)), False, False, 0.0, 0.0),
    "Softplus": (lambda x, a, b: _softplus(x), False, False, 0.0, 0.0),
}
_BY_LOWER = {name.lower(): name for name in _TABLE}

#: The operator's activation names (matched case-insensitively, as onnxruntime does).
ACTIVATION_NAMES = tuple(_TABLE)
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")

Activation = Callable[[np.ndarray], np.ndarray]


def resolve_activations(names: Sequence, alphas: Sequence[float] = (), betas: Sequence[float] = ()
                        ) -> List[Tuple[str, Activation]]:
    """``[(canonical name, function)]`` for ``names``, consuming ``alphas`` / ``betas`` in order.

    Entries of ``names`` may also be callables (used as they are, consuming nothing).
    """
    alphas, betas = list(alphas), list(betas)
    out = []
    for name in names:
        if callable(name):
            out.append(("callable", name))
            continue
        key = _BY_LOWER.get(str(name).lower())
        if key is None:
            raise ValueError(f"unknown ONNX activation {name!r}; known: {list(_TABLE)}")
        fn, takes_a, takes_b, a, b = _TABLE[key]
        if takes_a and alphas:
            a = float(alphas.pop(0))
        if takes_b and betas:
            b = float(betas.pop(0))
        out.append((key, lambda x, fn=fn, a=a, b=b: fn(np.asarray(x, dtype=np.float64), a, b)))
    return out


def _check(name: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != tuple(shape):
        raise ValueError(f"ONNX LSTM input {name} has shape {list(a.shape)}; expected {list(shape)}")
    return a


def _reverse_valid(a: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Reverse each column's first lens[b] steps along axis 0 (the rest stays): ReverseSequence."""
    out = a.copy()
    for b, n in enumerate(lens):
        out[:n, b] = a[:n, b][::-1]
    return out


def _one_direction(X, W, R, B, P, h, c, lens, f_act, g_act, h_act, clip, input_forget):
    """Forward recurrence over X [T, B, in] for one direction's [4H, ...] tensors; returns (Y, h, c)."""
    T, batch, _ = X.shape
    H = R.shape[1]

    def block(a, k):
        return a[k * H:(k + 1) * H]

    Wi, Wo, Wf, Wc = (block(W, k) for k in range(4))
    Ri, Ro, Rf, Rc = (block(R, k) for k in range(4))
    Wbi, Wbo, Wbf, Wbc = (block(B[:4 * H], k) for k in range(4))
    Rbi, Rbo, Rbf, Rbc = (block(B[4 * H:], k) for k in range(4))
    Pi, Po, Pf = (block(P, k) for k in range(3))

    def pre(v):
        return v if clip is None else np.clip(v, -clip, clip)

    Y = np.zeros((T, batch, H))
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
        Y[t] = np.where(live, Hn, 0.0)
    empty = (lens == 0)[:, None]
    return Y, np.where(empty, 0.0, h), np.where(empty, 0.0, c)


def lstm(X: np.ndarray, W: np.ndarray, R: np.ndarray, B: Optional[np.ndarray] = None,
         sequence_lens: Optional[np.ndarray] = None, initial_h: Optional[np.ndarray] = None,
         initial_c: Optional[np.ndarray] = None, P: Optional[np.ndarray] = None, *,
         activations: Optional[Sequence] = None, activation_alpha: Sequence[float] = (),
         activation_beta: Sequence[float] = (), clip: Optional[float] = None, input_forget: int = 0,
         direction: str = "forward", layout: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ONNX LSTM operator: returns ``(Y, Y_h, Y_c)`` (see the module docstring for the attributes)."""
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"ONNX LSTM direction must be forward, reverse or bidirectional; got {direction!r}")
    if layout not in (0, 1):
        raise ValueError(f"ONNX LSTM layout must be 0 or 1; got {layout!r}")
    D = 2 if direction == "bidirectional" else 1
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"ONNX LSTM input X has shape {list(X.shape)}; expected 3 dimensions")
    if layout == 1:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else np.asarray(initial_h).transpose(1, 0, 2)
        initial_c = None if initial_c is None else np.asarray(initial_c).transpose(1, 0, 2)
    T, batch, n_in = X.shape
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[0] != D or R.shape[1] != 4 * R.shape[2]:
        raise ValueError(f"ONNX LSTM input R has shape {list(R.shape)}; expected [{D}, 4*hidden_size, hidden_size]")
    H = R.shape[2]
    W = _check("W", W, (D, 4 * H, n_in))
    B = np.zeros((D, 8 * H)) if B is None else _check("B", B, (D, 8 * H))
    h0 = np.zeros((D, batch, H)) if initial_h is None else _check("initial_h", initial_h, (D, batch, H))
    c0 = np.zeros((D, batch, H)) if initial_c is None else _check("initial_c", initial_c, (D, batch, H))
    P = np.zeros((D, 3 * H)) if P is None else _check("P", P, (D, 3 * H))
    if sequence_lens is None:
        lens = np.full(batch, T)
    else:
        lens = np.asarray(sequence_lens)
        if lens.shape != (batch,) or (lens < 0).any() or (lens > T).any():
            raise ValueError(f"ONNX LSTM input sequence_lens {lens.tolist()} must be [batch_size] in [0, {T}]")
    names = list(DEFAULT_ACTIVATIONS) * D if activations is None else list(activations)
    if len(names) != 3 * D:
        raise ValueError(f"ONNX LSTM with direction={direction!r} takes {3 * D} activations; got {len(names)}")
    acts = [fn for _, fn in resolve_activations(names, activation_alpha, activation_beta)]

    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    Y_c = np.zeros((D, batch, H))
    for d in range(D):
        backwards = direction == "reverse" or d == 1
        Xd = _reverse_valid(X, lens) if backwards else X
        f_act, g_act, h_act = acts[3 * d:3 * d + 3]
        Yd, Y_h[d], Y_c[d] = _one_direction(Xd, W[d], R[d], B[d], P[d], h0[d], c0[d], lens, f_act, g_act, h_act,
                                            clip, input_forget)
        Y[:, d] = _reverse_valid(Yd, lens) if backwards else Yd
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    return Y, Y_h, Y_c
