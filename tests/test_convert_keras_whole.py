"""What a whole-model conversion refuses, and what its output's checks refuse.

Layers outside the set, ``Lambda`` layers (code in the file) and recurrent kinds the core does not run yet are
refused by name, never run; the recurrent layers still convert unless ``--model whole`` is asked for. The
stored graph is sealed with the rest of the conversion, and load checks every field of it even under a valid
seal (a kind no framework registered, a reference to no earlier node, a tensor of another shape). A
conversion of the previous version (no graph) loads as before, as a dictionary of recurrent modules.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compat import checkpoint
from compat.convert import WholeModelError, convert, load
from compat.convert.store import KIND
from compat.errors import CheckpointError, InputError
from tests.convert_cases import GOLDEN_CONVERT, convert_cli, load_edited
from tests.keras_files import write_keras_h5
from tests.tolerances import assert_close

H = 3


def _dense(name, units, n_in, rng, activation="linear"):
    cfg = {"class_name": "Dense", "config": {"name": name, "trainable": True, "units": units,
                                             "activation": activation, "use_bias": True}}
    return cfg, (name, [(f"{name}/kernel:0", rng.uniform(-1, 1, (n_in, units)).astype(np.float32)),
                        (f"{name}/bias:0", rng.uniform(-1, 1, units).astype(np.float32))])


def _lstm(name, n_in, rng):
    cfg = {"class_name": "LSTM", "config": {"name": name, "trainable": True, "units": H, "return_sequences": True,
                                            "activation": "tanh", "recurrent_activation": "sigmoid",
                                            "use_bias": True, "batch_input_shape": [None, 5, n_in]}}
    return cfg, (name, [(f"{name}/kernel:0", rng.uniform(-1, 1, (n_in, 4 * H)).astype(np.float32)),
                        (f"{name}/recurrent_kernel:0", rng.uniform(-1, 1, (H, 4 * H)).astype(np.float32)),
                        (f"{name}/bias:0", rng.uniform(-1, 1, 4 * H).astype(np.float32))])


def _sequential(path, layers, version="2.2.4"):
    config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [c for c, _ in layers]},
              "keras_version": version, "backend": "tensorflow"}
    write_keras_h5(path, config, [w for _, w in layers], version)


def test_a_lambda_layer_is_refused_by_name_and_never_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lam = ({"class_name": "Lambda", "config": {"name": "lambda_1", "trainable": True,
                                               "function": ["4wEAAAAAAAAAAAAAAAEAAAABAAAAQwAAAHMIAAAAfABkARQAUwApAk7pAgAAAKkA", None, None],
                                               "function_type": "lambda", "output_shape": None, "arguments": {}}},
           ("lambda_1", []))
    path = tmp_path / "lambda.h5"
    _sequential(path, [_lstm("lstm_1", 2, rng), lam, _dense("dense_1", 2, H, rng)])
    assert convert_cli(path, tmp_path / "whole", ["--model", "whole"]) == 2
    err = capsys.readouterr().err
    assert "lambda_1" in err and "Lambda" in err and "never run" in err
    # without --model whole the recurrent layer converts as before, with a warning naming the Lambda
    assert convert_cli(path, tmp_path / "layers") == 0
    captured = capsys.readouterr()
    assert "whole model is not converted" in captured.err and "lambda_1" in captured.err
    modules = load(tmp_path / "layers")
    assert isinstance(modules, dict) and list(modules) == ["lstm_1"]


@pytest.mark.parametrize("cls, expect", [("Conv2D", "outside the layers"), ("ConvLSTM1D", "does not convert yet"),
                                         ("MultiHeadAttention", "outside the layers")])
def test_a_layer_outside_the_set_is_refused_by_name(tmp_path, cls, expect):
    rng = np.random.default_rng(1)
    other = ({"class_name": cls, "config": {"name": "odd_1", "trainable": True, "units": 2}}, ("odd_1", []))
    path = tmp_path / "odd.h5"
    _sequential(path, [_lstm("lstm_1", 2, rng), other])
    with pytest.raises(WholeModelError, match=f"odd_1.*{cls}.*{expect}"):
        convert(path, tmp_path / "out", model="whole")


def test_a_model_without_recurrent_layers_converts_whole(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "mlp.h5"
    d1, d2 = _dense("dense_1", 4, 3, rng, "relu"), _dense("dense_2", 2, 4, rng, "softmax")
    d1[0]["config"]["batch_input_shape"] = [None, 3]
    _sequential(path, [d1, d2])
    conversion = convert(path, tmp_path / "out")
    assert conversion.graph is not None and conversion.checks and all(c.ok for c in conversion.checks)
    model = load(tmp_path / "out")
    x = rng.uniform(-1, 1, (4, 3))
    k1, b1 = d1[1][1][0][1], d1[1][1][1][1]
    k2, b2 = d2[1][1][0][1], d2[1][1][1][1]
    h = np.maximum(x @ k1 + b1, 0) @ k2 + b2
    want = np.exp(h - h.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    with torch.no_grad():
        got = model.double()(torch.from_numpy(x)).numpy()
    assert_close(got, want, dtype=np.float64, msg="the float64 whole model against numpy")
    assert isinstance(model.get_submodule("dense_1"), torch.nn.Sequential)
    assert isinstance(model.get_submodule("dense_1.linear"), torch.nn.Linear)


def test_model_layers_writes_the_recurrent_layers_only(tmp_path):
    source = GOLDEN_CONVERT / "keras_models" / "tf_keras" / "sentiment.h5"
    conversion = convert(source, tmp_path / "out", model="layers")
    assert conversion.graph is None
    modules = load(tmp_path / "out")
    assert isinstance(modules, dict) and list(modules) == ["lstm"]


def test_a_model_json_needs_its_weights_and_weights_need_a_json(tmp_path):
    folder = GOLDEN_CONVERT / "keras_models" / "tf_keras"
    with pytest.raises(InputError, match="--weights"):
        convert(folder / "tagger.json", tmp_path / "a")
    with pytest.raises(InputError, match="to_json"):
        convert(folder / "tagger.h5", tmp_path / "b", weights=str(folder / "tagger_weights.h5"))


def test_the_whole_model_is_reachable_by_layer_names(tmp_path):
    source = GOLDEN_CONVERT / "keras_models" / "keras3" / "seq2seq.keras"
    convert(source, tmp_path / "out")
    model = load(tmp_path / "out")
    assert isinstance(model.get_submodule("src_embedding"), torch.nn.Embedding)
    assert model["encoder"] is model.get_submodule("encoder.rnn")
    assert set(model) == {"encoder", "decoder", "backwards"}
    assert model.input_names == ["source", "target"]


# ---------------------------------------------------------------------------------- the stored graph
def _resealed(tmp_path, edit):
    """The conversion of a recorded model with its content edited by ``edit`` and sealed again."""
    source = GOLDEN_CONVERT / "keras_models" / "tf_keras" / "tagger.h5"
    convert(source, tmp_path / "good", verify=False)
    content = checkpoint.read(tmp_path / "good", KIND, require_seal=True).materialize(allow_nonfinite=True)
    edit(content)
    checkpoint.save(tmp_path / "bad", KIND, content)
    return tmp_path / "bad"


@pytest.mark.parametrize("edit, field", [
    (lambda c: c["model"]["nodes"][0].__setitem__("kind", "Eval"), "model/nodes/0/kind"),
    (lambda c: c["model"]["nodes"][1]["args"].__setitem__(0, ["nowhere", 0]), "model/nodes/1/args/0"),
    (lambda c: c["model"]["nodes"][0]["config"].__setitem__("num_embeddings", -3), "model/nodes/0/config"),
    (lambda c: c["model"]["nodes"][0]["weights"].__setitem__("weight", torch.zeros(2, 2)), "model/nodes/0/weights"),
    (lambda c: c["model"]["outputs"].__setitem__(0, ["tags", 5]), "model/outputs/0"),
    (lambda c: c["model"]["nodes"][0].__setitem__("name", "a.b"), "model/nodes/0/name"),
    (lambda c: c["model"].__setitem__("framework", "theano"), "model/framework"),
    (lambda c: c["model"]["nodes"][2].__setitem__("recurrent", "nothing"), "model/nodes/2/recurrent"),
])
def test_load_checks_every_field_of_the_graph(tmp_path, edit, field):
    bad = _resealed(tmp_path, edit)
    with pytest.raises(CheckpointError, match=field):
        load(bad)


def test_the_seal_covers_the_graph(tmp_path):
    source = GOLDEN_CONVERT / "keras_models" / "keras3" / "conv.keras"
    convert(source, tmp_path / "out", verify=False)
    manifest = tmp_path / "out.json"
    data = json.loads(manifest.read_text())
    node = next(n for n in data["content"]["model"]["nodes"] if n["kind"] == "Conv1D")
    node["config"]["stride"] = 2
    manifest.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="sealed"):
        load(tmp_path / "out")


def test_a_conversion_of_the_previous_version_loads_as_before(tmp_path):
    source = GOLDEN_CONVERT / "keras_models" / "tf_keras" / "sentiment.h5"
    convert(source, tmp_path / "new", verify=False)
    content = checkpoint.read(tmp_path / "new", KIND, require_seal=True).materialize(allow_nonfinite=True)
    content["converter_version"] = 2
    del content["model"]
    checkpoint.save(tmp_path / "old", KIND, content)
    modules = load(tmp_path / "old")
    assert isinstance(modules, dict) and list(modules) == ["lstm"]


JUNK = [None, -1, 0, 2 ** 40, 1e308, float("nan"), "", "a.b", "Eval", [], {}, ["nowhere", 0], [["tags", 0]], True,
        {"kind": "Dense", "config": {}}]


@pytest.fixture(scope="module")
def sealed_content(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sealed")
    convert(GOLDEN_CONVERT / "keras_models" / "keras3" / "seq2seq.keras", tmp / "good", verify=False)
    return checkpoint.read(tmp / "good", KIND, require_seal=True).materialize(allow_nonfinite=True)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60)
@given(data=st.data())
def test_an_edited_graph_is_refused_with_one_error_or_loads(sealed_content, tmp_path_factory, data):
    """Any one field of the stored graph replaced by junk, the conversion sealed again: load raises
    CheckpointError naming a field, or builds a model that runs; nothing else."""
    model, path, value = load_edited(sealed_content, data, JUNK, tmp_path_factory)
    if model is None:
        return
    ids = torch.tensor([[1, 2, 0, 0, 3, 4]] * 3)
    x = torch.rand(3, 6, 4)
    try:
        with torch.no_grad():
            model(ids, x)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:   # an edit the checks let through
        pytest.fail(f"{path} = {value!r}: loaded, then failed at run time: {type(e).__name__}: {e}")
