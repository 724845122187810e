"""TF1 checkpoints whose run-time settings only their ``.meta`` graph holds, recorded in TensorFlow 2.21
(legacy/record_convert_tf_meta.py: BasicLSTMCell with forget_bias 0 and 1, LSTMCell with cell_clip, num_proj
and proj_clip, peepholes, a DropoutWrapper, a MultiRNNCell, dynamic_rnn time_major True and False, with and
without sequence_length, TF 1.x's while loop and TF 2's while_v2, a relu activation).

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

from compat.convert import convert, load
from tests.tolerances import assert_close

GOLDEN = Path(__file__).resolve().parent / "golden" / "convert" / "tf_meta"


def _cases():
    with np.load(GOLDEN / "expected.npz", allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files if k.endswith("/config")})
        return {n: ({k[len(n) + 1:]: z[k] for k in z.files if k.startswith(n + "/") and not k.endswith("/config")},
                    json.loads(str(z[f"{n}/config"]))) for n in names}


CASES = _cases()


def _unknowns(spec):
    return {u.what: u for u in spec.unknowns}


@pytest.mark.parametrize("name", sorted(CASES))
def test_settings_come_from_the_graph_and_outputs_match_tf(tmp_path, name):
    arrays, config = CASES[name]
    c = convert(GOLDEN / config["checkpoint"], tmp_path / "out")
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
