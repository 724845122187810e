"""The converter on files as users have them: cuDNN opaque buffers of every shape, Python 2 ``.npy`` headers,
ONNX exports of PyTorch <= 1.4, carried tensors' shapes, a frozen graph named, and the Python API's forget bias.
(tf.keras layers in TF checkpoints, object-based checkpoints and a seq2seq checkpoint with a GRU and an
attention-wrapped LSTM are recorded by TensorFlow itself: tests/test_convert_golden.py.)

cuDNN buffers are assembled by reference/cudnn_params.py (written from TF's and cuDNN's description of the
layout, not from the converter) and their TF-format copies by TF's rule written out here
(cudnn_rnn_ops.py ``CudnnParamsFormatConverterLSTM``: kernel [in + H, 4H] in gates i, c, f, o, bias the sum of
cuDNN's two). Python 2 headers are written byte for byte as numpy 1.x under Python 2 wrote them. ONNX models
are built node for node as torch.onnx (``symbolic_opset9._generic_rnn``) exported nn.LSTM up to torch 1.4.
"""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
import torch

from compat.convert import convert, discover, load, load_carried
from compat.errors import InputError
from compat.formats.tf import save_checkpoint
from reference import cudnn_params, onnx_lstm
from tests.convert_cases import cases, convert_cli
from tests.tolerances import assert_close


# ------------------------------------------------------------------------------------------ cuDNN buffers
def _cudnn_params(rng, mode, n_in, H, L, bidi, P=0):
    return {key: rng.uniform(-0.8, 0.8, shape).astype(np.float32)
            for key, shape in cudnn_params.param_shapes(mode, n_in, H, L, bidi, P)}


def _tf_copy(params, k, d, H, P=0):
    """TF's canonical copy of pseudo-layer (k, d) of an LSTM buffer (cudnn_rnn_ops.py _cudnn_to_tf_weights)."""
    order = [0, 2, 1, 3]   # cuDNN i, f, c, o -> TF i, c, f, o
    kernel = np.concatenate([np.concatenate([params["W", k, d, g], params["R", k, d, g]], 1) for g in order], 0).T
    bias = np.concatenate([params["bW", k, d, g] + params["bR", k, d, g] for g in order])
    out = {"kernel": kernel, "bias": bias}
    if P:
        out["projection/kernel"] = params["P", k, d, 0].T
    return out


@pytest.mark.parametrize("mode, L, bidi, P", [("lstm", 1, False, 0), ("lstm", 2, True, 0), ("lstm", 3, False, 0),
                                              ("lstm", 2, True, 2), ("gru", 2, True, 0), ("rnn_tanh", 2, False, 0),
                                              ("rnn_relu", 1, True, 0)])
def test_opaque_split_puts_every_parameter_where_cudnn_has_it(mode, L, bidi, P):
    from compat.frameworks.tf.cudnn import CudnnShape, split_opaque

    rng = np.random.default_rng(1)
    n_in, H = 3, 4
    params = _cudnn_params(rng, mode, n_in, H, L, bidi, P)
    buf = cudnn_params.pack(params, mode, n_in, H, L, bidi, P)
    layers = split_opaque(buf, CudnnShape(mode, H, L, bidi, n_in, P))
    G = cudnn_params.GATES[mode]
    for k, dirs in enumerate(layers):
        assert len(dirs) == (2 if bidi else 1)
        for d, t in enumerate(dirs):
            assert np.array_equal(t["weight_ih"], np.concatenate([params["W", k, d, g] for g in range(G)]))
            assert np.array_equal(t["weight_hh"], np.concatenate([params["R", k, d, g] for g in range(G)]))
            assert np.array_equal(t["bias_ih"], np.concatenate([params["bW", k, d, g] for g in range(G)]))
            assert np.array_equal(t["bias_hh"], np.concatenate([params["bR", k, d, g] for g in range(G)]))
            assert ("weight_hr" in t) == bool(P)
            if P:
                assert np.array_equal(t["weight_hr"], params["P", k, d, 0])


