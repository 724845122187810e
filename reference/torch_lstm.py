"""Numpy float64 oracle of ``torch.nn.LSTM`` with ``proj_size``, ``bidirectional`` and packed sequences.

Written from the ``torch.nn.LSTM`` documentation (``torch/nn/modules/rnn.py``, class ``LSTM``); imports
nothing from the project. Per layer k and direction (suffix ``_reverse`` for the backward one)::

    weight_ih [4H, in_k]   weight_hh [4H, P]   bias_ih [4H]   bias_hh [4H]   weight_hr [P, H] (proj_size > 0)
    gate blocks i | f | g | o;   P = proj_size, or H without projections

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)    f = sigmoid(...)    g = tanh(...)    o = sigmoid(...)
    c' = f * c + i * g        h' = o * tanh(c')        h' = W_hr h'   ("If proj_size > 0 ... h_t = W_hr h_t")

``bidirectional``: the backward direction reads each sequence from its last valid step to its first (a
packed sequence's valid part only); the layer's output is concat(forward, backward) on the feature axis
(in_k = 2P for k > 0). ``h_n`` / ``c_n`` are [layers * directions, B, P | H] ordered layer 0 forward,
layer 0 backward, layer 1 forward, ...; "for bidirectional LSTMs, h_n is not equivalent to the last
element of output".

``lengths`` (a packed sequence): outputs past a sequence's length are 0 (``pad_packed_sequence``'s
default ``padding_value``) and its final state is the state at its last valid step. (PyTorch refuses a
length of 0; here the initial state is returned for it.)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from reference.numerics import sigmoid


def _direction(x, p: Dict[str, np.ndarray], h, c, lengths, backwards: bool):
    """One direction of one layer over x [T, B, in]: (outputs [T, B, P], h, c)."""
    T, B, _ = x.shape
    H = p["weight_hh"].shape[0] // 4
    out = np.zeros((T, B, h.shape[1]))
    for b in range(B):
        steps = range(lengths[b] - 1, -1, -1) if backwards else range(lengths[b])
        hb, cb = h[b], c[b]
        for t in steps:
            z = p["weight_ih"] @ x[t, b] + p["weight_hh"] @ hb
            if p.get("bias_ih") is not None:
                z = z + p["bias_ih"]
            if p.get("bias_hh") is not None:
                z = z + p["bias_hh"]
            i, f, g, o = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
            cb = f * cb + i * g
            hb = o * np.tanh(cb)
            if p.get("weight_hr") is not None:
                hb = p["weight_hr"] @ hb
            out[t, b] = hb
        h[b], c[b] = hb, cb
    return out, h, c


def lstm(x: np.ndarray, layers: List, hx: Optional[Tuple[np.ndarray, np.ndarray]] = None,
         lengths: Optional[np.ndarray] = None, bidirectional: bool = False):
    """``torch.nn.LSTM`` forward on x [T, B, in] (time-major).

    ``layers``: per layer a dict of that layer's tensors (names as above without ``_l{k}``), or for
    ``bidirectional`` a pair (forward dict, backward dict). ``hx``: (h0 [L*D, B, P], c0 [L*D, B, H]).
    Returns ``(output [T, B, D*P], (h_n, c_n))``.
    """
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    first = layers[0][0] if bidirectional else layers[0]
    H = first["weight_hh"].shape[0] // 4
    P = H if first.get("weight_hr") is None else first["weight_hr"].shape[0]
    L = len(layers)
    if hx is None:
        h0, c0 = np.zeros((L * D, B, P)), np.zeros((L * D, B, H))
    else:
        h0, c0 = (np.asarray(s, dtype=np.float64) for s in hx)
    lens = np.full(B, T) if lengths is None else np.asarray(lengths)
    if lens.shape != (B,) or (lens < 0).any() or (lens > T).any():
        raise ValueError(f"lengths {lens.tolist()} must be [batch] in [0, {T}]")
    inp = x
    h_n, c_n = [], []
    for k, layer in enumerate(layers):
        dirs = layer if bidirectional else (layer,)
        outs = []
        for d, p in enumerate(dirs):
            out, h, c = _direction(inp, p, h0[k * D + d].copy(), c0[k * D + d].copy(), lens, backwards=d == 1)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        inp = np.concatenate(outs, axis=2)
    return inp, (np.stack(h_n), np.stack(c_n))
