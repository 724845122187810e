"""The converter on the Theano and Caffe formats, its outputs, and its refusals.

Theano: the tutorial archive written by real PyTensor (tests/golden/checkpoints/theano_imdb_pytensor,
legacy/record_checkpoints.py), converted, and the tutorial's whole prediction rebuilt around the
converted LSTM must equal PyTensor's ``f_pred_prob``. Caffe: no Caffe runs here; the files are written
with this project's writer and checked against reference/caffe_lstm.py (the command's verification).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from compat.convert import convert, discover, load
from compat.errors import InputError
from compat.formats import safetensors
from tests.convert_cases import GOLDEN_CONVERT, convert_cli
from tests.port_runners import GOLDEN
from tests.tolerances import assert_close

REPO = GOLDEN.parent.parent


def test_theano_archive_from_pytensor_gives_pytensors_predictions(tmp_path):
    from compat.lstm import lstm, weights_from_torch

    folder = GOLDEN / "checkpoints" / "theano_imdb_pytensor"
    out = tmp_path / "imdb.safetensors"
    assert convert_cli(folder / "saveto_lstm_model.npz", out) == 0
    (module,) = load(out).values()
    params = np.load(folder / "saveto_lstm_model.npz")
    rec = np.load(folder / "expected.npz")
    x, mask = rec["x"], rec["mask"]
    emb = torch.from_numpy(params["Wemb"][x])                       # [T, B, dim]
    m = torch.from_numpy(mask)
    module = module.double()
    with torch.no_grad():
        h, _ = lstm(emb, weights_from_torch(module), mask=m)         # the tutorial's mask semantics
    pooled = (h * m[:, :, None]).sum(0) / m.sum(0)[:, None]          # lstm.py build_model mean pooling
    pooled = pooled * 0.5                                            # dropout_layer off: proj * 0.5 (use_dropout)
    logits = pooled.numpy() @ params["U"] + params["b"]
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    assert_close(prob, rec["pred_prob"], dtype=np.float64, msg="IMDB f_pred_prob from the converted LSTM")


def _caffe_blobs(rng, H, n_in, junhyukoh=False):
    wx = rng.uniform(-0.8, 0.8, (4 * H, n_in)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, 4 * H).astype(np.float32)
    wh = rng.uniform(-0.8, 0.8, (4 * H, H)).astype(np.float32)
    return [wx, wh, b] if junhyukoh else [wx, b, wh]


def test_caffe_layers_convert_and_verify(tmp_path, capsys):
    from ports.caffe_sequence.caffemodel import write_caffemodel
    from reference.caffe_lstm import junhyukoh_forward, lstm_forward

    rng = np.random.default_rng(3)
    bvlc, jun = _caffe_blobs(rng, 4, 3), _caffe_blobs(rng, 3, 2, junhyukoh=True)
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, {"lstm1": ("LSTM", bvlc), "ip": ("InnerProduct", [np.ones((2, 4), np.float32)]),
                            "lstm2": ("Lstm", jun)})
    out = tmp_path / "net.safetensors"
    assert convert_cli(path, out) == 0
    assert "verify lstm1: reference/caffe" in capsys.readouterr().out
    modules = load(out)
    assert sorted(modules) == ["lstm1", "lstm2"]
    x = rng.uniform(-1, 1, (5, 2, 3))
    cont = np.ones((5, 2))
    cont[0] = 0
    h_ref, hT, cT, _ = lstm_forward(x, cont, *bvlc)
    with torch.no_grad():
        y, (h, c) = modules["lstm1"].double()(torch.from_numpy(x))
    assert_close(y, h_ref, dtype=np.float64)
    assert_close(c[0], cT, dtype=np.float64)
    x2 = rng.uniform(-1, 1, (5, 2, 2))
    h2, _, _, _ = junhyukoh_forward(x2.reshape(10, 2), *jun, batch_size=2)
    with torch.no_grad():
        y2, _ = modules["lstm2"].double()(torch.from_numpy(x2))
    assert_close(y2.reshape(10, -1), h2, dtype=np.float64)


def test_caffe_static_input_is_refused(tmp_path):
    from ports.caffe_sequence.caffemodel import write_caffemodel

    rng = np.random.default_rng(4)
    wx, b, wh = _caffe_blobs(rng, 3, 2)
    path = tmp_path / "static.caffemodel"
    write_caffemodel(path, {"lstm": ("LSTM", [wx, b, np.zeros((12, 5), np.float32), wh])})
    with pytest.raises(InputError, match="static input"):
        discover(path)


def test_written_files_are_safetensors_with_torch_names(tmp_path):
    out = tmp_path / "m.safetensors"
    convert(GOLDEN_CONVERT / "tf1" / "stack_bidirectional" / "model.ckpt", out)
    tensors, meta = safetensors.load(out)
    assert {"lstm0.weight_ih_l1_reverse", "lstm0.bias_hh_l0"} <= set(tensors)
    config = json.loads(out.with_suffix(".json").read_text())
    (entry,) = config["lstms"]
    assert entry["module"] == "torch.nn.LSTM" and entry["direction"] == "bidirectional"
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package cross-checks the writer")
    theirs = st.load_file(str(out))
    assert sorted(theirs) == sorted(tensors)
    for k in tensors:
        np.testing.assert_array_equal(theirs[k], tensors[k])


def test_forget_bias_lands_on_the_f_block_of_bias_hh(tmp_path):
    out = tmp_path / "m.safetensors"
    ckpt = GOLDEN_CONVERT / "tf1" / "basic_forget_bias" / "model.ckpt"
    convert(ckpt, out, forget_bias=0.25)
    (m,) = load(out).values()
    H = m.hidden_size
    expected = np.zeros(4 * H, np.float32)
    expected[H:2 * H] = 0.25
    np.testing.assert_array_equal(m.bias_hh_l0.detach().numpy(), expected)


def test_the_default_forget_bias_is_announced(tmp_path):
    out = tmp_path / "m.safetensors"
    proc = subprocess.run([sys.executable, "-m", "compat.convert", str(GOLDEN_CONVERT / "tf1" / "basic" / "model.ckpt"),
                           "--to", str(out), "--report", str(tmp_path / "r.md")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning: basic/rnn/basic_lstm_cell: forget_bias is not stored in the file; assumed 1.0" in proc.stderr
    assert "forget_bias=1.0 (defaulted!)" in proc.stdout
    report = (tmp_path / "r.md").read_text()
    assert "max abs error" in report and "defaulted: check it" in report


@pytest.mark.parametrize("name, content, message", [
    ("missing.onnx", None, "missing.onnx"),
    ("bad.onnx", b"\x08\x07garbage", "bad.onnx"),
    ("bad.h5", b"not hdf5 at all", "bad.h5"),
    ("bad.keras", b"PK\x03\x04broken", "bad.keras"),
    ("bad.npz", b"PK\x03\x04broken", "bad.npz"),
    ("bad.caffemodel", b"\xff\xff\xff", "bad.caffemodel"),
    ("x.weird", b"", "--format"),
])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(name, content, message, tmp_path, capsys):
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    assert convert_cli(src, tmp_path / "o.safetensors") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_tf_only_options_are_refused_for_other_formats(tmp_path, capsys):
    assert convert_cli(GOLDEN_CONVERT / "onnx" / "reverse.onnx", tmp_path / "o.safetensors", ["--forget-bias", "1"]) == 2
    assert "TF1 checkpoints only" in capsys.readouterr().err


def test_unknown_variables_in_a_cell_scope_are_refused(tmp_path):
    from compat.tf_checkpoint import load_checkpoint, save_checkpoint

    variables = load_checkpoint(GOLDEN_CONVERT / "tf1" / "basic" / "model.ckpt")
    variables["basic/rnn/basic_lstm_cell/layer_norm_gamma"] = np.ones(4, np.float32)
    save_checkpoint(tmp_path / "ln.ckpt", variables)
    with pytest.raises(InputError, match="layer_norm_gamma"):
        discover(tmp_path / "ln.ckpt")


def test_opaque_cudnn_buffer_needs_its_sizes(capsys, tmp_path):
    assert convert_cli(GOLDEN_CONVERT / "tf1" / "cudnn_opaque" / "model.ckpt", tmp_path / "o.safetensors") == 2
    assert "--cudnn-num-units" in capsys.readouterr().err
    assert convert_cli(GOLDEN_CONVERT / "tf1" / "cudnn_opaque" / "model.ckpt", tmp_path / "o.safetensors",
                       ["--cudnn-num-units", "5"]) == 2
    assert "no input size gives" in capsys.readouterr().err


def test_onnx_unknown_attribute_and_mixed_activations_are_refused(tmp_path):
    from onnx import helper, numpy_helper, save

    def model(path, **attrs):
        W = numpy_helper.from_array(np.ones((2, 8, 2), np.float32), "W")
        R = numpy_helper.from_array(np.ones((2, 8, 2), np.float32), "R")
        node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], direction="bidirectional", **attrs)
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [3, 1, 2])],
                              [helper.make_tensor_value_info("Y", 1, None)], initializer=[W, R])
        save(helper.make_model(g), str(path))
        return path

    with pytest.raises(InputError, match="unknown attribute 'frobnicate'"):
        discover(model(tmp_path / "a.onnx", frobnicate=1))
    with pytest.raises(InputError, match="different activations"):
        discover(model(tmp_path / "b.onnx", activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"]))


def test_keras_weights_only_file_is_refused(tmp_path):
    import h5py

    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"lstm"]
        f.create_group("lstm").attrs["weight_names"] = []
    with pytest.raises(InputError, match="configuration"):
        discover(path)