def _opaque_checkpoint(tmp_path, rng, L, bidi, *, copy=True, scope="cudnn_lstm", n_in=3, H=4):
    params = _cudnn_params(rng, "lstm", n_in, H, L, bidi)
    variables = {f"{scope}/opaque_kernel": cudnn_params.pack(params, "lstm", n_in, H, L, bidi)}
    if copy:
        for k in range(L):
            for d in range(2 if bidi else 1):
                if bidi:
                    cell = f"{scope}/stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{'fw' if d == 0 else 'bw'}"
                else:
                    cell = f"{scope}/rnn/multi_rnn_cell/cell_{k}"
                for name, value in _tf_copy(params, k, d, H).items():
                    variables[f"{cell}/cudnn_compatible_lstm_cell/{name}"] = value
    variables["global_step"] = np.array(7, dtype=np.int64)
    return save_checkpoint(str(tmp_path / "model.ckpt"), variables, write_state=False), params


def _cudnn_outputs(params, x, L, bidi, H, lengths):
    """TF's numbers: the canonical parameters run through reference/onnx_lstm.py layer by layer."""
    D = 2 if bidi else 1
    order = [0, 3, 1, 2]
    inp, hs, cs = x, [], []
    B = x.shape[1]
    for k in range(L):
        W = np.stack([np.concatenate([params["W", k, d, g] for g in order]) for d in range(D)]).astype(np.float64)
        R = np.stack([np.concatenate([params["R", k, d, g] for g in order]) for d in range(D)]).astype(np.float64)
        b = np.stack([np.concatenate([params[n, k, d, g] for n in ("bW", "bR") for g in order])
                      for d in range(D)]).astype(np.float64)
        Y, Y_h, Y_c = onnx_lstm.lstm(inp, W, R, b, lengths, np.zeros((D, B, H)), np.zeros((D, B, H)),
                                     direction="bidirectional" if bidi else "forward")
        inp = Y.transpose(0, 2, 1, 3).reshape(x.shape[0], B, D * H)
        hs += list(Y_h)
        cs += list(Y_c)
    return inp, np.stack(hs), np.stack(cs)


@pytest.mark.parametrize("L, bidi, copy", [(2, True, True), (2, True, False), (3, False, True), (1, True, False)])
def test_multilayer_bidirectional_opaque_buffer_converts_to_the_right_numbers(L, bidi, copy, tmp_path):
    rng = np.random.default_rng(2)
    prefix, params = _opaque_checkpoint(tmp_path, rng, L, bidi, copy=copy)
    extra = [] if copy else ["--cudnn-num-units", "4", "--cudnn-num-layers", str(L)] + (["--cudnn-bidirectional"] if bidi else [])
    assert convert_cli(prefix, tmp_path / "o.safetensors", extra) == 0
    (module,) = load(tmp_path / "o.safetensors").values()
    x = rng.uniform(-1.5, 1.5, (5, 2, 3))
    lengths = np.array([5, 3])
    want = _cudnn_outputs(params, x, L, bidi, 4, lengths)
    from tests.convert_cases import run_module

    got = run_module(module.double(), x, batch_first_input=False, lengths=lengths)
    for g, w, what in zip(got, want, ("outputs", "h_n", "c_n")):
        assert_close(g, w, dtype=np.float64, msg=what)
    carried = load_carried(tmp_path / "o.safetensors")
    assert int(carried["global_step"]) == 7 and not any("cudnn" in k for k in carried)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in cases("cudnn_jax")])
