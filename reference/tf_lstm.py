"""Numpy oracle of TensorFlow 1.x ``BasicLSTMCell``, ``LSTMCell``, ``MultiRNNCell``, ``static_rnn``,
``dynamic_rnn`` and ``bidirectional_dynamic_rnn`` (float64).

Written from ``tensorflow/python/ops/rnn_cell_impl.py`` and ``tensorflow/python/ops/rnn.py`` (TF 1.x):

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

``LSTMCell.call(inputs, state)`` (``LSTMCell.build``: ``kernel [in + P, 4H]`` where P is ``num_proj`` or
H, ``bias [4H]``, with ``use_peepholes`` ``w_f_diag``, ``w_i_diag``, ``w_o_diag`` [H], with ``num_proj``
``projection/kernel [H, P]``)::

    i, j, f, o = split(concat([inputs, m_prev], 1) @ kernel + bias, 4, 1)
    c = sigmoid(f + forget_bias + w_f_diag * c_prev) * c_prev + sigmoid(i + w_i_diag * c_prev) * act(j)
    c = clip_by_value(c, -cell_clip, cell_clip)                     # if cell_clip is not None
    m = sigmoid(o + w_o_diag * c) * act(c)                           # the clipped c, peephole on the new c
    m = m @ projection/kernel; m = clip_by_value(m, -proj_clip, proj_clip)   # if num_proj (proj_clip)
    return m, LSTMStateTuple(c, m)

``dynamic_rnn(cell, inputs, sequence_length=...)`` (``rnn.py`` ``_dynamic_rnn_loop`` / ``_rnn_step``):
past a sequence's length the output is zeros and the state is copied through unchanged, so the final
state is the state at the last valid step (the initial state for a length of 0).
``bidirectional_dynamic_rnn`` runs ``cell_fw`` over the inputs and ``cell_bw`` over
``reverse_sequence(inputs, sequence_length)`` (``reverse`` of the whole time axis without lengths),
reverses the backward outputs back the same way and returns ``((output_fw, output_bw), (state_fw,
state_bw))``; callers concatenate the outputs on the feature axis.

``stack_bidirectional_dynamic_rnn`` (``tensorflow/contrib/rnn/python/ops/rnn.py``) runs one
``bidirectional_dynamic_rnn`` per layer and feeds the concatenated outputs of layer k to both directions
of layer k + 1.

The other TF 1.x LSTM cells compute ``LSTMCell``'s equations with its variables: ``LSTMBlockCell`` and
``LSTMBlockFusedCell`` (``tensorflow/contrib/rnn/python/ops/lstm_ops.py``, the ``LSTMBlockCell`` /
``BlockLSTM`` kernels: ``[i, ci, f, o] = xh * w + b``, ``cs`` clipped before the output gate's peephole;
their ``cell_clip`` op attribute defaulted to 3.0 in early TF 1.x releases) and ``CudnnLSTM`` in TF's
canonical form (``cudnn_compatible_lstm_cell``: the sum of cuDNN's two biases in the i, j, f, o layout,
run by ``CudnnCompatibleLSTMCell`` = ``LSTMCell(forget_bias=0)``).

This module is an independent oracle: it imports nothing from ``compat`` or ``ports``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from reference.numerics import sigmoid

StateTuple = Tuple[np.ndarray, np.ndarray]  # (c, h), as TF's LSTMStateTuple


def basic_lstm_cell(x: np.ndarray, state: StateTuple, kernel: np.ndarray, bias: np.ndarray,
                    forget_bias: float = 1.0) -> Tuple[np.ndarray, StateTuple]:
    """One step of ``BasicLSTMCell``: x [B, in], state (c [B, H], h [B, H]) -> (new_h, (new_c, new_h))."""
    c, h = state
    x = np.asarray(x)
    x = x.astype(np.result_type(x, np.float64))  # complex stays complex (complex-step differentiation)
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


Cell = Callable[[np.ndarray, StateTuple], Tuple[np.ndarray, StateTuple]]


def lstm_cell(x: np.ndarray, state: StateTuple, kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0, *,
              w_i_diag: Optional[np.ndarray] = None, w_f_diag: Optional[np.ndarray] = None,
              w_o_diag: Optional[np.ndarray] = None, cell_clip: Optional[float] = None,
              proj_kernel: Optional[np.ndarray] = None, proj_clip: Optional[float] = None,
              activation: Callable[[np.ndarray], np.ndarray] = np.tanh) -> Tuple[np.ndarray, StateTuple]:
    """One step of ``LSTMCell``: x [B, in], state (c [B, H], m [B, P]) -> (m, (c, m)).

    Peepholes are given as all three of ``w_i_diag``, ``w_f_diag``, ``w_o_diag`` or none (``use_peepholes``).
    """
    c_prev, m_prev = (np.asarray(s, dtype=np.float64) for s in state)
    x = np.asarray(x, dtype=np.float64)
    hidden = kernel.shape[1] // 4
    proj = hidden if proj_kernel is None else proj_kernel.shape[1]
    if kernel.shape != (x.shape[1] + proj, 4 * hidden):
        raise ValueError(f"kernel has shape {kernel.shape}; expected [in + P, 4H] = {(x.shape[1] + proj, 4 * hidden)}")
    peepholes = [d is not None for d in (w_i_diag, w_f_diag, w_o_diag)]
    if any(peepholes) and not all(peepholes):
        raise ValueError("use_peepholes needs all of w_i_diag, w_f_diag and w_o_diag")
    if proj_clip is not None and proj_kernel is None:
        raise ValueError("proj_clip needs a projection (num_proj)")
    lstm_matrix = np.concatenate([x, m_prev], axis=1) @ kernel + bias
    i, j, f, o = np.split(lstm_matrix, 4, axis=1)
    if all(peepholes):
        c = (sigmoid(f + forget_bias + w_f_diag * c_prev) * c_prev
             + sigmoid(i + w_i_diag * c_prev) * activation(j))
    else:
        c = sigmoid(f + forget_bias) * c_prev + sigmoid(i) * activation(j)
    if cell_clip is not None:
        c = np.clip(c, -cell_clip, cell_clip)
    if all(peepholes):
        m = sigmoid(o + w_o_diag * c) * activation(c)
    else:
        m = sigmoid(o) * activation(c)
    if proj_kernel is not None:
        m = m @ proj_kernel
        if proj_clip is not None:
            m = np.clip(m, -proj_clip, proj_clip)
    return m, (c, m)


def multi_cell(cells: Sequence[Cell]) -> Callable[[np.ndarray, List[StateTuple]], Tuple[np.ndarray, List[StateTuple]]]:
    """``MultiRNNCell(cells)``: each cell's output feeds the next; the state is the list of their states."""
    def call(x, states):
        inp, new_states = x, []
        for cell, state in zip(cells, states):
            inp, new_state = cell(inp, state)
            new_states.append(new_state)
        return inp, new_states
    return call


