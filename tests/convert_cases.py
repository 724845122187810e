"""The converter's golden cases (tests/golden/convert/, recorded by legacy/record_convert_*.py) and how
to run a converted module on a recorded input. Shared by the default suite and the live legacy tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

GOLDEN_CONVERT = Path(__file__).resolve().parent / "golden" / "convert"


def cases(framework: str, base: Path = GOLDEN_CONVERT) -> Iterator[Tuple[str, dict, Dict[str, np.ndarray]]]:
    """(case name, config, arrays under ``<case>/``) of ``<base>/<framework>/expected.npz``."""
    path = base / framework / "expected.npz"
    with np.load(path, allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files if k.endswith("/config")})
        for name in names:
            arrays = {k[len(name) + 1:]: z[k] for k in z.files if k.startswith(name + "/")}
            yield name, json.loads(str(arrays.pop("config"))), arrays


def convert_cli(source, out, extra: List[str] = ()) -> int:
    from compat.convert.__main__ import main

    return main([str(source), "--to", str(out), *extra])


def run_module(module, x: np.ndarray, *, batch_first_input: bool, lengths=None, mask=None, hx=None):
    """(y, h_n, c_n) as numpy float64, y in the layout of ``x`` (batch-major when ``batch_first_input``).

    ``lengths``: a PackedSequence for ``torch.nn.LSTM``, ``lengths=`` for compat.lstm.LSTM (zeros allowed);
    ``mask`` [B, T]: Keras's mask, for :class:`compat.convert.modules.KerasLSTM`.
    """
    from compat.lstm import LSTM

    p = next(module.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(p.dtype)
    if batch_first_input != module.batch_first:
        xt = xt.transpose(0, 1)
    if hx is not None:
        hx = tuple(torch.from_numpy(np.ascontiguousarray(s)).to(p.dtype) for s in hx)
    with torch.no_grad():
        if mask is not None:
            y, (h, c) = module(xt, hx, mask=torch.from_numpy(mask))
        elif lengths is not None and isinstance(module, LSTM):
            y, (h, c) = module(xt, hx, lengths=torch.as_tensor(lengths))
        elif lengths is not None:
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=module.batch_first,
                                          enforce_sorted=False)
            y, (h, c) = module(packed, hx)
            y, _ = pad_packed_sequence(y, batch_first=module.batch_first, total_length=xt.shape[1 if module.batch_first else 0])
        else:
            y, (h, c) = module(xt, hx)
    if batch_first_input != module.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy(), c.double().numpy()


def check_tf1_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded TF1 checkpoint with the command line and compare with TensorFlow's numbers."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    assert convert_cli(folder / config["checkpoint"], out, config["cli"]) == 0
    modules = load(out)
    assert sorted(modules) == sorted(config["lstms"])
    for spec in config["lstms"]:
        hx = (arrays[f"{spec}/h0"], arrays[f"{spec}/c0"]) if f"{spec}/h0" in arrays else None
        y, h, c = run_module(modules[spec], arrays["x"], batch_first_input=True, lengths=config["lengths"], hx=hx)
        dtype = arrays["x"].dtype
        assert_close(y, arrays[f"{spec}/y"], dtype=dtype, msg=f"{name} {spec} outputs")
        assert_close(h, arrays[f"{spec}/h"], dtype=dtype, msg=f"{name} {spec} h_n")
        assert_close(c, arrays[f"{spec}/c"], dtype=dtype, msg=f"{name} {spec} c_n")


def check_onnx_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded ONNX model and compare with onnxruntime's Y, Y_h, Y_c."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    assert convert_cli(folder / config["file"], out) == 0
    (module,) = load(out).values()
    hx = (arrays["initial_h"], arrays["initial_c"]) if "initial_h" in arrays else None
    y, h, c = run_module(module, arrays["x"], batch_first_input=False, lengths=config["lens"], hx=hx)
    T, dirs, B, H = arrays["Y"].shape
    assert_close(y, arrays["Y"].transpose(0, 2, 1, 3).reshape(T, B, dirs * H), msg=f"{name} Y")
    assert_close(h, arrays["Y_h"], msg=f"{name} Y_h")
    assert_close(c, arrays["Y_c"], msg=f"{name} Y_c")


def check_keras_file(folder: Path, filename: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded Keras file and compare every recorded layer with Keras's numbers (outputs in
    Keras's order and with Keras's masked outputs: compat.convert.modules.KerasLSTM)."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / (filename.replace(".", "_") + ".safetensors")
    assert convert_cli(folder / filename, out) == 0
    modules = load(out)
    assert set(config["layers"]) <= set(modules)
    x = arrays["x"]
    mask = None
    if "mask_value" in config:
        # Keras's Masking: a step whose features all equal mask_value is skipped (state carried).
        mask = np.any(x != config["mask_value"], axis=-1).astype(x.dtype)
    for layer in config["layers"]:
        m = modules[layer]
        label = f"{folder.name} {filename} {layer}"
        hx = None
        if f"{layer}/h0" in arrays:
            hx = (arrays[f"{layer}/h0"], arrays[f"{layer}/c0"])
        y, h, c = run_module(m, x, batch_first_input=True, mask=mask, hx=hx)
        if f"{layer}/y_last" in arrays:
            assert_close(y[:, -1], arrays[f"{layer}/y_last"], msg=f"{label} output")
            continue
        assert_close(y, arrays[f"{layer}/y"], msg=f"{label} outputs")
        assert_close(h, arrays[f"{layer}/h"], msg=f"{label} h_n")
        assert_close(c, arrays[f"{layer}/c"], msg=f"{label} c_n")


def keras_files(base: Path = GOLDEN_CONVERT):
    """(framework, file name, config, arrays) of every recorded Keras file."""
    for framework in ("keras3", "tf_keras"):
        for _, config, arrays in cases(framework, base):
            for f in config["files"]:
                yield framework, f, config, arrays


def check_tf_models_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded whole-model TF checkpoint (legacy/record_convert_tf_models.py): each converted layer
    against TensorFlow's numbers on the input it was fed; the layers that must stay unconverted listed as such
    (exit status 3 without --partial) and their tensors carried bit for bit."""
    import json as _json

    from compat.convert import load, load_carried
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    source = folder / config["checkpoint"]
    report = tmp / f"{name}.md"
    assert convert_cli(source, out, config["cli"] + ["--report", str(report)]) == 0
    text = report.read_text()
    assert all(layer in text for layer in config["not_converted"] + config["lstms"])
    items = _json.loads(out.with_suffix(".json").read_text())["content"]["items"]
    by_name = {i["name"]: i for i in items}
    # GRUs recorded before GRUs converted (a GRUCell, a tf.keras GRU): now converted, and checked by the converter's
    # verification; the seq2seq encoder's against TF's numbers below
    grus = [layer for layer in config["not_converted"] if "GRU" in by_name[layer]["kind"]
            and by_name[layer]["converted"] is not None]
    if [layer for layer in config["not_converted"] if layer not in grus]:
        assert convert_cli(source, tmp / f"{name}-strict.safetensors", [a for a in config["cli"] if a != "--partial"]) == 3
    modules = load(out) if config["lstms"] or grus else {}
    assert sorted(modules) == sorted(config["lstms"] + grus)
    for layer in config["lstms"]:
        y, h, c = run_module(modules[layer], arrays[f"{layer}/x"], batch_first_input=True)
        assert_close(y, arrays[f"{layer}/y"], dtype=np.float32, msg=f"{name} {layer} outputs")
        assert_close(h, arrays[f"{layer}/h"], dtype=np.float32, msg=f"{name} {layer} h_n")
        assert_close(c, arrays[f"{layer}/c"], dtype=np.float32, msg=f"{name} {layer} c_n")
    carried = load_carried(out)
    for layer in (n for n in config["not_converted"] if n not in grus):
        item = by_name[layer]
        assert item["recurrent"] and item["converted"] is None and item["reason"], item
        assert item["carried"] and set(item["carried"]) <= set(carried), item
    for layer in grus:
        item = by_name[layer]
        assert item["recurrent"] and not item["carried"], item
    listed = {n for i in items for n in i["shapes"]}
    if "variables" in config:
        assert set(config["variables"]) <= listed, sorted(set(config["variables"]) - listed)
    for key, value in arrays.items():
        if key.startswith("variables/"):
            variable = key[len("variables/"):]
            if any(variable.startswith(g + "/") for g in grus):
                continue   # converted, not carried
            assert np.array_equal(carried[variable].numpy(), value) and carried[variable].shape == value.shape, variable
    if name == "seq2seq":
        rebuild_seq2seq(carried, config["sizes"], arrays, modules.get("encoder/rnn/gru_cell"))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def rebuild_seq2seq(carried, sizes: dict, arrays: dict, encoder=None) -> None:
    """The recorded encoder-decoder recomputed in numpy from the tensors the conversion carried: nothing the
    model needs is lost. GRUCell from TF 1.x rnn_cell_impl.py ``GRUCell.call`` (r, u = sigmoid(gates); candidate
    tanh over [x, r * h]; h = u * h + (1 - u) * c) under ``dynamic_rnn(sequence_length=...)`` (state copied and
    output zero past a sequence's length); the decoder from contrib/seq2seq attention_wrapper.py
    (``AttentionWrapper.call``, ``_compute_attention``, ``BahdanauAttention``, ``_bahdanau_score``) around
    BasicLSTMCell (gates i, j, f, o, forget_bias 1)."""
    from tests.tolerances import assert_close

    w = {k: v.double().numpy() for k, v in carried.items()}
    ids_enc, ids_dec, lengths = arrays["in/ids_enc"], arrays["in/ids_dec"], arrays["in/lengths"]
    emb = w["embedding"]
    assert_close(emb[ids_enc], arrays["out/embedded"], dtype=np.float32, msg="embedding lookup")
    Bn, Tn = ids_enc.shape
    H = sizes["H_enc"]
    g = "encoder/rnn/gru_cell/"
    h = np.zeros((Bn, H))
    outs = np.zeros((Bn, Tn, H))
    if encoder is not None:
        # the GRU encoder as converted (a reset-before GRU: compat.gru.GRU, never torch.nn.GRU) on TF's lengths
        assert_gru_module(encoder, False, "seq2seq encoder")
        outs, h = run_rnn_module(encoder, emb[ids_enc], batch_first_input=True, lengths=lengths)
        h = h[0]
    for t in range(Tn if encoder is None else 0):
        x = emb[ids_enc[:, t]]
        r, u = np.split(_sigmoid(np.concatenate([x, h], 1) @ w[g + "gates/kernel"] + w[g + "gates/bias"]), 2, 1)
        cand = np.tanh(np.concatenate([x, r * h], 1) @ w[g + "candidate/kernel"] + w[g + "candidate/bias"])
        live = (t < lengths)[:, None]
        h = np.where(live, u * h + (1 - u) * cand, h)
        outs[:, t] = np.where(live, h, 0.0)
    assert_close(outs, arrays["out/encoder_outputs"], dtype=np.float32, msg="GRU encoder outputs")
    assert_close(h, arrays["out/encoder_state"], dtype=np.float32, msg="GRU encoder state")
    mask = np.arange(Tn)[None, :] < lengths[:, None]
    values = outs * mask[:, :, None]
    keys = values @ w["memory_layer/kernel"]
    d = "decoder/attention_wrapper/"
    Hd = sizes["H_dec"]
    c, m = np.zeros((Bn, Hd)), np.zeros((Bn, Hd))
    attention = np.zeros((Bn, sizes["attention"]))
    dec = []
    for t in range(ids_dec.shape[1]):
        inputs = np.concatenate([emb[ids_dec[:, t]], attention], 1)
        i, j, f, o = np.split(np.concatenate([inputs, m], 1) @ w[d + "basic_lstm_cell/kernel"]
                              + w[d + "basic_lstm_cell/bias"], 4, 1)
        c = c * _sigmoid(f + 1.0) + _sigmoid(i) * np.tanh(j)
        m = np.tanh(c) * _sigmoid(o)
        query = m @ w[d + "bahdanau_attention/query_layer/kernel"]
        score = np.sum(w[d + "bahdanau_attention/attention_v"] * np.tanh(keys + query[:, None, :]), 2)
        score = np.where(mask, score, -np.inf)
        align = np.exp(score - score.max(1, keepdims=True))
        align /= align.sum(1, keepdims=True)
        context = np.einsum("bt,bth->bh", align, values)
        attention = np.concatenate([m, context], 1) @ w[d + "attention_layer/kernel"]
        dec.append(attention)
    assert_close(np.stack(dec, 1), arrays["out/decoder_outputs"], dtype=np.float32, msg="attention decoder outputs")
    assert_close(c, arrays["out/decoder_c"], dtype=np.float32, msg="decoder cell state c")
    assert_close(m, arrays["out/decoder_h"], dtype=np.float32, msg="decoder cell state h")


