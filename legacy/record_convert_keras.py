"""Keras models with LSTM layers saved by Keras itself, run and recorded, for the converter.

    KERAS_BACKEND=torch python legacy/record_convert_keras.py --framework keras3
    TF_USE_LEGACY_KERAS=1 python legacy/record_convert_keras.py --framework tf_keras

Keras 3 (pip ``keras``, torch backend) and tf-keras 2.21 each save one functional model of independent
LSTM branches reading the same input (``LSTM`` sigmoid / hard_sigmoid / relu, ``use_bias=False`` with
``go_backwards``, ``Bidirectional``, ``return_sequences=False``) as ``.keras`` and ``.h5``, one model
with a ``Masking`` layer, and one whose masked LSTMs (forward, ``go_backwards``, ``Bidirectional`` concat and
sum) are called with a mask and a given initial state (``masked_state``: masked first steps, where Keras's
outputs at masked steps differ from the carried state). ``expected.npz`` holds the input (and initial states) and, per
layer, what Keras returned: the sequence output (in Keras's order: reversed in time for
``go_backwards``), the final h and c.

tf-keras also saves a ``CuDNNLSTM`` (``tf.compat.v1.keras.layers.CuDNNLSTM``): it builds and saves on the
CPU but runs only on a GPU, so its outputs are those of tf-keras's ``LSTM`` given the same weights the
way Keras converts them on loading (``bias[:4H] + bias[4H:]``, sigmoid). Keras 1 cannot be installed on
Python 3.11: its file (``keras1_lstm.h5``) is written here with h5py in Keras 1.2's layout (12 per-gate
weights ``lstm_1_W_i, lstm_1_U_i, lstm_1_b_i, ...``, ``output_dim``, ``inner_activation``, from keras
1.2.2 engine/topology.py ``save_weights_to_hdf5_group`` and layers/recurrent.py ``LSTM.build``), and its
outputs are tf-keras's LSTM with those weights fused in Keras 1's gate order and Keras 1's default
``hard_sigmoid``.
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
SEED = 15


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
    return {
        "lstm_sigmoid": L.LSTM(4, return_sequences=True, return_state=True, name="lstm_sigmoid"),
        "lstm_hard_sigmoid": L.LSTM(3, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True,
                                    name="lstm_hard_sigmoid"),
        "lstm_nobias_backwards": L.LSTM(5, use_bias=False, go_backwards=True, return_sequences=True, return_state=True,
                                        name="lstm_nobias_backwards"),
        "lstm_relu": L.LSTM(3, activation="relu", return_sequences=True, return_state=True, name="lstm_relu"),
        "bidirectional": L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True), name="bidirectional"),
        "lstm_last": L.LSTM(2, name="lstm_last"),
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
    cases = []
    for name in layers:
        if name == "bidirectional":
            y, h_fw, c_fw, h_bw, c_bw = got[k:k + 5]
            k += 5
            arrays[f"model/{name}/y"] = y
            arrays[f"model/{name}/h"] = np.stack([h_fw, h_bw])
            arrays[f"model/{name}/c"] = np.stack([c_fw, c_bw])
        elif name == "lstm_last":
            arrays[f"model/{name}/y_last"] = got[k]
            k += 1
        else:
            y, h, c = got[k:k + 3]
            k += 3
            arrays[f"model/{name}/y"], arrays[f"model/{name}/h"], arrays[f"model/{name}/c"] = y, h[None], c[None]
        cases.append(name)
    arrays["model/config"] = np.array(json.dumps({"files": ["model.keras", "model.h5"], "layers": cases}))

    # Masks: right padding and a hole (a zero step inside a sequence).
    m_in = keras.Input((T, IN))
    masked_lstm = keras.layers.LSTM(3, return_sequences=True, return_state=True, name="masked_lstm")
    m_out = masked_lstm(keras.layers.Masking(0.0)(m_in))
    m_model = keras.Model(m_in, list(m_out))
    _randomise(masked_lstm, rng)
    xm = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    xm[0, 3:] = 0.0      # right padding
    xm[1, 2] = 0.0       # a hole
    y, h, c = [np.asarray(v) for v in m_model.predict(xm, verbose=0)]
    m_model.save(out / "masked.keras")
    arrays["masked/x"] = xm
    arrays["masked/masked_lstm/y"], arrays["masked/masked_lstm/h"], arrays["masked/masked_lstm/c"] = y, h[None], c[None]
    arrays["masked/config"] = np.array(json.dumps({"files": ["masked.keras"], "layers": ["masked_lstm"],
                                                   "mask_value": 0.0}))
    if framework == "tf_keras":
        _cudnn(keras, out, rng, arrays)
        _keras1(keras, out, rng, arrays)
    _masked_state(keras, out, np.random.default_rng(SEED + 100 + (framework == "tf_keras")), arrays)
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": keras.__version__,
                                              "numpy": np.__version__,
                                              "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}))
    np.savez_compressed(out / "expected.npz", **arrays)


def _masked_state(keras, out, rng, arrays):
    """Masks with a nonzero initial state: masked first steps (in reading order: right padding for
    go_backwards), where a layer outputs zeros while its state is the initial one; Bidirectional's zeros.

    The saved model is Masking -> the layers; the recorded numbers are each layer called with the mask and
    an initial state (``layer(x, mask=..., initial_state=...)``). A functional model cannot record them: Keras
    3 (3.15.1, torch and TensorFlow backends alike) does not pass the Masking layer's mask to a layer that is
    also given ``initial_state`` in the graph."""
    H = 3
    L = keras.layers
    inp = keras.Input((T, IN))
    masked = L.Masking(0.0)(inp)
    layers = {
        "lstm_state": L.LSTM(H, return_sequences=True, return_state=True, name="lstm_state"),
        "lstm_state_backwards": L.LSTM(H, go_backwards=True, return_sequences=True, return_state=True,
                                       name="lstm_state_backwards"),
        "bidirectional_masked": L.Bidirectional(L.LSTM(H, return_sequences=True, return_state=True),
                                                name="bidirectional_masked"),
        "bidirectional_sum": L.Bidirectional(L.LSTM(H, return_sequences=True, return_state=True), merge_mode="sum",
                                             name="bidirectional_sum"),
    }
    model = keras.Model(inp, [o for layer in layers.values() for o in layer(masked)])
    for layer in layers.values():
        _randomise(layer, rng)
    model.save(out / "masked_state.keras")
    model.save(out / "masked_state.h5")
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    x[0, 3:] = 0.0           # right padding: masked first steps of the go_backwards layer
    x[1, :2] = 0.0           # masked first steps
    x[1, 3] = 0.0            # and a hole
    mask = np.any(x != 0.0, axis=-1)
    h0 = rng.uniform(-0.8, 0.8, (B, H)).astype(np.float32)
    c0 = rng.uniform(-0.8, 0.8, (B, H)).astype(np.float32)
    if hasattr(keras, "ops"):   # Keras 3
        cv, to_numpy = keras.ops.convert_to_tensor, keras.ops.convert_to_numpy
    else:                        # tf-keras: eager TensorFlow tensors
        import tensorflow as tf
        cv, to_numpy = tf.convert_to_tensor, lambda t: t.numpy()
    arrays["masked_state/x"] = x
    for name, layer in layers.items():
        bidirectional = name.startswith("bidirectional")
        state = [cv(h0), cv(c0)] * (2 if bidirectional else 1)
        got = [to_numpy(v) for v in layer(cv(x), mask=cv(mask), initial_state=state)]
        if bidirectional:
            y, h_fw, c_fw, h_bw, c_bw = got
            h, c = np.stack([h_fw, h_bw]), np.stack([c_fw, c_bw])
        else:
            y, h, c = got
            h, c = h[None], c[None]
        n = 2 if bidirectional else 1
        arrays[f"masked_state/{name}/y"], arrays[f"masked_state/{name}/h"], arrays[f"masked_state/{name}/c"] = y, h, c
        arrays[f"masked_state/{name}/h0"] = np.stack([h0] * n)
        arrays[f"masked_state/{name}/c0"] = np.stack([c0] * n)
    arrays["masked_state/config"] = np.array(json.dumps({"files": ["masked_state.keras", "masked_state.h5"],
                                                         "layers": list(layers), "mask_value": 0.0}))


def _cudnn(keras, out, rng, arrays):
    import tensorflow as tf

    H = 4
    inp = keras.Input((T, IN))
    layer = tf.compat.v1.keras.layers.CuDNNLSTM(H, return_sequences=True, return_state=True, name="cudnn_lstm")
    model = keras.Model(inp, list(layer(inp)))
    kernel, rec, bias = [rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights([kernel, rec, bias])
    model.save(out / "cudnn.h5")
    cpu = keras.layers.LSTM(H, return_sequences=True, return_state=True, recurrent_activation="sigmoid")
    cpu_model = keras.Model(inp, list(cpu(inp)))
    cpu.set_weights([kernel, rec, bias[:4 * H] + bias[4 * H:]])
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    y, h, c = [np.asarray(v) for v in cpu_model.predict(x, verbose=0)]
    arrays["cudnn/x"] = x
    arrays["cudnn/cudnn_lstm/y"], arrays["cudnn/cudnn_lstm/h"], arrays["cudnn/cudnn_lstm/c"] = y, h[None], c[None]
    arrays["cudnn/config"] = np.array(json.dumps({"files": ["cudnn.h5"], "layers": ["cudnn_lstm"]}))


def _keras1(keras, out, rng, arrays):
    import h5py

    H = 4
    names = ["W_i", "U_i", "b_i", "W_c", "U_c", "b_c", "W_f", "U_f", "b_f", "W_o", "U_o", "b_o"]
    shapes = {"W": (IN, H), "U": (H, H), "b": (H,)}
    w = {n: rng.uniform(-0.8, 0.8, shapes[n[0]]).astype(np.float32) for n in names}
    config = {"class_name": "Sequential", "config": [{"class_name": "LSTM", "config": {
        "name": "lstm_1", "trainable": True, "batch_input_shape": [None, T, IN], "input_dtype": "float32",
        "output_dim": H, "init": "glorot_uniform", "inner_init": "orthogonal", "forget_bias_init": "one",
        "activation": "tanh", "inner_activation": "hard_sigmoid", "W_regularizer": None, "U_regularizer": None,
        "b_regularizer": None, "dropout_W": 0.0, "dropout_U": 0.0, "return_sequences": True, "go_backwards": False,
        "stateful": False, "unroll": False, "consume_less": "cpu", "input_dim": IN, "input_length": None}}]}
    with h5py.File(out / "keras1_lstm.h5", "w") as f:
        f.attrs["keras_version"] = b"1.2.2"
        f.attrs["backend"] = b"theano"
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"lstm_1"]
        lg = g.create_group("lstm_1")
        lg.attrs["weight_names"] = [f"lstm_1_{n}".encode() for n in names]
        for n in names:
            lg.create_dataset(f"lstm_1_{n}", data=w[n])
    # Keras 1's LSTM: z = x W + h U + b split i, f, c, o; inner_activation hard_sigmoid (0.2 x + 0.5, clipped).
    inp = keras.Input((T, IN))
    cpu = keras.layers.LSTM(H, return_sequences=True, return_state=True, recurrent_activation="hard_sigmoid")
    model = keras.Model(inp, list(cpu(inp)))
    cpu.set_weights([np.concatenate([w[f"W_{g}"] for g in "ifco"], 1), np.concatenate([w[f"U_{g}"] for g in "ifco"], 1),
                     np.concatenate([w[f"b_{g}"] for g in "ifco"])])
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    y, h, c = [np.asarray(v) for v in model.predict(x, verbose=0)]
    arrays["keras1/x"] = x
    arrays["keras1/lstm_1/y"], arrays["keras1/lstm_1/h"], arrays["keras1/lstm_1/c"] = y, h[None], c[None]
    arrays["keras1/config"] = np.array(json.dumps({"files": ["keras1_lstm.h5"], "layers": ["lstm_1"]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["keras3", "tf_keras"], required=True)
    parser.add_argument("--out", type=Path, help="default tests/golden/convert/<framework>")
    args = parser.parse_args()
    out = args.out or GOLDEN / "convert" / args.framework
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    record(args.framework, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
