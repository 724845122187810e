"""ports.theano_imdb against lstm.py's graph in live PyTensor and/or Theano 1.0.5 (legacy/record_theano_imdb.py).

Budget: graph compilation dominates (seconds per example once the compile cache is warm), so the
property runs at most 6 examples per framework.
"""
from __future__ import annotations

import pytest
from hypothesis import given, note, settings, strategies as st
from hypothesis.strategies import composite

from record_theano_imdb import build_and_run, make_case
from tests.legacy.conftest import THEANO_LINEAGE
from tests.port_runners import compare_outputs, run_port_imdb


@composite
def imdb_cases(draw):
    # dim_proj >= 2: with dim_proj 1 the original itself does not compile in Theano 1.0.5 (scan's initial
    # state tensor.alloc(0., n_samples, 1) is a broadcastable column while the step returns a matrix).
    return dict(seed=draw(st.integers(0, 2**31 - 1)), n_words=draw(st.integers(3, 20)), dim=draw(st.integers(2, 6)),
                ydim=draw(st.integers(2, 3)), maxlen=draw(st.integers(1, 6)), n=draw(st.integers(2, 5)),
                dtype=draw(st.sampled_from(["float32", "float64"])), decay_c=draw(st.sampled_from([0.0, 0.01])))


@pytest.mark.parametrize("framework", THEANO_LINEAGE)
@settings(max_examples=6)
@given(params=imdb_cases())
def test_port_equals_live_theano_lineage(framework, params):
    note(params)
    case = make_case(params.pop("seed"), **params)
    outputs = build_and_run(framework, case)
    port = run_port_imdb(case["config"], {k: v for k, v in case.items() if k != "config"}, outputs)
    compared = compare_outputs(port, outputs, case["config"]["dtype"], label=f"{framework} {case['config']}")
    assert {"pred_prob", "cost", "grad/lstm_W", "adadelta2/lstm_U"} <= set(compared)


@pytest.mark.parametrize("framework", THEANO_LINEAGE)
def test_lstm_model_npz_round_trip(framework, tmp_path):
    """The framework trains and saves lstm_model.npz as the tutorial does; the port reads it and predicts
    the same; the port saves it back and the framework's load_params + f_pred_prob agree again."""
    import numpy as np
    import torch

    from ports.theano_imdb import LSTMClassifier, load_params, save_params
    from record_checkpoints import imdb_predict, imdb_train_and_save
    from tests.tolerances import assert_close

    rec = imdb_train_and_save(framework, tmp_path / "lstm_model.npz")
    params = load_params(tmp_path / "lstm_model.npz")
    model = LSTMClassifier.from_params(params, use_dropout=True)
    assert_close(model.predict_proba(rec["x"], rec["mask"]), rec["pred_prob"], msg="port from framework npz")
    save_params(tmp_path / "exported.npz", model.numpy_params(), history_errs=np.zeros((0, 2)))
    again = imdb_predict(framework, tmp_path / "exported.npz", rec["x"], rec["mask"])
    assert_close(torch.as_tensor(again), rec["pred_prob"], msg="framework from port-saved npz")
