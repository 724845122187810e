"""TF1 checkpoints whose run-time settings only their ``.meta`` graph holds, recorded in TensorFlow 2.21
(legacy/record_convert_tf_meta.py: BasicLSTMCell with forget_bias 0 and 1, LSTMCell with cell_clip, num_proj
and proj_clip, peepholes, a DropoutWrapper, a MultiRNNCell, dynamic_rnn time_major True and False, with and
without sequence_length, TF 1.x's while loop and TF 2's while_v2, a relu activation), and language models whose
graph around the cells (embedding lookup, projection, softmax) converts with them as one whole model: among them
a TF 2 while_v2 loop, dynamic_rnn fed sequence_length by a placeholder (the model's second input),
bidirectional_dynamic_rnn with its two outputs concatenated, contrib's stack_bidirectional_dynamic_rnn (each
layer's joined outputs the next layer's input), bidirectional_dynamic_rnn of two MultiRNNCells (each direction's
stack run whole, of two depths, then one concat), sequence_length a constant of the graph, and dynamic_rnn /
static_rnn / the unrolled loop / bidirectional_dynamic_rnn starting from zero_state, from placeholders (more
inputs) or from a constant (refused by name).

Converted with no flag: each setting the recording states is settled from the graph (the table says "from the
graph" and names the node), and the converted module reproduces TF's outputs and final state on the recorded
input. A flag overrides the graph, and a disagreement is reported; without the ``.meta`` the defaults stand,
said to be defaults.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from compat.convert import convert, load, load_carried
from tests.tolerances import assert_close

GOLDEN = Path(__file__).resolve().parent / "golden" / "convert" / "tf_meta"


def cases(folder=GOLDEN):
    """``{case: (arrays, config)}`` of a recording (tests/legacy/test_live_tf_meta.py passes a fresh one)."""
    with np.load(Path(folder) / "expected.npz", allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files if k.endswith("/config")})
        return {n: ({k[len(n) + 1:]: z[k] for k in z.files if k.startswith(n + "/") and not k.endswith("/config")},
                    json.loads(str(z[f"{n}/config"]))) for n in names}


CASES = cases()


def _unknowns(spec):
    return {u.what: u for u in spec.unknowns}


CELL_CASES = sorted(n for n in CASES if not n.startswith("whole_"))
WHOLE_CASES = sorted(n for n in CASES if n.startswith("whole_") and CASES[n][1]["whole"])


@pytest.mark.parametrize("name", CELL_CASES)
def test_settings_come_from_the_graph_and_outputs_match_tf(tmp_path, name):
    check_cells(GOLDEN, name, *CASES[name], tmp_path)


def check_cells(folder, name, arrays, config, tmp_path):
    c = convert(Path(folder) / config["checkpoint"], tmp_path / "out")
    assert all(k.ok for k in c.checks)
    (spec,) = c.specs
    table = _unknowns(spec)
    settings = config["settings"]
    assert spec.forget_bias == pytest.approx(settings["forget_bias"], abs=1e-7)
    assert table["forget_bias"].assumed.startswith("from the graph") and not table["forget_bias"].loud
    for clip in ("cell_clip", "proj_clip"):
        if clip in settings:
            assert spec.options[clip] == pytest.approx(settings[clip], abs=1e-7)
            assert table[clip].assumed.startswith("from the graph")
        else:
            assert clip not in spec.options
    assert table["activation"].value == settings["activation"]
    assert table["activation"].assumed.startswith("from the graph")
    if config["static_rnn"]:      # no loop: time_major and sequence_length are dynamic_rnn's, not told
        assert table["time_major"].value == "?" and "sequence_length" not in table and not spec.batch_first
    else:
        assert table["time_major"].value == str(settings["time_major"]).lower()
        assert spec.batch_first is (not settings["time_major"])
        assert table["sequence_length"].value == ("used" if settings["sequence_length"] else "not used")
    if "keep_probs" in settings:
        assert table["keep_prob"].value == ", ".join(f"{k} {p:g}" for k, p in zip(("input", "state", "output"),
                                                                                  settings["keep_probs"]))
    module = load(tmp_path / "out")[spec.name]
    assert module.batch_first is spec.batch_first
    x = torch.from_numpy(arrays["x"])
    with torch.no_grad():
        if config["lengths"] is not None:
            y, (h, cc) = module(x, lengths=torch.tensor(config["lengths"]))
        else:
            y, (h, cc) = module(x)
    assert_close(y, arrays["y"], dtype=torch.float32, msg=f"{name} outputs")
    assert_close(h, arrays["h"], dtype=torch.float32, msg=f"{name} final h")
    assert_close(cc, arrays["c"], dtype=torch.float32, msg=f"{name} final c")


def test_a_flag_overrides_the_graph_and_the_disagreement_is_reported(tmp_path, capsys):
    from tests.convert_cases import convert_cli

    ckpt = GOLDEN / "basic_forget0" / "model.ckpt"
    c = convert(ckpt, tmp_path / "a", forget_bias=1.0)
    (spec,) = c.specs
    entry = _unknowns(spec)["forget_bias"]
    assert spec.forget_bias == 1.0 and entry.loud
    assert "the graph says 0 (rnn/while/basic_lstm_cell/Add): the flag is used" in entry.assumed
    agree = _unknowns(convert(ckpt, tmp_path / "b", forget_bias=0.0).specs[0])["forget_bias"]
    assert not agree.loud and "the graph agrees" in agree.assumed
    assert convert_cli(ckpt, tmp_path / "c", ["--forget-bias", "1"]) == 0
    assert "the flag is used" in capsys.readouterr().err
    clips = GOLDEN / "lstm_cell_clips" / "model.ckpt"
    (spec,) = convert(clips, tmp_path / "d", cell_clip=3.0, proj_clip=0.4).specs
    table = _unknowns(spec)
    assert spec.options["cell_clip"] == 3.0 and table["cell_clip"].loud
    assert "the graph says 0.6 (rnn/while/lstm_cell/clip_by_value/Minimum): the flag is used" in table["cell_clip"].assumed
    assert not table["proj_clip"].loud and "the graph agrees" in table["proj_clip"].assumed
    (spec,) = convert(ckpt, tmp_path / "e", cell_clip=2.0).specs
    assert spec.options["cell_clip"] == 2.0 and "clips nothing" in _unknowns(spec)["cell_clip"].assumed


def test_without_the_meta_the_defaults_stand_and_say_so(tmp_path):
    for f in (GOLDEN / "lstm_cell_clips").glob("model.ckpt.*"):
        if not f.name.endswith(".meta"):
            shutil.copy(f, tmp_path / f.name)
    (spec,) = convert(tmp_path / "model.ckpt", tmp_path / "out").specs
    table = _unknowns(spec)
    assert spec.forget_bias == 1.0 and table["forget_bias"].loud and "TF's default" in table["forget_bias"].assumed
    assert table["time_major"].value == "?" and "cell_clip" not in spec.options
    # --meta names a graph elsewhere
    (spec,) = convert(tmp_path / "model.ckpt", tmp_path / "out2",
                      meta=str(GOLDEN / "lstm_cell_clips" / "model.ckpt.meta")).specs
    assert spec.options["cell_clip"] == pytest.approx(0.6, abs=1e-7)
    # a graph without this cell's ops settles nothing, and says so
    (spec,) = convert(tmp_path / "model.ckpt", tmp_path / "out3",
                      meta=str(GOLDEN / "multi_rnn_cell" / "model.ckpt.meta")).specs
    table = _unknowns(spec)
    assert table["graph"].value == "no ops" and table["forget_bias"].loud and "cell_clip" not in spec.options


def test_the_reader_finds_what_tf_wrote():
    """The nodes the settings were read from, as TF named them (TF 1.x loops and while_v2 function bodies)."""
    from compat.formats.tf.meta_graph import read_meta_graph

    nodes = {n.name: n for n in read_meta_graph(GOLDEN / "lstm_cell_clips" / "model.ckpt.meta")}
    assert nodes["rnn/while/lstm_cell/add"].op == "AddV2"
    assert float(nodes["rnn/while/lstm_cell/add/y"].value) == np.float32(0.7)
    assert float(nodes["rnn/while/lstm_cell/clip_by_value_1/Minimum/y"].value) == np.float32(0.4)
    assert nodes["rnn/sequence_length"].op == "Identity"
    v2 = [n for n in read_meta_graph(GOLDEN / "while_v2" / "model.ckpt.meta") if n.name.endswith("basic_lstm_cell/Add")]
    assert len(v2) == 1 and "_while_body_" in v2[0].name


# -- whole language models: ptb_word_lm.py's pattern and its variations -----------------------------------------
def test_the_recordings_cover_the_patterns():
    configs = {n: CASES[n][1] for n in CASES if n.startswith("whole_")}
    assert {c["rnn"] for c in configs.values()} == {"unrolled", "static", "dynamic", "bidirectional",
                                                    "stack_bidirectional", "bidirectional_multi",
                                                    "static_bidirectional_multi", "static_bidirectional"}
    # static_bidirectional_rnn of two MultiRNNCells: LSTM and GRU stacks, of one depth and of two, from zero states
    # and from fed states; with sequence_length (refused by name)
    static_bi = {n: c for n, c in configs.items() if c["rnn"] == "static_bidirectional_multi"}
    assert {(c["layers"][0] == c["layers"][1], bool(c["state"]), c["lengths"], c["whole"])
            for c in static_bi.values()} == {(True, False, False, True), (False, True, False, True),
                                             (True, False, True, False)}
    assert any(c.get("control_flow_v2") for c in configs.values())
    assert {c["rnn"] for c in configs.values() if c.get("lengths")} == {"dynamic", "bidirectional",
                                                                        "stack_bidirectional", "bidirectional_multi",
                                                                        "static_bidirectional_multi"}
    # sequence_length a constant of the graph (dynamic_rnn, stacks), its reverse in both loop kinds
    assert {c["rnn"] for c in configs.values() if c.get("constant_lengths")} == {"dynamic", "stack_bidirectional",
                                                                                 "bidirectional_multi"}
    # bidirectional_dynamic_rnn of two MultiRNNCells: both loop kinds, LSTM and GRU cells, stacks of one depth and of
    # two, lengths fed, constant and none (tf.reverse), from zero states and from fed states
    multi = {n: c for n, c in configs.items() if c["rnn"] == "bidirectional_multi"}
    assert {c["control_flow_v2"] for c in multi.values()} == {True, False}
    assert {c["layers"][0] == c["layers"][1] for c in multi.values()} == {True, False}
    assert {(c["lengths"], bool(c.get("constant_lengths"))) for c in multi.values()} == {(True, False), (False, True),
                                                                                       (False, False)}
    assert {bool(c["state"]) for c in multi.values()} == {True, False}
    assert {"gru_cell" in open(GOLDEN / n / "model.ckpt.meta", "rb").read().decode("latin-1") for n in multi} \
        == {True, False}
    # contrib's stack: TF 1.x loops and while_v2, LSTM and GRU cells, batch- and time-major, from fed states
    stacks = [c for c in configs.values() if c["rnn"] == "stack_bidirectional"]
    assert {c["control_flow_v2"] for c in stacks} == {c["time_major"] for c in stacks} == {True, False}
    assert all(c["layers"] >= 2 for c in stacks) and any(c.get("state") for c in stacks)
    assert any(c.get("lengths") and c["time_major"] for c in configs.values())
    assert {c.get("control_flow_v2", False) for c in configs.values() if c.get("state")} == {True, False}
    assert {c["projection"] for c in configs.values()} == {"xw_plus_b", "matmul_add", "dense"}
    assert any(c["softmax"] for c in configs.values()) and any(c["time_major"] for c in configs.values())
    assert any(c["float_input"] for c in configs.values())
    assert {c["resource_variables"] for c in configs.values()} == {True, False}
    # the state static_rnn / an unrolled loop starts from: zero_state (LSTM, GRU), placeholders, a constant
    assert {c["rnn"] for c in configs.values() if c.get("state")} == {"dynamic", "static", "bidirectional",
                                                                      "stack_bidirectional", "bidirectional_multi",
                                                                      "static_bidirectional_multi",
                                                                      "static_bidirectional"}
    assert "whole_static_state_not_tuple" in configs        # an LSTM's c and h in one tensor: rnn_cell_impl.py split
    # MultiRNNCell(state_is_tuple=False): TF 1.x loops, while_v2 and static_rnn; LSTM, GRU and basic RNN cells; from
    # zero_state and from one fed tensor
    flat = {n: c for n, c in configs.items() if n.startswith("whole_not_tuple")}
    assert {(c["rnn"], c["control_flow_v2"]) for c in flat.values()} == {("dynamic", False), ("dynamic", True),
                                                                        ("static", False)}
    assert {bool(c["state"]) for c in flat.values()} == {True, False}
    # and the two stacks of a bidirectional_dynamic_rnn, one fed tensor each
    assert configs["whole_bidirectional_not_tuple"]["state"] == ["state_fw", "state_bw"]
    assert {k for n in flat for k in ("lstm_cell", "basic_lstm_cell", "gru_cell", "basic_rnn_cell")
            if f"multi_rnn_cell/cell_0/{k}/" in open(GOLDEN / n / "model.ckpt.meta", "rb").read().decode("latin-1")} \
        == {"lstm_cell", "basic_lstm_cell", "gru_cell", "basic_rnn_cell"}
    assert any(c["rnn"] == "unrolled" and "GRU" in open(GOLDEN / n / "model.ckpt.meta", "rb").read().decode("latin-1")
               for n, c in configs.items())
    assert [n for n, c in configs.items() if not c["whole"]] == ["whole_static_bidirectional_lengths",
                                                                 "whole_static_constant_state", "whole_unrecognised_op"]


@pytest.mark.parametrize("name", WHOLE_CASES)
def test_a_language_model_converts_whole_and_predicts_what_tf_did(tmp_path, name):
    check_whole(GOLDEN, name, *CASES[name], tmp_path)


def check_whole(folder, name, arrays, config, tmp_path):
    from compat.convert import report

    c = convert(Path(folder) / config["checkpoint"], tmp_path / "out")
    assert c.graph is not None and c.whole_refused is None
    # two stacks: the forward and the backward MultiRNNCell (bidirectional_dynamic_rnn, static_bidirectional_rnn)
    multi = config["rnn"] in ("bidirectional_multi", "static_bidirectional_multi")
    assert all(k.ok for k in c.checks) and len(c.checks) == len(c.specs) + 1    # the cells, and the model's output
    specs = sorted(c.specs, key=lambda s: s.direction) if multi else c.specs
    assert [s.direction for s in specs] == (["forward", "reverse"] if multi else [specs[0].direction])
    assert [s.num_layers for s in specs] == (config["layers"] if multi else [specs[0].num_layers])
    spec = specs[0]
    model = load(tmp_path / "out")
    floats = config.get("float_input", False)
    ids = torch.from_numpy(arrays["ids"] if floats else arrays["ids"].astype(np.int64))
    # sequence_length and the initial state fed by placeholders: inputs in the order of the graph's placeholders
    lengths = torch.from_numpy(arrays["lengths"].astype(np.int64)) if config.get("lengths") else None
    state = [torch.from_numpy(s) for s in arrays["state"]] if config.get("state") else None
    assert [i.name for i in c.graph.inputs] == ["inputs" if floats else "input_data"] + (["lengths"] if config.get(
        "lengths") else []) + config.get("state", [])
    with torch.no_grad():
        got = model(ids, *([] if lengths is None else [lengths]), *(state or []))
        # the recurrent part as today: the cells' module, reachable by the conversion's name, on the embedded ids
        embedded = ids if floats else model.get_submodule("Model/embedding")(ids)
        # each stack's initial state: the forward stack's cells first (c, h a cell for an LSTM)
        # (one tensor a stack for MultiRNNCell(state_is_tuple=False): state_fw, state_bw)
        per_stack = 1 if config["state"] == ["state_fw", "state_bw"] else spec.num_layers * (1 + (spec.cell == "lstm"))
        n_fw = per_stack if state and multi else None
        cells = torch.cat([model.get_submodule(s.name)(embedded, lengths, part or None) for s, part in
                           zip(specs, [state[:n_fw], state[n_fw:]] if state else [None, None])], dim=-1)
    assert_close(got, arrays["out"], dtype=torch.float32, msg=f"{name} model output")
    assert_close(cells, arrays["rnn"], dtype=torch.float32, msg=f"{name} cells' outputs")
    assert all(model[s.name] is model.get_submodule(s.name).rnn for s in specs)
    if multi:     # joined once, after both stacks
        assert [n.kind for n in c.graph.nodes if n.kind in ("Recurrent", "Concat")] == ["Recurrent"] * 2 + ["Concat"]
        assert model[specs[1].name].direction == "reverse"
    # the layers around the cells are plain torch modules under their TF names
    if not floats:
        assert type(model.get_submodule("Model/embedding")) is torch.nn.Embedding
    dense = "Model/dense" if config["projection"] == "dense" else "Model/softmax_w"
    assert type(model.get_submodule(dense)) is torch.nn.Linear
    kinds = [n.kind for n in c.graph.nodes]
    assert ("Softmax" in kinds) is config["softmax"]
    # the report says what came from the graph
    text = report.markdown(Path(folder) / config["checkpoint"], tmp_path / "out.json", c.specs, c.checks, c.items,
                           c.graph)
    assert ("input: the placeholder inputs, read by the cells directly" if floats
            else "embedding: Model/embedding [11, 4]") in text
    assert ("softmax: Model/Softmax (Softmax)" if config["softmax"] else "no softmax in the graph") in text
    assert "projection: " + ("Model/dense/kernel" if config["projection"] == "dense" else "Model/softmax_w") in text
    assert "from the graph" in text and "training-time only" in text
    assert ("sequence_length: the placeholder lengths, the model's input 2 of 2" in text) is bool(config.get("lengths"))
    assert (f"sequence_length: the constant lengths {config.get('constant_lengths')}, held by the model" in text) \
        is bool(config.get("constant_lengths"))
    assert ("a TF 2 while_v2 loop" in text) is bool(config.get("control_flow_v2"))
    assert ("initial_state: the placeholders " + ", ".join(config["state"]) in text) if config.get("state") else \
        "initial_state:" not in text
    # (a backward stack's note names both bidirectional_dynamic_rnn and static_bidirectional_rnn)
    assert ("bidirectional_dynamic_rnn" in text) is (config["rnn"] in ("bidirectional", "stack_bidirectional",
                                                                      "bidirectional_multi",
                                                                      "static_bidirectional_multi",
                                                                      "static_bidirectional"))
    assert (f"bidirectional_dynamic_rnn of two MultiRNNCells (the forward stack, {config['layers'][0]} layer(s)"
            in text) if config["rnn"] == "bidirectional_multi" else "bidirectional_dynamic_rnn of two" not in text
    assert ("static_bidirectional_rnn of a forward and a backward cell over Model/unstack" in text) \
        is (config["rnn"] == "static_bidirectional")
    assert (f"static_bidirectional_rnn of two MultiRNNCells over Model/unstack (tf.unstack, axis 1): the forward "
            f"stack, {config['layers'][0]} layer(s), on the steps, the backward stack, {config['layers'][1]} layer(s), "
            "on the steps reversed" in text) if config["rnn"] == "static_bidirectional_multi" \
        else "static_bidirectional_rnn of two" not in text
    assert (f"stack_bidirectional_dynamic_rnn: {config.get('layers')} layers of bidirectional_dynamic_rnn" in text) \
        is (config["rnn"] == "stack_bidirectional")
    items = {i.name: i for i in c.items}
    assert floats or "in the whole model: node 'Model/embedding'" in items["Model/embedding"].reason
    assert f"in the whole model: node {dense!r}" in items[dense + "/kernel" if config["projection"] == "dense"
                                                          else "Model/softmax_w"].reason


@pytest.mark.parametrize("name", WHOLE_CASES)
def test_the_reference_graph_reproduces_tf(name):
    """reference/tf_graph.py's model (the embedding, the cells by their reference: for a bidirectional model each
    direction's cell run forward, the backward one on reverse_sequence of the input and reversed back, the
    layers of contrib's stack joined by concat; the projection) from the checkpoint's own variables, on the
    recorded inputs: TF's outputs."""
    from compat.convert import discover
    from compat.frameworks.tf.oracle import model_outputs

    arrays, config = CASES[name]
    graph = discover(GOLDEN / config["checkpoint"]).graph
    fed = {"inputs" if config.get("float_input") else "input_data": arrays["ids"],
           **({"lengths": arrays["lengths"].astype(np.int64)} if config.get("lengths") else {}),
           **dict(zip(config.get("state", []), arrays["state"] if config.get("state") else []))}
    (got,) = model_outputs(graph, [fed[i.name] for i in graph.inputs])
    assert_close(got, arrays["out"], dtype=torch.float32, msg=f"{name}: reference/tf_graph.py against TF")


