"""Keras recurrent layers in training mode with their dropout masks fixed, recorded for the converter.

    KERAS_BACKEND=torch python legacy/record_keras_dropout.py --framework keras3
    TF_USE_LEGACY_KERAS=1 python legacy/record_keras_dropout.py --framework tf_keras

Keras 3 (torch backend) and tf-keras 2.21 each save one functional model of independent LSTM, GRU and
SimpleRNN branches with ``dropout`` / ``recurrent_dropout`` (``implementation`` 1 and 2, tanh / sigmoid and
``hard_sigmoid``, ``reset_after`` True and False, ``go_backwards``, a ``Bidirectional``) as ``dropout.keras``;
then each layer is called on one input with ``training=True``.

Departure for the sake of comparing: dropout is random, and neither framework's RNG can be replayed in
torch, so the masks are fixed from outside. Every request a layer makes for a mask is answered with masks
drawn here with numpy (0 or ``1 / (1 - rate)``, the shape Keras asks for): Keras 3's cell methods
``DropoutRNNCell.get_dropout_mask`` / ``get_recurrent_dropout_mask`` and tf-keras's
``DropoutRNNCellMixin.get_dropout_mask_for_cell`` / ``get_recurrent_dropout_mask_for_cell`` (on the cell, and on
the layer for tf-keras's fused LSTM / GRU path) are replaced on the instance. Which requests come, how many
masks each asks for (``count``) and of which shape are Keras's own decisions and are recorded as they come:
a list of ``count`` masks where Keras asks for a list (distinct masks, so a layer reading ``mask[0]`` for every
gate computes other numbers than one reading a mask per gate), a single one otherwise. ``expected.npz``
holds the input and, per layer and direction, the masks handed over and what Keras returned (the sequence
output and the final states).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from _common import GOLDEN

B, T, IN = 3, 5, 3
SEED = 2121


def _keras(framework):
    if framework == "keras3":
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        return keras
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras
    return tf_keras


def branches(L):
    seq = dict(return_sequences=True, return_state=True)
    return {
        "lstm_impl1": L.LSTM(4, dropout=0.3, recurrent_dropout=0.2, implementation=1, **seq, name="lstm_impl1"),
        "lstm_impl2_input": L.LSTM(4, dropout=0.3, implementation=2, **seq, name="lstm_impl2_input"),
        "lstm_impl2_input_hard_sigmoid": L.LSTM(3, dropout=0.4, implementation=2, recurrent_activation="hard_sigmoid",
                                                **seq, name="lstm_impl2_input_hard_sigmoid"),
        "lstm_impl1_recurrent": L.LSTM(3, recurrent_dropout=0.4, implementation=1, **seq,
                                       name="lstm_impl1_recurrent"),
        "lstm_backwards": L.LSTM(3, dropout=0.25, recurrent_dropout=0.35, go_backwards=True, **seq,
                                 name="lstm_backwards"),
        "gru_after_impl1": L.GRU(3, reset_after=True, dropout=0.3, recurrent_dropout=0.25, implementation=1, **seq,
                                 name="gru_after_impl1"),
        "gru_before_recurrent": L.GRU(3, reset_after=False, dropout=0.3, recurrent_dropout=0.25, **seq,
                                      name="gru_before_recurrent"),
        "gru_before_impl2_input": L.GRU(3, reset_after=False, dropout=0.3, implementation=2, **seq,
                                        name="gru_before_impl2_input"),
        "gru_after_input": L.GRU(4, reset_after=True, dropout=0.3, **seq, name="gru_after_input"),
        "simple_rnn": L.SimpleRNN(4, dropout=0.3, recurrent_dropout=0.2, **seq, name="simple_rnn"),
        "bidirectional_gru": L.Bidirectional(L.GRU(3, dropout=0.2, recurrent_dropout=0.3, **seq),
                                             name="bidirectional_gru"),
    }


class Masks:
    """Answers a layer's mask requests with recorded numpy masks (see the module docstring)."""

    def __init__(self, keras, framework, rng):
        self.keras, self.framework, self.rng = keras, framework, rng
        self.got = {}

    def _draw(self, shape, rate):
        u = self.rng.uniform(0.0, 1.0, shape)
        return ((u >= rate) / (1.0 - rate)).astype(np.float32)

    def _tensor(self, a):
        return self.keras.ops.convert_to_tensor(a) if self.framework == "keras3" else __import__("tensorflow").constant(a)

    def answer(self, key, shape, rate, count):
        if key in self.got:  # the cell's cache: one mask per call, asked for again at every step
            m = self.got[key]
            return self._tensor(m[0]) if count is None or count == 1 and self.framework == "tf_keras" \
                else [self._tensor(a) for a in m]
        if count is None or count == 1 and self.framework == "tf_keras":
            m = self._draw((1,) + tuple(shape), rate)
            self.got[key] = m
            return self._tensor(m[0])
        m = self._draw((count,) + tuple(shape), rate)
        self.got[key] = m
        return [self._tensor(a) for a in m]

    def patch(self, name, layer):
        cell = layer.cell
        if self.framework == "keras3":
            count = getattr(cell, "dropout_mask_count", None)
            # keras/src/layers/rnn/dropout_rnn_cell.py: get_dropout_mask(step_input), cached per call
            cell.get_dropout_mask = lambda step_input: (
                self.answer(f"{name}/input", tuple(step_input.shape), cell.dropout, count) if cell.dropout > 0
                else None)
            cell.get_recurrent_dropout_mask = lambda step_input: (
                self.answer(f"{name}/recurrent", tuple(step_input.shape), cell.recurrent_dropout, count)
                if cell.recurrent_dropout > 0 else None)
            return

        # tf_keras/src/layers/rnn/dropout_rnn_cell_mixin.py: get_dropout_mask_for_cell(inputs, training, count)
        def for_cell(owner, which, rate_of):
            def get(inputs, training, count=1):
                if rate_of() == 0:
                    return None
                return self.answer(f"{name}/{which}", tuple(inputs.shape), rate_of(), count)
            return get

        cell.get_dropout_mask_for_cell = for_cell(cell, "input", lambda: cell.dropout)
        cell.get_recurrent_dropout_mask_for_cell = for_cell(cell, "recurrent", lambda: cell.recurrent_dropout)
        if hasattr(layer, "get_dropout_mask_for_cell"):  # the fused path asks the layer
            layer.get_dropout_mask_for_cell = for_cell(layer, "input", lambda: cell.dropout)


