"""ports.tf_sine against the book's graph trained live in TensorFlow 2.21 (legacy/record_tf_sine.py):
Hypothesis-chosen sizes, both readings of X, float32 and float64; two fits on one model directory, the
second restored (by the port from its own checkpoint, and from TensorFlow's); and TensorFlow continuing the
port's model directory."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, note, strategies as st
from hypothesis.strategies import composite

from ports.tf_sine import Estimator, book_data
from record_tf_sine import GOLDEN_CASES, fit, run_case
from tests.sine_replay import compare, config_of, port_values, replay
from tests.tolerances import TF_LOSSES_DTYPE, assert_close


@composite
def sine_cases(draw):
    timesteps = draw(st.integers(1, 6))
    return dict(hidden_size=draw(st.integers(1, 8)), num_layers=draw(st.integers(1, 3)), timesteps=timesteps,
                batch_size=draw(st.integers(1, 9)), training_examples=draw(st.integers(timesteps + 2, 80)),
                testing_examples=draw(st.integers(timesteps + 2, 30)),
                sample_gap=draw(st.sampled_from([0.01, 0.1, 0.37])), learning_rate=draw(st.sampled_from([0.1, 0.5])),
                input_layout=draw(st.sampled_from(["features", "steps"])),
                dtype=draw(st.sampled_from(["float32", "float64"])), steps=draw(st.integers(1, 40)),
                steps2=draw(st.integers(1, 10)))


@given(sine_cases(), st.integers(0, 2 ** 31 - 1))
def test_port_trains_as_live_tensorflow(tf, case, seed):
    note(case)
    outputs = run_case(tf, case, seed)
    with tempfile.TemporaryDirectory() as tmp:
        port = replay(case, outputs, Path(tmp) / "model_dir")
    compare(port, outputs, case, label=str(case))


def test_the_books_program_for_a_hundred_steps_in_both_readings(tf):
    for layout in ("features", "steps"):
        case = dict(GOLDEN_CASES[0], input_layout=layout, steps=100, steps2=5)
        outputs = run_case(tf, case, 7)
        with tempfile.TemporaryDirectory() as tmp:
            port = replay(case, outputs, Path(tmp) / "model_dir")
        compare(port, outputs, case, label=f"the book's program, {layout}")


def test_port_continues_a_live_tensorflow_model_directory(tf):
    case = dict(GOLDEN_CASES[2], steps=25, steps2=15)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "Models" / "model_2"
        outputs = run_case(tf, case, 3, keep_model_dir=model_dir)
        config = config_of(case)
        estimator = Estimator(config, model_dir)
        assert estimator.restored == "tf" and estimator.global_step == 25
        data = book_data(config)
        estimator.fit(data, 15, progress=False, log=lambda line: None)
        port = port_values(estimator, data, 2)
    assert_close(np.asarray(estimator.losses), outputs["fit2/loss"], dtype=TF_LOSSES_DTYPE)
    for key in ("fit2/predictions", "fit2/var/fully_connected/weights", "fit2/accumulator/fully_connected/biases"):
        assert_close(port[key], outputs[key], msg=key)


@pytest.mark.parametrize("which", [0, 2])
def test_tensorflow_continues_the_ports_model_directory(tf, which, tmp_path):
    """Estimator.export_tf_checkpoint: TensorFlow's Saver restores the port's model directory (variables,
    Adagrad slots, global step, learning rate) and its second run is the port's second run."""
    case = GOLDEN_CASES[which]
    config = config_of(case)
    data = book_data(config)
    quiet = dict(progress=False, log=lambda line: None)
    port = Estimator(config, tmp_path / "port", generator=torch.Generator().manual_seed(which))
    port.fit(data, 20, **quiet)
    port.export_tf_checkpoint(tmp_path / "tf")
    g, sess, losses, _, _ = fit(tf, case, tmp_path / "tf", 15, data.train_X, data.train_y)
    with sess:
        assert int(sess.run(g.global_step)) == 35
        tf_vars, predicted = g.variables(sess), g.predict(sess, data.test_X)
    port = Estimator(config, tmp_path / "port")
    port.fit(data, 15, **quiet)
    assert_close(np.asarray(port.losses[20:]), np.asarray(losses), dtype=TF_LOSSES_DTYPE)
    for name, value in port.model.tf_variables().items():
        assert_close(value, tf_vars[name], msg=name)
    assert_close(port.predict(data.test_X), predicted)
