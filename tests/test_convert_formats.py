"""The converter on the Theano and Caffe formats, its output files, its modules' own semantics, and its refusals.

Theano: the tutorial archive written by real PyTensor (tests/golden/checkpoints/theano_imdb_pytensor,
legacy/record_checkpoints.py), converted, and the tutorial's whole prediction rebuilt around the
converted LSTM must equal PyTensor's ``f_pred_prob``. Caffe: no Caffe runs here; the files are written
with this project's writer and checked against reference/caffe_lstm.py (the command's verification).
The modules that return outputs the framework's way (compat.convert.modules) are checked against
reference/keras_lstm.py and reference/onnx_lstm.py on inputs the recordings do not hold.
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
    assert type(module) is torch.nn.LSTM
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
    from compat.formats.caffemodel import write_caffemodel
    from reference.caffe_lstm import junhyukoh_forward, lstm_forward

    rng = np.random.default_rng(3)
    bvlc, jun = _caffe_blobs(rng, 4, 3), _caffe_blobs(rng, 3, 2, junhyukoh=True)
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, {"lstm1": ("LSTM", bvlc), "ip": ("InnerProduct", [np.ones((2, 4), np.float32)]),
                            "lstm2": ("Lstm", jun)})
    out = tmp_path / "net.safetensors"
    assert convert_cli(path, out) == 0
    assert "verify lstm1: reference/caffe_lstm.py vs module" in capsys.readouterr().out
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


def test_caffe_static_input_weight_takes_the_gate_permutation(tmp_path):
    """W_xc_static (Caffe's rows i, f, o, g) becomes weight_static in the module's gate order, as W_xc does."""
    from compat.formats.caffemodel import write_caffemodel

    rng = np.random.default_rng(4)
    wx, b, wh = _caffe_blobs(rng, 3, 2)
    static = rng.normal(size=(12, 5)).astype(np.float32)
    path = tmp_path / "static.caffemodel"
    write_caffemodel(path, {"lstm": ("LSTM", [wx, b, static, wh])})
    (spec,) = discover(path).specs
    H = 3
    i, f, o, g = (static[k * H:(k + 1) * H] for k in range(4))
    assert np.array_equal(spec.extra["weight_static"], np.concatenate([i, f, g, o]))
    assert spec.module_config == {"static_size": 5}


# ------------------------------------------------------------------------------------------- the output
def test_written_files_are_a_checkpoint_with_torch_names(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert convert_cli(GOLDEN_CONVERT / "tf1" / "stack_bidirectional" / "model.ckpt", out) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("compat.convert: ")
    config = json.loads((tmp_path / "m.json").read_text())
    tensor_file = tmp_path / config["tensor_file"]
    assert f"  {tmp_path / 'm.json'}" in printed and str(tensor_file) in printed
    (entry,) = config["content"]["lstms"]
    assert entry["module"] == "torch.nn.LSTM" and entry["bidirectional"] and entry["num_layers"] == 2
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package reads the tensor file")
    tensors = st.load_file(str(tensor_file))
    assert {"lstms/0/weights/weight_ih_l1_reverse", "lstms/0/weights/bias_hh_l0"} <= set(tensors)
    (module,) = load(out).values()
    assert type(module) is torch.nn.LSTM and module.bidirectional
    np.testing.assert_array_equal(module.weight_ih_l1_reverse.detach().numpy(),
                                  tensors["lstms/0/weights/weight_ih_l1_reverse"])
    assert load(tmp_path / "m").keys() == load(tmp_path / "m.json").keys()


def _reseal(manifest, content):
    """Rewrite a conversion with ``content`` and a valid seal and digest (what an attacker with write access
    to both files can do): only the validation of the settings stands between it and the user."""
    import hashlib

    from safetensors.torch import load_file, save

    from compat.checkpoint import SEAL_KEY, content_digest

    obj = json.loads(manifest.read_text())
    tensor_file = manifest.parent / obj["tensor_file"]
    data = save(load_file(str(tensor_file)), metadata={"format": obj["format"], SEAL_KEY: content_digest(content)})
    tensor_file.write_bytes(data)
    obj.update(content=content, tensor_sha256=hashlib.sha256(data).hexdigest(), tensor_bytes=len(data))
    manifest.write_text(json.dumps(obj))


def test_a_damaged_conversion_is_refused_naming_the_file_and_field(tmp_path):
    out = tmp_path / "m"
    convert(GOLDEN_CONVERT / "onnx" / "peepholes.onnx", out)
    manifest = tmp_path / "m.json"
    good = json.loads(manifest.read_text())
    # any change of a setting breaks the seal: batch_first flipped would change every output
    for key, value in (("batch_first", not good["content"]["lstms"][0]["batch_first"]), ("hidden_size", 5)):
        bad = json.loads(json.dumps(good))
        bad["content"]["lstms"][0][key] = value
        manifest.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=r"m\.json: the settings do not match the digest sealed"):
            load(out)
    manifest.write_text(json.dumps(good))
    # resealed settings are still validated, each error naming the field
    for edit, message in ((lambda e: e.update(hidden_size=5), r"m\.json: lstms/0/weights"),
                          (lambda e: e["options"].update(frobnicate=1),
                           r"lstms/0/options: unknown options \['frobnicate'\]"),
                          (lambda e: e["options"].update(cell_clip=float("nan")), r"lstms/0/options/cell_clip: nan is not finite"),
                          (lambda e: e["options"].update(cell_clip=-1.0), r"lstms/0/options/cell_clip: -1.0 must be a number > 0"),
                          (lambda e: e["options"].update(activations=["Sigmoid", "Tanh", "Gelu"]),
                           r"lstms/0/options/activations: not activations the core knows"),
                          (lambda e: e.update(source_format="tf2"), r"lstms/0/source_format: 'tf2' is not one of")):
        content = json.loads(json.dumps(good["content"]))
        edit(content["lstms"][0])
        _reseal(manifest, content)
        with pytest.raises(InputError, match=message):
            load(out)
    _reseal(manifest, good["content"])
    assert load(out)
    # a duplicate key is refused, not read as the last one
    text = manifest.read_text()
    manifest.write_text(text.replace('"checkpoint_version": 2,', '"checkpoint_version": 2, "checkpoint_version": 2,'))
    with pytest.raises(InputError, match="'checkpoint_version' appears twice"):
        load(out)
    manifest.write_text(text)
    tensor_file = tmp_path / json.loads(text)["tensor_file"]
    data = bytearray(tensor_file.read_bytes())
    data[-1] ^= 1
    tensor_file.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256"):
        load(out)


def test_non_finite_source_weights_are_refused(tmp_path):
    from compat.formats.tf import load_checkpoint, save_checkpoint

    variables = load_checkpoint(GOLDEN_CONVERT / "tf1" / "basic" / "model.ckpt")
    variables["basic/rnn/basic_lstm_cell/kernel"][0, 0] = np.nan
    save_checkpoint(tmp_path / "nan.ckpt", variables)
    with pytest.raises(InputError, match="weight_ih_l0 holds 1 NaN or infinite"):
        convert(tmp_path / "nan.ckpt", tmp_path / "o", forget_bias=1.0)


def test_forget_bias_lands_on_the_f_block_of_bias_hh(tmp_path):
    out = tmp_path / "m.safetensors"
    ckpt = GOLDEN_CONVERT / "tf1" / "basic_forget_bias" / "model.ckpt"
    convert(ckpt, out, forget_bias=0.25)
    (m,) = load(out).values()
    H = m.hidden_size
    expected = np.zeros(4 * H, np.float32)
    expected[H:2 * H] = 0.25
    np.testing.assert_array_equal(m.bias_hh_l0.detach().numpy(), expected)


def test_the_command_announces_the_default_forget_bias_and_writes_the_report(tmp_path):
    out = tmp_path / "m.safetensors"
    proc = subprocess.run([sys.executable, "-m", "compat.convert", str(GOLDEN_CONVERT / "tf1" / "basic" / "model.ckpt"),
                           "--to", str(out), "--report", str(tmp_path / "r.md")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning: basic/rnn/basic_lstm_cell: forget_bias is not stored in the file; assumed 1.0" in proc.stderr
    assert "forget_bias=1.0 (defaulted!)" in proc.stdout
    assert f"  {tmp_path / 'r.md'}" in proc.stdout.split("Files written:")[1]
    report = (tmp_path / "r.md").read_text()
    assert "max abs error" in report and "defaulted: check it" in report


def test_help_shows_the_defaults(capsys):
    from compat.convert.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "(default: 1)" in text and "Exit status" in text


def test_a_module_that_misses_the_reference_fails_the_check(tmp_path):
    """The verification itself: a converted module one weight off is reported, not passed."""
    from compat.convert import store
    from compat.convert.verify import check

    (spec,) = discover(GOLDEN_CONVERT / "onnx" / "clip.onnx").specs
    config, _ = store.write([spec], tmp_path / "m", "test")
    (module,) = load(config).values()
    assert check(spec, module).ok
    with torch.no_grad():
        module.weight_hh_l0[0, 0] += 1e-3
    result = check(spec, module)
    assert not result.ok and result.err64 > 1e-6


# ------------------------------------------------------------------------------- the modules' semantics
@pytest.mark.parametrize("go_backwards, bidirectional, merge_mode, masked_output", [
    (False, False, "concat", "previous_output"), (True, False, "concat", "previous_output"),
    (False, False, "concat", "previous_h"), (True, False, "concat", "zeros"),
    (False, True, "concat", "zeros"), (False, True, "ave", "zeros"), (False, True, "mul", "previous_output"),
    (True, False, "concat", "zeros_unrolled"), (False, False, "concat", "zeros_unrolled"),
    (False, True, "concat", "zeros_unrolled"), (False, True, "sum", "zeros_unrolled")])
@pytest.mark.parametrize("dtype", [torch.float64])
def test_keras_module_matches_the_keras_reference(go_backwards, bidirectional, merge_mode, masked_output, dtype):
    """KerasLSTM against reference/keras_lstm.py with nonzero initial states and masks with masked first steps
    (the only place where the three masked outputs differ)."""
    from compat.convert.modules import KerasLSTM
    from compat.layouts import from_canonical
    from compat.lstm import weights_from_torch
    from reference import keras_lstm

    B, T, n_in, H = 3, 6, 2, 3
    torch.manual_seed(0)
    kw = dict(bidirectional=True) if bidirectional else {}
    m = KerasLSTM(n_in, H, go_backwards=go_backwards, masked_output=masked_output, merge_mode=merge_mode,
                  dtype=dtype, **kw)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (B, T, n_in))
    mask = (rng.random((B, T)) < 0.6).astype(np.float64)
    mask[0], mask[1, :2], mask[2, -2:] = 1.0, 0.0, 0.0
    D = 2 if bidirectional else 1
    h0, c0 = rng.uniform(-0.5, 0.5, (D, B, H)), rng.uniform(-0.5, 0.5, (D, B, H))
    with torch.no_grad():
        y, (h, c) = m(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)), mask=torch.from_numpy(mask))
    layers = weights_from_torch(m) if bidirectional else [(w,) for w in m.layer_weights()]
    keras = [{k: v.detach().numpy() for k, v in from_canonical("keras", w).items()} for w in layers[0]]
    if bidirectional:
        ref_y, *states = keras_lstm.bidirectional_layer(x, keras[0], keras[1], (h0[0], c0[0], h0[1], c0[1]), mask,
                                                        masked_output=masked_output, merge_mode=merge_mode)
        ref_h, ref_c = np.stack(states[0::2]), np.stack(states[1::2])
    else:
        k = keras[0]
        ref_y, ref_h, ref_c = keras_lstm.lstm_layer(x, k["kernel"], k["recurrent_kernel"], k["bias"], (h0[0], c0[0]),
                                                    mask, go_backwards=go_backwards, masked_output=masked_output)
        ref_h, ref_c = ref_h[None], ref_c[None]
    assert_close(y, ref_y, dtype=np.float64, msg="outputs")
    assert_close(h, ref_h, dtype=np.float64, msg="h_n")
    assert_close(c, ref_c, dtype=np.float64, msg="c_n")


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_keras_modules_read_a_nonbinary_mask_as_keras_does(family):
    """Keras's backend casts a recurrent layer's mask to bool (tf_keras backend.py ``rnn``: ``if mask.dtype !=
    tf.bool: mask = tf.cast(mask, tf.bool)``): a step is read where the mask is not 0. A mask of 0.3 and 1.0
    gives the 0/1 mask's outputs, with and without dropout in training (the masks fixed), not a blend."""
    from compat.convert.modules import KerasGRU, KerasLSTM
    from compat.frameworks.keras.dropout import KerasDropout

    torch.manual_seed(0)
    cls = KerasLSTM if family == "lstm" else KerasGRU
    m = cls(2, 3, masked_output="zeros", keras_dropout=KerasDropout(0.5, 0.5, "per_gate")).double()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    binary = torch.tensor([[1.0, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.float64)
    weighted = binary * torch.tensor([0.3, 1.0, 0.3, 1.0, 0.3], dtype=torch.float64)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x, mask=weighted)[0], m(x, mask=binary)[0])
    m.train()
    with torch.no_grad():
        a = m(x, mask=weighted, generator=torch.Generator().manual_seed(1))[0]
        b = m(x, mask=binary, generator=torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, b)


def test_onnx_module_zeroes_the_final_state_of_empty_sequences():
    from compat.convert.modules import OnnxLSTM
    from compat.frameworks.onnx.layout import onnx_stack_directions
    from compat.layouts import from_canonical
    from reference import onnx_lstm

    torch.manual_seed(2)
    m = OnnxLSTM(2, 3, bidirectional=True, peepholes=True, dtype=torch.float64)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (5, 4, 2))
    h0, c0 = rng.uniform(-0.5, 0.5, (2, 4, 3)), rng.uniform(-0.5, 0.5, (2, 4, 3))
    lengths = np.array([5, 0, 2, 0])
    with torch.no_grad():
        y, (h, c) = m(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)), lengths=torch.from_numpy(lengths))
    onnx = onnx_stack_directions([{k: v.detach().numpy() for k, v in from_canonical("onnx", w).items()}
                                  for w in m.layer_weights()[0]])
    Y, Y_h, Y_c = onnx_lstm.lstm(x, onnx["W"], onnx["R"], onnx["B"], lengths, h0, c0, onnx["P"],
                                 direction="bidirectional")
    assert_close(y, Y.transpose(0, 2, 1, 3).reshape(5, 4, 6), dtype=np.float64)
    assert_close(h, Y_h, dtype=np.float64)
    assert_close(c, Y_c, dtype=np.float64)
    assert not h[:, [1, 3]].any() and not c[:, [1, 3]].any()


