"""Whole Keras models saved by Keras itself, and what ``model.predict`` returned, for the whole-model converter.

    KERAS_BACKEND=torch python legacy/record_convert_keras_models.py --framework keras3
    TF_USE_LEGACY_KERAS=1 python legacy/record_convert_keras_models.py --framework tf_keras
    python legacy/record_convert_keras_models.py --framework keras1     # h5py + numpy only
    python legacy/record_convert_keras_models.py --framework keras2     # h5py + numpy only

Keras 3 (pip ``keras``, torch backend) and tf-keras 2.21 build each model below with random weights (moving
variances positive), save it as ``.keras`` and ``.h5`` (the ``tagger`` also as ``to_json()`` beside
``save_weights()``), and record ``model.predict`` on fixed inputs: token ids with id 0 at padded steps and
in holes, float sequences with whole steps at the ``Masking`` value.

| model | layers |
| --- | --- |
| ``sentiment`` (Sequential) | Embedding(mask_zero), SpatialDropout1D, LSTM(return_sequences), Dropout, GlobalAveragePooling1D (masked), Dense relu, Dense sigmoid |
| ``tagger`` | Embedding(mask_zero), GaussianNoise, Bidirectional(LSTM) concat, LayerNormalization, TimeDistributed(Dense softmax) |
| ``bidirectional`` (1 input, 6 outputs) | Masking, Bidirectional sum / mul / ave / None (two outputs) returning sequences, ave returning the last step with its states, Average |
| ``seq2seq`` (2 inputs, 3 outputs) | Embedding(mask_zero) -> LSTM(return_state) encoder; Masking -> LSTM(initial_state) decoder; LSTM(go_backwards); Concatenate, BatchNormalization, GlobalAveragePooling1D, Dense softmax, Add, Multiply, Subtract, Dense tanh/elu/selu/softsign/swish/gelu, Activation |
| ``conv`` | Conv1D same relu, MaxPooling1D same, Conv1D causal dilated, AveragePooling1D valid, Permute, Reshape, Flatten, RepeatVector, LSTM, GlobalMaxPooling1D, Activation hard_sigmoid / softmax |
| ``siamese`` (2 inputs, 2 outputs) | shared layers: one Embedding(mask_zero), one LSTM and one Bidirectional(GRU) sum -> GlobalAveragePooling1D (masked) called on both questions; Subtract, Multiply, Concatenate, Dense sigmoid |
| ``nested_shared`` (2 inputs) | a nested ``Sequential([Embedding(mask_zero), LSTM])`` encoder called on both inputs; Multiply, Concatenate, Dense softmax |
| ``nested_functional`` | a nested Functional model (Masking, LSTM returning sequences, Dense) called once; its output's mask reaches the outer GlobalAveragePooling1D; Dense |

Keras 1.2 and standalone Keras 2.2 do not install on Python 3.11: ``--framework keras1`` / ``keras2`` write
models in those versions' exact HDF5 layout (root attributes ``keras_version``, ``backend``,
``model_config``; ``model_weights`` with ``layer_names``, each layer group's ``weight_names``, the weights
named as those versions named them: Keras 1 ``dense_1_W``, ``dense_1_b`` from keras 1.2.2
``engine/topology.py`` ``save_weights_to_hdf5_group`` and the layers' ``build``; Keras 2.2.4
``dense_1/kernel:0`` stored at ``dense_1/dense_1/kernel:0``, ``engine/saving.py``), with those versions'
configurations (Keras 1: ``output_dim``, ``inner_activation``, ``border_mode``, ``Merge``, ``Convolution1D``
from the Theano backend), and their expected outputs are computed by ``reference/keras_model.py`` (numpy, from
the Keras sources), not by Keras.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from _common import GOLDEN, REPO
from record_convert_keras import _keras

B, T, VOCAB = 3, 6, 30
SEED = 41


def _randomise(model, rng):
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [getattr(w, "path", None) or w.name for w in layer.weights]
        new = []
        for name, w in zip(names, weights):
            if "variance" in name:
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
            else:
                new.append(rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype))
        layer.set_weights(new)


def ids(rng, steps=T):
    x = rng.integers(1, VOCAB, (B, steps))
    x[1, -2:] = 0        # right padding
    x[2, 0] = 0          # a masked first step
    x[2, steps // 2] = 0  # a hole
    return x.astype(np.int32)


def floats(rng, features, steps=T, mask_value=0.0):
    x = rng.uniform(-1.5, 1.5, (B, steps, features)).astype(np.float32)
    x[1, -2:] = mask_value
    x[2, 0] = mask_value
    x[2, steps // 2] = mask_value
    return x


def models(keras, rng):
    """(name, model, inputs) for every recorded model."""
    L = keras.layers
    out = []
    m = keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(VOCAB, 8, mask_zero=True, name="embedding"),
                          L.SpatialDropout1D(0.2, name="spatial_dropout"),
                          L.LSTM(6, return_sequences=True, name="lstm"), L.Dropout(0.3, name="dropout"),
                          L.GlobalAveragePooling1D(name="average"), L.Dense(4, activation="relu", name="hidden"),
                          L.Dense(1, activation="sigmoid", name="score")], name="sentiment")
    out.append(("sentiment", m, [ids(rng)]))

    i = keras.Input((T,), dtype="int32", name="tokens")
    e = L.Embedding(VOCAB, 6, mask_zero=True, name="embedding")(i)
    e = L.GaussianNoise(0.1, name="noise")(e)
    b = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm")(e)
    b = L.LayerNormalization(name="norm")(b)
    tags = L.TimeDistributed(L.Dense(7, activation="softmax"), name="tags")(b)
    out.append(("tagger", keras.Model(i, tags, name="tagger"), [ids(rng)]))

    f = keras.Input((T, 3), name="frames")
    mk = L.Masking(0.0, name="masking")(f)
    s = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum", name="bi_sum")(mk)
    mu = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="mul", name="bi_mul")(mk)
    av = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="ave", name="bi_ave")(mk)
    fw, bw = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode=None, name="bi_none")(mk)
    last = L.Bidirectional(L.LSTM(2, return_state=True), merge_mode="ave", name="bi_last")(mk)
    avg = L.Average(name="halves")([fw, bw])
    out.append(("bidirectional", keras.Model(f, [s, mu, av, avg, last[0], last[1]], name="bidirectional"),
                [floats(rng, 3)]))

    src = keras.Input((T,), dtype="int32", name="source")
    tgt = keras.Input((T, 4), name="target")
    enc_seq, h, c = L.LSTM(5, return_sequences=True, return_state=True, name="encoder")(
        L.Embedding(VOCAB, 4, mask_zero=True, name="src_embedding")(src))
    dec = L.LSTM(5, return_sequences=True, name="decoder")(L.Masking(0.0, name="tgt_masking")(tgt),
                                                           initial_state=[h, c])
    back = L.LSTM(5, return_sequences=True, go_backwards=True, name="backwards")(tgt)
    both = L.Concatenate(name="both")([enc_seq, dec])
    both = L.BatchNormalization(name="batchnorm")(both)
    pooled = L.GlobalAveragePooling1D(name="pool")(both)
    probs = L.Dense(3, activation="softmax", name="probs")(pooled)
    a = L.Dense(3, activation="tanh", name="dense_tanh")(h)
    bb = L.Dense(3, activation="elu", name="dense_elu")(c)
    cc = L.Dense(3, activation="selu", name="dense_selu")(h)
    dd = L.Dense(3, activation="softsign", name="dense_softsign")(c)
    ee = L.Dense(3, activation="swish", name="dense_swish")(h)
    ff = L.Dense(3, activation="gelu", name="dense_gelu")(c)
    mixed = L.Subtract(name="subtract")([L.Add(name="add")([a, bb, cc]), L.Multiply(name="multiply")([dd, ee])])
    mixed = L.Activation("exponential", name="exp")(L.Add(name="add_gelu")([mixed, ff]))
    out.append(("seq2seq", keras.Model([src, tgt], [probs, mixed, back], name="seq2seq"),
                [ids(rng), floats(rng, 4)]))

    x = keras.Input((8, 3), name="signal")
    y = L.Conv1D(4, 3, padding="same", activation="relu", name="conv_same")(x)
    y = L.MaxPooling1D(3, strides=2, padding="same", name="max_same")(y)
    y = L.Conv1D(5, 2, padding="causal", dilation_rate=2, name="conv_causal")(y)
    y = L.AveragePooling1D(2, strides=1, name="avg_valid")(y)
    y = L.Permute((2, 1), name="permute")(y)
    y = L.Reshape((3, 5), name="reshape")(y)
    flat = L.Flatten(name="flatten")(y)
    rep = L.RepeatVector(3, name="repeat")(flat)
    z = L.LSTM(4, name="lstm")(rep)
    g = L.GlobalMaxPooling1D(name="global_max")(y)
    out.append(("conv", keras.Model(x, [L.Activation("hard_sigmoid", name="hard")(z),
                                        L.Activation("softmax", name="softmax")(g)], name="conv"),
                [rng.uniform(-1.5, 1.5, (B, 8, 3)).astype(np.float32)]))
    return out


def shared_models(keras, rng):
    """(name, model, inputs) for the models with shared layers and nested models."""
    L = keras.layers
    out = []
    q1 = keras.Input((T,), dtype="int32", name="question1")
    q2 = keras.Input((T,), dtype="int32", name="question2")
    embed = L.Embedding(VOCAB, 6, mask_zero=True, name="embedding")
    encode = L.LSTM(5, name="encoder")
    summary = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum", name="bigru")
    pool = L.GlobalAveragePooling1D(name="pool")
    e1, e2 = embed(q1), embed(q2)
    h1, h2 = encode(e1), encode(e2)
    g1, g2 = pool(summary(e1)), pool(summary(e2))
    diff = L.Subtract(name="difference")([h1, h2])
    prod = L.Multiply(name="product")([h1, h2])
    both = L.Concatenate(name="features")([diff, prod, g1, g2])
    score = L.Dense(1, activation="sigmoid", name="score")(both)
    out.append(("siamese", keras.Model([q1, q2], [score, h2], name="siamese"), [ids(rng), ids(rng)]))

    encoder = keras.Sequential([L.Embedding(VOCAB, 5, mask_zero=True, name="tokens"), L.LSTM(4, name="lstm")],
                               name="encoder")
    a = keras.Input((T,), dtype="int32", name="left")
    b = keras.Input((T,), dtype="int32", name="right")
    ea, eb = encoder(a), encoder(b)
    joined = L.Concatenate(name="joined")([ea, eb, L.Multiply(name="agree")([ea, eb])])
    out.append(("nested_shared", keras.Model([a, b], L.Dense(2, activation="softmax", name="out")(joined),
                                             name="nested_shared"), [ids(rng), ids(rng)]))

    f = keras.Input((T, 3), name="frames")
    mk = L.Masking(0.0, name="mask")(f)
    y = L.LSTM(4, return_sequences=True, name="lstm")(mk)
    y = L.Dense(3, activation="tanh", name="dense")(y)
    inner = keras.Model(f, y, name="inner")
    x = keras.Input((T, 3), name="signal")
    z = inner(x)
    z = L.GlobalAveragePooling1D(name="average")(z)
    out.append(("nested_functional", keras.Model(x, L.Dense(2, name="head")(z), name="nested_functional"),
                [floats(rng, 3)]))
    return out


def _every_model(keras, rng):
    """The models in recording order; the shared and nested ones after the others have drawn their weights (so
    that adding them left the others' recordings as they were)."""
    yield from models(keras, rng)
    yield from shared_models(keras, rng)


def record(framework: str, out: Path):
    keras = _keras(framework)
    rng = np.random.default_rng(SEED + (framework == "tf_keras"))
    arrays = {}
    for name, model, inputs in _every_model(keras, rng):
        _randomise(model, rng)
        got = model.predict(inputs, verbose=0)
        got = [np.asarray(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
        files = [f"{name}.keras", f"{name}.h5"]
        model.save(out / files[0])
        model.save(out / files[1])
        case = {"files": files, "inputs": len(inputs), "outputs": len(got)}
        if name == "tagger":
            (out / f"{name}.json").write_text(model.to_json())
            weights = f"{name}.weights.h5" if framework == "keras3" else f"{name}_weights.h5"
            model.save_weights(out / weights)
            case["json"] = [f"{name}.json", weights]
        for k, x in enumerate(inputs):
            arrays[f"{name}/x{k}"] = x
        for k, y in enumerate(got):
            arrays[f"{name}/y{k}"] = y
        arrays[f"{name}/config"] = np.array(json.dumps(case))
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": keras.__version__,
                                              "numpy": np.__version__,
                                              "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}))
    np.savez_compressed(out / "expected.npz", **arrays)


# ----------------------------------------------------------------------------- Keras 1.2 and 2.2 layouts
def _lstm_cfg_keras1(name, H, **kw):
    cfg = {"name": name, "trainable": True, "output_dim": H, "init": "glorot_uniform", "inner_init": "orthogonal",
           "forget_bias_init": "one", "activation": "tanh", "inner_activation": "hard_sigmoid", "W_regularizer": None,
           "U_regularizer": None, "b_regularizer": None, "dropout_W": 0.0, "dropout_U": 0.0, "return_sequences": False,
           "go_backwards": False, "stateful": False, "unroll": False, "consume_less": "cpu"}
    cfg.update(kw)
    return {"class_name": "LSTM", "config": cfg}


def _keras1_models(rng):
    """Keras 1.2.2 models: configurations as keras 1.2.2 get_config writes them, weights as its layers name them."""
    def w(*shape):
        return rng.uniform(-0.8, 0.8, shape).astype(np.float32)

    H = 4
    gates = ["i", "c", "f", "o"]
    lstm_w = lambda name, n_in: [(f"{name}_{p}_{g}", w(*({"W": (n_in, H), "U": (H, H), "b": (H,)}[p])))  # noqa: E731
                                 for g in gates for p in "WUb"]
    # Sequential: Embedding(mask_zero) -> LSTM(return_sequences) -> TimeDistributed(Dense softmax); the mask
    # reaches TimeDistributed (supports_masking) and nothing after it.
    seq = {"class_name": "Sequential", "config": [
        {"class_name": "Embedding", "config": {"name": "embedding_1", "trainable": True, "input_dim": VOCAB,
                                               "output_dim": 5, "init": "uniform", "input_length": T,
                                               "mask_zero": True, "W_regularizer": None, "activity_regularizer": None,
                                               "W_constraint": None, "dropout": 0.0, "input_dtype": "int32",
                                               "batch_input_shape": [None, T]}},
        _lstm_cfg_keras1("lstm_1", H, return_sequences=True),
        {"class_name": "TimeDistributed", "config": {"name": "timedistributed_1", "trainable": True, "layer": {
            "class_name": "Dense", "config": {"name": "dense_1", "trainable": True, "output_dim": 3,
                                              "init": "glorot_uniform", "activation": "softmax", "W_regularizer": None,
                                              "b_regularizer": None, "activity_regularizer": None,
                                              "W_constraint": None, "b_constraint": None, "bias": True,
                                              "input_dim": None}}}},
    ]}
    seq_w = [("embedding_1", [("embedding_1_W", w(VOCAB, 5))]), ("lstm_1", lstm_w("lstm_1", 5)),
             ("timedistributed_1", [("dense_1_W", w(H, 3)), ("dense_1_b", w(3))])]
    seq_in = [ids(rng)]
    # Functional (Model): two inputs, Convolution1D (Theano backend, so stored flipped), MaxPooling1D,
    # Masking -> LSTM, Merge concat and sum, BatchNormalization (mode 0), Dense.
    def node(*names):
        return [[[n, 0, 0] for n in names]]

    fun = {"class_name": "Model", "config": {"name": "model_1", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 8, 3], "input_dtype": "float32", "sparse": False, "name": "input_1"}},
        {"class_name": "Convolution1D", "name": "convolution1d_1", "inbound_nodes": node("input_1"),
         "config": {"name": "convolution1d_1", "trainable": True, "nb_filter": 4, "filter_length": 3,
                    "init": "uniform", "activation": "relu", "border_mode": "same", "subsample_length": 1,
                    "W_regularizer": None, "b_regularizer": None, "activity_regularizer": None, "W_constraint": None,
                    "b_constraint": None, "bias": True, "input_dim": 3, "input_length": 8}},
        {"class_name": "MaxPooling1D", "name": "maxpooling1d_1", "inbound_nodes": node("convolution1d_1"),
         "config": {"name": "maxpooling1d_1", "trainable": True, "pool_length": 2, "stride": 2,
                    "border_mode": "valid"}},
        {"class_name": "LSTM", "name": "lstm_2", "inbound_nodes": node("maxpooling1d_1"),
         "config": _lstm_cfg_keras1("lstm_2", H)["config"]},
        {"class_name": "InputLayer", "name": "input_2", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, T, 2], "input_dtype": "float32", "sparse": False, "name": "input_2"}},
        {"class_name": "Masking", "name": "masking_1", "inbound_nodes": node("input_2"),
         "config": {"name": "masking_1", "trainable": True, "mask_value": 0.0}},
        {"class_name": "LSTM", "name": "lstm_3", "inbound_nodes": node("masking_1"),
         "config": _lstm_cfg_keras1("lstm_3", H)["config"]},
        {"class_name": "Merge", "name": "merge_1", "inbound_nodes": node("lstm_2", "lstm_3"),
         "config": {"name": "merge_1", "mode": "concat", "concat_axis": -1, "dot_axes": -1, "output_shape": None,
                    "output_shape_type": "raw", "output_mask": None, "output_mask_type": "raw", "arguments": {},
                    "mode_type": "raw"}},
        {"class_name": "BatchNormalization", "name": "batchnormalization_1", "inbound_nodes": node("merge_1"),
         "config": {"name": "batchnormalization_1", "trainable": True, "epsilon": 0.001, "mode": 0, "axis": -1,
                    "gamma_regularizer": None, "beta_regularizer": None, "momentum": 0.99}},
        {"class_name": "Merge", "name": "merge_2", "inbound_nodes": node("lstm_2", "lstm_3"),
         "config": {"name": "merge_2", "mode": "sum", "concat_axis": -1, "dot_axes": -1, "output_shape": None,
                    "output_shape_type": "raw", "output_mask": None, "output_mask_type": "raw", "arguments": {},
                    "mode_type": "raw"}},
        {"class_name": "Dense", "name": "dense_2", "inbound_nodes": node("batchnormalization_1"),
         "config": {"name": "dense_2", "trainable": True, "output_dim": 2, "init": "glorot_uniform",
                    "activation": "linear", "W_regularizer": None, "b_regularizer": None,
                    "activity_regularizer": None, "W_constraint": None, "b_constraint": None, "bias": True,
                    "input_dim": None}},
        {"class_name": "Activation", "name": "activation_1", "inbound_nodes": node("merge_2"),
         "config": {"name": "activation_1", "trainable": True, "activation": "hard_sigmoid"}},
    ], "input_layers": [["input_1", 0, 0], ["input_2", 0, 0]],
        "output_layers": [["dense_2", 0, 0], ["activation_1", 0, 0]]}}
    fun_w = [("input_1", []), ("convolution1d_1", [("convolution1d_1_W", w(3, 1, 3, 4)), ("convolution1d_1_b", w(4))]),
             ("maxpooling1d_1", []), ("lstm_2", lstm_w("lstm_2", 4)), ("input_2", []), ("masking_1", []),
             ("lstm_3", lstm_w("lstm_3", 2)), ("merge_1", []),
             ("batchnormalization_1", [("batchnormalization_1_gamma", w(2 * H)), ("batchnormalization_1_beta", w(2 * H)),
                                       ("batchnormalization_1_running_mean", w(2 * H)),
                                       ("batchnormalization_1_running_std",
                                        rng.uniform(0.5, 1.5, 2 * H).astype(np.float32))]),
             ("merge_2", []), ("dense_2", [("dense_2_W", w(2 * H, 2)), ("dense_2_b", w(2))]), ("activation_1", [])]
    fun_in = [rng.uniform(-1.5, 1.5, (B, 8, 3)).astype(np.float32), floats(rng, 2)]
    return [("sequential", seq, seq_w, seq_in, "1.2.2", "theano"), ("functional", fun, fun_w, fun_in, "1.2.2", "theano")]


