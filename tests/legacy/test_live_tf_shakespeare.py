"""ports.tf_shakespeare against the cookbook's LSTM_Model in live TensorFlow (legacy/record_tf_shakespeare.py)."""
from __future__ import annotations

from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from record_tf_shakespeare import make_case, run_tf
from tests.port_runners import compare_outputs, run_port_shakespeare


@composite
def shakespeare_cases(draw):
    return dict(seed=draw(st.integers(0, 2**31 - 1)), vocab=draw(st.integers(2, 12)),
                rnn_size=draw(st.integers(1, 7)), batch=draw(st.integers(1, 4)), seq=draw(st.integers(1, 5)),
                dtype="float32", clip=draw(st.sampled_from([4.5, 0.05])), prime_len=draw(st.integers(1, 3)),
                loop_steps=draw(st.integers(1, 5)))


@given(shakespeare_cases())
def test_port_equals_live_tensorflow_recipe_model(tf, params):
    """float32 as the recipe: forward, cost, gradients, two clipped Adam steps, greedy samples token for
    token, and the looped rnn_decoder."""
    note(params)
    case = make_case(params.pop("seed"), **params)
    outputs = run_tf(tf, case)
    inputs = {k: v for k, v in case.items() if k != "config"}
    port = run_port_shakespeare(case["config"], inputs, outputs)
    compared = compare_outputs(port, outputs, "float32", exact=("sample_ids",), label=str(case["config"]))
    assert {"sample_ids", "loop_logits", "step2/lstm_model/lstm_vars/embedding_mat"} <= set(compared)


def test_port_equals_live_tensorflow_in_float64(tf):
    case = make_case(5, vocab=9, rnn_size=5, batch=2, seq=4, dtype="float64", clip=0.05)
    outputs = run_tf(tf, case)
    port = run_port_shakespeare(case["config"], {k: v for k, v in case.items() if k != "config"}, outputs)
    compare_outputs(port, outputs, "float64", exact=("sample_ids",), label="float64 (Adam steps included)")