# ---------------------------------------------------------------------------------------------- refusals
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


@pytest.mark.parametrize("source, options, message", [
    ("onnx/reverse.onnx", ["--forget-bias", "1"], "applies to TF1 checkpoints only"),
    ("onnx/reverse.onnx", ["--prototxt", __file__], "applies to Caffe files only"),
    ("tf1/basic/model.ckpt", ["--theano-doubled-bias"], "applies to Theano archives only"),
    ("tf1/basic/model.ckpt", ["--proj-clip", "0.5"], "--proj-clip (no cell here has a projection"),
    ("tf1/cudnn_canonical/model.ckpt", ["--cell-clip", "3"], "--cell-clip (CudnnLSTM does not clip"),
    ("tf1/basic/model.ckpt", ["--cudnn-num-units", "4"], "no CudnnLSTM opaque buffer"),
    ("tf1/basic/model.ckpt", ["--cudnn-num-layers", "0"], "--cudnn-num-layers: must be an integer at least 1"),
])
def test_options_that_would_be_dropped_are_refused(source, options, message, tmp_path, capsys):
    assert convert_cli(GOLDEN_CONVERT / source, tmp_path / "o.safetensors", options) == 2
    assert message in capsys.readouterr().err


def test_unknown_variables_in_a_cell_scope_are_refused(tmp_path):
    from compat.formats.tf import load_checkpoint, save_checkpoint

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