def test_reverse_sequence_reverses_each_sequence_within_its_length():
    """array_ops.reverse_sequence as TF documents it: the first ``length`` steps of each sequence reversed, the
    rest in place; without lengths the whole time axis (array_ops.reverse)."""
    from reference.tf_graph import reverse_sequence

    x = np.arange(12.0).reshape(4, 3, 1)       # [T=4, B=3, 1]: x[t, b] = 3 t + b
    got = reverse_sequence(x, np.array([4, 2, 0]), time_axis=0)[..., 0]
    assert got.T.tolist() == [[9, 6, 3, 0], [4, 1, 7, 10], [2, 5, 8, 11]]
    batch_major = reverse_sequence(np.swapaxes(x, 0, 1), np.array([4, 2, 0]), time_axis=1)
    assert np.array_equal(np.swapaxes(batch_major, 0, 1)[..., 0], got)
    assert reverse_sequence(x, None)[..., 0].T.tolist() == [[9, 6, 3, 0], [10, 7, 4, 1], [11, 8, 5, 2]]


def test_an_op_the_reader_does_not_know_is_reported_and_the_cells_convert_alone(tmp_path):
    check_unrecognised(GOLDEN, *CASES["whole_unrecognised_op"], tmp_path)


def check_unrecognised(folder, arrays, config, tmp_path):
    from compat.convert import WholeModelError, report

    ckpt = Path(folder) / config["checkpoint"]
    c = convert(ckpt, tmp_path / "out")
    assert c.graph is None
    assert "between the cells' output (Model/rnn/transpose_1) and the projection Model/xw_plus_b/MatMul on " \
           "Model/softmax_w the graph applies Abs (Model/Abs)" in c.whole_refused
    (spec,) = c.specs
    module = load(tmp_path / "out")[spec.name]
    # the cells still convert, and compute TF's cells (on the embedding TF looked up)
    items = {i.name: i for i in c.items}
    table = load_carried(tmp_path / "out")["Model/embedding"]
    x = table[torch.from_numpy(arrays["ids"].astype(np.int64))]
    with torch.no_grad():
        y, _ = module(x)
    assert_close(y, arrays["rnn"], dtype=torch.float32, msg="cells")
    assert items["Model/softmax_w"].reason == "not a recurrent layer's variable" and items["Model/softmax_w"].tensors
    text = report.markdown(ckpt, tmp_path / "out.json", c.specs, c.checks, c.items, None, c.whole_refused)
    assert "Not converted:" in text and "Abs (Model/Abs)" in text and "The recurrent layers are converted alone" in text
    with pytest.raises(WholeModelError, match=r"Abs \(Model/Abs\)"):
        convert(ckpt, tmp_path / "whole", model="whole")


