"""The converter against the live frameworks (``tox -e legacy-convert``).

Each recorder (legacy/record_convert_*.py) runs in its own process with the real framework (TensorFlow
2.21 tf.compat.v1; Keras 3 on its torch backend; tf-keras 2.21; onnxruntime), saving fresh model files
and the framework's outputs into a temporary folder; every file is then converted with
``python -m compat.convert`` and compared as in tests/test_convert_golden.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.convert_cases import (cases, check_keras_file, check_keras_rnn_file, check_onnx_case, check_onnx_rnn_case,
                                 check_tf1_case, check_tf1_rnn_case, check_tf_models_case, keras_files,
                                 keras_rnn_files)

from .conftest import LEGACY

RECORDERS = {
    "tf1": ("record_convert_tf.py", [], {"TF_USE_LEGACY_KERAS": "1"}),
    "tf_models": ("record_convert_tf_models.py", [], {"TF_USE_LEGACY_KERAS": "1"}),
    "tf1_rnn": ("record_convert_tf_rnn.py", [], {"TF_USE_LEGACY_KERAS": "1"}),
    "onnx": ("record_convert_onnx.py", [], {}),
    "onnx_rnn": ("record_convert_onnx_rnn.py", [], {}),
    "keras_rnn/keras3": ("record_convert_keras_rnn.py", ["--framework", "keras3"], {"KERAS_BACKEND": "torch"}),
    "keras_rnn/tf_keras": ("record_convert_keras_rnn.py", ["--framework", "tf_keras"], {"TF_USE_LEGACY_KERAS": "1"}),
    "keras3": ("record_convert_keras.py", ["--framework", "keras3"], {"KERAS_BACKEND": "torch"}),
    "tf_keras": ("record_convert_keras.py", ["--framework", "tf_keras"], {"TF_USE_LEGACY_KERAS": "1"}),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    base = tmp_path_factory.mktemp("live_convert")
    for framework, (script, args, env) in RECORDERS.items():
        proc = subprocess.run([sys.executable, str(LEGACY / script), "--out", str(base / framework), *args],
                              cwd=LEGACY, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{script} {args} failed:\n{proc.stderr[-4000:]}"
    return base


def test_live_tf1(recorded, tmp_path):
    names = [c[0] for c in cases("tf1", recorded)]
    assert len(names) >= 19
    for case in cases("tf1", recorded):
        check_tf1_case(recorded / "tf1", *case, tmp_path)


def test_live_tf1_gru_and_rnn(recorded, tmp_path):
    names = [c[0] for c in cases("tf1_rnn", recorded)]
    assert len(names) >= 15
    for case in cases("tf1_rnn", recorded):
        check_tf1_rnn_case(recorded / "tf1_rnn", *case, tmp_path)


def test_live_tf_models(recorded, tmp_path):
    names = {c[0] for c in cases("tf_models", recorded)}
    assert names >= {"keras_tf1_graph", "keras_tf1x_names", "object_save_weights", "object_checkpoint", "seq2seq"}
    for case in cases("tf_models", recorded):
        check_tf_models_case(recorded / "tf_models", *case, tmp_path)


def test_live_onnxruntime(recorded, tmp_path):
    for case in cases("onnx", recorded):
        check_onnx_case(recorded / "onnx", *case, tmp_path)


def test_live_onnxruntime_gru_and_rnn(recorded, tmp_path):
    names = [c[0] for c in cases("onnx_rnn", recorded)]
    assert len(names) >= 19
    for case in cases("onnx_rnn", recorded):
        check_onnx_rnn_case(recorded / "onnx_rnn", *case, tmp_path)


def test_live_keras_gru_and_simple_rnn(recorded, tmp_path):
    files = list(keras_rnn_files(recorded / "keras_rnn"))
    assert {(f, n) for f, n, _, _ in files} >= {("keras3", "model.keras"), ("tf_keras", "cudnn_gru.h5"),
                                                ("tf_keras", "keras1_gru.h5")}
    for framework, filename, config, arrays in files:
        check_keras_rnn_file(recorded / "keras_rnn" / framework, filename, config, arrays, tmp_path)


def test_live_keras(recorded, tmp_path):
    files = list(keras_files(recorded))
    assert {(f, n) for f, n, _, _ in files} >= {("keras3", "model.keras"), ("tf_keras", "cudnn.h5")}
    for framework, filename, config, arrays in files:
        check_keras_file(recorded / framework, filename, config, arrays, tmp_path)
