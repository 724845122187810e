"""Numpy oracle of the TF ops around recurrent cells in a TF1 language model's graph (float64).

Written from the TF 1.x sources' semantics, importing nothing from ``compat``:

* ``embedding_ops.embedding_lookup(params, ids)`` with one table: ``array_ops.gather(params, ids)``, the
  table's rows by id (``GatherV2`` axis 0; an id outside the table is an error on the CPU).
* ``array_ops.unstack(x, num, axis)``: the slices along ``axis``; ``rnn.py`` ``static_rnn`` runs the cell on
  each in order; ``dynamic_rnn`` transposes a batch-major input to time-major (``_transpose_batch_time``),
  loops, and transposes the outputs back.
* ``rnn.py`` ``dynamic_rnn(..., sequence_length=lengths)``: each sequence's outputs are zeros past its length
  and its state is frozen there (computed by the cells' reference, which takes the lengths);
  ``bidirectional_dynamic_rnn`` runs the backward cells on ``reverse_sequence(x, lengths)`` and reverses their
  outputs back; the common pattern joins the two by ``concat(outputs, 2)`` (the cells' reference returns the
  two directions so joined), or the graph's own composition of the two directions: :func:`bidirectional_dynamic_rnn`
  (rnn.py ``_reverse``: ``reverse_sequence(x, seq_lengths, seq_axis=time, batch_axis=batch)`` reverses each
  sequence's first ``length`` steps and leaves the steps past it where they are; ``reverse(x, [time])`` without
  lengths; the backward cells run forward on the reversed input, their outputs reversed back the same way).
* ``sequence_length`` a placeholder fed at run time or a constant of the graph (``tf.constant([...])``): the same
  lengths either way.
* contrib's ``stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, sequence_length=...)``
  (tensorflow/contrib/rnn/python/ops/rnn.py, TF 1.x): a loop over the layers, each a ``bidirectional_dynamic_rnn``
  under ``variable_scope("cell_%d" % i)`` given the same ``sequence_length`` and its own initial states, its
  outputs ``concat(outputs, 2)``, which the next layer reads (:func:`stack_bidirectional_dynamic_rnn`).
* ``array_ops.concat(values, axis)`` / ``array_ops.stack(values, axis)`` and ``array_ops.reshape`` (row-major).
* ``nn_ops.xw_plus_b(x, w, b)``: ``matmul(x, w) + b``; ``layers.Dense`` on a 2-D input: the same.
* ``nn_ops.softmax(logits)``: ``exp(logits - max) / sum(exp(logits - max))`` on the last axis.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

# run_cells(x [T, B, in], lengths [B] or None) -> outputs [T, B, out]: the cells from their initial state (zeros, or
# dynamic_rnn's initial_state as fed), time-major
Cells = Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]


def embedding_lookup(params: np.ndarray, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= params.shape[0]):
        raise IndexError(f"ids outside [0, {params.shape[0]})")
    return np.take(params, ids, axis=0)


def unstack(x: np.ndarray, axis: int) -> List[np.ndarray]:
    return [np.take(x, k, axis=axis) for k in range(x.shape[axis])]


def static_rnn(cells: Cells, steps: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The cell's output at each of ``steps`` ([B, in] each), in order."""
    out = cells(np.stack(steps), None)
    return [out[t] for t in range(out.shape[0])]


def dynamic_rnn(cells: Cells, x: np.ndarray, time_major: bool, lengths: Optional[np.ndarray] = None) -> np.ndarray:
    tm = x if time_major else np.swapaxes(x, 0, 1)
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (tm.shape[1],) or lengths.min() < 0 or lengths.max() > tm.shape[0]:
            raise ValueError(f"sequence_length {lengths.tolist()} for {tm.shape[1]} sequences of {tm.shape[0]} steps")
    out = cells(tm, lengths)
    return out if time_major else np.swapaxes(out, 0, 1)