def _onnx_model(path, direction="bidirectional", **attrs):
    from onnx import helper, numpy_helper, save

    dirs = 2 if direction == "bidirectional" else 1
    W = numpy_helper.from_array(np.ones((dirs, 8, 2), np.float32), "W")
    R = numpy_helper.from_array(np.ones((dirs, 8, 2), np.float32), "R")
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="lstm", direction=direction, **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [3, 1, 2])],
                          [helper.make_tensor_value_info("Y", 1, None)], initializer=[W, R])
    save(helper.make_model(g), str(path))
    return path


@pytest.mark.parametrize("attrs, message", [
    (dict(frobnicate=1), "unknown attribute 'frobnicate'"),
    (dict(activations=["Sigmoid", "Tanh", "Gelu"] * 2), "'Gelu' is not in the operator's list"),
    (dict(clip=-1.0), "clip=-1.0 must be a number > 0"),
    (dict(hidden_size=3), "hidden_size=3 does not match the tensors"),
    (dict(activations=["Sigmoid", "Tanh", "Tanh"] * 2, activation_alpha=[0.5]), "no activation takes"),
])
def test_onnx_attributes_that_cannot_be_honoured_are_refused(attrs, message, tmp_path):
    pytest.importorskip("onnx", reason="onnx is in the test extra (pip install legacy-lstm[test])")
    with pytest.raises(InputError, match=message) as e:
        discover(_onnx_model(tmp_path / "m.onnx", **attrs))
    assert "m.onnx: LSTM node 'lstm'" in str(e.value)


