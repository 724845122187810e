"""``python -m compat.convert`` on files saved by the real frameworks, against what those frameworks computed.

tests/golden/convert/ holds checkpoints and model files written by TensorFlow 2.21 (tf.compat.v1),
Keras 3 (torch backend), tf-keras 2.21 and ONNX models run by onnxruntime, with the frameworks' outputs
and final states on fixed inputs (legacy/record_convert_*.py; provenance in tests/golden/README.md).
Each case is converted with the command line (its verification against reference/ must pass), loaded
with ``compat.convert.load``, and run on the recorded input: outputs and final h and c must match the
framework within the dtype's tolerance. ``tox -e legacy-convert`` records them afresh and runs the same
checks (tests/legacy/test_live_convert.py).
"""
from __future__ import annotations

import pytest

from tests.convert_cases import (GOLDEN_CONVERT, cases, check_keras_file, check_onnx_case, check_tf1_case,
                                 check_tf_models_case, keras_files)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("tf1")])
def test_tf1_checkpoint_converts_to_tensorflows_numbers(case, tmp_path):
    check_tf1_case(GOLDEN_CONVERT / "tf1", *case, tmp_path)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("tf_models")])
def test_whole_tf_model_checkpoint_converts_to_tensorflows_numbers(case, tmp_path):
    """tf.keras layers in TF1 graphs (TF 2.x and TF 1.x names), object-based checkpoints read through their
    object graph (a Bidirectional as one module), a seq2seq checkpoint whose GRU and attention-wrapped LSTM are
    listed, refused and carried, and rebuilt from what was carried."""
    check_tf_models_case(GOLDEN_CONVERT / "tf_models", *case, tmp_path)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("onnx")])
def test_onnx_node_converts_to_onnxruntimes_numbers(case, tmp_path):
    check_onnx_case(GOLDEN_CONVERT / "onnx", *case, tmp_path)


@pytest.mark.parametrize("framework, filename, config, arrays",
                         [pytest.param(*k, id=f"{k[0]}-{k[1]}") for k in keras_files()])
def test_keras_file_converts_to_keras_numbers(framework, filename, config, arrays, tmp_path):
    check_keras_file(GOLDEN_CONVERT / framework, filename, config, arrays, tmp_path)


def test_every_recorded_variant_is_covered():
    tf_cases = {c[0] for c in cases("tf1")}
    assert {"basic", "lstmcell_peepholes_proj_clips", "lstmcell_proj", "bidirectional_lengths", "multi_rnn_cell",
            "multi_rnn_cell_mixed_peepholes_lengths", "bidirectional_multi_rnn_cell", "stack_bidirectional",
            "lstm_block_cell_peepholes_clip3", "lstm_block_fused_cell", "cudnn_canonical",
            "cudnn_canonical_bidirectional_2layers", "cudnn_opaque", "names_tf1_0", "names_tf0_12_multi",
            "names_tf0_12_lstmcell", "float64_lstmcell", "initial_state_zero_length"} <= tf_cases
    assert {c[0] for c in cases("tf_models")} >= {"keras_tf1_graph", "keras_tf1x_names", "object_save_weights",
                                                  "object_checkpoint", "seq2seq"}
    onnx_cases = {c[0] for c in cases("onnx")}
    assert {"reverse", "reverse_lengths", "bidirectional", "bidirectional_lengths", "peepholes", "clip",
            "input_forget", "activations", "activations_more", "affine_relu", "softplus_thresholded",
            "reverse_lengths_zero_initial", "bidirectional_lengths_zero_initial", "activation_defaults",
            "thresholded_relu_at_alpha"} <= onnx_cases
    keras = {(f, name) for f, name, _, _ in keras_files()}
    assert {("keras3", "model.keras"), ("keras3", "model.h5"), ("keras3", "masked.keras"), ("tf_keras", "model.h5"),
            ("tf_keras", "model.keras"), ("tf_keras", "cudnn.h5"), ("tf_keras", "keras1_lstm.h5")} <= keras
    for framework in ("keras3", "tf_keras"):
        assert {(framework, "masked_state.keras"), (framework, "masked_state.h5")} <= keras
