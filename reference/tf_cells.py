"""Numpy float64 oracle of TensorFlow 1.x's LSTM cells and the RNN drivers that run them.

Written from the TF 1.x sources; imports nothing from ``compat`` or ``ports``.

``LSTMCell.call`` (tensorflow/python/ops/rnn_cell_impl.py), state ``(c, m)``::

    lstm_matrix = concat([inputs, m_prev], 1) @ kernel + bias      # kernel [in + P or H, 4H]
    i, j, f, o = split(lstm_matrix, 4, axis=1)
    with peepholes:  c = sigmoid(f + forget_bias + w_f_diag * c_prev) * c_prev
                         + sigmoid(i + w_i_diag * c_prev) * activation(j)
    without:         c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * activation(j)
    if cell_clip:    c = clip(c, -cell_clip, cell_clip)
    m = sigmoid(o + w_o_diag * c) * activation(c)                  # (no w_o_diag term without peepholes)
    if num_proj:     m = m @ projection_kernel                      # [H, P]
        if proj_clip: m = clip(m, -proj_clip, proj_clip)

``BasicLSTMCell`` is the same without the options. ``LSTMBlockCell`` / ``LSTMBlockFusedCell``
(tensorflow/contrib/rnn/python/ops/lstm_ops.py, the ``LSTMBlockCell`` / ``BlockLSTM`` kernels) compute the
same equations with the same variables (``[i, ci, f, o] = xh * w + b``; ``cs = clip(cs, cell_clip)``
before the output gate's peephole); their ``cell_clip`` op attribute defaulted to 3.0 in early TF 1.x
releases. ``CudnnLSTM`` (cuDNN): two biases, no forget bias, gates i, f, c, o; its checkpoints in TF's
canonical form (``cudnn_compatible_lstm_cell``) hold the sum of the two biases in the i, j, f, o layout,
run by ``CudnnCompatibleLSTMCell`` = ``LSTMCell(forget_bias=0)``.

Drivers (tensorflow/python/ops/rnn.py): ``dynamic_rnn`` with ``sequence_length``: past a sequence's
length the output is zero and the state is copied through (``_rnn_step``), so the final state is the
state at the last valid step. ``MultiRNNCell`` feeds each cell's output to the next at every step.
``bidirectional_dynamic_rnn``: the backward RNN reads ``reverse_sequence(inputs, sequence_length)`` (only
the valid prefix of each sequence is reversed) and its outputs are reversed back the same way; the two
outputs are returned separately (callers concatenate them). ``stack_bidirectional_dynamic_rnn`` feeds
the concatenated outputs of layer k to both directions of layer k + 1.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class Cell:
    """One TF LSTM cell's variables and constructor options (TF's own layout and names)."""

    def __init__(self, kernel, bias, *, w_i_diag=None, w_f_diag=None, w_o_diag=None, projection=None,
                 forget_bias: float = 1.0, cell_clip: Optional[float] = None, proj_clip: Optional[float] = None):
        self.kernel = np.asarray(kernel, dtype=np.float64)
        self.bias = None if bias is None else np.asarray(bias, dtype=np.float64)
        self.hidden = self.kernel.shape[1] // 4
        peep = [w_i_diag, w_f_diag, w_o_diag]
        if any(p is not None for p in peep) and any(p is None for p in peep):
            raise ValueError("peepholes need all of w_i_diag, w_f_diag and w_o_diag")
        self.peep = None if w_i_diag is None else [np.asarray(p, dtype=np.float64) for p in peep]
        self.projection = None if projection is None else np.asarray(projection, dtype=np.float64)
        self.forget_bias = forget_bias
        self.cell_clip = cell_clip
        self.proj_clip = proj_clip

    @property
    def output_size(self) -> int:
        return self.hidden if self.projection is None else self.projection.shape[1]

    def step(self, x, c_prev, m_prev):
        """``LSTMCell.call``: returns (m, c)."""
        z = np.concatenate([x, m_prev], axis=1) @ self.kernel
        if self.bias is not None:
            z = z + self.bias
        H = self.hidden
        i, j, f, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        if self.peep is not None:
            wi, wf, wo = self.peep
            c = sigmoid(f + self.forget_bias + wf * c_prev) * c_prev + sigmoid(i + wi * c_prev) * np.tanh(j)
        else:
            c = sigmoid(f + self.forget_bias) * c_prev + sigmoid(i) * np.tanh(j)
        if self.cell_clip is not None:
            c = np.clip(c, -self.cell_clip, self.cell_clip)
        if self.peep is not None:
            m = sigmoid(o + self.peep[2] * c) * np.tanh(c)
        else:
            m = sigmoid(o) * np.tanh(c)
        if self.projection is not None:
            m = m @ self.projection
            if self.proj_clip is not None:
                m = np.clip(m, -self.proj_clip, self.proj_clip)
        return m, c


def dynamic_rnn(cells: Sequence[Cell], x: np.ndarray, sequence_length: Optional[np.ndarray] = None,
                initial_state: Optional[Sequence[Tuple[np.ndarray, np.ndarray]]] = None
                ) -> Tuple[np.ndarray, List[Tuple[np.ndarray, np.ndarray]]]:
    """``dynamic_rnn(MultiRNNCell(cells), x, sequence_length, time_major=True)``.

    x [T, B, in]; returns (outputs [T, B, out], [(c, m) per cell]) as TF's LSTMStateTuples.
    """
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    lens = np.full(B, T) if sequence_length is None else np.asarray(sequence_length)
    if initial_state is None:
        states = [(np.zeros((B, c.hidden)), np.zeros((B, c.output_size))) for c in cells]
    else:
        states = [(np.asarray(c, np.float64), np.asarray(m, np.float64)) for c, m in initial_state]
    outputs = np.zeros((T, B, cells[-1].output_size))
    for t in range(T):
        live = (t < lens)[:, None]
        inp = x[t]
        new_states = []
        for cell, (c_prev, m_prev) in zip(cells, states):
            m, c = cell.step(inp, c_prev, m_prev)
            new_states.append((np.where(live, c, c_prev), np.where(live, m, m_prev)))
            inp = m
        states = new_states
        outputs[t] = np.where(live, inp, 0.0)
    return outputs, states


def reverse_sequence(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)``: each valid prefix reversed."""
    out = np.array(x, copy=True)
    for b, n in enumerate(np.asarray(lengths)):
        out[:n, b] = x[:n, b][::-1]
    return out