def test_static_bidirectional_rnn_with_lengths_is_refused_by_name_and_the_cells_convert_alone(tmp_path):
    check_static_lengths(GOLDEN, *CASES["whole_static_bidirectional_lengths"], tmp_path)


def check_static_lengths(folder, arrays, config, tmp_path):
    """static_bidirectional_rnn(..., sequence_length=lengths): rnn.py's static_rnn runs each step under tf.cond on
    the lengths (_rnn_step) and _reverse_seq reverses by reverse_sequence; not read, said so naming the op; the two
    stacks convert alone, each computing TF's direction (the backward one on each sequence's valid steps)."""
    from compat.convert import WholeModelError
    from compat.convert.modules import run_with_lengths

    ckpt = Path(folder) / config["checkpoint"]
    c = convert(ckpt, tmp_path / "out")
    assert c.graph is None
    assert "run inside a tf.cond" in c.whole_refused and "static_rnn with sequence_length (rnn.py _rnn_step)" \
        in c.whole_refused
    specs = sorted(c.specs, key=lambda s: s.direction)     # one cell a direction: one bidirectional layer
    assert [s.direction for s in specs] in (["bidirectional"], ["forward", "reverse"])
    modules = load(tmp_path / "out")
    x = load_carried(tmp_path / "out")["Model/embedding"][torch.from_numpy(arrays["ids"].astype(np.int64))]
    lengths = torch.from_numpy(arrays["lengths"].astype(np.int64))
    got = []
    with torch.no_grad():
        for s in specs:
            module = modules[s.name]
            y = run_with_lengths(module, x if module.batch_first else x.transpose(0, 1), None, lengths)[0]
            got.append(y if module.batch_first else y.transpose(0, 1))
    assert_close(torch.cat(got, dim=-1), arrays["rnn"], dtype=torch.float32, msg="the cells alone")
    with pytest.raises(WholeModelError, match=r"tf\.cond"):
        convert(ckpt, tmp_path / "whole", model="whole")