def test_opaque_buffers_as_jax_packs_them_for_cudnn(case, tmp_path):
    """A second, independent reading of cuDNN's layout (tests/golden/convert/cudnn_jax, recorded by
    legacy/record_cudnn_jax.py): buffers packed by JAX's jax.experimental.rnn for cuDNN, JAX's own unpacking and
    JAX's reference LSTM on them. The converter's reader and reference/cudnn_params.py must give JAX's canonical
    weights bit for bit, and the converted module JAX's outputs and final states (initial states, lengths)."""
    from compat.frameworks.tf.cudnn import CudnnShape, split_opaque

    name, config, a = case
    H, L, bidi, n_in = config["num_units"], config["num_layers"], config["bidirectional"], config["input_size"]
    D = 2 if bidi else 1
    buf = a["buffer"]
    layers = split_opaque(buf, CudnnShape("lstm", H, L, bidi, n_in))
    params = cudnn_params.unpack(buf, "lstm", n_in, H, L, bidi)
    for k in range(L):
        for d in range(D):
            p = k * D + d
            want = {"weight_ih": a[f"W_ih/{p}"], "weight_hh": a[f"W_hh/{p}"], "bias_ih": a[f"b_ih/{p}"],
                    "bias_hh": a[f"b_hh/{p}"]}
            for key, value in want.items():
                assert np.array_equal(layers[k][d][key], value), (name, k, d, key)
            for kind, key in (("W", "weight_ih"), ("R", "weight_hh"), ("bW", "bias_ih"), ("bR", "bias_hh")):
                assert np.array_equal(np.concatenate([params[kind, k, d, g] for g in range(4)]), want[key])
    prefix = save_checkpoint(str(tmp_path / "m.ckpt"), {"cudnn_lstm/opaque_kernel": buf}, write_state=False)
    extra = ["--cudnn-num-units", str(H), "--cudnn-num-layers", str(L)] + (["--cudnn-bidirectional"] if bidi else [])
    assert convert_cli(prefix, tmp_path / "o.safetensors", extra) == 0
    (module,) = load(tmp_path / "o.safetensors").values()
    from tests.convert_cases import run_module

    got = run_module(module, a["x"], batch_first_input=True, lengths=a["lengths"], hx=(a["h0"], a["c0"]))
    for g, w, what in zip(got, (a["y"], a["h_n"], a["c_n"]), ("outputs", "h_n", "c_n")):
        assert_close(g, w, dtype=np.float32, msg=f"{name} {what}")


def test_the_verification_fails_on_the_old_per_direction_reading(tmp_path, monkeypatch):
    """The check is independent of the reader: with the reading that put each direction's biases after its
    weights, the converted module no longer matches reference/cudnn_params.py's reading, and it says so."""
    from compat.frameworks.tf import cudnn

    rng = np.random.default_rng(3)
    prefix, _ = _opaque_checkpoint(tmp_path, rng, 2, True, copy=False)

    def per_direction(buf, shape):
        H, pos, layers = shape.num_units, 0, []
        for k in range(shape.num_layers):
            dirs = []
            for _ in range(shape.directions):
                n_in = shape.layer_input(k)
                t = {}
                for name, n, sh in (("weight_ih", 4 * H * n_in, (4 * H, n_in)), ("weight_hh", 4 * H * H, (4 * H, H)),
                                    ("bias_ih", 4 * H, (4 * H,)), ("bias_hh", 4 * H, (4 * H,))):
                    t[name] = np.ascontiguousarray(buf[pos:pos + n].reshape(sh))
                    pos += n
                dirs.append(t)
            layers.append(dirs)
        return layers

    monkeypatch.setattr(cudnn, "split_opaque", per_direction)
    conversion = convert(prefix, tmp_path / "o", cudnn_num_units=4, cudnn_num_layers=2, cudnn_bidirectional=True)
    (check,) = conversion.checks
    assert not check.ok and check.err64 > 1e-3


def test_an_opaque_buffer_its_tf_copy_contradicts_is_refused_naming_the_tensor(tmp_path):
    rng = np.random.default_rng(4)
    params = _cudnn_params(rng, "lstm", 3, 4, 1, True)
    variables = {"cudnn_lstm/opaque_kernel": cudnn_params.pack(params, "lstm", 3, 4, 1, True)}
    for d, tag in enumerate(("fw", "bw")):
        for name, value in _tf_copy(params, 0, d, 4).items():
            variables[f"cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn/{tag}/cudnn_compatible_lstm_cell/"
                      f"{name}"] = value
    variables["cudnn_lstm/stack_bidirectional_rnn/cell_0/bidirectional_rnn/bw/cudnn_compatible_lstm_cell/bias"][2] += 0.5
    prefix = save_checkpoint(str(tmp_path / "m.ckpt"), variables, write_state=False)
    with pytest.raises(InputError, match="layer 0 backward .* differ in bias"):
        discover(prefix)


