"""Caffe ``RNN`` and ``LSTM`` layers and whole Caffe nets through ``python -m compat.convert``, against what a
real BVLC Caffe build computed (no Caffe needed to run these).

tests/golden/convert/caffe_rnn (legacy/record_caffe_rnn.py) and convert/caffe_net (legacy/record_caffe_net.py):
each net as deployed (``<net>.prototxt``, an ``Input`` layer then the layers), the weights Caffe ran with
(``<net>.caffemodel``, encoded by protoc, not by this project) and ``expected.npz``: the inputs, the weights again
as arrays, and the blobs Caffe's ``HDF5Output`` layers wrote in one TEST-phase ``caffe test`` forward pass. Every
net output blob is compared, float32 and float64, at the float32 table tolerance (Caffe computes in float32);
the layer files alone (``.caffemodel`` + ``--prototxt``) run as docs/convert.md says to run them; the emitted
Python file predicts the same; the numpy oracles (reference/caffe_rnn.py, reference/caffe_layers.py) agree
with every recorded blob, intermediate ones included. Provenance and regeneration: tests/golden/README.md.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch

from compat.convert import convert, load
from compat.errors import InputError
from compat.formats.caffemodel import read_caffemodel
from compat.formats.prototxt import parse_prototxt
from reference import caffe_rnn
from reference.caffe_layers import net_forward
from tests.convert_cases import GOLDEN_CONVERT, convert_cli
from tests.test_convert_caffe_whole import _reference_layers
from tests.tolerances import assert_close

NETS = [("caffe_net", "sentiment"), ("caffe_net", "merges"), ("caffe_net", "stacked"), ("caffe_rnn", "rnn_stack"),
        ("caffe_rnn", "lstm")]
RECORDED = NETS + [("caffe_rnn", "rnn_static")]     # the converter refuses the last (a static input)


def _recording(folder: str, net: str) -> Tuple[Path, Path, Dict[str, np.ndarray], Dict[str, np.ndarray],
                                                Dict[str, List[np.ndarray]]]:
    """(prototxt, caffemodel, inputs, recorded blobs, weights) of one recorded net; fails when it is missing."""
    base = GOLDEN_CONVERT / folder
    proto, model = base / f"{net}.prototxt", base / f"{net}.caffemodel"
    if not all(p.exists() for p in (proto, model, base / "expected.npz")):
        pytest.fail(f"tests/golden/convert/{folder}/{net}.* or expected.npz is missing: the Caffe converter has no "
                    f"real-Caffe evidence without it (regenerate: tests/golden/README.md)")
    with np.load(base / "expected.npz", allow_pickle=False) as z:
        arrays = {k[len(net) + 1:]: z[k] for k in z.files if k.startswith(net + "/")}
    inputs = {k[3:]: v for k, v in arrays.items() if k.startswith("in/")}
    outputs = {k[4:]: v for k, v in arrays.items() if k.startswith("out/")}
    weights: Dict[str, List[np.ndarray]] = {}
    for k in sorted((k for k in arrays if k.startswith("weights/")), key=lambda k: (k.split("/")[1],
                                                                                  int(k.split("/")[2]))):
        weights.setdefault(k.split("/")[1], []).append(arrays[k])
    assert inputs and outputs and weights
    return proto, model, inputs, outputs, weights


def _feeds(net, inputs, dtype):
    # token ids: HDF5Data gives Caffe floats, embed_layer.cpp casts them with static_cast<int>
    return [torch.as_tensor(inputs[n]).long() if net.input_dtypes[n] == "int64" else
            torch.as_tensor(inputs[n], dtype=dtype) for n in net.input_names]


def _top_names(proto: Path) -> Dict[Tuple[str, int], str]:
    layers = parse_prototxt(proto.read_text()).getall("layer")
    return {(str(layer.get("name")), k): str(t) for layer in layers for k, t in enumerate(layer.getall("top"))}


@pytest.mark.parametrize("folder, net", NETS, ids=[n for _, n in NETS])
def test_whole_net_predicts_what_caffe_computed(folder, net, tmp_path):
    proto, model, inputs, recorded, _ = _recording(folder, net)
    assert convert_cli(proto, tmp_path / "out", ["--weights", str(model), "--model", "whole"]) == 0
    loaded = load(tmp_path / "out")
    tops = _top_names(proto)
    names = [tops[(layer, k)] for layer, k in loaded.output_refs]
    assert names and set(names) <= set(recorded), names
    for dtype in (torch.float32, torch.float64):
        with torch.no_grad():
            got = loaded.to(dtype)(*_feeds(loaded, inputs, dtype))
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(names)
        for g, name in zip(got, names):
            assert g.dtype == dtype and list(g.shape) == list(recorded[name].shape), name
            assert_close(g, recorded[name], dtype=torch.float32, msg=f"{net} {name} ({dtype})")


@pytest.mark.parametrize("net", ["merges", "stacked"])
def test_emitted_python_predicts_what_caffe_computed(net, tmp_path):
    proto, model, inputs, recorded, _ = _recording("caffe_net", net)
    assert convert_cli(proto, tmp_path / "out", ["--weights", str(model), "--emit-python",
                                                 str(tmp_path / "net_model.py")]) == 0
    spec = importlib.util.spec_from_file_location("net_model", tmp_path / "net_model.py")
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    plain = emitted.load()
    loaded = load(tmp_path / "out")
    tops = _top_names(proto)
    with torch.no_grad():
        got = plain(*_feeds(loaded, inputs, torch.float32))
    got = got if isinstance(got, tuple) else (got,)
    for g, (layer, k) in zip(got, loaded.output_refs):
        assert_close(g, recorded[tops[(layer, k)]], dtype=torch.float32, msg=f"emitted {net} {tops[(layer, k)]}")


def test_rnn_layers_alone_compute_what_caffe_computed(tmp_path):
    """The .caffemodel converted with its prototxt; each RNN layer's module run as docs/convert.md says:
    ``module(x, h0, cont=cont)`` -> (o, h_T). rnn1 exposes its hidden state (h0 in, h_T out; cont is 1 at t = 0
    in two streams, so they continue from h0, and 0.5 once); rnn2 reads rnn1's output."""
    proto, model, inputs, recorded, _ = _recording("caffe_rnn", "rnn_stack")
    assert convert_cli(model, tmp_path / "out", ["--prototxt", str(proto)]) == 0
    layers = load(tmp_path / "out")
    assert set(layers) >= {"rnn1", "rnn2"}
    x, cont, h0 = (torch.as_tensor(inputs[k]) for k in ("x", "cont", "h0"))
    with torch.no_grad():
        o1, h1 = layers["rnn1"](x, h0, cont=cont)
        o2, _ = layers["rnn2"](o1, cont=cont)
    assert_close(o1, recorded["o1"], dtype=torch.float32, msg="rnn1 o")
    assert_close(h1, recorded["h1_T"], dtype=torch.float32, msg="rnn1 h_T")
    assert_close(o2, recorded["o2"], dtype=torch.float32, msg="rnn2 o")