def test_onnx_directions_with_different_activations_are_read_as_two_layers(tmp_path):
    """Operators.md lists a bidirectional node's activations per direction (onnxruntime runs each with its own):
    the node is read as its forward and its reverse layer, each with its own activations."""
    pytest.importorskip("onnx", reason="onnx is in the test extra (pip install legacy-lstm[test])")
    found = discover(_onnx_model(tmp_path / "m.onnx", activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu",
                                                                    "Tanh"]))
    assert [s.name for s in found.specs] == ["lstm/forward", "lstm/reverse"]
    assert [s.options.get("direction", "forward") for s in found.specs] == ["forward", "reverse"]
    assert "activations" not in found.specs[0].options
    assert found.specs[1].options["activations"] == ("Sigmoid", "Relu", "Tanh")


def _keras_h5(path, config, weights, version="2.2.4"):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "LSTM", "config": config}]}}).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"lstm"]
        lg = g.create_group("lstm")
        lg.attrs["weight_names"] = [n.encode() for n in weights]
        for n, a in weights.items():
            lg.create_dataset(n, data=a)
    return path


def _keras_weights(H=2, n_in=3):
    rng = np.random.default_rng(5)
    return {"lstm/kernel:0": rng.uniform(-1, 1, (n_in, 4 * H)).astype(np.float32),
            "lstm/recurrent_kernel:0": rng.uniform(-1, 1, (H, 4 * H)).astype(np.float32),
            "lstm/bias:0": rng.uniform(-1, 1, 4 * H).astype(np.float32)}