@pytest.mark.parametrize("mode, layers, bidirectional", [("gru", 1, False), ("gru", 2, True), ("rnn_tanh", 2, False),
                                                         ("rnn_relu", 1, True)])
def test_a_cudnn_gru_or_rnn_buffer_converts_to_torchs_module(mode, layers, bidirectional, tmp_path, capsys):
    """cuDNN's GRU (gates r, u, h; the reset after the product) and simple RNNs are torch.nn.GRU / RNN exactly:
    checked against reference/cudnn_params.py's run of the buffer as packed."""
    import torch

    from compat.convert import load

    rng = np.random.default_rng(5)
    params = _cudnn_params(rng, mode, 3, 4, layers, bidirectional)
    scope = {"gru": "cudnn_gru", "rnn_tanh": "cudnn_rnn_tanh", "rnn_relu": "cudnn_rnn_relu"}[mode]
    prefix = save_checkpoint(str(tmp_path / "m.ckpt"), {f"{scope}/opaque_kernel": cudnn_params.pack(
        params, mode, 3, 4, layers, bidirectional)}, write_state=False)
    flags = ["--cudnn-num-units", "4", "--cudnn-num-layers", str(layers)] + (["--cudnn-bidirectional"] if bidirectional
                                                                              else [])
    assert convert_cli(prefix, tmp_path / "o.safetensors", flags) == 0
    assert {"gru": "CudnnGRU", "rnn_tanh": "CudnnRNNTanh", "rnn_relu": "CudnnRNNRelu"}[mode] in capsys.readouterr().out
    (module,) = load(tmp_path / "o.safetensors").values()
    assert type(module) is (torch.nn.GRU if mode == "gru" else torch.nn.RNN)
    D = 2 if bidirectional else 1
    x, h0 = rng.uniform(-1, 1, (5, 2, 3)), rng.uniform(-1, 1, (layers * D, 2, 4))
    want_y, want_h = cudnn_params.run(mode, params, x, h0, layers, bidirectional)
    with torch.no_grad():
        y, h = module.double()(torch.from_numpy(x), torch.from_numpy(h0))
    assert np.max(np.abs(y.numpy() - want_y)) < 1e-10 and np.max(np.abs(h.numpy() - want_h)) < 1e-10


def _tf_copy_gru_rnn(params, mode, k, d):
    """TF's canonical copy of pseudo-layer (k, d) of a GRU or simple-RNN buffer, as TF 1.x cudnn_rnn_ops.py writes
    it: CudnnGRUSaveable._cudnn_to_tf_weights / _cudnn_to_tf_biases (gates r, u stitched from [W | R], their
    biases summed; the candidate's input and hidden projections apart), CudnnRNNSimpleSaveable (one kernel
    [W | R]^T, the biases summed)."""
    W, R, bW, bR = ({g: params[n, k, d, g] for g in range(3 if mode == "gru" else 1)} for n in ("W", "R", "bW", "bR"))
    if mode == "gru":
        gates = np.concatenate([np.concatenate([W[0], R[0]], 1), np.concatenate([W[1], R[1]], 1)], 0).T
        return {"gates/kernel": gates, "gates/bias": np.concatenate([bW[0], bW[1]]) + np.concatenate([bR[0], bR[1]]),
                "candidate/input_projection/kernel": W[2].T, "candidate/input_projection/bias": bW[2],
                "candidate/hidden_projection/kernel": R[2].T, "candidate/hidden_projection/bias": bR[2]}
    return {"kernel": np.concatenate([W[0], R[0]], 1).T, "bias": bW[0] + bR[0]}