def reverse_rnn(cells: Sequence[Cell], x: np.ndarray, sequence_length: Optional[np.ndarray] = None):
    """The backward half of ``bidirectional_dynamic_rnn``: outputs in the original time order."""
    T, B = x.shape[:2]
    lens = np.full(B, T) if sequence_length is None else np.asarray(sequence_length)
    out, states = dynamic_rnn(cells, reverse_sequence(x, lens), lens)
    return reverse_sequence(out, lens), states


def bidirectional_dynamic_rnn(cells_fw: Sequence[Cell], cells_bw: Sequence[Cell], x: np.ndarray,
                              sequence_length: Optional[np.ndarray] = None):
    """``bidirectional_dynamic_rnn(MultiRNNCell(cells_fw), MultiRNNCell(cells_bw), ...)``:
    ((out_fw, out_bw), (states_fw, states_bw))."""
    out_fw, st_fw = dynamic_rnn(cells_fw, x, sequence_length)
    out_bw, st_bw = reverse_rnn(cells_bw, x, sequence_length)
    return (out_fw, out_bw), (st_fw, st_bw)


def stack_bidirectional_dynamic_rnn(cells_fw: Sequence[Cell], cells_bw: Sequence[Cell], x: np.ndarray,
                                    sequence_length: Optional[np.ndarray] = None):
    """``stack_bidirectional_dynamic_rnn``: layer k + 1 reads concat(fw_k, bw_k).

    Returns (outputs [T, B, 2 * out], states_fw, states_bw), one (c, m) per layer and direction."""
    inp = np.asarray(x, dtype=np.float64)
    st_fw, st_bw = [], []
    for fw, bw in zip(cells_fw, cells_bw):
        (o_fw, o_bw), (s_fw, s_bw) = bidirectional_dynamic_rnn([fw], [bw], inp, sequence_length)
        inp = np.concatenate([o_fw, o_bw], axis=2)
        st_fw += s_fw
        st_bw += s_bw
    return inp, st_fw, st_bw