def _keras2_models(rng):
    """Keras 2.2.4 models (standalone, TensorFlow backend): keras 2.2.4 get_config and save_weights' names."""
    def w(*shape):
        return rng.uniform(-0.8, 0.8, shape).astype(np.float32)

    H = 4
    def node(*names):
        return [[[n, 0, 0, {}] for n in names]]

    def lstm_cfg(name, **kw):
        cfg = {"name": name, "trainable": True, "return_sequences": False, "return_state": False,
               "go_backwards": False, "stateful": False, "unroll": False, "units": H, "activation": "tanh",
               "recurrent_activation": "hard_sigmoid", "use_bias": True, "kernel_initializer": {
                   "class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg",
                                                               "distribution": "uniform", "seed": None}},
               "unit_forget_bias": True, "kernel_regularizer": None, "dropout": 0.0, "recurrent_dropout": 0.0,
               "implementation": 1}
        cfg.update(kw)
        return cfg

    config = {"class_name": "Model", "keras_version": "2.2.4", "backend": "tensorflow", "config": {
        "name": "model_1", "layers": [
            {"name": "input_1", "class_name": "InputLayer", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, T], "dtype": "int32", "sparse": False, "name": "input_1"}},
            {"name": "embedding_1", "class_name": "Embedding", "inbound_nodes": node("input_1"),
             "config": {"name": "embedding_1", "trainable": True, "batch_input_shape": [None, T], "dtype": "float32",
                        "input_dim": VOCAB, "output_dim": 5, "embeddings_initializer": {
                            "class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05, "seed": None}},
                        "embeddings_regularizer": None, "activity_regularizer": None, "embeddings_constraint": None,
                        "mask_zero": True, "input_length": T}},
            {"name": "lstm_1", "class_name": "LSTM", "inbound_nodes": node("embedding_1"),
             "config": lstm_cfg("lstm_1", return_sequences=True)},
            {"name": "dense_1", "class_name": "Dense", "inbound_nodes": node("lstm_1"),
             "config": {"name": "dense_1", "trainable": True, "units": 3, "activation": "tanh", "use_bias": True,
                        "kernel_initializer": None, "bias_initializer": None, "kernel_regularizer": None,
                        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                        "bias_constraint": None}},
            {"name": "global_average_pooling1d_1", "class_name": "GlobalAveragePooling1D",
             "inbound_nodes": node("dense_1"),
             "config": {"name": "global_average_pooling1d_1", "trainable": True, "data_format": "channels_last"}},
            {"name": "bidirectional_1", "class_name": "Bidirectional", "inbound_nodes": node("embedding_1"),
             "config": {"name": "bidirectional_1", "trainable": True, "merge_mode": "mul",
                        "layer": {"class_name": "LSTM", "config": lstm_cfg("lstm_2")}}},
            {"name": "concatenate_1", "class_name": "Concatenate",
             "inbound_nodes": node("global_average_pooling1d_1", "bidirectional_1"),
             "config": {"name": "concatenate_1", "trainable": True, "axis": -1}},
            {"name": "dense_2", "class_name": "Dense", "inbound_nodes": node("concatenate_1"),
             "config": {"name": "dense_2", "trainable": True, "units": 2, "activation": "softmax", "use_bias": False,
                        "kernel_initializer": None, "bias_initializer": None, "kernel_regularizer": None,
                        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                        "bias_constraint": None}},
        ], "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_2", 0, 0], ["lstm_1", 0, 0]]}}

    def lstm_w(prefix, n_in):
        return [(f"{prefix}/kernel:0", w(n_in, 4 * H)), (f"{prefix}/recurrent_kernel:0", w(H, 4 * H)),
                (f"{prefix}/bias:0", w(4 * H))]
    weights = [("input_1", []), ("embedding_1", [("embedding_1/embeddings:0", w(VOCAB, 5))]),
               ("lstm_1", lstm_w("lstm_1", 5)), ("dense_1", [("dense_1/kernel:0", w(H, 3)), ("dense_1/bias:0", w(3))]),
               ("global_average_pooling1d_1", []),
               ("bidirectional_1", lstm_w("bidirectional_1/forward_lstm_2", 5) +
                lstm_w("bidirectional_1/backward_lstm_2", 5)),
               ("concatenate_1", []), ("dense_2", [("dense_2/kernel:0", w(3 + H, 2))])]
    return [("functional", config, weights, [ids(rng)], "2.2.4", "tensorflow")]