def _gru_rnn_with_copy(tmp_path, mode, L, bidi, tamper=None):
    rng = np.random.default_rng(9)
    params = _cudnn_params(rng, mode, 3, 4, L, bidi)
    scope = {"gru": "cudnn_gru", "rnn_tanh": "cudnn_rnn_tanh", "rnn_relu": "cudnn_rnn_relu"}[mode]
    cell_scope = "cudnn_compatible_gru_cell" if mode == "gru" else "basic_rnn_cell"
    variables = {f"{scope}/opaque_kernel": cudnn_params.pack(params, mode, 3, 4, L, bidi)}
    for k in range(L):
        for d in range(2 if bidi else 1):
            cell = (f"{scope}/stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{'fw' if d == 0 else 'bw'}" if bidi
                    else f"{scope}/rnn/multi_rnn_cell/cell_{k}")
            for name, value in _tf_copy_gru_rnn(params, mode, k, d).items():
                variables[f"{cell}/{cell_scope}/{name}"] = value
    if tamper is not None:
        variables[tamper][0] += 0.25
    return save_checkpoint(str(tmp_path / "m.ckpt"), variables, write_state=False), params, scope


@pytest.mark.parametrize("mode, L, bidi", [("gru", 2, True), ("gru", 1, False), ("rnn_tanh", 2, False),
                                           ("rnn_relu", 1, True)])
def test_a_cudnn_gru_or_rnn_buffer_and_its_equal_tf_copy_convert_once(mode, L, bidi, tmp_path):
    """The copy gives the sizes (no flags), is checked against the buffer and converted with it: one module, the
    buffer's numbers (a relu buffer's basic_rnn_cell copy never becomes a tanh BasicRNNCell)."""
    import torch

    prefix, params, scope = _gru_rnn_with_copy(tmp_path, mode, L, bidi)
    found = discover(prefix)
    (spec,) = found.specs
    assert spec.name == scope and any("TF-format copy" in n and "agrees" in n for n in spec.notes)
    assert convert_cli(prefix, tmp_path / "o.safetensors") == 0
    (module,) = load(tmp_path / "o.safetensors").values()
    assert type(module) is (torch.nn.GRU if mode == "gru" else torch.nn.RNN)
    rng = np.random.default_rng(1)
    D = 2 if bidi else 1
    x, h0 = rng.uniform(-1, 1, (5, 2, 3)), rng.uniform(-1, 1, (L * D, 2, 4))
    want_y, want_h = cudnn_params.run(mode, params, x, h0, L, bidi)
    with torch.no_grad():
        y, h = module.double()(torch.from_numpy(x), torch.from_numpy(h0))
    assert_close(y.numpy(), want_y, dtype=np.float64)
    assert_close(h.numpy(), want_h, dtype=np.float64)


@pytest.mark.parametrize("mode, tensor", [
    ("gru", "cudnn_gru/stack_bidirectional_rnn/cell_1/bidirectional_rnn/bw/cudnn_compatible_gru_cell/gates/bias"),
    ("gru", "cudnn_gru/stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/cudnn_compatible_gru_cell/candidate/"
            "hidden_projection/kernel"),
    ("rnn_tanh", "cudnn_rnn_tanh/stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/basic_rnn_cell/kernel"),
    ("rnn_relu", "cudnn_rnn_relu/stack_bidirectional_rnn/cell_1/bidirectional_rnn/bw/basic_rnn_cell/bias"),
])
def test_a_cudnn_gru_or_rnn_buffer_its_tf_copy_contradicts_is_refused_naming_the_tensor(mode, tensor, tmp_path):
    prefix, _, _ = _gru_rnn_with_copy(tmp_path, mode, 2, True, tamper=tensor)
    layer = int(tensor.split("cell_")[1][0])
    side = "forward" if "/fw/" in tensor else "backward"
    name = tensor.rsplit("_cell/", 1)[1]
    with pytest.raises(InputError, match=f"layer {layer} {side} vs .* differ in {name}"):
        discover(prefix)


