"""Random small Keras models from the layer set, built and run by Keras itself, against the converted model
(``tox -e legacy-convert``: Keras 3 on its torch backend and tf-keras 2.21 in this process).

Each example draws a model (Hypothesis: the input, token ids with ``Embedding(mask_zero)`` or sequences with
``Masking``; a chain of layers from the set with the shapes tracked so that every draw builds; sometimes two
branches merged; sometimes nested in a model that calls it twice, or placed in a Sequential), builds it in the
framework with random weights, saves it as ``.keras`` or ``.h5``, and records ``model.predict`` on inputs with
padded steps and holes; the file is converted whole and the converted
model's predictions must match within float32's tolerance of the output's scale. The recorded whole models
(``legacy/record_convert_keras_models.py``) are re-recorded and re-checked as tests/test_convert_keras_models.py
checks them.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tests.convert_cases import check_emitted_keras_model, check_keras_model, keras_model_files
from tests.tolerances import assert_close_scaled

from .conftest import convert_saved, keras_module as _keras, record_keras_files

T, B, VOCAB = 5, 3, 12


@st.composite
def chains(draw, framework):
    """A model description: (input kind, [layer descriptions]) with the shape tracked as (rank, features)."""
    ids = draw(st.booleans())
    layers = []
    rank, feat = 3, (4 if ids else 3)
    for _ in range(draw(st.integers(1, 5))):
        if rank == 3:
            options = ["lstm", "bidirectional", "time_distributed", "dense", "activation", "dropout", "noise",
                       "spatial_dropout", "conv", "pool", "global", "batchnorm", "layernorm", "flatten", "branch"]
        else:
            options = ["dense", "activation", "dropout", "batchnorm", "layernorm", "repeat", "reshape", "branch"]
        kind = draw(st.sampled_from(options))
        units = draw(st.integers(1, 4))
        if kind == "lstm":
            seqs = draw(st.booleans())
            layers.append(("lstm", units, seqs, draw(st.booleans())))
            rank, feat = (3 if seqs else 2), units
        elif kind == "bidirectional":
            seqs = draw(st.booleans())
            merge = draw(st.sampled_from(["concat", "sum", "mul", "ave"]))
            layers.append(("bidirectional", units, seqs, merge))
            rank, feat = (3 if seqs else 2), units * (2 if merge == "concat" else 1)
        elif kind in ("time_distributed", "dense"):
            act = draw(st.sampled_from(["linear", "relu", "tanh", "sigmoid", "softmax", "elu", "hard_sigmoid"]))
            layers.append((kind, units, act))
            feat = units
        elif kind == "activation":
            layers.append(("activation", draw(st.sampled_from(["relu", "tanh", "softmax", "softplus", "selu"]))))
        elif kind in ("dropout", "noise", "spatial_dropout", "batchnorm", "layernorm"):
            layers.append((kind,))
        elif kind == "conv":
            padding = draw(st.sampled_from(["valid", "same", "causal"]))
            k = draw(st.integers(1, 3))
            layers.append(("conv", units, k, padding))
            feat = units
            if padding == "valid" and k > 1:
                break   # the length shrinks: end the chain here
        elif kind == "pool":
            mode = draw(st.sampled_from(["max", "avg"]))
            layers.append(("pool", mode, draw(st.sampled_from(["valid", "same"]) if mode == "max" else st.just("valid"))))
            break       # the length changes
        elif kind == "global":
            layers.append(("global", draw(st.sampled_from(["avg", "max"]))))
            rank = 2
        elif kind == "flatten":
            layers.append(("flatten",))
            rank, feat = 2, feat * T
        elif kind == "repeat":
            layers.append(("repeat",))
            rank = 3
        elif kind == "reshape":
            layers.append(("reshape", feat))
            rank, feat = 3, 1
        elif kind == "branch":
            merge = draw(st.sampled_from(["add", "multiply", "average", "subtract", "maximum", "minimum",
                                          "concatenate"]))
            layers.append(("branch", units, merge))
            feat = units * (2 if merge == "concatenate" else 1)
    return ids, layers


def build(keras, ids, layers):
    L = keras.layers
    if ids:
        inp = keras.Input((T,), dtype="int32", name="ids")
        x = L.Embedding(VOCAB, 4, mask_zero=True)(inp)
    else:
        inp = keras.Input((T, 3), name="frames")
        x = L.Masking(0.0)(inp)
    for spec in layers:
        kind = spec[0]
        if kind == "lstm":
            x = L.LSTM(spec[1], return_sequences=spec[2], go_backwards=spec[3])(x)
        elif kind == "bidirectional":
            x = L.Bidirectional(L.LSTM(spec[1], return_sequences=spec[2]), merge_mode=spec[3])(x)
        elif kind == "time_distributed":
            x = L.TimeDistributed(L.Dense(spec[1], activation=spec[2]))(x)
        elif kind == "dense":
            x = L.Dense(spec[1], activation=spec[2])(x)
        elif kind == "activation":
            x = L.Activation(spec[1])(x)
        elif kind == "dropout":
            x = L.Dropout(0.5)(x)
        elif kind == "noise":
            x = L.GaussianNoise(0.3)(x)
        elif kind == "spatial_dropout":
            x = L.SpatialDropout1D(0.5)(x)
        elif kind == "batchnorm":
            x = L.BatchNormalization()(x)
        elif kind == "layernorm":
            x = L.LayerNormalization()(x)
        elif kind == "conv":
            x = L.Conv1D(spec[1], spec[2], padding=spec[3], activation="relu")(x)
        elif kind == "pool":
            x = (L.MaxPooling1D if spec[1] == "max" else L.AveragePooling1D)(2, padding=spec[2])(x)
        elif kind == "global":
            x = (L.GlobalAveragePooling1D if spec[1] == "avg" else L.GlobalMaxPooling1D)()(x)
        elif kind == "flatten":
            x = L.Flatten()(x)
        elif kind == "repeat":
            x = L.RepeatVector(T)(x)
        elif kind == "reshape":
            x = L.Reshape((spec[1], 1))(x)
        elif kind == "branch":
            a, b = L.Dense(spec[1], activation="tanh")(x), L.Dense(spec[1])(x)
            merge = {"add": L.Add, "multiply": L.Multiply, "average": L.Average, "subtract": L.Subtract,
                     "maximum": L.Maximum, "minimum": L.Minimum, "concatenate": L.Concatenate}[spec[2]]
            x = merge()([a, b])
    return keras.Model(inp, x)


def nested_twice(keras, inner, ids):
    """The drawn model nested in another and called on two inputs: its layers shared by both calls."""
    shape, dtype = ((T,), "int32") if ids else ((T, 3), "float32")
    a, b = keras.Input(shape, dtype=dtype, name="first"), keras.Input(shape, dtype=dtype, name="second")
    return keras.Model([a, b], [inner(a), inner(b)])


def in_sequential(keras, inner, ids):
    """The drawn model placed directly in a Sequential, a Dense after it: its only call there is its first."""
    shape, dtype = ((T,), "int32") if ids else ((T, 3), "float32")
    return keras.Sequential([keras.Input(shape, dtype=dtype), inner, keras.layers.Dense(2)])


def _inputs(rng, ids):
    if ids:
        x = rng.integers(1, VOCAB, (B, T))
        x[1, -2:] = 0
        x[2, 0] = 0
        return x.astype(np.int32)
    x = rng.uniform(-1.5, 1.5, (B, T, 3)).astype(np.float32)
    x[1, -2:] = 0.0
    x[2, 0] = 0.0
    return x


@pytest.mark.parametrize("framework", ["keras3", "tf_keras"])
@settings(max_examples=int(os.environ.get("KERAS_LIVE_EXAMPLES", "12")))
@given(data=st.data())
def test_random_keras_models_convert_to_kerass_predictions(framework, data, tmp_path_factory):
    from compat.convert import load
    import torch

    keras = _keras(framework)
    ids, layers = data.draw(chains(framework))
    suffix = data.draw(st.sampled_from([".keras", ".h5"]))
    seed = data.draw(st.integers(0, 2 ** 16))
    wrap = data.draw(st.sampled_from(["none", "nested_twice", "in_sequential"]))
    nested = wrap == "nested_twice"
    note(f"{framework} ids={ids} layers={layers} {suffix} seed={seed} wrap={wrap}")
    rng = np.random.default_rng(seed)
    model = build(keras, ids, layers)
    if nested:
        model = nested_twice(keras, model, ids)
    elif wrap == "in_sequential":
        model = in_sequential(keras, model, ids)
    for layer in model.layers:
        ws = layer.get_weights()
        names = [getattr(w, "path", None) or w.name for w in layer.weights]
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in n
                           else rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for n, w in zip(names, ws)])
    xs = [_inputs(rng, ids) for _ in range(2 if nested else 1)]
    want = model.predict(xs if nested else xs[0], verbose=0)
    want = [np.asarray(w) for w in (want if nested else [want])]
    tmp, path = convert_saved(model, tmp_path_factory.mktemp("model"), suffix)
    converted = load(tmp / "out")
    with torch.no_grad():
        got = converted(*[torch.from_numpy(x.astype(np.int64) if ids else x) for x in xs])
    for g, w in zip(got if nested else [got], want):
        assert_close_scaled(g, w, dtype=np.float32, msg=f"{framework} {layers}")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_keras_files("record_convert_keras_models.py", tmp_path_factory.mktemp("live_keras_models"))


def test_live_recorded_keras_models(recorded, tmp_path):
    cases = [c for c in keras_model_files(recorded) if c[0] in ("keras3", "tf_keras")]
    assert len(cases) >= 32
    for framework, name, source, weights, config, arrays in cases:
        check_keras_model(recorded / framework, source, weights, config, arrays, tmp_path)


SHARED_AND_NESTED = ("siamese", "nested_shared", "nested_functional")


def test_live_shared_and_nested_models_emit_python_that_predicts_as_keras(recorded, tmp_path):
    cases = [c for c in keras_model_files(recorded) if c[1] in SHARED_AND_NESTED and c[3] is None]
    assert {(c[0], c[1]) for c in cases} == {(f, n) for f in ("keras3", "tf_keras") for n in SHARED_AND_NESTED}
    for framework, name, source, weights, config, arrays in cases:
        check_emitted_keras_model(recorded / framework, source, config, arrays, tmp_path)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("inner_kind", ["functional", "sequential"])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("framework", ["keras3", "tf_keras"])
def test_model_placed_in_a_sequential_converts_to_kerass_predictions(framework, last, inner_kind, suffix, tmp_path):
    """``Sequential([Embedding(mask_zero), inner, Dense])`` (or the inner model last): the Sequential's config
    numbers no node, so the nested model's first call is its node 0 in this model (tf_keras/src/engine/
    sequential.py and functional.py; keras/src/models/sequential.py), masks passed through it."""
    from compat.convert import load
    import torch

    keras = _keras(framework)
    L = keras.layers
    if inner_kind == "functional":
        i = keras.Input((T, 3))
        inner = keras.Model(i, L.Dense(2, activation="tanh")(L.LSTM(3, return_sequences=True)(i)), name="inner")
    else:
        inner = keras.Sequential([keras.Input((T, 3)), L.LSTM(3, return_sequences=True), L.Dense(2)], name="inner")
    model = keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(VOCAB, 3, mask_zero=True), inner]
                             + ([] if last else [L.LSTM(2), L.Dense(1)]))
    rng = np.random.default_rng(3)
    for w_layer in [model.layers[0]] + inner.layers + model.layers[2:]:
        w_layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in w_layer.get_weights()])
    xs = _inputs(rng, True)
    want = np.asarray(model.predict(xs, verbose=0))
    convert_saved(model, tmp_path, suffix)
    with torch.no_grad():
        got = load(tmp_path / "out")(torch.from_numpy(xs.astype(np.int64)))
    assert_close_scaled(got, want, dtype=np.float32, msg=f"{framework} {inner_kind} last={last}")
