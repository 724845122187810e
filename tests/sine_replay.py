"""Replay a case of legacy/record_tf_sine.py (recorded in tests/golden/tf_sine.npz, or live) through the port.

The recorder trains the book's graph in TensorFlow from TF's own initial variables: a first fit of
``steps`` steps on a new model directory, the test curve's predictions, then a second fit of ``steps2``
steps on the same directory (restored, with a new data feeder). :func:`replay` does the same with
``ports.tf_sine.Estimator``: TF's initial variables loaded, ``fit``, ``predict``, then a second Estimator on
the same model directory. :func:`compare` checks the port's values against TF's, key by key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import torch

from ports.tf_sine import Config, Estimator, batch_indices, book_data, rmse
from tests.tolerances import TF_LOSSES_DTYPE, assert_close

CONFIG_KEYS = ("hidden_size", "num_layers", "timesteps", "batch_size", "training_examples", "testing_examples",
               "sample_gap", "learning_rate", "input_layout", "dtype")
# The first steps' losses are checked on their own before the whole run's, so that a failure says whether
# the port departs from the start or drifts later.
FIRST_STEPS = 10


def config_of(case: dict) -> Config:
    return Config(**{k: case[k] for k in CONFIG_KEYS})


def port_values(estimator: Estimator, data, fit_no: int) -> Dict[str, np.ndarray]:
    """What the recorder records after a fit, from the port: variables and accumulators under TF's names,
    predictions, RMSE, global step."""
    out = {f"fit{fit_no}/global_step": np.asarray(estimator.global_step)}
    for name, value in estimator.model.tf_variables().items():
        out[f"fit{fit_no}/var/{name}"] = value.cpu().numpy()
    for name, value in estimator.tf_accumulators().items():
        out[f"fit{fit_no}/accumulator/{name}"] = value.cpu().numpy()
    predicted = estimator.predict(data.test_X)
    out[f"fit{fit_no}/predictions"] = predicted
    out[f"fit{fit_no}/rmse"] = np.asarray(rmse(predicted, data.test_y))
    return out


def replay(case: dict, recorded: Dict[str, np.ndarray], model_dir: Path) -> Dict[str, np.ndarray]:
    """The port's values for every key the recorder writes (``fitN/...``), from TF's initial variables."""
    config = config_of(case)
    data = book_data(config)
    first = Estimator(config, model_dir)
    assert first.restored is None
    init = {k[len("init/"):]: v for k, v in recorded.items() if k.startswith("init/")}
    first.model.load_tf_variables(init)
    out = {}
    first.fit(data, case["steps"], progress=False, log=lambda line: None)
    out["fit1/loss"] = np.asarray(first.losses)
    out.update(port_values(first, data, 1))
    second = Estimator(config, model_dir)  # a second run of the program on the same model directory
    assert second.restored == "port" and second.global_step == case["steps"]
    second.fit(data, case["steps2"], progress=False, log=lambda line: None)
    out["fit2/loss"] = np.asarray(second.losses[case["steps"]:])
    out.update(port_values(second, data, 2))
    for fit_no, steps in ((1, case["steps"]), (2, case["steps2"])):  # every fit starts a new data feeder
        rows = batch_indices(len(data.train_X), config.batch_size, config.feeder_seed)
        out[f"fit{fit_no}/rows"] = np.concatenate([next(rows) for _ in range(steps)])
    return out


def compare(port: Dict[str, np.ndarray], recorded: Dict[str, np.ndarray], case: dict, label: str = "") -> list:
    """Assert the port's values equal TF's: the batches fed and the global steps exactly; the losses at
    float32's tolerance (the first :data:`FIRST_STEPS` of each fit, then every one); variables,
    accumulators, predictions and RMSE at the case dtype's. Returns the keys compared."""
    dtype = torch.float64 if case["dtype"] == "float64" else torch.float32
    compared = []
    for key in sorted(recorded):
        if key.startswith("init/"):
            continue
        assert key in port, f"{label}: the port produced no {key}"
        a, e = port[key], recorded[key]
        if key.endswith(("/rows", "/global_step")):
            np.testing.assert_array_equal(a, e, err_msg=f"{label} {key}")
        elif key.endswith("/loss"):
            assert a.shape == e.shape, f"{label} {key}: {a.shape} != {e.shape}"
            assert_close(a[:FIRST_STEPS], e[:FIRST_STEPS], dtype=TF_LOSSES_DTYPE, msg=f"{label} {key}, first")
            assert_close(a, e, dtype=TF_LOSSES_DTYPE, msg=f"{label} {key}")
        else:
            assert_close(a, e, dtype=dtype, msg=f"{label} {key}")
        compared.append(key)
    return compared