def write_layout(framework: str, out: Path):
    """Keras 1.2.2 / 2.2.4 files written with h5py in those versions' layout; outputs from the numpy reference."""
    sys.path.insert(0, str(REPO))
    from reference import keras_model
    from tests.keras_files import write_keras_h5

    rng = np.random.default_rng(SEED + {"keras1": 7, "keras2": 8}[framework])
    arrays = {}
    for name, config, weights, inputs, version, backend in (_keras1_models(rng) if framework == "keras1"
                                                             else _keras2_models(rng)):
        config = dict(config)
        config.setdefault("keras_version", version)
        write_keras_h5(out / f"{name}.h5", config, weights, version, backend)
        major, minor, patch = (int(p) for p in version.split("."))
        outputs = keras_model.predict(config, {n: [a for _, a in ws] for n, ws in weights}, inputs,
                                      (major, minor, patch, False), backend)
        for k, x in enumerate(inputs):
            arrays[f"{name}/x{k}"] = x
        for k, y in enumerate(outputs):
            arrays[f"{name}/y{k}"] = y.astype(np.float32)
        arrays[f"{name}/config"] = np.array(json.dumps({"files": [f"{name}.h5"], "inputs": len(inputs),
                                                        "outputs": len(outputs)}))
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": version, "numpy": np.__version__,
                                              "expected": "reference/keras_model.py (Keras does not install on "
                                                          "Python 3.11)"}))
    np.savez_compressed(out / "expected.npz", **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["keras3", "tf_keras", "keras1", "keras2"], required=True)
    parser.add_argument("--out", type=Path, help="default tests/golden/convert/keras_models/<framework>")
    args = parser.parse_args()
    out = args.out or GOLDEN / "convert" / "keras_models" / args.framework
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if args.framework in ("keras1", "keras2"):
        write_layout(args.framework, out)
    else:
        record(args.framework, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
