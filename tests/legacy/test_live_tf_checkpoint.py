"""compat.formats.tf against live TensorFlow: TF reads what the pure-Python writer wrote (reader and
Saver.restore) and the pure-Python reader reads what TF's Saver wrote, over Hypothesis-chosen variables."""
from __future__ import annotations

import numpy as np
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from compat.formats.tf import latest_checkpoint, list_variables, load_checkpoint, save_checkpoint
from tests.test_tf_checkpoint import variable_sets

_TF_DTYPES = ["float32", "float64", "int32", "int64", "float16", "bool", "uint8", "int8", "int16", "complex64"]


@given(variable_sets())
def test_tensorflow_reads_what_the_writer_wrote(tf, tmp_path_factory, variables):
    d = tmp_path_factory.mktemp("w")
    note({k: (v.dtype, v.shape) for k, v in variables.items()})
    save_checkpoint(d / "model.ckpt-7", variables)
    assert tf.train.latest_checkpoint(str(d)) == str(d / "model.ckpt-7")
    reader = tf.train.load_checkpoint(str(d))
    assert reader.get_variable_to_shape_map() == {k: list(v.shape) for k, v in variables.items()}
    for name, value in variables.items():
        got = reader.get_tensor(name)
        if value.dtype == object:
            assert np.asarray(got, dtype=object).tolist() == value.tolist(), name
        else:
            assert np.asarray(got).dtype == value.dtype and np.array_equal(got, value), name


@composite
def tf_variable_specs(draw):
    n = draw(st.integers(1, 5))
    names = draw(st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}(/[A-Za-z][A-Za-z0-9_]{0,6}){0,2}", fullmatch=True),
                          min_size=n, max_size=n, unique_by=str.lower))
    return [(name, draw(st.sampled_from(_TF_DTYPES)), tuple(draw(st.lists(st.integers(0, 4), max_size=3))),
             draw(st.integers(0, 2**31))) for name in names]


@given(tf_variable_specs())
def test_reader_reads_what_tensorflow_saver_wrote(tf, tmp_path_factory, specs):
    d = tmp_path_factory.mktemp("r")
    note(specs)
    graph = tf.Graph()
    expected = {}
    with graph.as_default():
        for name, dtype, shape, seed in specs:
            rng = np.random.default_rng(seed)
            value = (rng.standard_normal(shape) * 50).astype(dtype)
            expected[name] = value
            tf.compat.v1.get_variable(name, initializer=tf.constant(value), use_resource=False)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(d / "model.ckpt"), global_step=3, write_meta_graph=False)
    assert latest_checkpoint(d) == prefix
    assert list_variables(d) == [(n, list(expected[n].shape)) for n in sorted(expected)]
    got = load_checkpoint(prefix)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name


def test_saver_restores_what_the_writer_wrote(tf, tmp_path):
    rng = np.random.default_rng(0)
    values = {"Model/w": rng.standard_normal((3, 4)).astype(np.float32), "Model/b": rng.standard_normal(4)}
    save_checkpoint(tmp_path / "m", values)
    graph = tf.Graph()
    with graph.as_default():
        w = tf.compat.v1.get_variable("Model/w", [3, 4], tf.float32)
        b = tf.compat.v1.get_variable("Model/b", [4], tf.float64)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
            np.testing.assert_array_equal(sess.run(w), values["Model/w"])
            np.testing.assert_array_equal(sess.run(b), values["Model/b"])