def test_a_static_rnn_from_a_constant_state_is_refused_by_name_and_the_cells_convert_alone(tmp_path):
    check_constant_state(GOLDEN, *CASES["whole_static_constant_state"], tmp_path)


def check_constant_state(folder, arrays, config, tmp_path):
    """static_rnn(cell, steps, initial_state=LSTMStateTuple(tf.constant(c), tf.constant(h))): from zeros the whole
    model would predict otherwise; it is refused naming the constant, and the cells, given that state, are TF's."""
    from compat.convert import WholeModelError

    ckpt = Path(folder) / config["checkpoint"]
    c = convert(ckpt, tmp_path / "out")
    assert c.graph is None
    assert "static_rnn's initial state is Const (initial_c), neither zero_state nor a placeholder" in c.whole_refused
    (spec,) = c.specs
    module = load(tmp_path / "out")[spec.name]
    table = load_carried(tmp_path / "out")["Model/embedding"]
    x = table[torch.from_numpy(arrays["ids"].astype(np.int64))]
    c0, h0 = (torch.from_numpy(s)[None] for s in arrays["state"])
    if not module.batch_first:     # static_rnn's graph says nothing of the layout to the cells alone
        x = x.transpose(0, 1)
    with torch.no_grad():
        y, _ = module(x, (h0, c0))
        y_zero, _ = module(x)
    if not module.batch_first:
        y, y_zero = y.transpose(0, 1), y_zero.transpose(0, 1)
    assert_close(y, arrays["rnn"], dtype=torch.float32, msg="cells from the constant state")
    assert np.abs(y_zero.numpy() - arrays["rnn"]).max() > 1e-2     # zeros would have been silent garbage
    with pytest.raises(WholeModelError, match=r"Const \(initial_c\)"):
        convert(ckpt, tmp_path / "whole", model="whole")


def test_model_layers_and_a_checkpoint_without_its_graph_convert_the_cells_only(tmp_path):
    ckpt = GOLDEN / "whole_ptb_dynamic" / "model.ckpt"
    c = convert(ckpt, tmp_path / "layers", model="layers")
    assert c.graph is None and sorted(load(tmp_path / "layers")) == ["Model/rnn/multi_rnn_cell"]
    for f in ckpt.parent.glob("model.ckpt.*"):
        if not f.name.endswith(".meta"):
            shutil.copy(f, tmp_path / f.name)
    c = convert(tmp_path / "model.ckpt", tmp_path / "bare")
    assert c.graph is None and c.whole_refused is None      # no graph: nothing around the cells is known
    (spec,) = c.specs
    assert _unknowns(spec)["forget_bias"].loud                # and the cells' settings are defaults, said so


def test_cells_only_graphs_have_nothing_to_say_about_a_whole_model(tmp_path):
    c = convert(GOLDEN / "multi_rnn_cell" / "model.ckpt", tmp_path / "out")
    assert c.graph is None and c.whole_refused is None


