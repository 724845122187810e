"""Whole Keras models converted with ``python -m compat.convert`` predict what Keras predicted.

tests/golden/convert/keras_models/ holds models saved by Keras 3 (torch backend) and tf-keras 2.21 with
``model.predict`` on recorded inputs (token ids with id 0 at padded steps, sequences with masked steps), and
models written in Keras 1.2's and Keras 2.2's exact HDF5 layout with outputs from reference/keras_model.py
(those Keras versions do not install on Python 3.11); legacy/record_convert_keras_models.py wrote them
(tests/golden/README.md). Each is converted whole (``--model whole``: its check against the numpy reference
must pass), loaded as one module and run on the recorded inputs.
"""
from __future__ import annotations

import pytest

from tests.convert_cases import GOLDEN_CONVERT, check_keras_model, keras_model_files

CASES = list(keras_model_files())


@pytest.mark.parametrize("framework, name, source, weights, config, arrays",
                         [pytest.param(*c, id=f"{c[0]}-{c[2]}") for c in CASES])
def test_whole_keras_model_predicts_as_keras(framework, name, source, weights, config, arrays, tmp_path):
    check_keras_model(GOLDEN_CONVERT / "keras_models" / framework, source, weights, config, arrays, tmp_path)


def test_every_recorded_model_is_covered():
    got = {(c[0], c[2]) for c in CASES}
    for framework in ("keras3", "tf_keras"):
        for name in ("sentiment", "tagger", "bidirectional", "seq2seq", "conv", "siamese", "nested_shared",
                     "nested_functional"):
            assert {(framework, f"{name}.keras"), (framework, f"{name}.h5")} <= got
        assert (framework, "tagger.json") in got
    assert {("keras1", "sequential.h5"), ("keras1", "functional.h5"), ("keras2", "functional.h5")} <= got