def _reverse_sequence(a: np.ndarray, lengths: Optional[np.ndarray]) -> np.ndarray:
    """``array_ops.reverse_sequence`` on axis 0 (batch axis 1); the whole axis without lengths."""
    if lengths is None:
        return a[::-1].copy()
    out = a.copy()
    for b, n in enumerate(lengths):
        out[:n, b] = a[:n, b][::-1]
    return out


def _select(live: np.ndarray, new, old):
    """``_copy_one_through`` over a nested state: the new value where live, else the old one."""
    if isinstance(new, (list, tuple)):
        return type(new)(_select(live, n, o) for n, o in zip(new, old))
    return np.where(live[:, None], new, old)


def dynamic_rnn(cell, inputs_tm: np.ndarray, initial_state, sequence_length: Optional[np.ndarray] = None):
    """``dynamic_rnn(cell, inputs, sequence_length, initial_state, time_major=True)``.

    ``cell(x_t, state) -> (output, new_state)`` with a nested state; returns (outputs [T, B, out], state).
    Past a sequence's length: zero output, state copied through.
    """
    inputs_tm = np.asarray(inputs_tm, dtype=np.float64)
    T, B = inputs_tm.shape[:2]
    lengths = np.full(B, T) if sequence_length is None else np.asarray(sequence_length)
    if lengths.shape != (B,) or (lengths < 0).any():
        raise ValueError(f"sequence_length {lengths.tolist()} must be [batch] of non-negative lengths")
    state = initial_state
    outputs = []
    for t in range(T):
        out, new_state = cell(inputs_tm[t], state)
        live = t < lengths
        outputs.append(np.where(live[:, None], out, 0.0))
        state = _select(live, new_state, state)
    return np.stack(outputs), state


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs_tm: np.ndarray, initial_state_fw, initial_state_bw,
                              sequence_length: Optional[np.ndarray] = None):
    """``bidirectional_dynamic_rnn(..., time_major=True)``: ((output_fw, output_bw), (state_fw, state_bw))."""
    out_fw, state_fw = dynamic_rnn(cell_fw, inputs_tm, initial_state_fw, sequence_length)
    out_bw, state_bw = reverse_dynamic_rnn(cell_bw, inputs_tm, initial_state_bw, sequence_length)
    return (out_fw, out_bw), (state_fw, state_bw)


def reverse_dynamic_rnn(cell, inputs_tm: np.ndarray, initial_state, sequence_length: Optional[np.ndarray] = None):
    """The backward half of ``bidirectional_dynamic_rnn``: ``cell`` over ``reverse_sequence(inputs)``, its
    outputs reversed back (so in the input's time order); returns (outputs [T, B, out], state)."""
    inputs_tm = np.asarray(inputs_tm, dtype=np.float64)
    tmp, state = dynamic_rnn(cell, _reverse_sequence(inputs_tm, sequence_length), initial_state, sequence_length)
    return _reverse_sequence(tmp, sequence_length), state


def stack_bidirectional_dynamic_rnn(cells_fw: Sequence[Cell], cells_bw: Sequence[Cell], inputs_tm: np.ndarray,
                                    initial_states_fw: Sequence[StateTuple], initial_states_bw: Sequence[StateTuple],
                                    sequence_length: Optional[np.ndarray] = None):
    """``stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, time_major=True)``: layer k + 1 reads
    concat(output_fw_k, output_bw_k). Returns (outputs [T, B, out_fw + out_bw], states_fw, states_bw), one
    state per layer and direction."""
    inp = np.asarray(inputs_tm, dtype=np.float64)
    states_fw, states_bw = [], []
    for cell_fw, cell_bw, s_fw, s_bw in zip(cells_fw, cells_bw, initial_states_fw, initial_states_bw):
        (out_fw, out_bw), (st_fw, st_bw) = bidirectional_dynamic_rnn(cell_fw, cell_bw, inp, s_fw, s_bw,
                                                                     sequence_length)
        inp = np.concatenate([out_fw, out_bw], axis=2)
        states_fw.append(st_fw)
        states_bw.append(st_bw)
    return inp, states_fw, states_bw
