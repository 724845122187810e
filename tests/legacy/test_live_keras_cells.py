"""Random Keras models around the generic ``RNN`` layer over the built-in cells, built and run by Keras itself,
against the converted model (``tox -e legacy-convert``: Keras 3 on its torch backend and tf-keras 2.21 in this
process).

Each example draws an ``RNN`` over one cell (``LSTMCell``, ``GRUCell`` with ``reset_after`` either way,
``SimpleRNNCell``; activations, ``use_bias``) or a ``StackedRNNCells`` of one to three of them (given as the
class or as a list), its settings (``return_sequences``, ``return_state``, ``go_backwards`` for one cell,
``unroll``) or a ``Bidirectional`` around one cell, after ``Embedding(mask_zero)`` or ``Masking`` or no mask;
builds it with random weights, saves it as ``.keras`` or ``.h5``, records ``model.predict`` on inputs with padded
steps and holes (states flattened in Keras's order), converts the file whole and compares within float32's
tolerance of the output's scale. The recorded models (``legacy/record_convert_keras_cells.py``) are re-recorded
and re-checked as tests/test_convert_keras_cells.py checks them.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tests.convert_cases import check_keras_model, keras_model_files
from tests.tolerances import assert_close_scaled

from .conftest import convert_saved, keras_module as _keras, record_keras_files

T, B, VOCAB = 5, 3, 12


def _masked_inputs(rng, ids: bool) -> np.ndarray:
    """A batch with a padded end (row 1) and holes (row 2): token ids (0 masked by Embedding(mask_zero)) or
    features (zeros masked by Masking)."""
    if ids:
        x = rng.integers(1, VOCAB, (B, T)).astype(np.int32)
    else:
        x = rng.uniform(-1.5, 1.5, (B, T, 3)).astype(np.float32)
    x[1, -2:] = 0
    x[2, 0] = x[2, 2] = 0
    return x


cells = st.tuples(st.sampled_from(["lstm", "gru_after", "gru_before", "simple"]), st.integers(1, 4),
                  st.sampled_from(["tanh", "relu", "sigmoid"]), st.sampled_from(["sigmoid", "hard_sigmoid"]),
                  st.booleans())


def _cell(L, spec):
    kind, units, act, rec, bias = spec
    if kind == "lstm":
        return L.LSTMCell(units, activation=act, recurrent_activation=rec, use_bias=bias)
    if kind == "simple":
        return L.SimpleRNNCell(units, activation=act, use_bias=bias)
    return L.GRUCell(units, activation=act, recurrent_activation=rec, use_bias=bias,
                     reset_after=kind == "gru_after")


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat(v)]
    return [x]


@pytest.mark.parametrize("framework", ["keras3", "tf_keras"])
@settings(max_examples=int(os.environ.get("KERAS_LIVE_EXAMPLES", "12")), deadline=None)
@given(data=st.data())
def test_random_rnn_cell_models_convert_to_kerass_predictions(framework, data, tmp_path_factory):
    from compat.convert import load
    import torch

    keras = _keras(framework)
    L = keras.layers
    specs = data.draw(st.lists(cells, min_size=1, max_size=3))
    form = data.draw(st.sampled_from(["rnn", "bidirectional"] if len(specs) == 1 else ["stacked", "list"]))
    masking = data.draw(st.sampled_from(["ids", "masking", "none"]))
    seqs, state, unroll = data.draw(st.booleans()), data.draw(st.booleans()), data.draw(st.booleans())
    backwards = form == "rnn" and data.draw(st.booleans())
    # Keras 3's torch backend cannot unroll a masked sequence read backwards (keras/src/backend/torch/rnn.py
    # torch.flip on a tuple raises)
    unroll = unroll and (framework == "tf_keras" or masking == "none" or (form != "bidirectional" and not backwards))
    # what Bidirectional forces when returning sequences; tf-keras cannot build an unrolled masked layer with it that
    # returns the last step only (backend.py rnn stacks one output, then zeroes it with the whole mask)
    zero_output = form == "rnn" and data.draw(st.booleans()) and (seqs or not unroll or masking == "none")
    suffix = data.draw(st.sampled_from([".keras", ".h5"]))
    seed = data.draw(st.integers(0, 2 ** 16))
    note(f"{framework} {form} {specs} masking={masking} seqs={seqs} state={state} unroll={unroll} "
         f"backwards={backwards} zero_output={zero_output} {suffix} seed={seed}")
    if masking == "ids":
        inp = keras.Input((T,), dtype="int32")
        x = L.Embedding(VOCAB, 3, mask_zero=True)(inp)
    else:
        inp = keras.Input((T, 3))
        x = L.Masking(0.0)(inp) if masking == "masking" else inp
    built = [_cell(L, s) for s in specs]
    cell = built[0] if form in ("rnn", "bidirectional") else built if form == "list" else L.StackedRNNCells(built)
    rnn = L.RNN(cell, return_sequences=seqs, return_state=state and form != "bidirectional", unroll=unroll,
                go_backwards=backwards, **({"zero_output_for_mask": True} if zero_output else {}))
    y = L.Bidirectional(rnn)(x) if form == "bidirectional" else rnn(x)
    model = keras.Model(inp, _flat(y))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in layer.get_weights()])
    xs = _masked_inputs(rng, masking == "ids")
    want = model.predict(xs, verbose=0)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    tmp, path = convert_saved(model, tmp_path_factory.mktemp("model"), suffix)
    converted = load(tmp / "out")
    with torch.no_grad():
        got = converted(torch.from_numpy(xs.astype(np.int64) if masking == "ids" else xs))
    got = [got] if isinstance(got, torch.Tensor) else list(got)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close_scaled(g, w, dtype=np.float32, msg=f"{framework} {form} {specs} output {k}")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_keras_files("record_convert_keras_cells.py", tmp_path_factory.mktemp("live_keras_cells"))


def test_live_recorded_rnn_cell_models(recorded, tmp_path):
    cases = list(keras_model_files(recorded))
    assert len(cases) == 20
    for framework, name, source, weights, config, arrays in cases:
        check_keras_model(recorded / framework, source, weights, config, arrays, tmp_path)


def _wrapped(keras, wrap, inner, ids):
    """The model ``inner`` (one input) nested in a Functional model: called on two inputs (its layers shared by
    both calls) or once."""
    shape, dtype = ((T,), "int32") if ids else ((T, 3), "float32")
    if wrap == "nested_once":
        a = keras.Input(shape, dtype=dtype, name="first")
        return keras.Model(a, _flat(inner(a))), 1
    a, b = keras.Input(shape, dtype=dtype, name="first"), keras.Input(shape, dtype=dtype, name="second")
    return keras.Model([a, b], _flat(inner(a)) + _flat(inner(b))), 2


@pytest.mark.parametrize("framework", ["keras3", "tf_keras"])
@settings(max_examples=int(os.environ.get("KERAS_LIVE_EXAMPLES", "12")), deadline=None)
@given(data=st.data())
def test_random_rnn_cells_shared_or_nested_convert_to_kerass_predictions(framework, data, tmp_path_factory):
    """An RNN over one cell, a StackedRNNCells or a Bidirectional around one cell, called twice as a shared layer,
    inside a nested Functional model called twice, or inside a nested Sequential called once: the whole model and
    its emitted Python
    against Keras's predictions."""
    import importlib.util

    from compat.convert import load
    import torch

    from tests.convert_cases import convert_cli

    keras = _keras(framework)
    L = keras.layers
    specs = data.draw(st.lists(cells, min_size=1, max_size=3))
    form = data.draw(st.sampled_from(["rnn", "bidirectional"] if len(specs) == 1 else ["stacked", "list"]))
    wrap = data.draw(st.sampled_from(["shared", "nested_twice", "nested_once"]))
    ids, seqs = data.draw(st.booleans()), data.draw(st.booleans())
    state = form != "bidirectional" and wrap != "nested_once" and data.draw(st.booleans())
    suffix = data.draw(st.sampled_from([".keras", ".h5"]))
    seed = data.draw(st.integers(0, 2 ** 16))
    note(f"{framework} {form} {specs} wrap={wrap} ids={ids} seqs={seqs} state={state} {suffix} seed={seed}")
    built = [_cell(L, s) for s in specs]
    cell = built[0] if form in ("rnn", "bidirectional") else built if form == "list" else L.StackedRNNCells(built)
    rnn = L.RNN(cell, return_sequences=seqs, return_state=state)
    rnn = L.Bidirectional(rnn) if form == "bidirectional" else rnn
    shape, dtype = ((T,), "int32") if ids else ((T, 3), "float32")
    first = L.Embedding(VOCAB, 3, mask_zero=True) if ids else L.Masking(0.0)
    if wrap == "shared":   # the embedding and the RNN layer each called on two inputs
        a, b = keras.Input(shape, dtype=dtype, name="first"), keras.Input(shape, dtype=dtype, name="second")
        model, n_in = keras.Model([a, b], _flat(rnn(first(a))) + _flat(rnn(first(b)))), 2
    else:
        inp = keras.Input(shape, dtype=dtype)
        y = rnn(first(inp))
        inner = keras.Model(inp, _flat(y)) if wrap == "nested_twice" else keras.Sequential(
            [keras.Input(shape, dtype=dtype), first, rnn], name="inner")
        model, n_in = _wrapped(keras, wrap, inner, ids)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in layer.get_weights()])
    xs = [_masked_inputs(rng, ids) for _ in range(n_in)]
    want = model.predict(xs if n_in > 1 else xs[0], verbose=0)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    tmp, path = convert_saved(model, tmp_path_factory.mktemp("model"), suffix)
    torch_xs = [torch.from_numpy(x.astype(np.int64) if ids else x) for x in xs]
    assert convert_cli(path, tmp / "emitted", ["--emit-python", str(tmp / "emitted_model.py")]) == 0
    spec = importlib.util.spec_from_file_location(f"emitted_{tmp.name}", tmp / "emitted_model.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    for how, converted in (("loaded", load(tmp / "out")), ("emitted", emitted.load())):
        with torch.no_grad():
            got = converted(*torch_xs)
        got = [got] if isinstance(got, torch.Tensor) else list(got)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close_scaled(g, w, dtype=np.float32, msg=f"{framework} {form} {specs} {wrap} {how} output {k}")


UNROLLED_MASKED = {   # tf_keras/src/backend.py rnn, unroll=True: outputs zeroed with the mask not reversed
    "bidirectional_rnn_lstm_cell": lambda L: L.Bidirectional(L.RNN(L.LSTMCell(3), return_sequences=True,
                                                                   unroll=True)),
    "bidirectional_lstm": lambda L: L.Bidirectional(L.LSTM(3, return_sequences=True, unroll=True)),
    "bidirectional_gru": lambda L: L.Bidirectional(L.GRU(2, return_sequences=True, unroll=True), merge_mode="sum"),
    "bidirectional_simple_rnn": lambda L: L.Bidirectional(L.SimpleRNN(2, return_sequences=True, unroll=True)),
    "backwards_lstm_zero_output": lambda L: L.LSTM(3, return_sequences=True, unroll=True, go_backwards=True,
                                                   zero_output_for_mask=True),
    "backwards_rnn_gru_cell_zero_output": lambda L: L.RNN(L.GRUCell(2), return_sequences=True, unroll=True,
                                                          go_backwards=True, zero_output_for_mask=True),
    "backwards_simple_rnn_zero_output": lambda L: L.SimpleRNN(2, return_sequences=True, unroll=True,
                                                              go_backwards=True, zero_output_for_mask=True),
    "backwards_gru_unrolled": lambda L: L.GRU(2, return_sequences=True, unroll=True, go_backwards=True),
    "forwards_lstm_zero_output": lambda L: L.LSTM(3, return_sequences=True, unroll=True,
                                                  zero_output_for_mask=True),
}


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("case", sorted(UNROLLED_MASKED))
def test_tf_keras_unrolled_masked_zero_outputs_convert_to_kerass_predictions(case, suffix, tmp_path):
    """tf-keras's unrolled ``backend.rnn`` zeroes a go_backwards layer's outputs (``zero_output_for_mask``, which
    ``Bidirectional`` forces when it returns sequences) with the mask as given, while the outputs are in reading
    order: the converted model and the oracle reproduce it (the draw that found it: a Bidirectional RNN over an
    LSTMCell after Embedding(mask_zero), ids with holes)."""
    from compat.convert import load
    import torch

    keras = _keras("tf_keras")
    L = keras.layers
    inp = keras.Input((T,), dtype="int32")
    x = L.Embedding(VOCAB, 3, mask_zero=True)(inp)
    model = keras.Model(inp, UNROLLED_MASKED[case](L)(x))
    rng = np.random.default_rng(7)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in layer.get_weights()])
    xs = rng.integers(1, VOCAB, (B + 1, T)).astype(np.int32)
    xs[1, -2:] = 0
    xs[2, 0] = xs[2, 2] = 0
    xs[3, :2] = 0
    want = np.asarray(model.predict(xs, verbose=0))
    convert_saved(model, tmp_path, suffix)
    with torch.no_grad():
        got = load(tmp_path / "out")(torch.from_numpy(xs.astype(np.int64)))
    assert_close_scaled(got, want, dtype=np.float32, msg=case)


