"""ports.tf_ptb against ptb_word_lm's graph in live TensorFlow (legacy/record_tf_ptb.py), Hypothesis-chosen sizes."""
from __future__ import annotations

import numpy as np
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from record_tf_ptb import make_case, run_tf
from tests.port_runners import compare_outputs, run_port_ptb


@composite
def ptb_cases(draw):
    return dict(seed=draw(st.integers(0, 2**31 - 1)), vocab=draw(st.integers(2, 9)), hidden=draw(st.integers(1, 7)),
                layers=draw(st.integers(1, 3)), batch=draw(st.integers(1, 4)), steps=draw(st.integers(1, 5)),
                forget_bias=draw(st.sampled_from([0.0, 1.0])), clip=draw(st.sampled_from(["active", "inactive"])),
                dtype=draw(st.sampled_from(["float32", "float64"])))


@given(ptb_cases())
def test_port_equals_live_tensorflow_ptb_model(tf, params):
    note(params)
    case = make_case(params.pop("seed"), **params)
    outputs = run_tf(tf, case)
    inputs = {k: v for k, v in case.items() if k != "config"}
    port = run_port_ptb(case["config"], inputs, outputs)
    compared = compare_outputs(port, outputs, case["config"]["dtype"], label=str(case["config"]))
    assert "updated/Model/embedding" in compared and "global_norm" in compared
    ids = case["inputs"]
    if np.unique(ids).size < ids.size:  # TF's IndexedSlices norm, not the dense one
        note(f"repeated ids: TF norm {outputs['global_norm']}, dense {outputs['dense_norm']}")
