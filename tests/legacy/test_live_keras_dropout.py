"""Keras's dropout in training, live (``tox -e legacy-convert``: Keras 3 on its torch backend and tf-keras 2.21):
legacy/record_keras_dropout.py is run again with other seeds (other weights, input and masks), and the converted
layers, in training with Keras's masks and in eval, and reference/keras_rnn.py must give Keras's numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_keras_dropout import check_oracle_layer, check_training_layer, recorded

from .conftest import LEGACY


@pytest.fixture(scope="module", params=[("keras3", 11), ("tf_keras", 12), ("keras3", 13), ("tf_keras", 14)],
                ids=lambda p: f"{p[0]}-seed{p[1]}")
def folder(request, tmp_path_factory):
    framework, seed = request.param
    out = tmp_path_factory.mktemp(f"{framework}_{seed}")
    env = dict(os.environ, KERAS_BACKEND="torch", TF_USE_LEGACY_KERAS="1")
    proc = subprocess.run([sys.executable, str(LEGACY / "record_keras_dropout.py"), "--framework", framework,
                           "--out", str(out), "--seed", str(seed)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_live_keras_dropout_layers(folder, tmp_path):
    layers = json.loads(str(recorded(folder)["config"]))["layers"]
    assert len(layers) >= 11
    for layer in layers:
        check_training_layer(folder, layer, tmp_path)
        check_oracle_layer(folder, layer, tmp_path)