def _numpy(keras, v):
    return np.asarray(keras.ops.convert_to_numpy(v)) if hasattr(keras, "ops") else np.asarray(v)


def record(framework: str, out: Path, seed: int = SEED):
    keras = _keras(framework)
    L = keras.layers
    rng = np.random.default_rng(seed + (framework == "tf_keras"))
    inp = keras.Input((T, IN))
    layers = branches(L)
    outputs = {name: layer(inp) for name, layer in layers.items()}
    flat = []
    for name in layers:
        flat += list(outputs[name])
    model = keras.Model(inp, flat)
    for layer in layers.values():
        layer.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in layer.get_weights()])
    model.save(out / "dropout.keras")
    x = rng.uniform(-1.5, 1.5, (B, T, IN)).astype(np.float32)
    arrays = {"x": x}
    masks = Masks(keras, framework, rng)
    for name, layer in layers.items():
        # eval first, with Keras's own mask getters: training=False, no dropout
        arrays[f"{name}/y_eval"] = _numpy(keras, layer(x, training=False)[0])
        if name.startswith("bidirectional"):
            masks.patch(f"{name}/forward", layer.forward_layer)
            masks.patch(f"{name}/backward", layer.backward_layer)
        else:
            masks.patch(name, layer)
        got = [_numpy(keras, v) for v in layer(x, training=True)]
        arrays[f"{name}/y"] = got[0]
        arrays[f"{name}/states"] = np.stack(got[1:])
    for key, m in masks.got.items():
        arrays[f"masks/{key}"] = m
    arrays["config"] = np.array(json.dumps({"file": "dropout.keras", "layers": list(layers),
                                            "masks": sorted(masks.got)}))
    arrays["versions"] = np.array(json.dumps({"framework": framework, "keras": keras.__version__,
                                              "numpy": np.__version__,
                                              "backend": os.environ.get("KERAS_BACKEND", "tensorflow")}))
    np.savez_compressed(out / "expected.npz", **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=("keras3", "tf_keras"), required=True)
    parser.add_argument("--out", type=Path, help="default tests/golden/convert/keras_dropout/<framework>")
    parser.add_argument("--seed", type=int, default=SEED, help="weights, input and masks (default %(default)s)")
    args = parser.parse_args()
    out = args.out or GOLDEN / "convert" / "keras_dropout" / args.framework
    out.mkdir(parents=True, exist_ok=True)
    record(args.framework, out, args.seed)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
