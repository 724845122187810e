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


@pytest.fixture(scope="session")
def tf():
    from _common import import_tf

    return import_tf()
