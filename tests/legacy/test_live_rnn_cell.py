"""compat.rnn_cell against live TensorFlow (tf.compat.v1.nn.rnn_cell, graph mode): the same cells built in
TF, their variables saved by TF's Saver and loaded by TF's names, the same inputs, the same numbers
(float64 at the table's tolerance); and DropoutWrapper's variational mask structure as TF draws it."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st

from compat import rnn_cell as rc
from tests.tolerances import assert_close

F64 = torch.float64


def _tf_cell(tf, spec):
    """A TF cell from a spec (kind, units, options)."""
    cells = tf.compat.v1.nn.rnn_cell
    kind, units, opts = spec
    if kind == "gru":
        return cells.GRUCell(units, dtype=tf.float64)
    if kind == "rnn":
        return cells.BasicRNNCell(units, dtype=tf.float64)
    if kind == "basic_lstm":
        return cells.BasicLSTMCell(units, forget_bias=opts.get("forget_bias", 1.0), dtype=tf.float64)
    if kind == "lstm":
        return cells.LSTMCell(units, use_peepholes=True, num_proj=opts.get("num_proj"), cell_clip=opts.get("cell_clip"),
                              proj_clip=opts.get("proj_clip"), dtype=tf.float64)
    raise AssertionError(kind)


def _our_cell(spec):
    kind, units, opts = spec
    if kind == "gru":
        return rc.GRUCell(units, dtype=F64)
    if kind == "rnn":
        return rc.BasicRNNCell(units, dtype=F64)
    if kind == "basic_lstm":
        return rc.BasicLSTMCell(units, forget_bias=opts.get("forget_bias", 1.0), dtype=F64)
    return rc.LSTMCell(units, use_peepholes=True, num_proj=opts.get("num_proj"), cell_clip=opts.get("cell_clip"),
                       proj_clip=opts.get("proj_clip"), dtype=F64)


specs = st.tuples(st.sampled_from(["gru", "rnn", "basic_lstm", "lstm"]), st.integers(1, 4),
                  st.sampled_from([{}, {"forget_bias": 0.0}, {"num_proj": 2, "proj_clip": 0.3, "cell_clip": 0.5}]))


def _flatten(state):
    return [y for x in state for y in _flatten(x)] if isinstance(state, tuple) else [state]


@settings(max_examples=8, deadline=None)
@given(layers=st.lists(specs, min_size=1, max_size=3), residual=st.booleans(), T=st.integers(1, 5),
       B=st.integers(1, 3), lengths=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_multi_rnn_cell_dynamic_rnn_matches_tensorflow(tf, tmp_path_factory, layers, residual, T, B, lengths, seed):
    from _common import tf_session

    note(layers)
    n_in = 3
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (B, T, n_in))
    seq = rng.integers(0, T + 1, B) if lengths else None
    d = tmp_path_factory.mktemp("ckpt")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed % 1000)
        tf_cells = [_tf_cell(tf, s) for s in layers]
        if residual:  # around the first cell, when its output width is the input's
            tf_cells[0] = tf.compat.v1.nn.rnn_cell.ResidualWrapper(tf_cells[0]) if _width(layers[0]) == n_in \
                else tf_cells[0]
        multi = tf.compat.v1.nn.rnn_cell.MultiRNNCell(tf_cells)
        inputs = tf.constant(x)
        out, state = tf.compat.v1.nn.dynamic_rnn(multi, inputs, sequence_length=None if seq is None else
                                                 tf.constant(seq), dtype=tf.float64)
        saver = tf.compat.v1.train.Saver()
        with tf_session(tf, graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf_out, tf_state = sess.run([out, state])
            prefix = saver.save(sess, str(d / "model.ckpt"), write_meta_graph=False)
    ours = [_our_cell(s) for s in layers]
    if residual and _width(layers[0]) == n_in:
        ours[0] = rc.ResidualWrapper(ours[0])
    cell = rc.MultiRNNCell(ours)
    rc.load_tf_variables(cell, prefix)
    got_out, got_state = rc.dynamic_rnn(cell, torch.tensor(x), None if seq is None else torch.tensor(seq))
    assert_close(got_out, tf_out)
    for a, e in zip(_flatten(got_state), _flatten(tf_state)):
        assert_close(a, e)


def _width(spec):
    kind, units, opts = spec
    return opts.get("num_proj") or units if kind == "lstm" else units


def test_bidirectional_gru_and_concatenated_states_match_tensorflow(tf, tmp_path):
    from _common import tf_session

    rng = np.random.default_rng(5)
    x, seq = rng.uniform(-1, 1, (3, 6, 2)), np.array([6, 3, 0])
    cells = tf.compat.v1.nn.rnn_cell
    graph = tf.Graph()
    with graph.as_default():
        fw = cells.MultiRNNCell([cells.GRUCell(3, dtype=tf.float64), cells.BasicRNNCell(2, dtype=tf.float64)],
                                state_is_tuple=False)
        bw = cells.BasicLSTMCell(4, state_is_tuple=False, dtype=tf.float64)
        (o_fw, o_bw), (s_fw, s_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
            fw, bw, tf.constant(x), sequence_length=tf.constant(seq), dtype=tf.float64)
        saver = tf.compat.v1.train.Saver()
        with tf_session(tf, graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            expected = sess.run([o_fw, o_bw, s_fw, s_bw])
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"), write_meta_graph=False)
    fw_ = rc.MultiRNNCell([rc.GRUCell(3, dtype=F64), rc.BasicRNNCell(2, dtype=F64)], state_is_tuple=False)
    bw_ = rc.BasicLSTMCell(4, state_is_tuple=False, dtype=F64)
    rc.load_tf_variables(fw_, prefix, scope="bidirectional_rnn/fw")
    rc.load_tf_variables(bw_, prefix, scope="bidirectional_rnn/bw")
    (a_fw, a_bw), (t_fw, t_bw) = rc.bidirectional_dynamic_rnn(fw_, bw_, torch.tensor(x), torch.tensor(seq))
    for got, exp in zip((a_fw, a_bw, t_fw, t_bw), expected):
        assert_close(got, exp)


def test_variational_masks_are_shared_by_the_batch_and_the_steps_as_in_tensorflow(tf):
    """DropoutWrapper(variational_recurrent=True): TF draws one [1, depth] mask per run (convert_to_batch_shape);
    the same structure as compat.rnn_cell's."""
    from _common import tf_session

    cells = tf.compat.v1.nn.rnn_cell
    graph = tf.Graph()
    with graph.as_default():
        cell = cells.DropoutWrapper(cells.BasicRNNCell(16, activation=tf.identity, dtype=tf.float64),
                                    output_keep_prob=0.5, variational_recurrent=True, dtype=tf.float64, seed=1)
        out, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.ones((4, 5, 3), tf.float64), dtype=tf.float64)
        with tf_session(tf, graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            runs = [sess.run(out) for _ in range(3)]
    for r in runs:
        zeros = r == 0
        assert (zeros == zeros[0, 0]).all(), "one mask for every sequence and step"
    assert len({tuple((r[0, 0] == 0).tolist()) for r in runs}) > 1, "a new mask per run"
    ours = rc.DropoutWrapper(rc.BasicRNNCell(16, activation=lambda v: v, input_size=3, dtype=F64),
                             output_keep_prob=0.5, variational_recurrent=True)
    mine = rc.dynamic_rnn(ours, torch.ones(4, 5, 3, dtype=F64))[0]
    assert ((mine == 0) == (mine[0, 0] == 0)).all()
