"""Keras's generic ``RNN`` layer over its built-in cells converts as Keras runs it.

tests/golden/convert/keras_cells/ holds models saved by Keras 3 (torch backend) and tf-keras 2.21 whose recurrent
layers are ``RNN(LSTMCell)``, ``RNN(GRUCell)`` (reset after and before), ``RNN(SimpleRNNCell)`` (go_backwards,
unroll), ``RNN(StackedRNNCells([...]))`` (with a mask and return_state) and ``Bidirectional(RNN(LSTMCell))``, with
``model.predict`` on recorded inputs; legacy/record_convert_keras_cells.py wrote them. Each model converts whole
(its check against reference/keras_model.py, which runs the cells step by step, must pass) and predicts what Keras
predicted; so does its ``--emit-python`` file.
"""
from __future__ import annotations

import pytest

from tests.convert_cases import GOLDEN_CONVERT, check_keras_model, keras_model_files

BASE = GOLDEN_CONVERT / "keras_cells"
CASES = list(keras_model_files(BASE))


@pytest.mark.parametrize("framework, name, source, weights, config, arrays",
                         [pytest.param(*c, id=f"{c[0]}-{c[2]}") for c in CASES])
def test_rnn_cells_model_predicts_as_keras(framework, name, source, weights, config, arrays, tmp_path):
    check_keras_model(BASE / framework, source, weights, config, arrays, tmp_path)


def test_every_recorded_cells_model_is_covered():
    got = {(c[0], c[2]) for c in CASES}
    for framework in ("keras3", "tf_keras"):
        for name in ("lstm_cell", "gru_cells", "simple_backwards", "stacked", "bidirectional"):
            assert {(framework, f"{name}.keras"), (framework, f"{name}.h5")} <= got
