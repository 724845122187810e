"""Numpy float64 oracle of TensorFlow 1.x's GRU and simple RNN cells, the cell wrappers, ``MultiRNNCell`` of
mixed cells and ``dynamic_rnn`` / ``bidirectional_dynamic_rnn`` with ``sequence_length``.

Written from TF 1.x ``tensorflow/python/ops/rnn_cell_impl.py`` (``BasicRNNCell.call``, ``GRUCell.build`` /
``GRUCell.call``, ``DropoutWrapper._call`` / ``_dropout`` / ``_variational_recurrent_dropout_value``,
``_default_dropout_state_filter_visitor``, ``ResidualWrapper.__call__``, ``MultiRNNCell.call``),
``tensorflow/python/ops/nn_ops.py`` (``dropout``), ``tensorflow/python/ops/rnn.py`` (``_rnn_step``,
``bidirectional_dynamic_rnn``) and ``tensorflow/contrib/rnn/python/ops/gru_ops.py`` (``GRUBlockCell``, the
``GRUBlockCell`` kernel's equations in its docstring). The LSTM cells are :mod:`reference.tf_lstm`'s. Imports
nothing from ``compat``.

A cell here is a function ``cell(x [B, in], state) -> (output, new_state)``; states are arrays, tuples of
states (``MultiRNNCell``), or :class:`LSTMState` (TF's ``LSTMStateTuple(c, h)``).

``BasicRNNCell``: ``output = new_state = act(concat([x, h]) @ kernel + bias)``.
``GRUCell``::

    r, u = split(sigmoid(concat([x, h]) @ gates/kernel + gates/bias), 2, axis=1)
    c = act(concat([x, r * h]) @ candidate/kernel + candidate/bias)
    new_h = u * h + (1 - u) * c

``GRUBlockCell`` (contrib, variables ``w_ru``, ``b_ru``, ``w_c``, ``b_c``; ``GRUBlockCellV2`` names them as
GRUCell): the same equations, ``h = (1 - u) * c + u * h_prev``.
Dropout (``nn_ops.dropout``, TF 1.x): ``x / keep_prob * floor(keep_prob + noise)``, noise uniform in [0, 1).
``DropoutWrapper``: input dropout, the cell, dropout of the new state's leaves that the filter selects (by
default all but an ``LSTMStateTuple``'s c), output dropout; variational masks have shape [1, depth], one per
component for the whole run. The noise is given from outside (``noise(kind, index, step, shape)``), so that
the structure is exact.
``dynamic_rnn(sequence_length)``: past a sequence's end the output is 0 and the state copied through.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from reference.numerics import sigmoid
from reference.tf_lstm import _reverse_sequence as reverse_sequence  # array_ops.reverse_sequence


class LSTMState(NamedTuple):
    """TF's ``LSTMStateTuple``: c first."""

    c: np.ndarray
    h: np.ndarray


def basic_rnn_cell(kernel, bias, activation=np.tanh) -> Callable:
    """``BasicRNNCell`` with its ``kernel`` [in + H, H] and ``bias`` [H]."""
    def cell(x, h):
        out = activation(np.concatenate([x, h], axis=1) @ kernel + bias)
        return out, out
    return cell


def gru_cell(gates_kernel, gates_bias, candidate_kernel, candidate_bias, activation=np.tanh) -> Callable:
    """``GRUCell`` with ``gates/kernel`` [in + H, 2H] (r then u), ``gates/bias`` [2H], ``candidate/kernel``
    [in + H, H], ``candidate/bias`` [H]."""
    def cell(x, h):
        H = h.shape[1]
        value = sigmoid(np.concatenate([x, h], axis=1) @ gates_kernel + gates_bias)
        r, u = value[:, :H], value[:, H:]
        c = activation(np.concatenate([x, r * h], axis=1) @ candidate_kernel + candidate_bias)
        new_h = u * h + (1 - u) * c
        return new_h, new_h
    return cell


def gru_block_cell(w_ru, b_ru, w_c, b_c) -> Callable:
    """contrib ``GRUBlockCell`` (gru_ops.py; the GRUBlockCell kernel): tanh candidate, h = (1 - u) c + u h."""
    def cell(x, h_prev):
        H = h_prev.shape[1]
        ru = sigmoid(np.concatenate([x, h_prev], axis=1) @ w_ru + b_ru)
        r, u = ru[:, :H], ru[:, H:]
        c = np.tanh(np.concatenate([x, h_prev * r], axis=1) @ w_c + b_c)
        h = (1 - u) * c + u * h_prev
        return h, h
    return cell


def basic_lstm_cell(kernel, bias, forget_bias=1.0, state_is_tuple=True) -> Callable:
    """``BasicLSTMCell`` (i, j, f, o), the state an :class:`LSTMState` or concat([c, h])."""
    def cell(x, state):
        H = bias.shape[0] // 4
        c, h = (state.c, state.h) if state_is_tuple else (state[:, :H], state[:, H:])
        z = np.concatenate([x, h], axis=1) @ kernel + bias
        i, j, f, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
        new_h = np.tanh(new_c) * sigmoid(o)
        return new_h, (LSTMState(new_c, new_h) if state_is_tuple else np.concatenate([new_c, new_h], axis=1))
    return cell


