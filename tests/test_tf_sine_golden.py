"""ports.tf_sine against the book's graph trained in TensorFlow 2.21 (tests/golden/tf_sine.npz and
tests/golden/tf_sine_model_dir/, written by legacy/record_tf_sine.py; provenance in tests/golden/README.md).

Each case starts from TF's own initial variables: a first fit (400 steps at the book's size: the data
feeder's first epoch ends at step 313 with a batch of 5), the test curve's predictions and RMSE, then a
second run on the same model directory. The same comparisons run live in ``tox -e legacy``
(tests/legacy/test_live_tf_sine.py).
"""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from ports.tf_sine import Estimator, book_data
from tests.port_runners import GOLDEN, golden_cases, golden_versions
from tests.sine_replay import compare, config_of, port_values, replay
from tests.tolerances import TF_LOSSES_DTYPE, assert_close

NAME = "tf_sine"
MODEL_DIR = GOLDEN / "tf_sine_model_dir"


def _cases():
    if not (GOLDEN / f"{NAME}.npz").exists():
        return [pytest.param(None, id="missing")]
    return [pytest.param(c, id=c[0]) for c in golden_cases(NAME)]


def _missing(what: str):
    pytest.fail(f"{what} is missing; the comparison with TensorFlow cannot run (regenerate: tests/golden/README.md)")


@pytest.mark.parametrize("case", _cases())
def test_port_trains_as_tensorflow_did(case, tmp_path):
    if case is None:
        _missing(f"tests/golden/{NAME}.npz")
    cid, config, _, outputs = case
    port = replay(config, outputs, tmp_path / "model_dir")
    compared = compare(port, outputs, config, label=f"{NAME} {cid} {config}")
    assert {"fit1/loss", "fit1/rows", "fit1/predictions", "fit1/rmse", "fit2/loss", "fit2/predictions"} <= set(compared)
    assert any(k.startswith("fit2/accumulator/") for k in compared)


def test_recordings_cover_the_books_program():
    cases = {cid: (config, outputs) for cid, config, _, outputs in golden_cases(NAME)}
    book, outputs = cases["c0"]
    assert config_of(book) == config_of(dict(book, **_book_constants()))
    assert book["steps"] > 313  # across the end of the feeder's first epoch
    assert {c["input_layout"] for c, _ in cases.values()} == {"features", "steps"}
    assert {c["dtype"] for c, _ in cases.values()} == {"float32", "float64"}
    assert golden_versions(NAME)["tensorflow"].startswith("2.21")


def _book_constants() -> dict:
    return dict(hidden_size=30, num_layers=2, timesteps=10, batch_size=32, training_examples=10000,
                testing_examples=1000, sample_gap=0.01, learning_rate=0.1, input_layout="features", dtype="float32")


def test_tensorflows_initial_variables_follow_glorot_uniform():
    """TF drew them (get_variable's default initializer for the cells, glorot_uniform for fully_connected,
    zeros for the biases): within +-sqrt(6 / (fan_in + fan_out)), spread over it."""
    for cid, _, _, outputs in golden_cases(NAME):
        for key, value in outputs.items():
            if not key.startswith("init/"):
                continue
            if key.endswith(("bias", "biases")):
                assert not value.any(), key
                continue
            limit = math.sqrt(6.0 / sum(value.shape))
            assert np.abs(value).max() <= limit, (cid, key)
            if value.size >= 100:  # uniform over the whole interval: its variance is limit^2 / 3
                assert abs(value.var() / (limit ** 2 / 3) - 1) < 0.2, (cid, key)


def test_port_continues_tensorflows_model_directory(tmp_path):
    """The Estimator's model_dir after TF's first fit (checkpoint state file and model.ckpt-400, read without
    TensorFlow): the port restores the variables, the OptimizeLoss/.../Adagrad accumulators, the global step
    and the learning rate, and its second run is TF's second run."""
    if not MODEL_DIR.exists():
        _missing("tests/golden/tf_sine_model_dir")
    (cid, case, _, outputs), = [c for c in golden_cases(NAME) if c[0] == "c0"]
    model_dir = tmp_path / "Models" / "model_2"
    shutil.copytree(MODEL_DIR, model_dir)
    config = config_of(case)
    estimator = Estimator(config, model_dir)
    assert estimator.restored == "tf" and estimator.global_step == case["steps"]
    assert estimator.learning_rate == float(np.float32(0.1))
    data = book_data(config)
    restored = port_values(estimator, data, 1)
    for key, value in outputs.items():
        if key.startswith(("fit1/var/", "fit1/accumulator/")):
            np.testing.assert_array_equal(restored[key], value, err_msg=key)
    assert_close(restored["fit1/predictions"], outputs["fit1/predictions"], dtype=torch.float32)
    estimator.fit(data, case["steps2"], progress=False, log=lambda line: None)
    assert_close(np.asarray(estimator.losses), outputs["fit2/loss"], dtype=TF_LOSSES_DTYPE)
    after = port_values(estimator, data, 2)
    for key in ("fit2/predictions", "fit2/rmse", "fit2/var/fully_connected/weights",
                "fit2/accumulator/rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel"):
        assert_close(after[key], outputs[key], dtype=torch.float32, msg=key)
    # The port's own checkpoint is written beside TF's files, which stay untouched; the next run reads it.
    assert (model_dir / "model.json").exists() and (model_dir / "model.ckpt-400.index").exists()
    assert Estimator(config, model_dir).restored == "port"


def test_the_ports_tf_checkpoint_restores_as_the_model_directory(tmp_path):
    """Estimator.export_tf_checkpoint writes what TF's model_dir holds; an Estimator restores it to the same
    variables, accumulators, global step and learning rate, and trains on from it as from its own
    checkpoint. (TensorFlow's Saver restoring it: tests/legacy/test_live_tf_sine.py.)"""
    config = config_of(dict(_book_constants(), hidden_size=5, training_examples=200, testing_examples=40))
    data = book_data(config)
    quiet = dict(progress=False, log=lambda line: None)
    ours = Estimator(config, tmp_path / "ours", generator=torch.Generator().manual_seed(4))
    ours.fit(data, 30, **quiet)
    prefix = ours.export_tf_checkpoint(tmp_path / "tf")
    assert prefix.endswith("model.ckpt-30")
    theirs = Estimator(config, tmp_path / "tf")
    assert theirs.restored == "tf" and theirs.global_step == 30 and theirs.learning_rate == ours.learning_rate
    for a, b in ((ours.model.tf_variables(), theirs.model.tf_variables()),
                 (ours.tf_accumulators(), theirs.tf_accumulators())):
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), name
    ours = Estimator(config, tmp_path / "ours")  # the second run of the program, from either directory
    ours.fit(data, 20, **quiet)
    theirs.fit(data, 20, **quiet)
    assert ours.losses[30:] == theirs.losses