# ------------------------------------------------------------------------------- Python 2 .npy headers
def _py2_npy(array: np.ndarray, align: int) -> bytes:
    """An .npy member as numpy 1.x wrote it under Python 2: format 1.0, the dict's keys sorted, repr of a
    Python 2 tuple of longs ('(5L, 20L)'), padded with spaces to ``align`` bytes and a newline."""
    shape = "(" + ", ".join(f"{d}L" for d in array.shape) + ("," if array.ndim == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (array.dtype.str, shape)
    pad = align - (10 + len(header) + 1) % align
    header = (header + " " * pad + "\n").encode("latin-1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + array.tobytes()


@pytest.mark.parametrize("align", [16, 64])
def test_a_python2_theano_archive_converts(align, tmp_path):
    rng = np.random.default_rng(6)
    H, n_in = 5, 4
    members = {"lstm_W": rng.standard_normal((n_in, 4 * H)), "lstm_U": rng.standard_normal((H, 4 * H)),
               "lstm_b": rng.standard_normal(4 * H), "Wemb": rng.standard_normal((10, n_in)),
               "history_errs": np.array([[0.5, 0.4]])}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # numpy.savez: stored members named <key>.npy
        for k, v in members.items():
            z.writestr(k + ".npy", _py2_npy(v, align))
    path = tmp_path / "lstm_model.npz"
    path.write_bytes(buf.getvalue())
    assert b"'shape': (5L, 20L)" in path.read_bytes()
    conversion = convert(path, tmp_path / "o")
    assert all(c.ok for c in conversion.checks)
    carried = load_carried(tmp_path / "o")
    assert np.array_equal(carried["Wemb"].numpy(), members["Wemb"])


# ----------------------------------------------------------------------- ONNX exports of PyTorch <= 1.4
def _torch14_lstm_onnx(path, lstm: torch.nn.LSTM, opset: int = 9):
    """nn.LSTM exported as torch.onnx did up to 1.4 (symbolic_opset9._generic_rnn, do_constant_folding off):
    each parameter an initializer (and a graph input, IR version 3), W/R/B made by Slice (gates i, o, f+g),
    Concat and Unsqueeze per layer, one LSTM node per layer, the next layer reading Y through Transpose and
    Reshape (bidirectional) or Squeeze."""
    from onnx import TensorProto, helper, numpy_helper

    H = lstm.hidden_size
    nodes, inits = [], []
    counter = iter(range(1, 10_000))
    dirs = 2 if lstm.bidirectional else 1

    def fresh():
        return str(next(counter))

    def slice_(src, a, b):
        out = fresh()
        if opset < 10:
            nodes.append(helper.make_node("Slice", [src], [out], axes=[0], starts=[a * H], ends=[b * H]))
        else:
            consts = []
            for v in ([0], [a * H], [b * H]):
                c = fresh()
                nodes.append(helper.make_node("Constant", [], [c], value=numpy_helper.from_array(np.array(v, np.int64))))
                consts.append(c)
            nodes.append(helper.make_node("Slice", [src, consts[1], consts[2], consts[0]], [out]))
        return out

    def concat(parts):
        out = fresh()
        nodes.append(helper.make_node("Concat", parts, [out], axis=0))
        return out

    def unsqueeze(src):
        out = fresh()
        nodes.append(helper.make_node("Unsqueeze", [src], [out], axes=[0]))
        return out

    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [5, 2, lstm.input_size])]
    for name, p in lstm.named_parameters():
        full = f"lstm.{name}"
        inits.append(numpy_helper.from_array(p.detach().numpy(), full))
        inputs.append(helper.make_tensor_value_info(full, TensorProto.FLOAT, list(p.shape)))
    x = "input"
    for k in range(lstm.num_layers):
        per_dir = []
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w = [concat([slice_(f"lstm.{n}{sfx}", a, b) for a, b in ((0, 1), (3, 4), (1, 3))])
                 for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            per_dir.append((unsqueeze(w[0]), unsqueeze(w[1]), unsqueeze(concat([w[2], w[3]]))))
        W, R, B = (per_dir[0][i] if dirs == 1 else concat([per_dir[0][i], per_dir[1][i]]) for i in range(3))
        y = fresh()
        nodes.append(helper.make_node("LSTM", [x, W, R, B, ""], [y, fresh(), fresh()], hidden_size=H,
                                      **({"direction": "bidirectional"} if dirs == 2 else {})))
        if dirs == 2:
            t, shape, x = fresh(), fresh(), fresh()
            nodes.append(helper.make_node("Transpose", [y], [t], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Constant", [], [shape], value=numpy_helper.from_array(
                np.array([0, 0, -1], np.int64))))
            nodes.append(helper.make_node("Reshape", [t, shape], [x]))
        else:
            x = fresh()
            nodes.append(helper.make_node("Squeeze", [y], [x], axes=[1]))
    graph = helper.make_graph(nodes, "torch-jit-export", inputs,
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch",
                              producer_version="1.4")
    model.ir_version = 4
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("layers, bidirectional, opset", [(1, False, 9), (2, True, 9), (2, False, 10)])
def test_an_onnx_export_of_old_pytorch_converts_its_folded_weights(layers, bidirectional, opset, tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is in the test extra")
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional)
    path = _torch14_lstm_onnx(tmp_path / "m.onnx", lstm, opset)
    found = discover(path)
    assert len(found.specs) == layers
    # the folded W, R, B against onnx's own reference evaluator running the same subgraph
    model = onnx.load(str(path))
    lstm_nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
    names = [i for n in lstm_nodes for i in n.input[1:4]]
    sub = onnx.helper.make_model(onnx.helper.make_graph(
        [n for n in model.graph.node if n.op_type in ("Slice", "Concat", "Unsqueeze", "Constant")], "w", [],
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names],
        initializer=model.graph.initializer), opset_imports=model.opset_import)
    evaluated = dict(zip(names, ReferenceEvaluator(sub).run(None, {})))
    for spec, node in zip(found.specs, lstm_nodes):
        for role, name in zip("WRB", node.input[1:4]):
            assert np.array_equal(spec.source[0][0][role], evaluated[name])
    # and the converted layers run as torch's own nn.LSTM (its weights are what was exported)
    conversion = convert(path, tmp_path / "o")
    assert all(c.ok for c in conversion.checks)
    modules = load(tmp_path / "o")
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        want, _ = lstm(x)
        y = x
        for spec in conversion.specs:
            y, _ = modules[spec.name](y)
    assert_close(y.numpy(), want.numpy(), dtype=np.float32, msg="outputs")
    assert all(i.converted is not None for i in conversion.items if i.kind == "initializer")