def test_lstm_layer_alone_computes_what_caffe_computed(tmp_path):
    """The LSTM of the ``lstm`` recording converted from its .caffemodel and run as docs/convert.md says:
    ``compat.lstm.lstm(x, weights, (h0, c0), cont=cont)`` on x [T, N, 2, 2] flattened to [T, N, 4] (the layer's
    x_transform InnerProduct has axis 2)."""
    from compat.lstm import lstm, weights_from_torch

    proto, model, inputs, recorded, _ = _recording("caffe_rnn", "lstm")
    assert convert_cli(model, tmp_path / "out", ["--prototxt", str(proto)]) == 0
    module = load(tmp_path / "out")["lstm"]
    x = torch.as_tensor(inputs["x"])
    with torch.no_grad():
        h, (h_T, c_T) = lstm(x.reshape(x.shape[0], x.shape[1], -1), weights_from_torch(module),
                             (torch.as_tensor(inputs["h0"]), torch.as_tensor(inputs["c0"])),
                             cont=torch.as_tensor(inputs["cont"]))
    for got, name in ((h, "h"), (h_T, "h_T"), (c_T, "c_T")):
        assert_close(got, recorded[name], dtype=torch.float32, msg=f"lstm {name}")


def test_recorded_weights_are_what_the_caffemodel_holds():
    """The .caffemodel files (written by protoc) hold exactly the weights expected.npz lists, as this project's
    reader reads them: the oracle checks below use the arrays, the converter the files."""
    for folder, net in RECORDED:
        _, model, _, _, weights = _recording(folder, net)
        read = read_caffemodel(model)
        assert set(read) == set(weights), net
        for layer, blobs in weights.items():
            assert len(read[layer][1]) == len(blobs)
            for a, b in zip(read[layer][1], blobs):
                assert a.dtype == np.float32 and np.array_equal(a.reshape(b.shape), b), f"{net} {layer}"


@pytest.mark.parametrize("folder, net", RECORDED, ids=[n for _, n in RECORDED])
def test_caffe_layer_oracle_agrees_with_the_recording(folder, net):
    """reference/caffe_layers.py's net forward on the recorded inputs and weights: every recorded blob."""
    proto, _, inputs, recorded, weights = _recording(folder, net)
    want = net_forward(_reference_layers(proto.read_text()), weights, inputs)
    for name, blob in recorded.items():
        assert_close(torch.as_tensor(want[name]), blob, dtype=torch.float32, msg=f"{net} {name}")


def test_rnn_oracle_agrees_with_the_recording_static_input_included():
    """reference/caffe_rnn.py on each recorded RNN layer, the static input's (W_xh_static x_static added at every
    step, rnn_layer.cpp) too."""
    _, _, inputs, recorded, weights = _recording("caffe_rnn", "rnn_stack")
    o1, h1 = caffe_rnn.rnn_layer(inputs["x"], inputs["cont"], weights["rnn1"], inputs["h0"])
    o2, _ = caffe_rnn.rnn_layer(recorded["o1"], inputs["cont"], weights["rnn2"])
    for got, name in ((o1, "o1"), (h1[None], "h1_T"), (o2, "o2")):
        assert_close(torch.as_tensor(got), recorded[name], dtype=torch.float32, msg=name)
    _, _, inputs, recorded, weights = _recording("caffe_rnn", "rnn_static")
    o, _ = caffe_rnn.rnn_layer(inputs["x"], inputs["cont"], weights["rnn"], x_static=inputs["x_static"])
    assert_close(torch.as_tensor(o), recorded["o"], dtype=torch.float32, msg="static o")
    without, _ = caffe_rnn.rnn_layer(inputs["x"], inputs["cont"], [w for k, w in enumerate(weights["rnn"]) if k != 2])
    assert np.abs(without - recorded["o"]).max() > 0.05     # the static term matters in this recording


def test_rnn_with_a_static_input_is_refused_by_name(tmp_path, capsys):
    """The converter does not convert an RNN layer with a static input (x_static): it says so, naming the layer,
    alone and as a whole net; the recording above keeps Caffe's numbers for when it does."""
    proto, model, _, _, _ = _recording("caffe_rnn", "rnn_static")
    with pytest.raises(InputError, match="'rnn'.*static input"):
        convert(model, tmp_path / "a")
    assert convert_cli(proto, tmp_path / "b", ["--weights", str(model)]) == 2
    assert "static input" in capsys.readouterr().err
