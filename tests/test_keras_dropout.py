"""Keras's ``dropout`` / ``recurrent_dropout`` in training (compat.frameworks.keras.dropout, run by the converted
KerasLSTM / KerasGRU / KerasSimpleRNN): the exact structure with the masks fixed, against tf-keras 2.21 and
Keras 3 (tests/golden/convert/keras_dropout, legacy/record_keras_dropout.py) and against reference/keras_rnn.py;
the statistics with the masks drawn."""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from compat.convert import convert, load
from compat.convert.modules import KerasGRU, KerasLSTM, KerasSimpleRNN
from compat.frameworks.keras import dropout as kd
from compat.frameworks.keras.dropout import KerasDropout, KerasDropoutError
from reference import keras_rnn
from tests.convert_cases import GOLDEN_CONVERT
from tests.tolerances import assert_close

FOLDER = GOLDEN_CONVERT / "keras_dropout"
FRAMEWORKS = ("tf_keras", "keras3")
FAMILY = {KerasLSTM: "lstm", KerasGRU: "gru", KerasSimpleRNN: "rnn"}


def _arrays(framework):
    with np.load(FOLDER / framework / "expected.npz") as z:
        return {k: z[k] for k in z.files}


@lru_cache(maxsize=None)
def _loaded(framework, tmp):
    convert(FOLDER / framework / "dropout.keras", tmp / framework)
    return load(tmp / framework)


def _masks_for(arrays, name, bidirectional, family):
    """The masks Keras was handed, as the module takes them: per direction (input, recurrent)."""
    G = kd.GATES[family]
    keys = [f"{name}/forward", f"{name}/backward"] if bidirectional else [name]
    out = []
    for key in keys:
        pair = []
        for which in ("input", "recurrent"):
            m = arrays.get(f"masks/{key}/{which}")
            if m is None:
                pair.append(None)
                continue
            if m.ndim == 4:      # tf-keras's fused path: count masks of the sequence's shape; it reads [0]
                m = m[0]
            elif m.shape[0] == 1:  # Keras 3 implementation=2: one mask (the module reads [0] of G)
                m = np.repeat(m, G, axis=0)
            pair.append(torch.from_numpy(m))
        out.append(tuple(pair))
    return out


def _cases():
    for fw in FRAMEWORKS:
        config = json.loads(str(_arrays(fw)["config"]))
        for layer in config["layers"]:
            yield fw, layer


@pytest.mark.parametrize("framework, layer", [pytest.param(*c, id=f"{c[0]}-{c[1]}") for c in _cases()])
def test_training_mode_matches_keras_with_the_masks_fixed(framework, layer, tmp_path_factory):
    arrays = _arrays(framework)
    model = _loaded(framework, tmp_path_factory.getbasetemp())
    m = model[layer]
    family = FAMILY[type(m)]
    assert m.keras_dropout is not None
    per_step = any(arrays[k].ndim == 4 for k in arrays if k.startswith(f"masks/{layer}/"))
    assert (m.keras_dropout.rule == "per_step") == per_step, "the rule Keras took: a mask per step or per call"
    x = torch.from_numpy(arrays["x"])
    masks = _masks_for(arrays, layer, m.bidirectional, family)
    m.train()
    with torch.no_grad():
        y, state = m(x, dropout_masks=masks)
    states = [state[0], state[1]] if family == "lstm" else [state]
    if m.bidirectional:
        got_states = torch.stack([states[0][0], states[0][1]])
    else:
        got_states = torch.stack([s[0] for s in states])
    label = f"{framework} {layer}"
    assert_close(y.numpy(), arrays[f"{layer}/y"], msg=f"{label} training output")
    assert_close(got_states.numpy(), arrays[f"{layer}/states"], msg=f"{label} training states")
    m.eval()
    with torch.no_grad():
        y_eval, _ = m(x)
    assert_close(y_eval.numpy(), arrays[f"{layer}/y_eval"], msg=f"{label} eval output (Keras's training=False)")
    assert not np.allclose(arrays[f"{layer}/y"], arrays[f"{layer}/y_eval"]), f"{label}: the masks must matter"