def multi_rnn_cell(cells: Sequence[Callable], state_sizes: Optional[Sequence[int]] = None) -> Callable:
    """``MultiRNNCell``: the state a tuple of the cells' states, or (``state_sizes`` given: state_is_tuple=False)
    their concatenation, sliced in order."""
    def cell(x, state):
        if state_sizes is None:
            parts = list(state)
        else:
            bounds = np.cumsum([0] + list(state_sizes))
            parts = [state[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        inp, new = x, []
        for c, s in zip(cells, parts):
            inp, s = c(inp, s)
            new.append(s)
        return inp, (tuple(new) if state_sizes is None else np.concatenate(new, axis=1))
    return cell


def dropout(value: np.ndarray, keep_prob: float, noise: np.ndarray) -> np.ndarray:
    """``nn_ops.dropout`` / ``_variational_recurrent_dropout_value``: value / keep_prob * floor(keep_prob + noise)."""
    return value / keep_prob * np.floor(keep_prob + noise)


def _leaves(a) -> list:
    return [y for x in a for y in _leaves(x)] if isinstance(a, tuple) else [a]


def _rebuild(structure, it):
    if isinstance(structure, LSTMState):
        return LSTMState(*(_rebuild(s, it) for s in structure))
    if isinstance(structure, tuple):
        return tuple(_rebuild(s, it) for s in structure)
    return next(it)


def _default_filter(state):
    """True per leaf, False for an LSTMState's c (``_default_dropout_state_filter_visitor``)."""
    if isinstance(state, LSTMState):
        return [False, True]
    if isinstance(state, tuple):
        return [f for s in state for f in _default_filter(s)]
    return [True]


def dropout_wrapper(cell: Callable, noise: Callable, input_keep_prob=1.0, state_keep_prob=1.0, output_keep_prob=1.0,
                    variational_recurrent=False, cell_takes_step=False) -> Callable:
    """``DropoutWrapper``; ``noise(kind, index, step, shape)`` gives the uniform noise of each component (``step``
    None for variational masks, whose shape is [1, depth]). The returned cell takes ``(x, state, step)``, and
    hands the step on to ``cell`` with ``cell_takes_step`` (a wrapper inside)."""
    def drop(values, kind, keep, step, flags=None):
        leaves = _leaves(values)
        flags = flags or [True] * len(leaves)
        out = []
        for i, (v, f) in enumerate(zip(leaves, flags)):
            if not f:
                out.append(v)
                continue
            if variational_recurrent:
                out.append(dropout(v, keep, noise(kind, i, None, (1, v.shape[1]))))
            else:
                out.append(dropout(v, keep, noise(kind, i, step, v.shape)))
        return _rebuild(values, iter(out))

    def wrapped(x, state, step):
        if input_keep_prob < 1:
            x = drop(x, "input", input_keep_prob, step)
        out, new_state = cell(x, state, step) if cell_takes_step else cell(x, state)
        if state_keep_prob < 1:
            new_state = drop(new_state, "state", state_keep_prob, step, _default_filter(new_state))
        if output_keep_prob < 1:
            out = drop(out, "output", output_keep_prob, step)
        return out, new_state
    return wrapped


def residual_wrapper(cell: Callable, residual_fn: Optional[Callable] = None) -> Callable:
    """``ResidualWrapper``: output ``residual_fn(x, output)``, by default x + output."""
    def wrapped(x, state, *step):
        out, new_state = cell(x, state, *step)
        return (x + out if residual_fn is None else residual_fn(x, out)), new_state
    return wrapped


def _where(live, new, old):
    if isinstance(new, LSTMState):
        return LSTMState(*(_where(live, n, o) for n, o in zip(new, old)))
    if isinstance(new, tuple):
        return tuple(_where(live, n, o) for n, o in zip(new, old))
    return np.where(live[:, None], new, old)


def dynamic_rnn(cell: Callable, inputs_tm: np.ndarray, initial_state, sequence_length=None, *, with_step=False):
    """``dynamic_rnn(..., time_major=True)``: (outputs [T, B, out], final state). ``with_step``: the cell takes the
    step index too (a dropout wrapper's)."""
    inputs_tm = np.asarray(inputs_tm, dtype=np.float64)
    T, B = inputs_tm.shape[:2]
    lengths = np.full(B, T) if sequence_length is None else np.asarray(sequence_length)
    state, outputs = initial_state, []
    for t in range(T):
        out, new_state = cell(inputs_tm[t], state, t) if with_step else cell(inputs_tm[t], state)
        live = t < lengths
        outputs.append(np.where(live[:, None], out, 0.0))
        state = _where(live, new_state, state)
    return np.stack(outputs), state


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs_tm, initial_state_fw, initial_state_bw, sequence_length=None):
    """((output_fw, output_bw), (state_fw, state_bw)), time-major."""
    out_fw, st_fw = dynamic_rnn(cell_fw, inputs_tm, initial_state_fw, sequence_length)
    tmp, st_bw = dynamic_rnn(cell_bw, reverse_sequence(np.asarray(inputs_tm, dtype=np.float64), sequence_length),
                             initial_state_bw, sequence_length)
    return (out_fw, reverse_sequence(tmp, sequence_length)), (st_fw, st_bw)


__all__ = ["LSTMState", "basic_lstm_cell", "basic_rnn_cell", "bidirectional_dynamic_rnn", "dropout", "dropout_wrapper",
           "dynamic_rnn", "gru_block_cell", "gru_cell", "multi_rnn_cell", "residual_wrapper", "reverse_sequence"]