KERAS3_TF_UNROLLED = """
import sys
import numpy as np
import keras
L = keras.layers
out = sys.argv[1]
inp = keras.Input((5,), dtype="int32")
x = L.Embedding(12, 3, mask_zero=True)(inp)
y = L.Bidirectional(L.RNN(L.LSTMCell(3), return_sequences=True, unroll=True))(x)
y = L.Concatenate()([y, L.GRU(2, return_sequences=True, unroll=True, go_backwards=True, zero_output_for_mask=True)(x)])
model = keras.Model(inp, y)
rng = np.random.default_rng(11)
for layer in model.layers:
    layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in layer.get_weights()])
xs = rng.integers(1, 12, (4, 5)).astype(np.int32)
xs[1, -2:] = 0
xs[2, 0] = xs[2, 2] = 0
xs[3, :2] = 0
np.save(out + "/xs.npy", xs)
np.save(out + "/want.npy", np.asarray(model.predict(xs, verbose=0)))
model.save(out + "/model.keras")
"""


def test_keras3_tensorflow_backend_unrolled_masked_zero_outputs_convert_to_kerass_predictions(tmp_path):
    """Keras 3's TensorFlow backend runs the unrolled loop as tf-keras does (keras/src/backend/tensorflow/rnn.py:
    the outputs zeroed with the mask not reversed for go_backwards); the file, saved there, converts to its
    predictions (its torch backend, this process's, cannot run these layers on a mask)."""
    from compat.convert import convert, load
    import torch

    proc = subprocess.run([sys.executable, "-c", KERAS3_TF_UNROLLED, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    conversion = convert(tmp_path / "model.keras", tmp_path / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    assert all(s.keras.masked_output == "zeros_unrolled" for s in conversion.specs)
    assert all(any(u.what == "masked_output" for u in s.unknowns) for s in conversion.specs)
    xs = np.load(tmp_path / "xs.npy")
    with torch.no_grad():
        got = load(tmp_path / "out")(torch.from_numpy(xs.astype(np.int64)))
    assert_close_scaled(got, np.load(tmp_path / "want.npy"), dtype=np.float32, msg="Keras 3, TensorFlow backend")