def test_onnx_weights_that_depend_on_a_graph_input_through_foldable_ops_are_refused(tmp_path):
    pytest.importorskip("onnx", reason="onnx is in the test extra")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Unsqueeze", ["w_in"], ["W"], axes=[0]),
             helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="lstm", hidden_size=2)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
                                       helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [8, 3])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "R")])
    (tmp_path / "m.onnx").write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)]).SerializeToString())
    with pytest.raises(InputError, match="input W .*'w_in' is a graph input"):
        discover(tmp_path / "m.onnx")


# ----------------------------------------------------------------------- everything in the file accounted for
def test_carried_tensors_keep_their_shapes_scalars_included(tmp_path):
    """A 0-d variable (global_step, a learning rate) comes back 0-d, a [1] one as [1], each as the source holds it."""
    rng = np.random.default_rng(10)
    v = {"global_step": np.array(5, np.int64), "lr": np.array(0.5, np.float32), "scale": np.ones(1, np.float32),
         "rnn/basic_lstm_cell/kernel": rng.standard_normal((5, 8)).astype(np.float32),
         "rnn/basic_lstm_cell/bias": rng.standard_normal(8).astype(np.float32)}
    prefix = save_checkpoint(str(tmp_path / "m.ckpt"), v, write_state=False)
    convert(prefix, tmp_path / "o", forget_bias=1.0)
    carried = load_carried(tmp_path / "o")
    assert set(carried) == {"global_step", "lr", "scale"}
    # stored with their shapes: the tensor file itself holds a 0-d tensor, not one element
    from compat import checkpoint

    refs = checkpoint.read(tmp_path / "o", "compat.convert").refs
    assert {k: r.shape for k, r in refs.items() if k.startswith("carried/")} == {
        "carried/global_step": (), "carried/lr": (), "carried/scale": (1,)}
    for name, value in carried.items():
        assert tuple(value.shape) == v[name].shape, name
        assert np.array_equal(value.numpy(), v[name]) and value.numpy().dtype == v[name].dtype, name


