"""Live comparisons against the real legacy frameworks (``tox -e legacy``, ``tox -e legacy-theano``).

These tests import TensorFlow, PyTensor or Theano, so they are collected only where the environment
says which frameworks it has: ``LEGACY_FRAMEWORKS=tensorflow,pytensor`` (``tox -e legacy``) or
``LEGACY_FRAMEWORKS=theano`` (``tox -e legacy-theano``). The default ``tox`` env leaves the variable unset
and collects none of them; it checks the ports against the recordings in tests/golden instead
(tests/test_golden.py). Within a legacy env a framework that fails to import is an error, not a skip.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LEGACY = REPO / "legacy"

# test module -> the framework it needs
FRAMEWORK_OF = {
    "test_live_tf_ptb.py": "tensorflow",
    "test_live_tf_shakespeare.py": "tensorflow",
    "test_live_tf_sine.py": "tensorflow",
    "test_live_tf_checkpoint.py": "tensorflow",
    "test_live_roundtrip_tf.py": "tensorflow",
    "test_live_rnn_cell.py": "tensorflow",
    "test_live_tf_meta.py": "tensorflow",
    "test_live_tf1_optim.py": "tensorflow",
    "test_live_theano_imdb.py": "theano-lineage",
    "test_live_convert.py": "keras",
    "test_live_keras_models.py": "keras",
    "test_live_keras_cells.py": "keras",
    "test_live_keras_dropout.py": "keras",
    "test_live_onnx_models.py": "onnxruntime",
}

AVAILABLE = {f.strip() for f in os.environ.get("LEGACY_FRAMEWORKS", "").split(",") if f.strip()}
THEANO_LINEAGE = sorted(AVAILABLE & {"pytensor", "theano"})
if THEANO_LINEAGE:
    AVAILABLE.add("theano-lineage")

collect_ignore = [name for name, framework in FRAMEWORK_OF.items() if framework not in AVAILABLE]

if AVAILABLE and str(LEGACY) not in sys.path:
    sys.path.insert(0, str(LEGACY))


def keras_module(framework: str):
    """The Keras package a live test builds with: Keras 3 on its torch backend ("keras3") or tf-keras 2.21."""
    if framework == "keras3":
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
        return keras
    import tf_keras
    return tf_keras


def convert_saved(model, tmp: Path, suffix: str):
    """A Keras ``model`` saved as ``tmp / model<suffix>`` and converted whole, every check passing:
    ``(tmp, saved file)``; the conversion is ``tmp / "out"``."""
    from compat.convert import convert

    path = tmp / f"model{suffix}"
    model.save(path)
    conversion = convert(path, tmp / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    return tmp, path


def record_keras_files(recorder: str, base: Path) -> Path:
    """Run ``legacy/<recorder>`` for Keras 3 (torch backend) and tf-keras 2.21, each into ``base/<framework>``
    in its own process; returns ``base``."""
    import subprocess

    for framework, env in (("keras3", {"KERAS_BACKEND": "torch"}), ("tf_keras", {"TF_USE_LEGACY_KERAS": "1"})):
        proc = subprocess.run([sys.executable, str(LEGACY / recorder), "--framework", framework, "--out",
                               str(base / framework)], cwd=LEGACY, env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
    return base


@pytest.fixture(scope="session")
def tf():
    from _common import import_tf

    return import_tf()