def reverse_sequence(x: np.ndarray, lengths: Optional[np.ndarray], time_axis: int = 0) -> np.ndarray:
    """``array_ops.reverse_sequence(x, lengths, seq_axis=time_axis, batch_axis=1 - time_axis)``: each sequence's
    first ``lengths[b]`` steps in reverse order, the rest as they were; ``array_ops.reverse(x, [time_axis])``
    (the whole time axis) when ``lengths`` is None."""
    if lengths is None:
        return np.flip(x, axis=time_axis).copy()
    tm = np.swapaxes(x, 0, time_axis).copy()
    for b, n in enumerate(np.asarray(lengths)):
        n = int(min(n, tm.shape[0]))
        tm[:n, b] = tm[:n, b][::-1]
    return np.swapaxes(tm, 0, time_axis)


def bidirectional_dynamic_rnn(run_fw: Cells, run_bw: Cells, x_tm: np.ndarray,
                              lengths: Optional[np.ndarray] = None) -> np.ndarray:
    """rnn.py ``bidirectional_dynamic_rnn(..., time_major=True)`` then ``concat(outputs, 2)``: the forward cells on
    the input, the backward cells on the input reversed by :func:`reverse_sequence`, their outputs reversed back;
    ``run_fw`` / ``run_bw`` run one direction's cells forward from its initial state (outputs zero past a
    sequence's length). A direction's cells may be a MultiRNNCell (rnn_cell_impl.py: its layers one after the
    other within each step), so each stack runs whole and the two join only here, of any depths."""
    out_fw = run_fw(x_tm, lengths)
    out_bw = reverse_sequence(run_bw(reverse_sequence(x_tm, lengths), lengths), lengths)
    return np.concatenate([out_fw, out_bw], axis=2)


def stack_bidirectional_dynamic_rnn(layers: Sequence[Sequence[Cells]], x_tm: np.ndarray,
                                    lengths: Optional[np.ndarray] = None) -> np.ndarray:
    """contrib's ``stack_bidirectional_dynamic_rnn(..., time_major=True)``: ``layers`` one ``(run_fw, run_bw)``
    a layer; layer k + 1 reads the concatenated outputs of layer k, every layer the same lengths. The outputs of
    the last layer, ``[T, B, out_fw + out_bw]``."""
    x = np.asarray(x_tm, dtype=np.float64)
    for run_fw, run_bw in layers:
        x = bidirectional_dynamic_rnn(run_fw, run_bw, x, lengths)
    return x


def xw_plus_b(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    y = np.matmul(x, w)
    return y if b is None else y + b


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def language_model(inputs: np.ndarray, cells: Cells, *, embedding: Optional[np.ndarray], batch_major_in: bool,
                   static_steps: Optional[int], batch_major_out: bool, projection=None,
                   after: Sequence[str] = (), lengths: Optional[np.ndarray] = None) -> np.ndarray:
    """ptb_word_lm.py's graph and its variations: ids (or a float sequence) -> embedding_lookup -> the cells
    (static_rnn over unstack(x, axis) joined by concat(outputs, axis), or dynamic_rnn) -> reshape [-1, size] ->
    xw_plus_b -> softmax / reshape to the ids' [d0, d1, vocab], in ``after``'s order."""
    x = embedding_lookup(embedding, inputs) if embedding is not None else np.asarray(inputs, dtype=np.float64)
    if static_steps is not None:
        outs = static_rnn(cells, unstack(x, 1 if batch_major_in else 0))
        # concat on axis 1 ([B, T*H]) reshaped to [-1, H] is the [B, T, H] stack's rows; concat on axis 0 the
        # [T, B, H] stack's
        seq = np.stack(outs, axis=1 if batch_major_out else 0)
    else:
        seq = dynamic_rnn(cells, x, time_major=not batch_major_in, lengths=lengths)
    if projection is None:
        return seq
    w, b = projection
    y = xw_plus_b(seq.reshape(-1, w.shape[0]), w, b)
    for op in after:
        y = softmax(y) if op == "Softmax" else y.reshape(inputs.shape[0], inputs.shape[1], w.shape[1])
    return y
