"""Keras models with GRU and SimpleRNN layers saved by Keras itself, run and recorded, for the converter.

    KERAS_BACKEND=torch python legacy/record_convert_keras_rnn.py --framework keras3
    TF_USE_LEGACY_KERAS=1 python legacy/record_convert_keras_rnn.py --framework tf_keras

Keras 3 (pip ``keras``, torch backend) and tf-keras 2.21 each save one functional model of independent
branches reading the same input (``GRU`` with ``reset_after`` True and False, ``hard_sigmoid``, ``use_bias=False``,
``dropout`` / ``recurrent_dropout`` (inference: no effect), ``return_sequences=False``; ``SimpleRNN`` tanh and
relu; ``Bidirectional`` of a GRU in each mode and of a SimpleRNN) as ``.keras`` and ``.h5``, a ``stateful``
GRU called twice (the second call starts from the first's final state), and GRUs and a SimpleRNN behind a
``Masking`` layer (``masked``: right padding, a hole, a masked first step; ``go_backwards``; a
``Bidirectional(merge_mode="sum")``). ``expected.npz`` holds the input and,
per layer, what Keras returned: the sequence output and the final h.

tf-keras also saves a ``CuDNNGRU`` (``tf.compat.v1.keras.layers.CuDNNGRU``): it builds and saves on the CPU
but runs only on a GPU, so its outputs are those of tf-keras's ``GRU(reset_after=True)`` given the weights the
way Keras converts them on loading (``bias.reshape(2, 3H)``, sigmoid). Keras 1 cannot be installed on Python
3.11: its files are written here with h5py in Keras 1.2's layout (keras 1.2.2 engine/topology.py
``save_weights_to_hdf5_group``; layers/recurrent.py ``GRU.build``: nine per-gate weights ``gru_1_W_z, gru_1_U_z,
gru_1_b_z, ..._r, ..._h``; ``SimpleRNN.build``: ``W, U, b``; ``output_dim``, ``inner_activation``), and their
outputs are tf-keras's GRU(reset_after=False) with those weights fused in the order z, r, h and Keras 1's default
``hard_sigmoid``, and tf-keras's SimpleRNN.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

from _common import GOLDEN

B, T, IN = 3, 5, 3
SEED = 21


def _keras(framework):
    if framework == "keras3":
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        return keras
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras
    return tf_keras


def branches(keras):
    L = keras.layers
    seq = dict(return_sequences=True, return_state=True)
    return {
        "gru_after": L.GRU(4, reset_after=True, **seq, name="gru_after"),
        "gru_before": L.GRU(3, reset_after=False, **seq, name="gru_before"),
        "gru_before_hard_sigmoid": L.GRU(3, reset_after=False, recurrent_activation="hard_sigmoid", **seq,
                                         name="gru_before_hard_sigmoid"),
        "gru_after_hard_sigmoid_nobias": L.GRU(2, reset_after=True, recurrent_activation="hard_sigmoid", use_bias=False,
                                               **seq, name="gru_after_hard_sigmoid_nobias"),
        "gru_dropout": L.GRU(3, dropout=0.3, recurrent_dropout=0.2, **seq, name="gru_dropout"),
        "simple_rnn": L.SimpleRNN(4, **seq, name="simple_rnn"),
        "simple_rnn_relu": L.SimpleRNN(3, activation="relu", **seq, name="simple_rnn_relu"),
        "bidirectional_gru": L.Bidirectional(L.GRU(3, reset_after=True, **seq), name="bidirectional_gru"),
        "bidirectional_gru_before": L.Bidirectional(L.GRU(2, reset_after=False, **seq), name="bidirectional_gru_before"),
        "bidirectional_simple_rnn": L.Bidirectional(L.SimpleRNN(3, **seq), name="bidirectional_simple_rnn"),
        "gru_last": L.GRU(2, reset_after=False, name="gru_last"),
    }


def _randomise(layer, rng):
    layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()])


def record(framework: str, out: Path):
    keras = _keras(framework)
    rng = np.random.default_rng(SEED + (framework == "tf_keras"))
    arrays = {}
    inp = keras.Input((T, IN))
    layers = branches(keras)
    outputs = {name: layer(inp) for name, layer in layers.items()}
    flat = []
    for name in layers:
        o = outputs[name]
        flat += list(o) if isinstance(o, (list, tuple)) else [o]
    model = keras.Model(inp, flat)
    for layer in layers.values():
        _randomise(layer, rng)
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    got = [np.asarray(v) for v in model.predict(x, verbose=0)]
    model.save(out / "model.keras")
    model.save(out / "model.h5")
    arrays["model/x"] = x
    k = 0
    for name in layers:
        if name.startswith("bidirectional"):
            y, h_fw, h_bw = got[k:k + 3]
            k += 3
            arrays[f"model/{name}/y"], arrays[f"model/{name}/h"] = y, np.stack([h_fw, h_bw])
        elif name == "gru_last":
            arrays[f"model/{name}/y_last"] = got[k]
            k += 1
        else:
            y, h = got[k:k + 2]
            k += 2
            arrays[f"model/{name}/y"], arrays[f"model/{name}/h"] = y, h[None]
    arrays["model/config"] = np.array(json.dumps({"files": ["model.keras", "model.h5"], "layers": list(layers)}))
    _stateful(keras, out, rng, arrays)
    _masked(keras, out, rng, arrays)
    if framework == "tf_keras":
        _cudnn(keras, out, rng, arrays)
        _keras1(keras, out, rng, arrays)
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": keras.__version__,
                                              "numpy": np.__version__,
                                              "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}))
    np.savez_compressed(out / "expected.npz", **arrays)


def _masked(keras, out, rng, arrays):
    """GRUs and a SimpleRNN behind a Masking layer (right padding and a hole), one reading go_backwards, a
    Bidirectional summing its halves: the outputs at masked steps are Keras's version's."""
    L = keras.layers
    seq = dict(return_sequences=True, return_state=True)
    layers = {
        "masked_gru_after": L.GRU(3, reset_after=True, **seq, name="masked_gru_after"),
        "masked_gru_before": L.GRU(3, reset_after=False, **seq, name="masked_gru_before"),
        "masked_simple_rnn": L.SimpleRNN(2, **seq, name="masked_simple_rnn"),
        "masked_gru_backwards": L.GRU(2, go_backwards=True, **seq, name="masked_gru_backwards"),
        "masked_bidirectional_sum": L.Bidirectional(L.GRU(2, **seq), merge_mode="sum",
                                                    name="masked_bidirectional_sum"),
    }
    inp = keras.Input((T, IN))
    masked = L.Masking(0.0)(inp)
    flat = []
    for layer in layers.values():
        flat += list(layer(masked))
    model = keras.Model(inp, flat)
    for layer in layers.values():
        _randomise(layer, rng)
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    x[0, 3:] = 0.0      # right padding
    x[1, 2] = 0.0       # a hole
    x[2, 0] = 0.0       # a masked first step
    got = [np.asarray(v) for v in model.predict(x, verbose=0)]
    model.save(out / "masked.keras")
    model.save(out / "masked.h5")
    arrays["masked/x"] = x
    k = 0
    for name in layers:
        if name.startswith("masked_bidirectional"):
            arrays[f"masked/{name}/y"], arrays[f"masked/{name}/h"] = got[k], np.stack(got[k + 1:k + 3])
            k += 3
        else:
            arrays[f"masked/{name}/y"], arrays[f"masked/{name}/h"] = got[k], got[k + 1][None]
            k += 2
    arrays["masked/config"] = np.array(json.dumps({"files": ["masked.keras", "masked.h5"], "layers": list(layers),
                                                   "mask_value": 0.0}))


def _stateful(keras, out, rng, arrays):
    """A stateful GRU: Keras carries the final state of one call into the next (RNN.call with stateful=True)."""
    inp = keras.Input((T, IN), batch_size=B)
    layer = keras.layers.GRU(3, stateful=True, return_sequences=True, name="stateful_gru")
    model = keras.Model(inp, layer(inp))
    _randomise(layer, rng)
    x1 = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    x2 = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    y1 = np.asarray(model.predict(x1, batch_size=B, verbose=0))
    y2 = np.asarray(model.predict(x2, batch_size=B, verbose=0))
    model.save(out / "stateful.h5")
    arrays["stateful/x"], arrays["stateful/x2"] = x1, x2
    arrays["stateful/stateful_gru/y"], arrays["stateful/stateful_gru/y2"] = y1, y2
    arrays["stateful/config"] = np.array(json.dumps({"files": ["stateful.h5"], "layers": ["stateful_gru"],
                                                     "stateful": True}))


def _cudnn(keras, out, rng, arrays):
    import tensorflow as tf

    H = 4
    inp = keras.Input((T, IN))
    layer = tf.compat.v1.keras.layers.CuDNNGRU(H, return_sequences=True, return_state=True, name="cudnn_gru")
    model = keras.Model(inp, list(layer(inp)))
    kernel, rec, bias = [rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights([kernel, rec, bias])
    model.save(out / "cudnn_gru.h5")
    cpu = keras.layers.GRU(H, return_sequences=True, return_state=True, recurrent_activation="sigmoid",
                           reset_after=True)
    cpu_model = keras.Model(inp, list(cpu(inp)))
    cpu.set_weights([kernel, rec, bias.reshape(2, 3 * H)])
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    y, h = [np.asarray(v) for v in cpu_model.predict(x, verbose=0)]
    arrays["cudnn/x"] = x
    arrays["cudnn/cudnn_gru/y"], arrays["cudnn/cudnn_gru/h"] = y, h[None]
    arrays["cudnn/config"] = np.array(json.dumps({"files": ["cudnn_gru.h5"], "layers": ["cudnn_gru"]}))


def _keras1_file(path, layer_name, cls, config, weights):
    import h5py

    config = {"class_name": "Sequential", "config": [{"class_name": cls, "config": {
        "name": layer_name, "trainable": True, "batch_input_shape": [None, T, IN], "input_dtype": "float32",
        "init": "glorot_uniform", "inner_init": "orthogonal", "activation": "tanh", "W_regularizer": None,
        "U_regularizer": None, "b_regularizer": None, "dropout_W": 0.0, "dropout_U": 0.0, "return_sequences": True,
        "go_backwards": False, "stateful": False, "unroll": False, "consume_less": "cpu", "input_dim": IN,
        "input_length": None, **config}}]}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["backend"] = b"theano"
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [layer_name.encode()]
        lg = g.create_group(layer_name)
        lg.attrs["weight_names"] = [f"{layer_name}_{n}".encode() for n, _ in weights]
        for n, a in weights:
            lg.create_dataset(f"{layer_name}_{n}", data=a)


def _keras1(keras, out, rng, arrays):
    H = 4
    shapes = {"W": (IN, H), "U": (H, H), "b": (H,)}
    names = [f"{p}_{g}" for g in "zrh" for p in "WUb"]
    w = {n: rng.uniform(-0.8, 0.8, shapes[n[0]]).astype(np.float32) for n in names}
    _keras1_file(out / "keras1_gru.h5", "gru_1", "GRU", {"output_dim": H, "inner_activation": "hard_sigmoid"},
                 [(n, w[n]) for n in names])
    # Keras 1's GRU: the reset before the product, gates z, r, h, inner_activation hard_sigmoid (0.2 x + 0.5)
    inp = keras.Input((T, IN))
    cpu = keras.layers.GRU(H, return_sequences=True, return_state=True, recurrent_activation="hard_sigmoid",
                           reset_after=False)
    model = keras.Model(inp, list(cpu(inp)))
    cpu.set_weights([np.concatenate([w[f"{p}_{g}"] for g in "zrh"], axis=-1 if p != "b" else 0) for p in "WUb"])
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    y, h = [np.asarray(v) for v in model.predict(x, verbose=0)]
    arrays["keras1/x"] = x
    arrays["keras1/gru_1/y"], arrays["keras1/gru_1/h"] = y, h[None]
    arrays["keras1/config"] = np.array(json.dumps({"files": ["keras1_gru.h5"], "layers": ["gru_1"],
                                                   "model_outputs": "sequence"}))

    rnn_w = [(n, rng.uniform(-0.8, 0.8, shapes[n]).astype(np.float32)) for n in "WUb"]
    _keras1_file(out / "keras1_simple_rnn.h5", "simplernn_1", "SimpleRNN", {"output_dim": H}, rnn_w)
    cpu = keras.layers.SimpleRNN(H, return_sequences=True, return_state=True)
    model = keras.Model(inp, list(cpu(inp)))
    cpu.set_weights([a for _, a in rnn_w])
    y, h = [np.asarray(v) for v in model.predict(x, verbose=0)]
    arrays["keras1_rnn/x"] = x
    arrays["keras1_rnn/simplernn_1/y"], arrays["keras1_rnn/simplernn_1/h"] = y, h[None]
    arrays["keras1_rnn/config"] = np.array(json.dumps({"files": ["keras1_simple_rnn.h5"], "layers": ["simplernn_1"],
                                                       "model_outputs": "sequence"}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["keras3", "tf_keras"], required=True)
    parser.add_argument("--out", type=Path, help="default tests/golden/convert/keras_rnn/<framework>")
    args = parser.parse_args()
    out = args.out or GOLDEN / "convert" / "keras_rnn" / args.framework
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    record(args.framework, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