# ------------------------------------------------------------------------------------ files that are not these
def test_a_frozen_graph_says_what_it_is_and_what_to_convert(tmp_path, capsys):
    path = tmp_path / "frozen.pb"
    path.write_bytes(b"\n\x0c\n\x01x\x12\x07Placeholder")
    assert convert_cli(path, tmp_path / "o.safetensors") == 2
    err = capsys.readouterr().err
    assert "GraphDef" in err and "Const nodes" in err and "checkpoint the graph was frozen from" in err


def test_a_saved_model_directory_points_at_its_variables(tmp_path, capsys):
    (tmp_path / "sm" / "variables").mkdir(parents=True)
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\x08\x01")
    save_checkpoint(str(tmp_path / "sm" / "variables" / "variables"), {"x": np.zeros(2, np.float32)}, write_state=False)
    assert convert_cli(tmp_path / "sm", tmp_path / "o.safetensors") == 2
    assert "variables/variables" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the Python API
def test_the_api_needs_the_tf_forget_bias_and_returns_torch():
    from compat.layouts import LayoutError, convert as layout_convert, to_canonical
    from compat.lstm import lstm

    rng = np.random.default_rng(9)
    kernel, bias = rng.standard_normal((3 + 2, 8)), rng.standard_normal(8)
    with pytest.raises(LayoutError, match="forget_bias="):
        to_canonical("tf", {"kernel": kernel, "bias": bias})
    with pytest.raises(LayoutError, match="forget_bias="):
        layout_convert("tf", {"kernel": kernel, "bias": bias})
    w = to_canonical("tf", {"kernel": kernel, "bias": bias}, forget_bias=1.0)
    assert all(isinstance(a, torch.Tensor) for a in w if a is not None)
    y, _ = lstm(torch.from_numpy(rng.standard_normal((4, 2, 3))), [w])
    assert y.shape == (4, 2, 2)


# ------------------------------------------------------------------------------------ the object graph
def test_a_damaged_object_graph_is_refused_naming_the_checkpoint(tmp_path):
    """_CHECKPOINTABLE_OBJECT_GRAPH is decoded by the bounded wire reader: truncated bytes, a child pointing
    past the graph, or a graph that is not one string are errors naming the checkpoint, not a traceback."""
    from compat.formats.protobuf_wire import Writer
    from compat.formats.tf.object_graph import parse_object_graph

    real = _golden_object_graph()
    nodes = parse_object_graph(real, "real")
    assert nodes[0].child("layer_with_weights-1") is not None
    dangling = Writer().message(1, Writer().message(1, Writer().varint(1, 7).string(2, "layer-0"))).bytes()
    weights = {"x": np.zeros(2, np.float32)}
    for k, data in enumerate((real[:-3], dangling)):
        prefix = save_checkpoint(str(tmp_path / f"m{k}.ckpt"), {**weights, "_CHECKPOINTABLE_OBJECT_GRAPH": np.array(data, dtype=object)},
                                 write_state=False)
        with pytest.raises(InputError, match=f"m{k}.ckpt.*_CHECKPOINTABLE_OBJECT_GRAPH"):
            discover(prefix)


def _golden_object_graph() -> bytes:
    from compat.formats.tf import CheckpointReader
    from tests.convert_cases import GOLDEN_CONVERT

    reader = CheckpointReader(GOLDEN_CONVERT / "tf_models" / "object_save_weights" / "ckpt")
    return reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH").item()
