"""Every port against recordings of the original programs run in the real legacy frameworks.

tests/golden/*.npz were written by legacy/record_*.py in TensorFlow 2.21 (graph mode, tf.compat.v1),
PyTensor and Theano 1.0.5 (versions and the regeneration commands: tests/golden/README.md). Each case
holds the inputs fed to the real graph and what it returned; the port is run on the same inputs here,
without any legacy framework installed. The same comparisons run live in ``tox -e legacy``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.port_runners import (GOLDEN, compare_outputs, golden_cases, golden_versions, ptb_model, run_port_imdb,
                                run_port_ptb, run_port_shakespeare, shakespeare_model)


def _missing(what: str, regenerate: str = "tests/golden/README.md"):
    """A recording that is not there fails the suite: it is the port's evidence against the real framework."""
    pytest.fail(f"{what} is missing; the comparison with the real framework cannot run (regenerate: {regenerate})")


def _cases(name):
    if not (GOLDEN / f"{name}.npz").exists():
        return [pytest.param(None, id="missing")]
    return [pytest.param(c, id=c[0]) for c in golden_cases(name)]


@pytest.mark.parametrize("case", _cases("tf_ptb"))
def test_tf_ptb_matches_tensorflow_recording(case):
    if case is None:
        _missing("tests/golden/tf_ptb.npz")
    cid, config, inputs, outputs = case
    port = run_port_ptb(config, inputs, outputs)
    compared = compare_outputs(port, outputs, config["dtype"], label=f"tf_ptb {cid} {config}")
    assert {"logits", "cost", "global_norm", "grad/Model/embedding", "updated/Model/embedding"} <= set(compared)
    # The case's clip norm was chosen against TF's norm; the port's norm is on the same side of it.
    assert (float(port["global_norm"]) > float(outputs["max_grad_norm"])) == (config["clip"] == "active")
    # TF's IndexedSlices norm counts each occurrence of a repeated id: it then differs from the dense norm.
    ids = inputs["inputs"]
    if np.unique(ids).size < ids.size:
        assert not np.isclose(outputs["global_norm"], outputs["dense_norm"], rtol=1e-6, atol=0)


def test_tf_ptb_recordings_repeat_ids_and_clip_both_ways():
    cases = list(golden_cases("tf_ptb"))
    assert any(np.unique(i["inputs"]).size < i["inputs"].size for _, _, i, _ in cases)
    assert {c["clip"] for _, c, _, _ in cases} == {"active", "inactive"}
    assert {c["dtype"] for _, c, _, _ in cases} == {"float32", "float64"}


@pytest.mark.parametrize("case", _cases("tf_shakespeare"))
def test_tf_shakespeare_matches_tensorflow_recording(case):
    if case is None:
        _missing("tests/golden/tf_shakespeare.npz")
    cid, config, inputs, outputs = case
    port = run_port_shakespeare(config, inputs, outputs)
    compared = compare_outputs(port, outputs, config["dtype"], exact=("sample_ids",),
                               label=f"tf_shakespeare {cid} {config}")
    assert {"logits", "cost", "sample_ids", "loop_logits", "grad/lstm_model/lstm_vars/embedding_mat",
            "step2/lstm_model/lstm_vars/embedding_mat"} <= set(compared)


@pytest.mark.parametrize("framework", ["pytensor", "theano"])
def test_theano_imdb_matches_theano_lineage_recordings(framework):
    name = f"theano_imdb_{framework}"
    if not (GOLDEN / f"{name}.npz").exists():
        _missing(f"tests/golden/{name}.npz")
    n = 0
    for cid, config, inputs, outputs in golden_cases(name):
        port = run_port_imdb(config, inputs, outputs)
        compared = compare_outputs(port, outputs, config["dtype"], label=f"{name} {cid} {config}")
        assert {"pred_prob", "cost", "grad/lstm_U", "adadelta2/Wemb"} <= set(compared)
        n += 1
    assert n >= 2