# ------------------------------------------------------------------------------------------ whole models
MODEL_FRAMEWORKS = ("keras3", "tf_keras", "keras1", "keras2")


def keras_model_files(base: Path = GOLDEN_CONVERT / "keras_models"):
    """(framework, source file, --weights file or None, config, arrays) of every recorded whole Keras model."""
    for framework in MODEL_FRAMEWORKS:
        if not (base / framework / "expected.npz").exists():
            continue
        for name, config, arrays in cases(framework, base):
            for f in config["files"]:
                yield framework, name, f, None, config, arrays
            if "json" in config:
                yield framework, name, config["json"][0], config["json"][1], config, arrays


def model_inputs(arrays: dict, n: int):
    """The recorded inputs as the converted model takes them (token ids as int64)."""
    xs = []
    for k in range(n):
        x = arrays[f"x{k}"]
        xs.append(torch.from_numpy(x.astype(np.int64)) if x.dtype.kind in "iu" else torch.from_numpy(x))
    return xs


def check_keras_model(folder: Path, source: str, weights, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded whole Keras model with the command line (whole model required, its check against
    reference/keras_model.py passing), load it as one module and compare its predictions with Keras's
    ``model.predict``, float32 within 1e-5 of the output's scale."""
    from compat.convert import load

    out = tmp / (source.replace(".", "_") + ".safetensors")
    extra = ["--model", "whole"] + (["--weights", str(folder / weights)] if weights else [])
    assert convert_cli(folder / source, out, extra) == 0
    _predicts_as_recorded(load(out), config, arrays, f"{folder.name} {source}")


def check_emitted_keras_model(folder: Path, source: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded whole Keras model with ``--emit-python``, import the emitted file, load its model through
    the file's own ``load()`` and compare its predictions with Keras's ``model.predict`` (float32 tolerance)."""
    import importlib.util

    stem = source.replace(".", "_")
    model_py = tmp / f"{stem}_model.py"
    assert convert_cli(folder / source, tmp / f"{stem}_emitted", ["--emit-python", str(model_py)]) == 0
    spec = importlib.util.spec_from_file_location(f"emitted_{stem}", model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _predicts_as_recorded(module.load(), config, arrays, f"{folder.name} {source} (emitted)")


def _predicts_as_recorded(model, config: dict, arrays: dict, what: str) -> None:
    """The model's outputs on the recorded inputs against Keras's recorded predictions (float32 tolerance)."""
    from tests.tolerances import assert_close_scaled

    with torch.no_grad():
        got = model(*model_inputs(arrays, config["inputs"]))
    got = [got] if isinstance(got, torch.Tensor) else list(got)
    assert len(got) == config["outputs"]
    for k, g in enumerate(got):
        assert_close_scaled(g, arrays[f"y{k}"], dtype=np.float32, msg=f"{what} output {k}")


def run_rnn_module(module, x: np.ndarray, *, batch_first_input: bool, lengths=None, h0=None, mask=None):
    """A converted GRU's or simple RNN's (y, h_n) as numpy float64, y in the layout of ``x``: ``lengths`` as a
    PackedSequence for torch.nn.GRU / RNN, as ``lengths=`` for the core's modules (zeros allowed)."""
    p = next(module.parameters())
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(p.dtype)
    if batch_first_input != module.batch_first:
        xt = xt.transpose(0, 1)
    hx = None if h0 is None else torch.from_numpy(np.ascontiguousarray(h0)).to(p.dtype)
    with torch.no_grad():
        if lengths is not None and isinstance(module, torch.nn.RNNBase):
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=module.batch_first,
                                          enforce_sorted=False)
            y, h = module(packed, hx)
            y, _ = pad_packed_sequence(y, batch_first=module.batch_first,
                                       total_length=xt.shape[1 if module.batch_first else 0])
        elif lengths is not None:
            y, h = module(xt, hx, lengths=torch.as_tensor(lengths))
        elif mask is not None:
            y, h = module(xt, hx, mask=torch.from_numpy(mask))
        else:
            y, h = module(xt, hx)
    if batch_first_input != module.batch_first:
        y = y.transpose(0, 1)
    return y.double().numpy(), h.double().numpy()


def assert_gru_module(module, reset_after: bool, label: str) -> None:
    """A reset-before GRU (TF GRUCell, Keras reset_after=False, ONNX linear_before_reset=0) never loads as
    torch.nn.GRU, whose reset gate multiplies the recurrent product: it would run and give other numbers."""
    from compat.gru import GRU

    if not reset_after:
        assert not isinstance(module, torch.nn.GRU), f"{label}: a reset-before GRU loaded as torch.nn.GRU"
        assert isinstance(module, GRU) and module.reset_after is False, f"{label}: {type(module)}"


def check_onnx_rnn_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded ONNX GRU or RNN model (``--model auto``: the whole graph) and compare with onnxruntime's
    Y, Y_h: the whole converted model called with the graph's inputs, and its recurrent module called alone."""
    from compat.convert import load
    from compat.convert.graph import GraphModel
    from compat.frameworks.onnx.ops import RecurrentNode
    from tests.tolerances import assert_close, assert_close_scaled

    out = tmp / f"{name}.safetensors"
    assert convert_cli(folder / config["file"], out) == 0
    model = load(out)
    assert isinstance(model, GraphModel), f"{name}: not converted whole"
    (module,) = model.values()
    # the graph's node runs that very module: what is asserted of its class holds for what the model runs
    (runner,) = [m for m in model.modules() if isinstance(m, RecurrentNode)]
    assert runner.rnn is module
    if config["op"] == "GRU":
        assert_gru_module(module, bool(config["linear_before_reset"]), name)
    feeds = {"X": arrays["X"], "initial_h": arrays.get("initial_h"),
             "sequence_lens": None if config["lens"] is None else np.asarray(config["lens"], np.int32)}
    with torch.no_grad():
        Y, Y_h = model(*[torch.from_numpy(feeds[n]) for n in model.input_names])
    assert Y.dtype == Y_h.dtype == torch.float32
    assert_close_scaled(Y, arrays["Y"], msg=f"{name} whole model Y")
    assert_close_scaled(Y_h, arrays["Y_h"], msg=f"{name} whole model Y_h")
    y, h = run_rnn_module(module, arrays["X"], batch_first_input=False, lengths=config["lens"],
                          h0=arrays.get("initial_h"))
    T, dirs, B, H = arrays["Y"].shape
    assert_close(y, arrays["Y"].transpose(0, 2, 1, 3).reshape(T, B, dirs * H), msg=f"{name} Y")
    assert_close(h, arrays["Y_h"], msg=f"{name} Y_h")


def keras_rnn_files(base: Path = GOLDEN_CONVERT / "keras_rnn"):
    """(framework, file name, config, arrays) of every recorded Keras file with GRU and SimpleRNN layers."""
    for framework in ("keras3", "tf_keras"):
        for _, config, arrays in cases(framework, base):
            for f in config["files"]:
                yield framework, f, config, arrays


def check_keras_rnn_file(folder: Path, filename: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded Keras file and compare every recorded GRU / SimpleRNN layer with Keras's numbers; a
    reset-before GRU never loads as torch.nn.GRU; a stateful layer's second call starts from the first's h_n."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / (filename.replace(".", "_") + ".safetensors")
    assert convert_cli(folder / filename, out) == 0
    loaded = load(out)
    if not isinstance(loaded, dict):
        _check_whole_rnn_model(loaded, config, arrays, f"{folder.name} {filename}")
    modules = {name: loaded[name] for name in loaded}
    for layer in config["layers"]:
        m = modules[layer]
        label = f"{folder.name} {filename} {layer}"
        if isinstance(m, torch.nn.GRU) or getattr(m, "reset_after", True) is False:
            assert_gru_module(m, getattr(m, "reset_after", True), label)
        mask = None
        if "mask_value" in config:
            # Keras's Masking: a step whose features all equal mask_value is skipped (state carried)
            mask = np.any(arrays["x"] != config["mask_value"], axis=-1).astype(arrays["x"].dtype)
        y, h = run_rnn_module(m, arrays["x"], batch_first_input=True, mask=mask)
        if f"{layer}/y_last" in arrays:
            assert_close(y[:, -1], arrays[f"{layer}/y_last"], msg=f"{label} output")
            continue
        assert_close(y, arrays[f"{layer}/y"], msg=f"{label} outputs")
        if config.get("stateful"):
            y2, _ = run_rnn_module(m, arrays["x2"], batch_first_input=True, h0=h)
            assert_close(y2, arrays[f"{layer}/y2"], msg=f"{label} second call from the carried state")
        else:
            assert_close(h, arrays[f"{layer}/h"], msg=f"{label} h_n")


def check_tf1_rnn_case(folder: Path, name: str, config: dict, arrays: dict, tmp: Path) -> None:
    """Convert a recorded TF1 GRU / simple-RNN checkpoint with the command line and compare with TensorFlow's
    numbers; GRUCell and GRUBlockCell (the reset before the product) never load as torch.nn.GRU."""
    from compat.convert import load
    from tests.tolerances import assert_close

    out = tmp / f"{name}.safetensors"
    assert convert_cli(folder / config["checkpoint"], out, config["cli"]) == 0
    modules = load(out)
    assert sorted(modules) == sorted(config["layers"])
    for layer in config["layers"]:
        m = modules[layer]
        kind = config["kinds"][layer]
        if kind in ("GRUCell", "GRUBlockCell", "tf.keras GRU reset before"):
            assert_gru_module(m, False, f"{name} {layer}")
        y, h = run_rnn_module(m, arrays["x"], batch_first_input=True, lengths=config["lengths"],
                              h0=arrays.get(f"{layer}/h0"))
        dtype = arrays["x"].dtype
        assert_close(y, arrays[f"{layer}/y"], dtype=dtype, msg=f"{name} {layer} outputs")
        assert_close(h, arrays[f"{layer}/h"], dtype=dtype, msg=f"{name} {layer} h_n")


def whole_rnn_model_outputs(config: dict, arrays: dict) -> list:
    """What Keras's predict returned for a recorded GRU / SimpleRNN model (legacy/record_convert_keras_rnn.py):
    per layer the sequence output (or the last output), then the final h of each direction."""
    want = []
    for layer in config["layers"]:
        if f"{layer}/y_last" in arrays:
            want.append(arrays[f"{layer}/y_last"])
        elif config.get("stateful") or config.get("model_outputs") == "sequence":
            want.append(arrays[f"{layer}/y"])   # the model returns the sequence output only
        else:
            want += [arrays[f"{layer}/y"]] + list(arrays[f"{layer}/h"])
    return want


def _check_whole_rnn_model(model, config: dict, arrays: dict, label: str) -> None:
    """The whole converted model against Keras's predict: its outputs in the model's order (per layer the
    sequence output or last output, then the final h of each direction); a stateful model's second call starts
    from the first's final state, and reset_states() starts again from zeros."""
    from tests.tolerances import assert_close

    def run(x):
        with torch.no_grad():
            got = model(torch.from_numpy(x))
        return [g.double().numpy() for g in ([got] if isinstance(got, torch.Tensor) else got)]

    want = whole_rnn_model_outputs(config, arrays)
    got = run(arrays["x"])
    assert len(got) == len(want), f"{label}: {len(got)} outputs, Keras {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, msg=f"{label} whole model output {k}")
    if config.get("stateful"):
        (layer,) = config["layers"]
        assert_close(run(arrays["x2"])[0], arrays[f"{layer}/y2"], msg=f"{label} the stateful model's second call")
        model.reset_states()
        assert_close(run(arrays["x"])[0], arrays[f"{layer}/y"], msg=f"{label} after reset_states()")


# -- stored whole models edited field by field (the load-time checks' property tests) ---------------------------
def json_paths(obj, prefix=()):
    """Every (path, value) of a JSON-like tree (tensors are leaves)."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            yield from json_paths(v, prefix + (k,))


def load_edited(content: dict, data, junk, tmp_path_factory):
    """One field of a whole conversion's stored graph (``content["model"]``, not a tensor) replaced by a value of
    ``junk`` drawn with Hypothesis's ``data``, the conversion sealed again and loaded: ``(model, path, value)``,
    model None where load refused it with one CheckpointError naming the file (asserted here)."""
    import copy

    import torch
    from hypothesis import strategies as st

    from compat import checkpoint
    from compat.convert import load
    from compat.convert.store import KIND
    from compat.errors import CheckpointError

    content = copy.deepcopy(content)
    paths = [p for p, v in json_paths(content["model"]) if p and not isinstance(v, torch.Tensor)]
    path = data.draw(st.sampled_from(paths))
    value = data.draw(st.sampled_from(junk))
    target = content["model"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(value)
    tmp = tmp_path_factory.mktemp("edited")
    checkpoint.save(tmp / "bad", KIND, content)
    try:
        return load(tmp / "bad"), path, value
    except CheckpointError as e:
        assert str(e).startswith(str(tmp)), e
        return None, path, value