@pytest.mark.parametrize("config, message", [
    (dict(activation="gelu"), "activation='gelu': not an activation the core has"),
    (dict(recurrent_activation={"class_name": "MyAct", "config": {}}), "custom object"),
    (dict(stateful=True, frobnicate=3), "frobnicate"),
    (dict(units=5), "units=5 does not match the"),
])
def test_keras_settings_that_cannot_be_honoured_are_refused(config, message, tmp_path):
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    cfg = {"name": "lstm", "units": 2, "activation": "tanh", "recurrent_activation": "sigmoid", **config}
    with pytest.raises(InputError, match=message) as e:
        discover(_keras_h5(tmp_path / "k.h5", cfg, _keras_weights()))
    assert "k.h5: layer 'lstm'" in str(e.value)


def test_keras_before_2_3_outputs_the_previous_h_at_masked_steps_and_says_so(tmp_path):
    """Keras 2.0-2.2's TF backend: the carried h at masked steps (the core's own mask semantics), stated."""
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    path = tmp_path / "k.h5"
    import h5py

    _keras_h5(path, {"name": "lstm", "units": 2, "activation": "tanh", "recurrent_activation": "hard_sigmoid"},
              _keras_weights())
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"].insert(0, {"class_name": "Masking", "config": {"name": "m", "mask_value": 0.0}})
        f.attrs["model_config"] = json.dumps(config).encode()
    (spec,) = discover(path).specs
    assert spec.keras.masked_output == "previous_h"
    assert spec.options["activations"] == ("hard_sigmoid_keras2", "tanh", "tanh")
    assert any(u.what == "masked_output" for u in spec.unknowns)
    conversion = convert(path, tmp_path / "o")
    assert all(c.ok for c in conversion.checks)