def test_recordings_name_their_framework_versions():
    for name, framework in [("tf_ptb", "tensorflow"), ("tf_shakespeare", "tensorflow")]:
        v = golden_versions(name)
        assert v[framework].startswith("2.21"), v
    for framework, prefix in [("pytensor", ""), ("theano", "1.0.5")]:
        if not (GOLDEN / f"theano_imdb_{framework}.npz").exists():
            _missing(f"tests/golden/theano_imdb_{framework}.npz")
        assert golden_versions(f"theano_imdb_{framework}")[framework].startswith(prefix)


# ------------------------------------------------------------------- checkpoints written by TF's Saver

def _ckpt_cases():
    path = GOLDEN / "checkpoints" / "expected.npz"
    if not path.exists():
        return [pytest.param(None, id="missing")]
    with np.load(path, allow_pickle=False) as z:
        return [pytest.param(m, id=m) for m in json.loads(str(z["models"]))]


@pytest.mark.parametrize("model_name", _ckpt_cases())
def test_port_loads_tf_trained_checkpoint_and_gives_tf_logits(model_name, tmp_path):
    """A few TF training steps saved by Saver: the port reads the checkpoint without TensorFlow and gives
    TF's logits; its own export reads back to the same values."""
    from compat.formats.tf import list_variables, load_checkpoint

    if model_name is None:
        _missing("tests/golden/checkpoints/expected.npz")
    with np.load(GOLDEN / "checkpoints" / "expected.npz", allow_pickle=False) as z:
        config = json.loads(str(z[f"{model_name}/config"]))
        ids = z[f"{model_name}/inputs"]
        expected = z[f"{model_name}/logits"]
    directory = GOLDEN / "checkpoints" / model_name
    names = [n for n, _ in list_variables(directory)]
    if model_name == "tf_ptb":
        model = ptb_model(config, directory)
        model.eval()
        with torch.no_grad():
            logits, _ = model(torch.as_tensor(ids))
        exported = model.export_tf1_variables()
    else:
        model = shakespeare_model(config, directory)
        with torch.no_grad():
            logits = model(torch.as_tensor(ids)).logits
        exported = {k: v.detach().numpy() for k, v in model.tf1_variables().items()}
    from tests.tolerances import assert_close
    assert_close(logits, expected, msg=f"{model_name} logits from the TF checkpoint")
    # Saver saved every global variable (lr, Adam slots, beta powers): the port took only the model's.
    assert set(exported) < set(names)
    from compat.formats.tf import save_checkpoint
    save_checkpoint(tmp_path / "export", exported)
    back = load_checkpoint(tmp_path)
    original = load_checkpoint(directory)
    for k, v in exported.items():
        np.testing.assert_array_equal(back[k], v)
        np.testing.assert_array_equal(original[k], v)


@pytest.mark.parametrize("framework", ["pytensor", "theano"])
def test_port_reads_framework_written_lstm_model_npz(framework, tmp_path):
    """lstm_model.npz written by lstm.py's own numpy.savez after adadelta steps in the framework: the port's
    load_params gives the framework's f_pred_prob; its save_params writes the same arrays back."""
    from ports.theano_imdb import LSTMClassifier, load_params, save_params
    from tests.tolerances import assert_close

    directory = GOLDEN / "checkpoints" / f"theano_imdb_{framework}"
    if not directory.exists():
        _missing(str(directory), f"legacy/record_checkpoints.py --framework {framework}")
    with np.load(directory / "expected.npz", allow_pickle=False) as z:
        x, mask, expected = z["x"], z["mask"], z["pred_prob"]
    params = load_params(directory / "saveto_lstm_model.npz")
    model = LSTMClassifier.from_params(params, use_dropout=True)
    assert_close(model.predict_proba(x, mask), expected, msg=f"{framework} lstm_model.npz predictions")
    save_params(tmp_path / "lstm_model.npz", model.numpy_params(), history_errs=np.zeros((0, 2)))
    with np.load(tmp_path / "lstm_model.npz", allow_pickle=False) as back, \
            np.load(directory / "saveto_lstm_model.npz", allow_pickle=False) as original:
        for k in params:
            np.testing.assert_array_equal(back[k], original[k])