@pytest.mark.parametrize("name", ["whole_ptb_static", "whole_while_v2", "whole_sequence_length",
                                  "whole_bidirectional", "whole_lengths_time_major", "whole_initial_state",
                                  "whole_initial_state_v2", "whole_static_initial_state", "whole_unrolled_gru",
                                  "whole_static_state_not_tuple", "whole_stack_bidirectional",
                                  "whole_stack_bidirectional_gru", "whole_stack_constant_lengths",
                                  "whole_bidirectional_initial_state", "whole_constant_lengths",
                                  "whole_bidirectional_multi", "whole_bidirectional_multi_gru",
                                  "whole_bidirectional_multi_state", "whole_not_tuple_lstm",
                                  "whole_not_tuple_lstm_state", "whole_not_tuple_gru_state",
                                  "whole_not_tuple_rnn_static", "whole_not_tuple_static_state",
                                  "whole_static_bidirectional_multi", "whole_static_bidirectional_multi_gru",
                                  "whole_bidirectional_not_tuple", "whole_static_bidirectional_cells"])
def test_the_whole_model_written_as_python_predicts_the_same(tmp_path, name):
    import importlib.util

    from compat.convert.emit import emit_python

    arrays, config = CASES[name]
    convert(GOLDEN / config["checkpoint"], tmp_path / "out")
    path = emit_python(tmp_path / "out.json", tmp_path / f"{name}_model.py")
    spec = importlib.util.spec_from_file_location(f"emitted_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load()
    inputs = [torch.from_numpy(arrays["ids"].astype(np.int64))]
    if config.get("lengths"):
        inputs.append(torch.from_numpy(arrays["lengths"].astype(np.int64)))
    inputs += [torch.from_numpy(s) for s in arrays["state"]] if config.get("state") else []
    with torch.no_grad():
        got = model(*inputs)
    assert_close(got, arrays["out"], dtype=torch.float32, msg=f"emitted {name}")
    text = path.read_text()
    width = 10 if config["rnn"] in ("bidirectional", "stack_bidirectional", "bidirectional_multi",
                                    "static_bidirectional_multi", "static_bidirectional") else 5
    assert "nn.Embedding(11, 4)" in text and f"nn.Linear({width}, 11)" in text
    if config.get("constant_lengths"):     # the graph's lengths written into the model
        assert f"torch.tensor({config['constant_lengths']}" in text
    # one fed tensor, the cells' states concatenated (MultiRNNCell(state_is_tuple=False)), split in TF's order
    assert ("(state_is_tuple=False)" in text) is ("not_tuple" in name and bool(config["state"]))
    assert f"def forward(self, {', '.join(['input_data'] + (['lengths'] if config.get('lengths') else []) + config.get('state', []))})" in text
    if config.get("lengths"):    # past a sequence's steps and at length 0, as the loaded model
        lengths = torch.tensor([0, 9, 2])
        loaded = load(tmp_path / "out")
        with torch.no_grad():
            assert_close(model(inputs[0], lengths, *inputs[2:]), loaded(inputs[0], lengths, *inputs[2:]).numpy(),
                         dtype=torch.float32, msg=f"emitted {name} at lengths 0 and 9")


NOT_TUPLE = sorted(n for n in CASES if n.startswith("whole_not_tuple"))


@pytest.mark.parametrize("name", NOT_TUPLE)
def test_a_state_is_tuple_false_stack_ends_in_tfs_concatenated_final_state(tmp_path, name):
    """MultiRNNCell(state_is_tuple=False): the model takes the one concatenated initial state TF was fed (or starts
    from zero_state), and its cells, started from that tensor cut as rnn_cell_impl.py's MultiRNNCell.call slices it
    (layer by layer; an LSTM cell's part [c, h]), end in the final state dynamic_rnn / static_rnn returned: one
    [batch, sum of the state sizes] tensor in the same order."""
    check_final(GOLDEN, *CASES[name], tmp_path)


def check_final(folder, arrays, config, tmp_path):
    name = config["checkpoint"].split("/")[0]
    c = convert(Path(folder) / config["checkpoint"], tmp_path / "out")
    (spec,) = c.specs
    (node,) = [n for n in c.graph.nodes if n.kind == "Recurrent"]
    widths = [spec.hidden_size] * (2 if spec.cell == "lstm" else 1) * spec.num_layers
    assert node.config.get("split") == (widths if config["state"] else None)
    assert config["state"] in ([], ["state"]) and arrays["final"].shape == (3, sum(widths))
    model = load(tmp_path / "out")
    ids = torch.from_numpy(arrays["ids"].astype(np.int64))
    x = model.get_submodule("Model/embedding")(ids)
    fed = arrays["state"][0] if config["state"] else np.zeros((3, sum(widths)), np.float32)
    parts = np.split(fed, np.cumsum(widths)[:-1], axis=1)       # c0, h0, c1, h1, ... (h0, h1, ... for GRU / RNN)
    module = model[spec.name]
    if module.batch_first == config["time_major"]:
        x = x.transpose(0, 1)
    h0 = torch.from_numpy(np.stack(parts[1::2] if spec.cell == "lstm" else parts))
    hx = (h0, torch.from_numpy(np.stack(parts[0::2]))) if spec.cell == "lstm" else h0
    lengths = {"lengths": torch.from_numpy(arrays["lengths"].astype(np.int64))} if config["lengths"] else {}
    with torch.no_grad():
        _, last = module(x, hx, **lengths)
    ends = [t for k in range(spec.num_layers)
            for t in ((last[1][k], last[0][k]) if spec.cell == "lstm" else (last[k],))]
    assert_close(torch.cat(ends, dim=1), arrays["final"], dtype=torch.float32, msg=f"{name} final state")


@pytest.mark.parametrize("name", ["whole_sequence_length", "whole_bidirectional", "whole_lengths_time_major",
                                  "whole_stack_bidirectional", "whole_bidirectional_multi"])
def test_lengths_follow_dynamic_rnn_at_zero_and_past_the_steps(tmp_path, name):
    """rnn.py's loop runs min(steps, max(sequence_length)) steps and a step at or past a sequence's length outputs
    zeros: a length past the steps is the steps, and a sequence of length 0 gives the projection of zeros (its
    bias) at every step; the other sequences are unchanged."""
    arrays, config = CASES[name]
    convert(GOLDEN / config["checkpoint"], tmp_path / "out")
    model = load(tmp_path / "out")
    ids = torch.from_numpy(arrays["ids"].astype(np.int64))
    recorded = torch.from_numpy(arrays["lengths"].astype(np.int64))
    time_major = config["time_major"]
    steps, batch = ids.shape if time_major else ids.shape[::-1]
    with torch.no_grad():
        base = model(ids, recorded)
        longer = model(ids, torch.where(recorded == steps, steps + 4, recorded))
        zero = model(ids, torch.where(recorded == steps, 0, recorded))
    assert_close(longer, base.numpy(), dtype=torch.float32, msg="a length past the steps")
    full = int(torch.nonzero(recorded == steps)[0])
    bias = model.get_submodule("Model/dense" if config["projection"] == "dense" else "Model/softmax_w").bias

    def by_sequence(y):     # [batch, steps, vocab] whatever the layout of the rows
        y = y.reshape(steps, batch, -1) if time_major else y.reshape(batch, steps, -1)
        return y.transpose(0, 1) if time_major else y

    assert torch.equal(by_sequence(zero)[full], bias.expand(steps, -1))
    others = [k for k in range(batch) if k != full]
    # (run with other sequences, the float32 sums may round otherwise)
    assert_close(by_sequence(zero)[others], by_sequence(base)[others].numpy(), dtype=torch.float32,
                 msg="the other sequences")


STACK_1 = "Model/stack_bidirectional_rnn/cell_1/bidirectional_rnn"     # the second layer of contrib's stack


def _with_graph(monkeypatch, name, change):
    """The recording's checkpoint read with its graph's nodes changed by ``change(nodes_by_name)``."""
    import compat.formats.tf.meta_graph as meta_graph

    real = meta_graph.read_meta_graph

    def read(path):
        nodes = real(path)
        change({n.name: n for n in nodes})
        return nodes

    monkeypatch.setattr(meta_graph, "read_meta_graph", read)
    return GOLDEN / CASES[name][1]["checkpoint"]


@pytest.mark.parametrize("name, change, said", [
    ("whole_ptb_word_lm", lambda n: n["Model/Reshape/shape"].__setattr__("value", np.array([-1, 7])),
     "Reshape (Model/Reshape) before the projection reshapes to [-1, 7], not [-1, 5]"),
    ("whole_ptb_word_lm", lambda n: n["Model/RNN/strided_slice_3"].attrs.__setitem__("shrink_axis_mask", (1, 2)),
     "has attribute shrink_axis_mask = (1, 2), not an integer"),
    ("whole_ptb_word_lm", lambda n: (n["Model/RNN/strided_slice_3/stack"].__setattr__("value", np.array([0, 1, 0])),
                                     n["Model/RNN/strided_slice_3/stack_1"].__setattr__("value", np.array([0, 2, 0]))),
     "steps [0, 1, 1, 2, 4]"),
    ("whole_ptb_word_lm", lambda n: n["Model/RNN/strided_slice_3/stack"].__setattr__("value", np.array([0, 1, 0])),
     "StridedSlice (Model/RNN/strided_slice_3), which is not one step x[:, t] / x[t] of a sequence"),
    ("whole_ptb_static", lambda n: n["Model/embedding_lookup/axis"].__setattr__("value", np.array(1)),
     "gathers along an axis other than 0"),
    ("whole_dense_softmax", lambda n: n["Model/dense/MatMul"].attrs.__setitem__("transpose_b", True),
     "MatMul (Model/dense/MatMul) transposes an operand"),
    ("whole_ptb_dynamic", lambda n: n["Model/embedding_lookup"].inputs.__setitem__(1, "Model/embedding"),
     "not from a placeholder"),
    ("whole_sequence_length", lambda n: n["Model/rnn/sequence_length"].inputs.__setitem__(0, "Model/rnn/Const"),
     "sequence_length reads Const (Model/rnn/Const), 1 lengths ([0]), but the input input_data is a batch of 3"),
    ("whole_sequence_length", lambda n: (n["Model/rnn/sequence_length"].inputs.__setitem__(0, "Model/rnn/Const"),
                                         n["Model/rnn/Const"].__setattr__("value", np.array([[3, 5, 1]]))),
     "dynamic_rnn's sequence_length Model/rnn/sequence_length reads Const (Model/rnn/Const), not a placeholder of "
     "lengths nor a constant vector of lengths"),
    ("whole_constant_lengths", lambda n: n["lengths"].__setattr__("value", np.array([3, -5, 1], np.int32)),
     "reads Const (lengths), not a placeholder of lengths nor a constant vector of lengths"),
    # contrib's stack_bidirectional_dynamic_rnn: a layer reading anything but the layer below's concat, a layer
    # with other lengths, the initial states fed for some cells only or one placeholder fed twice
    ("whole_stack_bidirectional", lambda n: [n[f"Model/stack_bidirectional_rnn/cell_1/bidirectional_rnn/{op}"].inputs
                                             .__setitem__(0, "Model/embedding_lookup/Identity")
                                             for op in ("fw/fw/transpose", "bw/ReverseSequence")],
     "layer 1 of the bidirectional cells Model/stack_bidirectional_rnn reads ResourceGather (Model/embedding_lookup), "
     "not layer 0's tf.concat(outputs, 2) (Model/stack_bidirectional_rnn/cell_0/concat)"),
    ("whole_stack_constant_lengths", lambda n: (
        n[f"{STACK_1}/fw/fw/TensorArrayUnstack/TensorListFromTensor/element_shape"].__setattr__(
            "value", np.array([2, 2, 2], np.int32)),
        [n[f"{STACK_1}/{op}"].inputs.__setitem__(0, f"{STACK_1}/fw/fw/TensorArrayUnstack/TensorListFromTensor/"
                                                    "element_shape") for op in ("fw/fw/sequence_length",
                                                                                "bw/bw/sequence_length")],
        [n[op].inputs.__setitem__(1, f"{STACK_1}/fw/fw/TensorArrayUnstack/TensorListFromTensor/element_shape")
         for op in (f"{STACK_1}/bw/ReverseSequence", "Model/stack_bidirectional_rnn/cell_1/ReverseSequence")]),
     "layer 1 of the bidirectional cells Model/stack_bidirectional_rnn differs from layer 0 in its layout or "
     "sequence_length"),
    ("whole_stack_bidirectional_gru", lambda n: n[f"{STACK_1}/fw/fw/while"].inputs.__setitem__(
        4, f"{STACK_1}/fw/fw/zeros"), "bidirectional_dynamic_rnn's initial state is fed by placeholders "
     "(state_h0, state_h1, state_h3) for some directions only"),
    ("whole_bidirectional_initial_state", lambda n: n["Model/bidirectional_rnn/bw/bw/while"].inputs.__setitem__(
        4, "state_c0"), "bidirectional_dynamic_rnn's initial state reads one placeholder twice "
     "(state_c0, state_h0, state_c0, state_h1)"),
    ("whole_sequence_length", lambda n: n["lengths"].attrs.__setitem__("dtype", 1),
     "reads the placeholder lengths, which is not an integer vector [batch]"),
    ("whole_while_v2", lambda n: n["Model/rnn/while"].__setattr__("op", "Foo"),
     "the graph holds 0 While ops named like Model_rnn/while"),
    ("whole_bidirectional", lambda n: n["Model/ReverseSequence"].attrs.__setitem__("seq_dim", 0),
     "ReverseSequence (Model/ReverseSequence) reverses axis 0"),
    ("whole_bidirectional", lambda n: n["Model/bidirectional_rnn/bw/ReverseSequence"].__setattr__("op", "ReverseV2"),
     "ReverseV2 (Model/bidirectional_rnn/bw/ReverseSequence) reverses axis"),
    ("whole_bidirectional", lambda n: n["Model/concat/axis"].__setattr__("value", np.array(1)),
     "not joined by one tf.concat([forward, backward], 2)"),
    ("whole_bidirectional", lambda n: n["Model/concat"].inputs.reverse(),
     "not joined by one tf.concat([forward, backward], 2)"),
    # bidirectional_dynamic_rnn of two MultiRNNCells: the backward stack on other lengths or an input not reversed,
    # the stacks' outputs joined otherwise, a state fed to one direction only, MultiRNNCell(state_is_tuple=False)
    ("whole_bidirectional_multi", lambda n: n["Model/bidirectional_rnn/bw/bw/sequence_length"].inputs.__setitem__(
        0, "Model/bidirectional_rnn/bw/bw/Const"),
     "the two loops of bidirectional_dynamic_rnn differ in their layout or sequence_length"),
    ("whole_bidirectional_multi", lambda n: n["Model/bidirectional_rnn/bw/bw/transpose"].inputs.__setitem__(
        0, "Model/embedding_lookup/Identity"), "the backward cells' input is ResourceGather (Model/embedding_lookup), not a "
     "reverse in time"),
    ("whole_bidirectional_multi", lambda n: n["Model/concat"].inputs.reverse(),
     "not joined by one tf.concat([forward, backward], 2)"),
    ("whole_bidirectional_multi_gru", lambda n: n["Model/bidirectional_rnn/bw/bw/while"].inputs.__setitem__(
        4, "Model/bidirectional_rnn/bw/bw/zeros"), "bidirectional_dynamic_rnn's initial state is fed by placeholders "
     "(state_h0, state_h1) for one direction only"),
    ("whole_bidirectional_multi_state", lambda n: n["Model/bidirectional_rnn/fw/fw/while"].inputs.__setitem__(
        5, "state_c2"), "bidirectional_dynamic_rnn's initial state reads one placeholder twice "
     "(state_c0, state_c2, state_c1, state_h1, state_c2, state_h2)"),
    # MultiRNNCell(state_is_tuple=False) (rnn_cell_impl.py MultiRNNCell.call): a layer's Slice of the one state
    # tensor at another offset than the layers below it give, some layers sliced and others not, a tuple stack of
    # LSTM cells each reading one [c, h] tensor, the fed tensor of another width
    ("whole_not_tuple_gru_state", lambda n: n["Model/rnn/while/rnn/multi_rnn_cell/cell_1/Slice/begin"].__setattr__(
        "value", np.array([0, 0], np.int32)), "Slice (Model/rnn/while/rnn/multi_rnn_cell/cell_1/Slice) gives layer 1 "
     "of the MultiRNNCell Model/rnn/multi_rnn_cell (state_is_tuple=False) the columns from [0, 0] sized [-1, 5], "
     "not [0, 5] sized [-1, 5]"),
    ("whole_not_tuple_lstm", lambda n: n["Model/rnn/while/rnn/multi_rnn_cell/cell_1/Slice"].__setattr__(
        "op", "Identity"), "the layers [0] of the MultiRNNCell Model/rnn/multi_rnn_cell slice their state out of one "
     "tensor (state_is_tuple=False), the others not"),
    ("whole_not_tuple_lstm", lambda n: [n[f"Model/rnn/while/rnn/multi_rnn_cell/cell_{k}/Slice"].__setattr__(
        "op", "Identity") for k in (0, 1)], "the LSTM cells of Model/rnn/multi_rnn_cell read their state as one "
     "[c, h] tensor each (state_is_tuple=False) in a MultiRNNCell with state_is_tuple=True"),
    ("whole_not_tuple_rnn_static", lambda n: n["state"].attrs.__setitem__("shape", (3, 12)),
     "the initial-state placeholder state is not a float [batch, 15] tensor (shape (3, 12))"),
    # static_bidirectional_rnn of two MultiRNNCells: a step's join of the forward output with the backward output of
    # another step, the steps joined in two orders
    ("whole_static_bidirectional_multi", lambda n: n["Model/concat"].inputs.__setitem__(
        1, "Model/bidirectional_rnn/bw/bw/bw/multi_rnn_cell/cell_1/basic_lstm_cell/Mul_2"),
     "step 0 of static_bidirectional_rnn's outputs, ConcatV2 (Model/concat), joins the forward stack's output after "
     "the steps [0] and the backward stack's after [4], not after 0..0 and 4 down to 0"),
    ("whole_static_bidirectional_multi", lambda n: n["Model/stack"].inputs.reverse(),
     "joins static_bidirectional_rnn's steps in another order than the other join of them"),
    # the first step's state partly zero_state, partly a placeholder
    ("whole_ptb_word_lm", lambda n: n["Model/MultiRNNCellZeroState/BasicLSTMCellZeroState_1/zeros_1"].__setattr__(
        "op", "Placeholder"), "the unrolled loop's initial state is fed by placeholders in part "
     "(Model/MultiRNNCellZeroState/BasicLSTMCellZeroState_1/zeros_1 of 4 tensors)"),
    ("whole_while_v2", lambda n: n["Model/rnn/BasicLSTMCellZeroState/zeros"].__setattr__("op", "Placeholder"),
     "dynamic_rnn's initial state is fed by placeholders in part (Model/rnn/BasicLSTMCellZeroState/zeros of 2"),
    ("whole_ptb_dynamic", lambda n: n["Model/rnn/MultiRNNCellZeroState/BasicLSTMCellZeroState_1/zeros/Const"]
     .__setattr__("value", np.array(1.0, np.float32)), "dynamic_rnn's initial state is Fill "
     "(Model/rnn/MultiRNNCellZeroState/BasicLSTMCellZeroState_1/zeros), neither zero_state nor a placeholder"),
    ("whole_initial_state", lambda n: n["Model/rnn/while/Enter_6"].inputs.__setitem__(0, "state_h0"),
     "reads one placeholder twice (state_c0, state_h0, state_c1, state_h0)"),
    ("whole_initial_state", lambda n: n["state_c1"].attrs.__setitem__("shape", (3, 7)),
     "the initial-state placeholder state_c1 is not a float [batch, 5] tensor (shape (3, 7))"),
    ("whole_bidirectional", lambda n: n["Model/bidirectional_rnn/bw/bw/BasicLSTMCellZeroState/zeros/Const"]
     .__setattr__("value", np.array(0.5, np.float32)), "dynamic_rnn's initial state is Fill "
     "(Model/bidirectional_rnn/bw/bw/BasicLSTMCellZeroState/zeros), neither zero_state nor a placeholder"),
    ("whole_initial_state_v2", lambda n: n["Model/rnn/while"].inputs.__setitem__(5, "Model/rnn/zeros"),
     "fed by placeholders in part (state_c0 of 2 tensors)"),
    ("whole_bidirectional", lambda n: n["Model/bidirectional_rnn/bw/bw/BasicLSTMCellZeroState/zeros_1"].__setattr__(
        "op", "PlaceholderWithDefault"),
     "fed by placeholders in part (Model/bidirectional_rnn/bw/bw/BasicLSTMCellZeroState/zeros_1 of 2 tensors)"),
    # the state static_rnn's / an unrolled loop's first step reads: anything but zero_state or placeholders is named
    ("whole_unrolled_gru", lambda n: n["Model/GRUCellZeroState/zeros/Const"].__setattr__("value", np.array(1.0, np.float32)),
     "the unrolled loop's initial state is Fill (Model/GRUCellZeroState/zeros), neither zero_state nor a placeholder"),
    ("whole_ptb_static", lambda n: n["Model/rnn/rnn/multi_rnn_cell/cell_1/basic_lstm_cell/concat"].inputs.__setitem__(
        1, "Model/embedding/read"), "static_rnn's initial state is VariableV2 (Model/embedding), neither zero_state"),
    ("whole_ptb_static", lambda n: n["Model/rnn/MultiRNNCellZeroState/BasicLSTMCellZeroState/zeros"].__setattr__(
        "op", "Tile"), "static_rnn's initial state is Tile (Model/rnn/MultiRNNCellZeroState/BasicLSTMCellZeroState/"
     "zeros), neither zero_state nor a placeholder"),
    ("whole_static_state_not_tuple", lambda n: n["Model/rnn/BasicLSTMCellZeroState/zeros"].__setattr__("op",
                                                                                                    "Placeholder"),
     "the initial-state placeholder Model/rnn/BasicLSTMCellZeroState/zeros is not a float [batch, 10] tensor"),
    ("whole_static_initial_state", lambda n: n["state_h1"].__setattr__("op", "Const"),
     "static_rnn's initial state is Const (state_h1), neither zero_state nor a placeholder"),
    ("whole_static_initial_state", lambda n: n["state_c1"].attrs.__setitem__("shape", (3, 7)),
     "the initial-state placeholder state_c1 is not a float [batch, 5] tensor (shape (3, 7))"),
    ("whole_static_initial_state", lambda n: n["Model/rnn/rnn/multi_rnn_cell/cell_1/basic_lstm_cell/concat"]
     .inputs.__setitem__(1, "state_h0"), "static_rnn's initial state reads one placeholder twice "
     "(state_c0, state_h0, state_c1, state_h0)"),
])
def test_a_graph_off_the_patterns_is_named_not_guessed(tmp_path, monkeypatch, name, change, said):
    from compat.convert import discover

    found = discover(_with_graph(monkeypatch, name, change))
    assert found.graph is None and said in found.whole_refused
    assert found.specs     # the cells convert alone


def test_hostile_graph_changes_give_a_model_a_refusal_or_one_input_error(monkeypatch):
    """Random damage to a language model's nodes (attributes, constants, inputs): the reader answers with a
    whole model, a refusal naming an op, or one InputError, never another exception."""
    import compat.formats.tf.meta_graph as meta_graph
    from compat.convert import discover
    from compat.errors import InputError

    real = meta_graph.read_meta_graph
    rng = np.random.default_rng(0)
    junk = [(), (1, 2), -1, 0, 7, True, 1.5, "x", np.array([-1, 5]), np.array([[0]]), np.array(2.5), None]
    outcomes = set()
    for name in ("whole_ptb_word_lm", "whole_ptb_static", "whole_gru_time_major", "whole_dense_softmax",
                 "whole_while_v2", "whole_sequence_length", "whole_bidirectional", "whole_initial_state_v2",
                 "whole_static_initial_state", "whole_unrolled_gru", "whole_stack_bidirectional",
                 "whole_stack_bidirectional_gru", "whole_constant_lengths", "whole_bidirectional_multi_gru"):
        nodes = real(GOLDEN / CASES[name][1]["checkpoint"].replace("model.ckpt", "model.ckpt.meta"))
        around = [n.name for n in nodes if n.name.startswith("Model/") and "cell" not in n.name
                  and "Initializer" not in n.name]
        for _ in range(12):
            victim = around[rng.integers(len(around))]
            what = rng.integers(4)
            value = junk[rng.integers(len(junk))]

            def read(path, victim=victim, what=what, value=value):
                out = real(path)
                node = next(n for n in out if n.name == victim)
                if what == 0:
                    node.attrs[str(rng.choice(["axis", "num", "shrink_axis_mask", "begin_mask", "dtype", "shape",
                                               "transpose_a", "batch_dims"]))] = value
                elif what == 1:
                    node.value = value if isinstance(value, np.ndarray) else None
                elif what == 2:
                    node.inputs = node.inputs[::-1]
                else:
                    node.op = str(rng.choice(["Identity", "Reshape", "Unpack", "StridedSlice", "ConcatV2", "Pack",
                                              "Softmax", "GatherV2", "Placeholder", "MatMul"]))
                return out

            monkeypatch.setattr(meta_graph, "read_meta_graph", read)
            try:
                found = discover(GOLDEN / CASES[name][1]["checkpoint"])
            except InputError:
                outcomes.add("error")
                continue
            if found.graph is not None:
                outcomes.add("whole")
            elif found.whole_refused is not None:
                assert found.whole_refused.startswith(str(GOLDEN / CASES[name][1]["checkpoint"]))
                outcomes.add("refused")
    assert {"whole", "refused"} <= outcomes


def test_bidirectional_cells_settle_their_settings_from_the_graph(tmp_path):
    """bidirectional_dynamic_rnn names its loops' ops with the direction repeated (rnn.py: dynamic_rnn(scope=fw_scope)
    inside variable_scope("fw"): ``bidirectional_rnn/fw/fw/while/basic_lstm_cell/...``): both directions' settings
    are read there, not defaulted."""
    c = convert(GOLDEN / CASES["whole_bidirectional"][1]["checkpoint"], tmp_path / "out", model="layers")
    (spec,) = c.specs
    table = _unknowns(spec)
    assert spec.direction == "bidirectional" and spec.batch_first
    assert not table["forget_bias"].loud and "Model/bidirectional_rnn/fw/fw/while/basic_lstm_cell/" in \
        table["forget_bias"].assumed
    assert table["sequence_length"].value == "used" and table["time_major"].value == "false"


def test_constant_lengths_are_the_models_own_and_checked_when_loaded(tmp_path):
    """sequence_length=tf.constant([...]): the model takes the ids only and runs the graph's lengths (a batch of
    that many sequences; another batch is one error naming both); the stored lengths are checked on load."""
    from compat import checkpoint
    from compat.convert.store import KIND
    from compat.errors import CheckpointError

    arrays, config = CASES["whole_constant_lengths"]
    convert(GOLDEN / config["checkpoint"], tmp_path / "good")
    model = load(tmp_path / "good")
    ids = torch.from_numpy(arrays["ids"].astype(np.int64))
    with torch.no_grad():
        assert_close(model(ids), arrays["out"], dtype=torch.float32, msg="constant lengths")
        with pytest.raises(ValueError, match=r"sequence_length has shape \[3\]; the batch is 4"):
            model(torch.cat([ids, ids[:1]]))
    content = checkpoint.read(tmp_path / "good", KIND, require_seal=True).materialize(allow_nonfinite=True)
    (node,) = [n for n in content["model"]["nodes"] if n["kind"] == "Recurrent"]
    assert node["config"]["lengths"] == config["constant_lengths"] == [3, 5, 1]
    for k, junk in enumerate([[], [3, -1, 1], [3.0, 5, 1], "3,5,1", [True, 5, 1], None]):
        node["config"]["lengths"] = junk
        checkpoint.save(tmp_path / f"bad{k}", KIND, content)
        with pytest.raises(CheckpointError, match="config/lengths"):
            load(tmp_path / f"bad{k}")
