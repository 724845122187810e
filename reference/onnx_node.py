"""Numpy float64 oracle of a whole ONNX ``LSTM`` node: every direction, layout and activation.

Built on :func:`reference.onnx_lstm.lstm` (one forward direction); imports nothing from the project.
From onnx/docs/Operators.md ``LSTM``: ``direction="reverse"`` runs the recurrence from the last valid
step of each sequence to the first (with ``sequence_lens``, only the valid prefix is reversed) and writes
Y in the input's time order; ``"bidirectional"`` stacks forward and reverse in Y's ``num_directions`` axis
and in Y_h / Y_c. ``layout=1``: X, Y, initial and final states are batch-major ([B, T, in],
[B, T, dirs, H], [B, dirs, H]). Activation functions (f, g, h per direction), with alpha and beta:
Relu, Tanh, Sigmoid, Affine (alpha x + beta), LeakyRelu, ThresholdedRelu, ScaledTanh (alpha tanh(beta x)),
HardSigmoid (clip(alpha x + beta, 0, 1)), Elu, Softsign, Softplus.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from reference.onnx_lstm import lstm as _forward
from reference.onnx_lstm import sigmoid


def activation(name: str, alpha: Optional[float] = None, beta: Optional[float] = None):
    """The function of one ONNX activation name with its parameters."""
    table = {
        "Relu": lambda x: np.maximum(x, 0.0),
        "Tanh": np.tanh,
        "Sigmoid": sigmoid,
        "Affine": lambda x: alpha * x + beta,
        "LeakyRelu": lambda x: np.where(x >= 0, x, alpha * x),
        "ThresholdedRelu": lambda x: np.where(x > alpha, x, 0.0),
        "ScaledTanh": lambda x: alpha * np.tanh(beta * x),
        "HardSigmoid": lambda x: np.clip(alpha * x + beta, 0.0, 1.0),
        "Elu": lambda x: np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0)),
        "Softsign": lambda x: x / (1.0 + np.abs(x)),
        "Softplus": lambda x: np.logaddexp(0.0, x),
    }
    return table[name]


def _reverse(a, lens):
    out = np.array(a, copy=True)
    for b, n in enumerate(lens):
        out[:n, ..., b, :] = a[:n, ..., b, :][::-1]
    return out


def lstm_node(X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
              direction: str = "forward", layout: int = 0, activations: Optional[Sequence] = None,
              clip: Optional[float] = None, input_forget: int = 0):
    """(Y, Y_h, Y_c) of the node. ``activations``: one (name, *params) entry per function, 3 per direction."""
    X = np.asarray(X, dtype=np.float64)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else np.asarray(initial_h).transpose(1, 0, 2)
        initial_c = None if initial_c is None else np.asarray(initial_c).transpose(1, 0, 2)
    T, batch, _ = X.shape
    dirs = 2 if direction == "bidirectional" else 1
    lens = np.full(batch, T) if sequence_lens is None else np.asarray(sequence_lens)
    acts = activations or [("Sigmoid",), ("Tanh",), ("Tanh",)] * dirs
    funcs = [activation(a[0], *a[1:]) for a in acts]
    Ys, hs, cs = [], [], []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        sl = slice(d, d + 1)
        args = dict(sequence_lens=sequence_lens,
                    initial_h=None if initial_h is None else initial_h[sl],
                    initial_c=None if initial_c is None else initial_c[sl],
                    P=None if P is None else P[sl], activations=funcs[3 * d:3 * d + 3], clip=clip,
                    input_forget=input_forget)
        x = _reverse(X, lens) if reverse else X
        Y, h, c = _forward(x, W[sl], R[sl], None if B is None else B[sl], **args)
        if reverse:
            Y = _reverse(Y, lens)
        Ys.append(Y)
        hs.append(h)
        cs.append(c)
    Y, Y_h, Y_c = np.concatenate(Ys, axis=1), np.concatenate(hs), np.concatenate(cs)
    if layout == 1:
        return Y.transpose(2, 0, 1, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    return Y, Y_h, Y_c