def _keras_config_only(path, layers):
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.21.0"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": layers}}).encode()
        f.create_group("model_weights").attrs["layer_names"] = []
    return path


def test_a_keras_bidirectional_around_go_backwards_is_refused(tmp_path):
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    path = _keras_config_only(tmp_path / "k.h5", [
        {"class_name": "Bidirectional", "config": {"name": "bi", "layer": {"class_name": "LSTM", "config": {
            "name": "lstm", "units": 2, "go_backwards": True}}}}])
    with pytest.raises(InputError, match="layer 'bi'.*not supported"):
        discover(path)


@pytest.mark.parametrize("layer, why", [
    ({"class_name": "Bidirectional", "config": {"name": "bi", "layer": {"class_name": "ConvLSTM2D", "config": {}}}},
     "Bidirectional(ConvLSTM2D)"),
    ({"class_name": "RNN", "config": {"name": "bi", "cell": {"class_name": "MinimalRNNCell", "config": {"units": 2}}}},
     "an RNN over a 'MinimalRNNCell' cell"),
    ({"class_name": "ConvLSTM1D", "config": {"name": "bi", "filters": 2}}, "Keras ConvLSTM1D layer"),
])
def test_keras_recurrent_layers_not_converted_are_listed_and_make_the_conversion_partial(layer, why, tmp_path, capsys):
    """Listed by name with the reason, never dropped: exit 3 without --partial (nothing written)."""
    pytest.importorskip("h5py", reason="h5py is in the test extra")
    path = _keras_config_only(tmp_path / "k.h5", [layer])
    found = discover(path)
    (item,) = found.items
    assert not found.specs and item.name == "bi" and item.recurrent and item.converted is None and why in item.reason
    assert convert_cli(path, tmp_path / "o.safetensors") == 3
    out, err = capsys.readouterr()
    assert "bi [recurrent]" in out and why in out and "--partial" in err
    assert not list(tmp_path.glob("o.*"))


def test_onnx_weights_computed_at_run_time_are_refused(tmp_path):
    pytest.importorskip("onnx", reason="onnx is in the test extra (pip install legacy-lstm[test])")
    from onnx import helper, save

    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="lstm", hidden_size=2)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, 1, None) for n in ("X", "W", "R")],
                          [helper.make_tensor_value_info("Y", 1, None)])
    save(helper.make_model(g), str(tmp_path / "m.onnx"))
    with pytest.raises(InputError, match="input W .* depends on what the model is given at run time.*graph input"):
        discover(tmp_path / "m.onnx")


def test_keras_weights_only_file_is_refused(tmp_path):
    import h5py

    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"lstm"]
        f.create_group("lstm").attrs["weight_names"] = []
    with pytest.raises(InputError, match="configuration"):
        discover(path)
