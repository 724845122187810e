"""Numpy float64 oracle of one Keras ``LSTM`` layer (Keras 2.x ``keras/layers/recurrent.py``).

Written from Keras's ``LSTMCell.call`` and the TensorFlow backend's ``K.rnn``; imports nothing from
the project. Weights in the Keras layout, gates in the column order i, f, c, o::

    kernel [in, 4H]   recurrent_kernel [H, 4H]   bias [4H] (or None with use_bias=False)

    z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
    i = rec_act(z_i)   f = rec_act(z_f)   c = f * c_{t-1} + i * act(z_c)   o = rec_act(z_o)
    h = o * act(c)

``recurrent_activation``: Keras 1 (``inner_activation``) and Keras 2 before 2.3 defaulted to
``"hard_sigmoid"``; Keras 2.3 / tf.keras 2 default to ``"sigmoid"``. A model trained with one and run
with the other gives different numbers, so the caller states which. ``hard_sigmoid`` here is the
Keras 1/2 backend's ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3 changed it to ``relu6(x + 3) / 6``, i.e.
slope 1/6; pass ``"hard_sigmoid_keras3"`` for that one).

``unit_forget_bias=True`` only initialises the f block of ``bias`` to 1; it is stored in the weights,
so nothing is added at run time (unlike TF's BasicLSTMCell ``forget_bias``).

Masking (``K.rnn`` with a mask, ``unroll=False``, the default): at a masked step the output is the
previous h (``tf.where(mask_t, output, states[0])``) and both states keep their previous values.
(With ``unroll=True`` Keras 2 instead repeats the previous *output*, zeros before the first step; not
modelled here.)

Keras tensors are batch-major: x [B, T, in], outputs [B, T, H].
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np

Activation = Union[str, Callable[[np.ndarray], np.ndarray]]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, computed without overflow for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras 1/2 backend ``hard_sigmoid``: ``clip(0.2 * x + 0.5, 0, 1)``."""
    return np.clip(0.2 * np.asarray(x, dtype=np.float64) + 0.5, 0.0, 1.0)


def hard_sigmoid_keras3(x: np.ndarray) -> np.ndarray:
    """Keras 3 ``hard_sigmoid``: ``relu6(x + 3) / 6``."""
    return np.clip(np.asarray(x, dtype=np.float64) + 3.0, 0.0, 6.0) / 6.0


ACTIVATIONS = {
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "hard_sigmoid_keras3": hard_sigmoid_keras3,
    "tanh": np.tanh,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
}


def _activation(a: Activation) -> Callable[[np.ndarray], np.ndarray]:
    if callable(a):
        return a
    try:
        return ACTIVATIONS[a]
    except KeyError:
        raise ValueError(f"unknown activation {a!r}; known: {sorted(ACTIVATIONS)}") from None


def lstm_cell(x_t: np.ndarray, h: np.ndarray, c: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
              bias: Optional[np.ndarray] = None, recurrent_activation: Activation = "sigmoid",
              activation: Activation = "tanh") -> Tuple[np.ndarray, np.ndarray]:
    """One ``LSTMCell.call`` step: (x_t [B, in], h [B, H], c [B, H]) -> (h', c')."""
    hidden = recurrent_kernel.shape[0]
    rec_act, act = _activation(recurrent_activation), _activation(activation)
    z = x_t @ kernel + h @ recurrent_kernel
    if bias is not None:
        z = z + bias
    z_i, z_f, z_c, z_o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    i = rec_act(z_i)
    f = rec_act(z_f)
    c_new = f * c + i * act(z_c)
    o = rec_act(z_o)
    return o * act(c_new), c_new


def lstm_layer(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: Optional[np.ndarray] = None,
               initial_state: Optional[Tuple[np.ndarray, np.ndarray]] = None, mask: Optional[np.ndarray] = None,
               recurrent_activation: Activation = "sigmoid", activation: Activation = "tanh"
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``LSTM(return_sequences=True, return_state=True)`` on x [B, T, in].

    Args:
        initial_state: ``(h0, c0)`` each [B, H] (Keras's state order), zeros when None.
        mask: [B, T] booleans or 0/1 (Keras's mask layout); masked steps carry output and states.

    Returns:
        ``(outputs [B, T, H], h_T [B, H], c_T [B, H])``.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    recurrent_kernel = np.asarray(recurrent_kernel, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x has shape {list(x.shape)}; expected [B, T, in]")
    B, T, n_in = x.shape
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != 4 * recurrent_kernel.shape[0]:
        raise ValueError(f"recurrent_kernel has shape {list(recurrent_kernel.shape)}; expected [H, 4H]")
    hidden = recurrent_kernel.shape[0]
    if kernel.shape != (n_in, 4 * hidden):
        raise ValueError(f"kernel has shape {list(kernel.shape)}; expected [in, 4H] = {[n_in, 4 * hidden]}")
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != (4 * hidden,):
            raise ValueError(f"bias has shape {list(bias.shape)}; expected [4H] = [{4 * hidden}]")
    if initial_state is None:
        h = np.zeros((B, hidden))
        c = np.zeros((B, hidden))
    else:
        h, c = (np.asarray(s, dtype=np.float64) for s in initial_state)
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (B, T):
            raise ValueError(f"mask has shape {list(mask.shape)}; expected [B, T] = {[B, T]}")
    outputs = np.empty((B, T, hidden))
    for t in range(T):
        h_new, c_new = lstm_cell(x[:, t], h, c, kernel, recurrent_kernel, bias, recurrent_activation, activation)
        if mask is not None:
            keep = mask[:, t][:, None]
            h_new = np.where(keep, h_new, h)  # output = tf.where(mask_t, output, states[0])
            c_new = np.where(keep, c_new, c)
        h, c = h_new, c_new
        outputs[:, t] = h
    return outputs, h, c
