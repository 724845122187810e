"""Whole Keras models with shared layers and nested models: their structure, the stored graph's checks of a
shared layer's calls, and what stays refused.

The recorded models (``siamese``, ``nested_shared``, ``nested_functional`` in tests/golden/convert/keras_models,
tf-keras 2.21 and Keras 3) predict as Keras predicted in tests/test_convert_keras_models.py (converted model,
checked against reference/keras_model.py) and tests/test_convert_keras_emit.py (the emitted Python file); here:
a shared layer is one module whose later calls name it, a nested model's layers are named ``model/layer``,
the stored ``shares`` field is checked as strictly as the rest of the graph, and Keras 2.2 models written in
that version's exact layout (``tests/keras_files.py``) convert with a shared layer and refuse what is not
converted, by name.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compat import checkpoint
from compat.convert import WholeModelError, convert, load
from compat.convert.store import KIND
from compat.errors import CheckpointError
from tests.convert_cases import GOLDEN_CONVERT, convert_cli, load_edited
from tests.keras_files import write_keras_h5
from tests.tolerances import assert_close

MODELS = GOLDEN_CONVERT / "keras_models"


@pytest.mark.parametrize("framework", ["tf_keras", "keras3"])
def test_a_shared_layer_is_one_module_called_once_per_call(framework, tmp_path):
    conversion = convert(MODELS / framework / "siamese.h5", tmp_path / "out")
    assert all(c.ok for c in conversion.checks), conversion.checks
    nodes = {n.name: n for n in conversion.graph.nodes}
    for layer in ("embedding", "encoder", "bigru", "pool"):
        assert nodes[layer].shares is None and nodes[f"{layer}@1"].shares == layer
        assert nodes[f"{layer}@1"].weights == {}
    # each call computes its own mask: the second encoder call reads the second question's
    for call, question in (("encoder", "question1"), ("encoder@1", "question2")):
        mask = nodes[nodes[call].kwargs["mask"][0]]    # tf-keras: ids != 0 added here; Keras 3: the file's op
        assert mask.kind == "NotEqual" and list(mask.args[0]) == [question, 0]
    model = load(tmp_path / "out")
    children = dict(model.named_children())
    assert "embedding" in children and "embedding@1" not in children and "encoder@1" not in children
    assert set(model) == {"encoder", "bigru"}
    # one set of parameters: changing the embedding changes both questions' encodings (output 1 is question 2's)
    q = torch.tensor([[1, 2, 3, 4, 5, 6]] * 2)
    with torch.no_grad():
        before = model(q, q)
        model.get_submodule("embedding").weight.mul_(0.5)
        after = model(q, q)
    assert not torch.equal(before[1], after[1])


@pytest.mark.parametrize("framework", ["tf_keras", "keras3"])
def test_a_nested_model_is_flattened_with_its_layers_named_model_slash_layer(framework, tmp_path):
    convert(MODELS / framework / "nested_shared.keras", tmp_path / "out")
    model = load(tmp_path / "out")
    assert isinstance(model.get_submodule("encoder/tokens"), torch.nn.Embedding)
    assert set(model) == {"lstm"}
    holding = [n for n, m in model.named_children() if list(m.parameters())]
    assert sorted(holding) == ["encoder/lstm", "encoder/tokens", "out"]   # the second call holds none
    convert(MODELS / framework / "nested_functional.h5", tmp_path / "f")
    nodes = [n["name"] for n in checkpoint.read(tmp_path / "f", KIND, require_seal=True).content["model"]["nodes"]]
    assert {"inner/lstm", "inner/dense", "average", "head"} <= set(nodes)


def test_the_emitted_python_calls_a_shared_module_on_each_input(tmp_path):
    model_py = tmp_path / "model.py"
    assert convert_cli(MODELS / "keras3" / "nested_shared.keras", tmp_path / "conv",
                       ["--emit-python", str(model_py)]) == 0
    text = model_py.read_text()
    assert text.count("self.encoder_lstm = ") == 1 and text.count("self.encoder_lstm(") == 2
    assert text.count("self.encoder_tokens = ") == 1 and text.count("self.encoder_tokens(") == 2


# ---------------------------------------------------------------------------------- the stored graph
@pytest.fixture(scope="module")
def siamese_content(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("siamese")
    convert(MODELS / "keras3" / "siamese.keras", tmp / "good", verify=False)
    return checkpoint.read(tmp / "good", KIND, require_seal=True).materialize(allow_nonfinite=True)


def _node(content, name):
    return next(k for k, n in enumerate(content["model"]["nodes"]) if n["name"] == name)


def _edits():
    def shares(name, value):
        return lambda c: c["model"]["nodes"][_node(c, name)].__setitem__("shares", value)

    def config(c):
        c["model"]["nodes"][_node(c, "embedding@1")]["config"]["embedding_dim"] = 7

    def weights(c):
        c["model"]["nodes"][_node(c, "embedding@1")]["weights"]["weight"] = torch.zeros(30, 6)

    def recurrent(c):
        c["model"]["nodes"][_node(c, "encoder@1")]["recurrent"] = "bigru"

    return [
        (shares("embedding@1", "nowhere"), "embedding@1", "shares"),
        (shares("embedding@1", "score"), "embedding@1", "shares"),          # a later node
        (shares("encoder@1", "embedding@1"), "encoder@1", "shares"),        # a node that shares itself
        (shares("embedding@1", 3), "embedding@1", "shares"),
        (shares("encoder@1", "embedding"), "encoder@1", "kind"),            # another kind
        (config, "embedding@1", "config"),
        (weights, "embedding@1", "weights"),
        (recurrent, "encoder@1", "recurrent"),
    ]


@pytest.mark.parametrize("edit, name, field", _edits())
def test_load_checks_a_shared_layers_calls(siamese_content, tmp_path, edit, name, field):
    import copy

    content = copy.deepcopy(siamese_content)
    index = _node(content, name)
    edit(content)
    checkpoint.save(tmp_path / "bad", KIND, content)
    with pytest.raises(CheckpointError, match=f"model/nodes/{index}/{field}"):
        load(tmp_path / "bad")


JUNK = [None, -1, "", "a.b", "embedding", "embedding@1", "score", [], {}, ["nowhere", 0], True]

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40)
@given(data=st.data())
def test_an_edited_shared_graph_is_refused_with_one_error_or_loads(siamese_content, tmp_path_factory, data):
    """Any one field of the stored graph (``shares`` among them) replaced by junk: load raises CheckpointError
    naming a field, or builds a model that runs."""
    model, path, value = load_edited(siamese_content, data, JUNK, tmp_path_factory)
    if model is None:
        return
    q = torch.tensor([[1, 2, 0, 0, 3, 4]] * 3)
    try:
        with torch.no_grad():
            model(q, q)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        pytest.fail(f"{path} = {value!r}: loaded, then failed at run time: {type(e).__name__}: {e}")


# ---------------------------------------------------------------- Keras 2.2 layouts: shared, refused
def _input(name, shape):
    return {"name": name, "class_name": "InputLayer", "inbound_nodes": [],
            "config": {"batch_input_shape": [None] + list(shape), "dtype": "float32", "name": name}}


def _dense_cfg(name, units, inbound, activation="tanh"):
    return {"name": name, "class_name": "Dense", "inbound_nodes": inbound,
            "config": {"name": name, "trainable": True, "units": units, "activation": activation, "use_bias": True}}


def _model(layers, inputs, outputs, version="2.2.4"):
    return {"class_name": "Model", "keras_version": version, "backend": "tensorflow",
            "config": {"name": "model_1", "layers": layers, "input_layers": inputs, "output_layers": outputs}}


def test_a_keras2_shared_dense_converts_and_predicts_as_numpy(tmp_path):
    rng = np.random.default_rng(5)
    k, b = rng.uniform(-1, 1, (3, 2)).astype(np.float32), rng.uniform(-1, 1, 2).astype(np.float32)
    layers = [_input("input_1", [3]), _input("input_2", [3]),
              _dense_cfg("dense_1", 2, [[["input_1", 0, 0, {}]], [["input_2", 0, 0, {}]]]),
              {"name": "subtract_1", "class_name": "Subtract", "config": {"name": "subtract_1", "trainable": True},
               "inbound_nodes": [[["dense_1", 0, 0, {}], ["dense_1", 1, 0, {}]]]}]
    config = _model(layers, [["input_1", 0, 0], ["input_2", 0, 0]], [["subtract_1", 0, 0], ["dense_1", 1, 0]])
    path = tmp_path / "shared.h5"
    write_keras_h5(path, config, [("input_1", []), ("input_2", []),
                                  ("dense_1", [("dense_1/kernel:0", k), ("dense_1/bias:0", b)]), ("subtract_1", [])],
                   "2.2.4")
    conversion = convert(path, tmp_path / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    x1, x2 = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 3))
    h1, h2 = np.tanh(x1 @ k + b), np.tanh(x2 @ k + b)
    with torch.no_grad():
        diff, second = load(tmp_path / "out").double()(torch.from_numpy(x1), torch.from_numpy(x2))
    assert_close(diff.numpy(), h1 - h2, dtype=np.float64, msg="dense(x1) - dense(x2)")
    assert_close(second.numpy(), h2, dtype=np.float64, msg="the shared layer's second call")


def _nested_file(tmp_path, version, inner_dense="dense_1", outer_dense="dense_2"):
    rng = np.random.default_rng(6)
    w = [(f"{inner_dense}/kernel:0", rng.uniform(-1, 1, (3, 2)).astype(np.float32)),
         (f"{inner_dense}/bias:0", rng.uniform(-1, 1, 2).astype(np.float32))]
    inner = {"name": "inner", "class_name": "Model", "inbound_nodes": [[["input_1", 0, 0, {}]]],
             "config": {"name": "inner", "layers": [_input("input_2", [3]),
                                                    _dense_cfg(inner_dense, 2, [[["input_2", 0, 0, {}]]])],
                        "input_layers": [["input_2", 0, 0]], "output_layers": [[inner_dense, 0, 0]]}}
    layers = [_input("input_1", [3]), inner, _dense_cfg(outer_dense, 2, [[["inner", 1, 0, {}]]])]
    config = _model(layers, [["input_1", 0, 0]], [[outer_dense, 0, 0]], version)
    path = tmp_path / "nested.h5"
    write_keras_h5(path, config, [("input_1", []), ("inner", w),
                                  (outer_dense, [(f"{outer_dense}/kernel:0", rng.uniform(-1, 1, (2, 2))
                                                  .astype(np.float32)),
                                                 (f"{outer_dense}/bias:0", rng.uniform(-1, 1, 2).astype(np.float32))])],
                   version)
    return path


def test_a_tf_keras_nested_model_in_the_h5_layout_converts(tmp_path):
    conversion = convert(_nested_file(tmp_path, "2.4.0"), tmp_path / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    assert [n.name for n in conversion.graph.nodes] == ["inner/dense_1", "dense_2"]


@pytest.mark.parametrize("version, names, expect", [
    ("2.2.4", ("dense_1", "dense_2"), "nested models of Keras 2.2 are not converted whole"),
    ("2.4.0", ("dense_1", "dense_1"), "'dense_1' is listed by two models.*shared across nesting levels"),
])
def test_what_is_not_converted_whole_is_refused_by_name(tmp_path, version, names, expect):
    path = _nested_file(tmp_path, version, *names)
    with pytest.raises(WholeModelError, match=expect):
        convert(path, tmp_path / "out", model="whole")


def test_a_reference_to_a_call_that_does_not_exist_is_refused(tmp_path):
    rng = np.random.default_rng(7)
    layers = [_input("input_1", [3]), _dense_cfg("dense_1", 2, [[["input_1", 0, 0, {}]]]),
              _dense_cfg("dense_2", 2, [[["dense_1", 1, 0, {}]]])]
    path = tmp_path / "bad.h5"
    write_keras_h5(path, _model(layers, [["input_1", 0, 0]], [["dense_2", 0, 0]]),
                   [("input_1", []), ("dense_1", [("dense_1/kernel:0", rng.uniform(-1, 1, (3, 2)).astype(np.float32)),
                                                  ("dense_1/bias:0", np.zeros(2, np.float32))]),
                    ("dense_2", [("dense_2/kernel:0", rng.uniform(-1, 1, (2, 2)).astype(np.float32)),
                                 ("dense_2/bias:0", np.zeros(2, np.float32))])], "2.2.4")
    with pytest.raises(WholeModelError, match="node 1 of layer 'dense_1', which the model calls 1 time"):
        convert(path, tmp_path / "out", model="whole")


def test_a_stateful_layer_called_twice_is_refused(tmp_path):
    rng = np.random.default_rng(8)
    H = 2
    lstm = {"name": "lstm_1", "class_name": "LSTM",
            "inbound_nodes": [[["input_1", 0, 0, {}]], [["input_2", 0, 0, {}]]],
            "config": {"name": "lstm_1", "trainable": True, "units": H, "stateful": True, "activation": "tanh",
                       "recurrent_activation": "sigmoid", "use_bias": True, "return_sequences": False}}
    add = {"name": "add_1", "class_name": "Add", "config": {"name": "add_1", "trainable": True},
           "inbound_nodes": [[["lstm_1", 0, 0, {}], ["lstm_1", 1, 0, {}]]]}
    layers = [{**_input("input_1", [4, 3])}, {**_input("input_2", [4, 3])}, lstm, add]
    for entry in layers[:2]:
        entry["config"]["batch_input_shape"] = [2, 4, 3]
    path = tmp_path / "stateful.h5"
    write_keras_h5(path, _model(layers, [["input_1", 0, 0], ["input_2", 0, 0]], [["add_1", 0, 0]]),
                   [("input_1", []), ("input_2", []),
                    ("lstm_1", [("lstm_1/kernel:0", rng.uniform(-1, 1, (3, 4 * H)).astype(np.float32)),
                                ("lstm_1/recurrent_kernel:0", rng.uniform(-1, 1, (H, 4 * H)).astype(np.float32)),
                                ("lstm_1/bias:0", rng.uniform(-1, 1, 4 * H).astype(np.float32))]),
                    ("add_1", [])], "2.2.4")
    with pytest.raises(WholeModelError, match="'lstm_1'.*stateful recurrent layer called more than once"):
        convert(path, tmp_path / "out", model="whole")


@pytest.mark.parametrize("last", [False, True])
def test_a_model_placed_directly_in_a_sequential_converts(tmp_path, last):
    """tf-keras's layout of ``Sequential([Input, inner, Dense])`` (or the inner model last): a Sequential's config
    lists its layers and numbers no node (tf_keras/src/engine/sequential.py ``get_config``), so the inner model's
    call there is its first; it was read as the file's node 1 of a nested Functional and refused."""
    rng = np.random.default_rng(9)
    k1, b1 = rng.uniform(-1, 1, (2, 2)).astype(np.float32), rng.uniform(-1, 1, 2).astype(np.float32)
    k2, b2 = rng.uniform(-1, 1, (2, 2)).astype(np.float32), rng.uniform(-1, 1, 2).astype(np.float32)
    inner = {"name": "inner", "class_name": "Functional",
             "config": {"name": "inner", "layers": [_input("input_2", [2]),
                                                    _dense_cfg("dense_1", 2, [[["input_2", 0, 0, {}]]])],
                        "input_layers": [["input_2", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}
    outer = {"name": "dense_2", "class_name": "Dense", "config": _dense_cfg("dense_2", 2, [])["config"]}
    first = {"class_name": "InputLayer", "config": _input("input_1", [2])["config"]}
    layers = [first, outer, inner] if last else [first, inner, outer]
    config = {"class_name": "Sequential", "keras_version": "2.21.0", "backend": "tensorflow",
              "config": {"name": "sequential", "layers": layers}}
    weights = {"inner": [("dense_1/kernel:0", k1), ("dense_1/bias:0", b1)],
               "dense_2": [("dense_2/kernel:0", k2), ("dense_2/bias:0", b2)]}
    path = tmp_path / "sequential.h5"
    write_keras_h5(path, config, [(n, weights[n]) for n in (["dense_2", "inner"] if last else ["inner", "dense_2"])],
                   "2.21.0")
    conversion = convert(path, tmp_path / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    x = rng.uniform(-1, 1, (4, 2))
    want = np.tanh(np.tanh(x @ k2 + b2) @ k1 + b1) if last else np.tanh(np.tanh(x @ k1 + b1) @ k2 + b2)
    with torch.no_grad():
        got = load(tmp_path / "out").double()(torch.from_numpy(x))
    assert_close(got.numpy(), want, dtype=np.float64, msg="Sequential([inner, dense])")
