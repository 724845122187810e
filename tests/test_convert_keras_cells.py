"""Keras's generic ``RNN`` layer over its built-in cells converts as Keras runs it.

tests/golden/convert/keras_cells/ holds models saved by Keras 3 (torch backend) and tf-keras 2.21 whose recurrent
layers are ``RNN(LSTMCell)`` (after an ``Embedding(mask_zero)``), ``RNN(GRUCell)`` (reset after and before,
return_state, unroll), ``RNN(SimpleRNNCell)`` (go_backwards, unroll), ``RNN(StackedRNNCells([...]))`` and
``RNN([cell, cell])`` (after a ``Masking``, with return_state) and ``Bidirectional(RNN(LSTMCell))``, with
``model.predict`` on recorded inputs; legacy/record_convert_keras_cells.py wrote them. Each model converts whole
(its check against reference/keras_model.py, which runs the cells step by step, must pass) and predicts what Keras
predicted; so do its converted recurrent layers run on their own (a StackedRNNCells as one converted layer per
cell, each cell's output sequence feeding the next), its ``--emit-python`` file, and the oracle itself.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.convert_cases import GOLDEN_CONVERT, check_keras_model, convert_cli, keras_model_files, model_inputs
from tests.tolerances import assert_close_scaled

BASE = GOLDEN_CONVERT / "keras_cells"
CASES = list(keras_model_files(BASE))
FRAMEWORKS = ("keras3", "tf_keras")
MODELS = ("lstm_cell", "gru_cells", "simple_backwards", "stacked", "bidirectional")


def _recorded(framework: str, name: str):
    (config, arrays), = [(c[4], c[5]) for c in CASES if c[0] == framework and c[1] == name][:1]
    return config, arrays


@pytest.mark.parametrize("framework, name, source, weights, config, arrays",
                         [pytest.param(*c, id=f"{c[0]}-{c[2]}") for c in CASES])
def test_rnn_cells_model_predicts_as_keras(framework, name, source, weights, config, arrays, tmp_path):
    check_keras_model(BASE / framework, source, weights, config, arrays, tmp_path)


def test_every_recorded_cells_model_is_covered():
    got = {(c[0], c[2]) for c in CASES}
    for framework in FRAMEWORKS:
        for name in MODELS:
            assert {(framework, f"{name}.keras"), (framework, f"{name}.h5")} <= got


# -- the converted recurrent layers on their own ------------------------------------------------------------------
def _run(module, x, mask=None, hx=None):
    """(y, [final states in Keras's order]) of a converted recurrent module on x [B, T, in]."""
    kw = {} if mask is None else {"mask": torch.from_numpy(mask)}
    with torch.no_grad():
        y, state = module(torch.from_numpy(x), hx, **kw)
    states = [state] if isinstance(state, torch.Tensor) else list(state)
    return y.double().numpy(), [s[0].double().numpy() for s in states]


# model -> [(converted layers run one after the other, the recorded outputs: "seq" / "last", then the states)]
LAYERS = {
    "gru_cells": [(["gru_after"], ["last", "h"]), (["gru_before"], ["seq", "h"]), (["gru_unrolled"], ["last"])],
    "simple_backwards": [(["backwards"], ["seq"]), (["backwards_unrolled"], ["last"])],
    "stacked": [(["stack/lstm_cell_1", "stack/gru_cell_3"], ["seq", "h", "c", "h"]),
                (["stack_list/simple_rnn_cell_2", "stack_list/lstm_cell_2"], ["last"])],
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_converted_recurrent_layers_compute_what_keras_computed(framework, suffix, name, tmp_path):
    """The recurrent converter's table: every RNN layer (every cell of a StackedRNNCells) is a converted layer
    named after it (``<layer>/<cell>``), and run on the recorded input (with the Masking layer's mask) they
    return Keras's outputs and states."""
    from compat.convert import load

    config, arrays = _recorded(framework, name)
    assert convert_cli(BASE / framework / f"{name}{suffix}", tmp_path / "out") == 0
    loaded = load(tmp_path / "out")
    x = arrays["x0"]
    mask = np.any(x != 0.0, axis=-1) if name == "stacked" else None
    k = 0
    for layers, outputs in LAYERS[name]:
        seq, states = x, []
        for layer in layers:
            seq, got = _run(loaded[layer], seq.astype(np.float32), mask)
            states += got
        want = [seq if kind == "seq" else seq[:, -1] if kind == "last" else states.pop(0) for kind in outputs]
        for w in want:
            assert_close_scaled(w, arrays[f"y{k}"], dtype=np.float32, msg=f"{framework} {name}{suffix} output {k}")
            k += 1
    assert k == config["outputs"]


def test_the_table_names_each_cell_and_the_layer_it_runs_as(tmp_path):
    from compat.convert import convert

    conversion = convert(BASE / "tf_keras" / "stacked.h5", tmp_path / "out")
    variants = {s.name: s.variant for s in conversion.specs}
    assert variants == {"stack/lstm_cell_1": "Keras 2.21.0 RNN(StackedRNNCells) cell 0 (LSTMCell)",
                        "stack/gru_cell_3": "Keras 2.21.0 RNN(StackedRNNCells) cell 1 (GRUCell)",
                        "stack_list/simple_rnn_cell_2": "Keras 2.21.0 RNN(StackedRNNCells) cell 0 (SimpleRNNCell)",
                        "stack_list/lstm_cell_2": "Keras 2.21.0 RNN(StackedRNNCells) cell 1 (LSTMCell)"}
    conversion = convert(BASE / "keras3" / "gru_cells.keras", tmp_path / "out2")
    assert {s.name: s.variant for s in conversion.specs} == {
        "gru_after": "Keras 3.15.1 RNN(GRUCell)", "gru_before": "Keras 3.15.1 RNN(GRUCell)",
        "gru_unrolled": "Keras 3.15.1 RNN(GRUCell)"}
    assert {s.name: s.module_kind for s in conversion.specs}["gru_before"] == "compat.gru.GRU"   # reset before


# -- the oracle ------------------------------------------------------------------------------------------------
def _h5_model(path):
    """(configuration, layer name -> its weights in Keras's order) read from a Keras .h5 file with h5py."""
    import h5py

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = group[layer].attrs.get("weight_names", [])
            weights[layer] = [np.asarray(group[layer][n.decode() if isinstance(n, bytes) else n]) for n in names]
    return config, weights


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", MODELS)
def test_the_oracle_runs_the_cells_as_keras(framework, name):
    """reference/keras_model.py (the cells step by step, StackedRNNCells' cells one after the other at each step)
    on the file's configuration and weights predicts what Keras predicted."""
    from reference import keras_model

    config, arrays = _recorded(framework, name)
    cfg, weights = _h5_model(BASE / framework / f"{name}.h5")
    version = (2, 21, 0, True) if framework == "tf_keras" else (3, 15, 1, False)
    got = keras_model.predict(cfg, weights, [arrays[f"x{k}"] for k in range(config["inputs"])], version)
    assert len(got) == config["outputs"]
    for k, g in enumerate(got):
        assert_close_scaled(g.astype(np.float32), arrays[f"y{k}"], dtype=np.float32, msg=f"{framework} {name} {k}")


# -- --emit-python ----------------------------------------------------------------------------------------------
EMIT_RUNNER = """
import importlib.util, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("emitted", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = module.load()
xs = np.load(sys.argv[2])
xs = [torch.from_numpy(xs[f"x{k}"]) for k in range(len(xs.files))]
with torch.no_grad():
    y = model(*xs)
y = [y] if isinstance(y, torch.Tensor) else list(y)
np.savez(sys.argv[3], **{f"y{j}": o.numpy() for j, o in enumerate(y)})
"""


@pytest.mark.parametrize("framework, suffix", [("keras3", ".keras"), ("tf_keras", ".h5")])
@pytest.mark.parametrize("name", MODELS)
def test_emitted_python_predicts_as_keras(framework, suffix, name, tmp_path):
    """The standalone ``--emit-python`` file, run in a fresh process, predicts what Keras predicted."""
    config, arrays = _recorded(framework, name)
    py = tmp_path / "model.py"
    assert convert_cli(BASE / framework / f"{name}{suffix}", tmp_path / "out", ["--emit-python", str(py)]) == 0
    xs = model_inputs(arrays, config["inputs"])
    np.savez(tmp_path / "x.npz", **{f"x{k}": x.numpy() for k, x in enumerate(xs)})
    proc = subprocess.run([sys.executable, "-c", EMIT_RUNNER, str(py), str(tmp_path / "x.npz"),
                           str(tmp_path / "y.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "y.npz")
    assert len(got.files) == config["outputs"]
    for k in range(config["outputs"]):
        assert_close_scaled(got[f"y{k}"], arrays[f"y{k}"], dtype=np.float32, msg=f"{framework} {name} emitted {k}")


# -- what stays refused, what is noted --------------------------------------------------------------------------
def _edited(tmp_path, framework: str, name: str, edit):
    """A copy of a recorded .h5 whose model configuration ``edit(config)`` changed."""
    import h5py

    out = tmp_path / f"{name}_edited.h5"
    shutil.copy(BASE / framework / f"{name}.h5", out)
    with h5py.File(out, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return out


def _layer(config, name):
    (entry,) = [e for e in config["config"]["layers"] if e["config"].get("name") == name]
    return entry


def _custom_cell(config):
    _layer(config, "rnn")["config"]["cell"]["class_name"] = "MinimalRNNCell"


def _custom_stacked_cell(config):
    _layer(config, "stack")["config"]["cell"]["config"]["cells"][1]["class_name"] = "MinimalRNNCell"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name, layer, edit", [("lstm_cell", "rnn", _custom_cell),
                                               ("stacked", "stack", _custom_stacked_cell)])
def test_a_custom_cell_is_refused_by_name(framework, name, layer, edit, tmp_path, capsys):
    from compat.convert import convert

    source = _edited(tmp_path, framework, name, edit)
    assert convert_cli(source, tmp_path / "out") == 3
    out = capsys.readouterr()
    assert "MinimalRNNCell" in out.out + out.err
    conversion = convert(source, tmp_path / "partial", partial=True)
    (item,) = [i for i in conversion.items if i.name == layer]
    assert item.converted is None and item.recurrent
    assert "'MinimalRNNCell' cell" in item.reason and "custom" in item.reason
    assert conversion.graph is None


def _stack_backwards(config):
    _layer(config, "stack")["config"]["go_backwards"] = True


def _bidirectional_stack(config):
    inner = _layer(config, "bidirectional")["config"]["layer"]["config"]
    inner["cell"] = {"class_name": "StackedRNNCells", "config": {"name": "cells", "cells": [inner["cell"]]}}


@pytest.mark.parametrize("name, layer, edit, why", [
    ("stacked", "stack", _stack_backwards, "go_backwards=True"),
    ("bidirectional", "bidirectional", _bidirectional_stack, "StackedRNNCells inside Bidirectional")])
def test_what_stacked_cells_do_not_convert_is_refused_by_name(name, layer, edit, why, tmp_path):
    from compat.convert import convert

    conversion = convert(_edited(tmp_path, "tf_keras", name, edit), tmp_path / "partial", partial=True)
    (item,) = [i for i in conversion.items if i.name == layer]
    assert item.converted is None and item.recurrent and why in item.reason
    assert conversion.graph is None


def test_a_stateful_rnn_is_reported_as_the_layers_report_it(tmp_path):
    from compat.convert import convert

    conversion = convert(_edited(tmp_path, "tf_keras", "gru_cells", lambda c: _layer(c, "gru_after")["config"].update(
        stateful=True)), tmp_path / "a")
    (spec,) = [s for s in conversion.specs if s.name == "gru_after"]
    assert any(n.startswith("stateful=True: Keras carried the final state") for n in spec.notes)
    assert conversion.graph.node("gru_after").config["stateful"] is True
    conversion = convert(_edited(tmp_path, "tf_keras", "stacked", lambda c: _layer(c, "stack")["config"].update(
        stateful=True)), tmp_path / "b")
    assert {n.name: n.config.get("stateful") for n in conversion.graph.nodes if n.kind == "Recurrent"
            and n.name.startswith("stack:")} == {"stack:lstm_cell_1": True, "stack:gru_cell_3": True}
    assert any(n.startswith("stack: stateful=True") for n in conversion.graph.notes)


def _stack_called_twice(config):
    """The recorded stack called a second time, on the unmasked frames, its outputs added to the model's."""
    _layer(config, "stack")["inbound_nodes"].append([["frames", 0, 0, {}]])
    config["config"]["output_layers"] += [["stack", 1, k] for k in range(4)]


def test_a_stack_called_twice_shares_each_cells_module(tmp_path):
    from compat.convert import convert, load

    source = _edited(tmp_path, "tf_keras", "stacked", _stack_called_twice)
    conversion = convert(source, tmp_path / "out", model="whole")
    assert conversion.checks and all(c.ok for c in conversion.checks), conversion.checks
    nodes = {n.name: n for n in conversion.graph.nodes}
    for cell in ("lstm_cell_1", "gru_cell_3"):
        first, later = nodes[f"stack:{cell}"], nodes[f"stack@1:{cell}"]
        assert first.shares is None and later.shares == first.name and not later.weights
        assert later.recurrent == first.recurrent == f"stack/{cell}"
        # one call reads the frames' mask, the other (on the frames themselves) none
        assert sorted("mask" in n.kwargs for n in (first, later)) == [False, True]
    for call in ("stack", "stack@1"):
        assert nodes[call].kind == "Outputs" and nodes[call].args == [[[f"{call}:gru_cell_3", 0],
                                                                       [f"{call}:lstm_cell_1", 1],
                                                                       [f"{call}:lstm_cell_1", 2],
                                                                       [f"{call}:gru_cell_3", 1]]]
    config, arrays = _recorded("tf_keras", "stacked")
    model = load(tmp_path / "out")
    with torch.no_grad():
        got = model(*model_inputs(arrays, config["inputs"]))
    for k in range(config["outputs"]):   # the first call's outputs are Keras's recorded ones
        assert_close_scaled(got[k], arrays[f"y{k}"], dtype=np.float32, msg=f"stack called twice, output {k}")
    x = model_inputs(arrays, config["inputs"])[0]
    nomask = torch.ones(x.shape[:2], dtype=torch.bool)
    lstm, gru = model["stack/lstm_cell_1"], model["stack/gru_cell_3"]
    with torch.no_grad():   # the second call runs the same converted cells on the frames without a mask
        h1 = lstm(x, mask=nomask)[0]
        want = gru(h1, mask=nomask)[0]
    assert_close_scaled(got[config["outputs"]], want, dtype=np.float32, msg="stack's second call")
    import importlib.util

    assert convert_cli(source, tmp_path / "emitted", ["--emit-python", str(tmp_path / "stack_twice.py")]) == 0
    spec = importlib.util.spec_from_file_location("stack_twice", tmp_path / "stack_twice.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    with torch.no_grad():   # the emitted file calls each cell's one module from both calls
        plain = emitted.load()(*model_inputs(arrays, config["inputs"]))
    assert len(plain) == len(got)
    for k, (p, g) in enumerate(zip(plain, got)):
        assert_close_scaled(p, g.numpy(), dtype=np.float32, msg=f"stack called twice, emitted output {k}")


def test_a_stateful_stack_called_twice_is_refused_by_name(tmp_path):
    from compat.convert import WholeModelError, convert

    def edit(config):
        _stack_called_twice(config)
        _layer(config, "stack")["config"]["stateful"] = True

    with pytest.raises(WholeModelError, match="'stack'.*stateful recurrent layer called more than once"):
        convert(_edited(tmp_path, "tf_keras", "stacked", edit), tmp_path / "out", model="whole")


@pytest.mark.parametrize("framework, rule", [("tf_keras", "shared"), ("keras3", "shared")])
def test_an_rnn_over_a_cell_drops_out_as_its_cell_does(framework, rule, tmp_path):
    """tf-keras's LSTM layer drops out a new input mask at every step on its fused path; an RNN over an LSTMCell
    never takes that path (base_rnn.py RNN.call steps the cell), so it draws the cell's per-call masks
    (implementation=2: one mask for every gate)."""
    from compat.convert import convert

    def dropout(config):
        _layer(config, "rnn")["config"]["cell"]["config"].update(dropout=0.25)

    conversion = convert(_edited(tmp_path, framework, "lstm_cell", dropout), tmp_path / "out")
    (spec,) = conversion.specs
    assert spec.keras.keras_dropout["rule"] == rule and spec.keras.keras_dropout["rate"] == 0.25


def test_a_custom_cell_named_like_a_built_in_one_is_refused(tmp_path):
    from compat.convert import convert

    def subclass(config):
        _layer(config, "rnn")["config"]["cell"].update(module="my_cells", registered_name="my_cells>LSTMCell")

    conversion = convert(_edited(tmp_path, "keras3", "lstm_cell", subclass), tmp_path / "partial", partial=True)
    (item,) = [i for i in conversion.items if i.name == "rnn"]
    assert item.converted is None and "'my_cells>LSTMCell'" in item.reason and "custom cell" in item.reason
