"""Numpy oracle of TensorFlow 1.x ``BasicLSTMCell``, ``MultiRNNCell`` and a static unroll (float64).

Written from ``tensorflow/python/ops/rnn_cell_impl.py`` (TF 1.x):

``BasicLSTMCell.call(inputs, state)`` with ``state = LSTMStateTuple(c, h)``::

    concat = concat([inputs, h], 1) @ kernel + bias          # kernel [in + H, 4H], bias [4H]
    i, j, f, o = split(concat, 4, axis=1)
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)
    new_h = tanh(new_c) * sigmoid(o)
    return new_h, LSTMStateTuple(new_c, new_h)

The forget bias is a constructor argument (default 1.0), added at run time and never stored in a
checkpoint. ``MultiRNNCell.call`` feeds each cell's output to the next cell and returns the last
cell's output with the tuple of every cell's new state. ``static_rnn`` applies the cell at every time
step, carrying the state.

This module is an independent oracle: it imports nothing from ``compat`` or ``ports``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

StateTuple = Tuple[np.ndarray, np.ndarray]  # (c, h), as TF's LSTMStateTuple


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, computed stably for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def basic_lstm_cell(x: np.ndarray, state: StateTuple, kernel: np.ndarray, bias: np.ndarray,
                    forget_bias: float = 1.0) -> Tuple[np.ndarray, StateTuple]:
    """One step of ``BasicLSTMCell``: x [B, in], state (c [B, H], h [B, H]) -> (new_h, (new_c, new_h))."""
    c, h = state
    x = np.asarray(x, dtype=np.float64)
    hidden = kernel.shape[1] // 4
    if kernel.shape != (x.shape[1] + hidden, 4 * hidden):
        raise ValueError(f"kernel has shape {kernel.shape}; expected [in + H, 4H] = "
                         f"{(x.shape[1] + hidden, 4 * hidden)}")
    concat = np.concatenate([x, h], axis=1) @ kernel + bias
    i, j, f, o = np.split(concat, 4, axis=1)
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * sigmoid(o)
    return new_h, (new_c, new_h)


def multi_rnn_cell(x: np.ndarray, states: Sequence[StateTuple], layers: Sequence[Tuple[np.ndarray, np.ndarray]],
                   forget_bias: float = 1.0) -> Tuple[np.ndarray, List[StateTuple]]:
    """One step of ``MultiRNNCell`` of BasicLSTMCells; ``layers`` is a list of (kernel, bias)."""
    if len(states) != len(layers):
        raise ValueError(f"{len(states)} states for {len(layers)} layers")
    inp = x
    new_states = []
    for (kernel, bias), state in zip(layers, states):
        inp, new_state = basic_lstm_cell(inp, state, kernel, bias, forget_bias)
        new_states.append(new_state)
    return inp, new_states


def static_rnn(inputs_tm: np.ndarray, initial_states: Sequence[StateTuple],
               layers: Sequence[Tuple[np.ndarray, np.ndarray]], forget_bias: float = 1.0
               ) -> Tuple[np.ndarray, List[StateTuple]]:
    """Unroll ``MultiRNNCell`` over time: inputs [T, B, in] -> (outputs [T, B, H], final states)."""
    states = [(np.asarray(c, np.float64), np.asarray(h, np.float64)) for c, h in initial_states]
    outputs = []
    for t in range(inputs_tm.shape[0]):
        out, states = multi_rnn_cell(inputs_tm[t], states, layers, forget_bias)
        outputs.append(out)
    return np.stack(outputs), states


def zero_states(num_layers: int, batch_size: int, hidden: int) -> List[StateTuple]:
    """``MultiRNNCell.zero_state``: a (c, h) pair of zeros per layer."""
    return [(np.zeros((batch_size, hidden)), np.zeros((batch_size, hidden))) for _ in range(num_layers)]
