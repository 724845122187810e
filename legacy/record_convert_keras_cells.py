"""Keras models whose recurrent layers are the generic ``RNN`` over Keras's built-in cells, saved by Keras
itself, and what ``model.predict`` returned, for the recurrent and whole-model converters.

    KERAS_BACKEND=torch python legacy/record_convert_keras_cells.py --framework keras3
    TF_USE_LEGACY_KERAS=1 python legacy/record_convert_keras_cells.py --framework tf_keras

Keras 3 (pip ``keras``, torch backend) and tf-keras 2.21 build each model below with random weights, save it
as ``.keras`` and ``.h5``, and record ``model.predict`` on fixed inputs: token ids with id 0 at padded steps
and in holes, float sequences with whole steps at the ``Masking`` value.

| model | layers |
| --- | --- |
| ``lstm_cell`` (Sequential) | Embedding(mask_zero), RNN(LSTMCell, return_sequences), Dense |
| ``gru_cells`` (1 input, 5 outputs) | RNN(GRUCell(reset_after=True), return_state), RNN(GRUCell(reset_after=False, recurrent_activation=hard_sigmoid), return_sequences, return_state), RNN(GRUCell(use_bias=False), unroll) |
| ``simple_backwards`` (1 input, 2 outputs) | RNN(SimpleRNNCell(relu), go_backwards, return_sequences), RNN(SimpleRNNCell(use_bias=False), go_backwards, unroll) |
| ``stacked`` (1 input, 5 outputs) | Masking, RNN(StackedRNNCells([LSTMCell, GRUCell]), return_sequences, return_state), RNN([SimpleRNNCell, LSTMCell]) (Keras makes the StackedRNNCells) |
| ``bidirectional`` (Sequential) | Embedding(mask_zero), Bidirectional(RNN(LSTMCell, return_sequences)), Dense |
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from _common import GOLDEN, fresh_folder
from record_convert_keras import _keras
from record_convert_keras_models import floats, ids

B, T, VOCAB = 3, 6, 30
SEED = 53


def models(keras):
    """(name, model, input kinds) for every recorded model."""
    L = keras.layers
    out = []
    m = keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                          L.RNN(L.LSTMCell(5), return_sequences=True, name="rnn"),
                          L.Dense(3, name="dense")], name="lstm_cell")
    out.append(("lstm_cell", m, ["ids"]))

    x = keras.Input((T, 3), name="frames")
    a = L.RNN(L.GRUCell(4, reset_after=True), return_state=True, name="gru_after")(x)
    b = L.RNN(L.GRUCell(3, reset_after=False, recurrent_activation="hard_sigmoid"), return_sequences=True,
              return_state=True, name="gru_before")(x)
    c = L.RNN(L.GRUCell(2, use_bias=False), unroll=True, name="gru_unrolled")(x)
    out.append(("gru_cells", keras.Model(x, [a[0], a[1], b[0], b[1], c], name="gru_cells"), ["floats"]))

    x = keras.Input((T, 3), name="frames")
    a = L.RNN(L.SimpleRNNCell(4, activation="relu"), go_backwards=True, return_sequences=True, name="backwards")(x)
    b = L.RNN(L.SimpleRNNCell(3, use_bias=False), go_backwards=True, unroll=True, name="backwards_unrolled")(x)
    out.append(("simple_backwards", keras.Model(x, [a, b], name="simple_backwards"), ["floats"]))

    x = keras.Input((T, 3), name="frames")
    mk = L.Masking(0.0, name="masking")(x)
    s = L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)]), return_sequences=True, return_state=True,
              name="stack")(mk)
    t = L.RNN([L.SimpleRNNCell(3), L.LSTMCell(2)], name="stack_list")(mk)
    # Keras returns the states per cell ([seq, [h1, c1], h2]); recorded flat, as the converted model returns them
    out.append(("stacked", keras.Model(x, [s[0], s[1][0], s[1][1], s[2], t], name="stacked"), ["floats"]))

    m = keras.Sequential([keras.Input((T,), dtype="int32"), L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                          L.Bidirectional(L.RNN(L.LSTMCell(3), return_sequences=True), name="bidirectional"),
                          L.Dense(2, name="dense")], name="bidirectional")
    out.append(("bidirectional", m, ["ids"]))
    return out


def record(framework: str, out: Path):
    keras = _keras(framework)
    rng = np.random.default_rng(SEED + (framework == "tf_keras"))
    arrays = {}
    for name, model, kinds in models(keras):
        for layer in model.layers:
            weights = layer.get_weights()
            if weights:
                layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(w.dtype) for w in weights])
        inputs = [ids(rng) if k == "ids" else floats(rng, 3) for k in kinds]
        got = model.predict(inputs, verbose=0)
        got = [np.asarray(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
        files = [f"{name}.keras", f"{name}.h5"]
        model.save(out / files[0])
        model.save(out / files[1])
        for k, x in enumerate(inputs):
            arrays[f"{name}/x{k}"] = x
        for k, y in enumerate(got):
            arrays[f"{name}/y{k}"] = y
        arrays[f"{name}/config"] = np.array(json.dumps({"files": files, "inputs": len(inputs), "outputs": len(got)}))
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": keras.__version__,
                                              "numpy": np.__version__,
                                              "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}))
    np.savez_compressed(out / "expected.npz", **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["keras3", "tf_keras"], required=True)
    parser.add_argument("--out", type=Path, help="default tests/golden/convert/keras_cells/<framework>")
    args = parser.parse_args()
    out = args.out or GOLDEN / "convert" / "keras_cells" / args.framework
    fresh_folder(out)
    record(args.framework, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
