"""``--emit-python`` for whole ONNX models: the written file predicts exactly what the converted model predicts.

Every whole ONNX model the suite has is converted with ``--emit-python MODEL.py``: the recorded models
(tests/golden/convert/onnx_models: helper-API graphs and PyTorch's ``torch.onnx.export`` of nn.LSTM / nn.GRU /
nn.RNN models; onnx and onnx_rnn: single LSTM, GRU and RNN nodes of every variant), the graphs
tests/test_convert_onnx_models.py builds (layout=1, float64, split directions, the sorting and scattering
operators). The file is imported with importlib, its own ``load()`` reads the tensor file, and its outputs on the
recorded (or the test's) inputs must equal ``compat.convert.load(OUT)``'s bit for bit (and, for the recordings,
onnxruntime's within the float tolerance). A node no statement can write is refused by name.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from compat.convert import load
from compat.convert.emit import EmitError, emit_python
from compat.convert.graph import GraphModel
from tests.convert_cases import GOLDEN_CONVERT, cases, convert_cli
from tests.tolerances import assert_close_scaled

onnx = pytest.importorskip("onnx", reason="the onnx package is in the test extra")
from tests.test_convert_onnx_models import (OPERATOR_CASES, _lstm_model, _one_node, _one_state_model,  # noqa: E402
                                            assert_same_outputs)


def _recorded():
    for folder in ("onnx_models", "onnx_rnn", "onnx"):
        for name, config, arrays in cases(folder):
            yield pytest.param(folder, name, config, arrays, id=f"{folder}-{name}")


def _feeds(folder, model, config, arrays):
    if folder == "onnx_models":
        return [torch.from_numpy(arrays[f"input{k}"]) for k in range(len(config["inputs"]))]
    named = {"X": arrays.get("X", arrays.get("x")), "initial_h": arrays.get("initial_h"),
             "initial_c": arrays.get("initial_c"),
             "sequence_lens": None if config["lens"] is None else np.asarray(config["lens"], np.int32)}
    return [torch.from_numpy(named[n]) for n in model.input_names]


def _import(path):
    spec = importlib.util.spec_from_file_location(f"emitted_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(model, feeds):
    with torch.no_grad():
        got = model(*feeds)
    return [got] if isinstance(got, torch.Tensor) else list(got)


def assert_emitted_equals_loaded(conversion, path, feeds):
    """The file at ``path`` (written from ``conversion``) predicts exactly what the loaded conversion predicts."""
    loaded = load(conversion)
    assert isinstance(loaded, GraphModel)
    emitted = _import(path).load()
    assert not any(isinstance(m, GraphModel) for m in emitted.modules())
    want, got = _outputs(loaded, feeds), _outputs(emitted, feeds)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, w.dtype, g.shape, w.shape)
        assert torch.equal(g, w), f"output {k} differs by {(g.double() - w.double()).abs().max().item()}"
    return got


@pytest.mark.parametrize("folder, name, config, arrays", list(_recorded()))
def test_emitted_python_of_a_recorded_onnx_model_predicts_exactly_as_the_conversion(folder, name, config, arrays,
                                                                                      tmp_path):
    model_py = tmp_path / f"{name}_model.py"
    assert convert_cli(GOLDEN_CONVERT / folder / config["file"], tmp_path / name, ["--emit-python", str(model_py)]) == 0
    text = model_py.read_text()
    compile(text, str(model_py), "exec")
    assert "import onnx" not in text and "onnx.load" not in text       # nothing of the source's framework runs
    got = assert_emitted_equals_loaded(tmp_path / name, model_py, _feeds(folder, load(tmp_path / name), config, arrays))
    if folder == "onnx_models":      # and what onnxruntime computed
        for k, g in enumerate(got):
            assert_same_outputs(g, arrays[f"output{k}"], msg=f"{name} output {k}")
    else:
        assert_close_scaled(got[0], arrays["Y"], msg=f"{name} Y")


def test_emitted_python_reads_as_the_onnx_graph(tmp_path):
    """The PyTorch export of a sentiment model at opset 9: Gather of the embedding (a buffer of the model),
    the LSTM through the converted module, Softmax-9 flattening to 2-D, Slice-9 bounds, all as literals."""
    model_py = tmp_path / "sentiment.py"
    assert convert_cli(GOLDEN_CONVERT / "onnx_models" / "torch_sentiment_opset9.onnx", tmp_path / "conv",
                       ["--emit-python", str(model_py)]) == 0
    text = model_py.read_text()
    assert "self.register_buffer(" in text and "nn.LSTM(" in text
    assert ".shape[:1].numel(), -1), 1).reshape(" in text          # Softmax before opset 13
    assert "OnnxNode" not in text and "RecurrentNode" not in text and "compat.frameworks" not in text


def test_an_emitted_model_loads_its_infinite_graph_constant(tmp_path):
    """PyTorch's export of masked_fill(pad, float("-inf")) before a softmax: the Where's -inf value is a buffer of the
    emitted model, loaded by its own load() from the tensor file as it was converted (not refused, not made finite)."""
    model_py = tmp_path / "attention.py"
    assert convert_cli(GOLDEN_CONVERT / "onnx_models" / "torch_lstm_attention_opset14.onnx", tmp_path / "conv",
                       ["--emit-python", str(model_py)]) == 0
    text = model_py.read_text()
    assert "torch.where(" in text
    emitted = _import(model_py).load()
    infinite = {name: b for name, b in emitted.named_buffers() if torch.isinf(b).any()}
    assert len(infinite) == 1 and torch.isneginf(next(iter(infinite.values()))).all(), sorted(infinite)
    assert all(torch.isfinite(p).all() for p in emitted.parameters())


def _save(proto, path):
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("layout, direction, dtype", [(1, "bidirectional", np.float64), (1, "forward", np.float32),
                                                      (0, "reverse", np.float64)])
def test_emitted_python_of_lstm_graphs_onnxruntime_cannot_run(tmp_path, layout, direction, dtype):
    proto = _lstm_model(np.random.default_rng(layout), dtype, layout, direction, lengths=True)
    path = _save(proto, tmp_path / "m.onnx")
    assert convert_cli(path, tmp_path / "out", ["--emit-python", str(tmp_path / "lstm_model.py")]) == 0
    x = torch.rand((3, 5, 2) if layout else (5, 3, 2), dtype=getattr(torch, np.dtype(dtype).name)) * 2 - 1
    got = assert_emitted_equals_loaded(tmp_path / "out", tmp_path / "lstm_model.py",
                                       [x, torch.tensor([3, 0, 2], dtype=torch.int32)])
    assert got[0].dtype == x.dtype


@pytest.mark.parametrize("op, layout, direction, dtype", [
    ("GRU", 1, "bidirectional", np.float64), ("GRU", 0, "forward", np.float32), ("RNN", 1, "reverse", np.float64),
    ("RNN", 0, "bidirectional", np.float32)])
def test_emitted_python_of_gru_and_rnn_graphs_with_lengths_and_initial_states(tmp_path, op, layout, direction, dtype):
    rng = np.random.default_rng(7)
    path = _save(_one_state_model(rng, op, dtype, layout, direction), tmp_path / "m.onnx")
    assert convert_cli(path, tmp_path / "out", ["--emit-python", str(tmp_path / "rnn_model.py")]) == 0
    D, B, T = (2 if direction == "bidirectional" else 1), 3, 5
    feeds = [rng.standard_normal((B, T, 2) if layout else (T, B, 2)).astype(dtype), np.array([T, 0, 2], np.int32),
             rng.standard_normal((B, D, 3) if layout else (D, B, 3)).astype(dtype)]
    assert_emitted_equals_loaded(tmp_path / "out", tmp_path / "rnn_model.py", [torch.from_numpy(f) for f in feeds])


@pytest.mark.parametrize("op, inputs, n_out, opset, attrs", [
    ("TopK", [np.array([[3., 1., 3., 2., 1.], [0., 0., 5., 5., -1.]], np.float32), np.array([3])], 2, 17, {}),
    ("TopK", [np.array([[3., 1., 3., 2., 1.], [0., 0., 5., 5., -1.]], np.float32), np.array([4])], 2, 11,
     {"largest": 0, "axis": 1}),
    ("TopK", [np.array([[3., 1., 3., 2.]], np.float32)], 2, 1, {"k": 2}),
    ("ReduceProd", [np.array([[2, 3, 4], [1, 5, 6]], np.int64)], 1, 13, {"keepdims": 0}),
    ("ReduceProd", [np.array([[2., 3.], [4., .5]]), np.array([1])], 1, 18, {}),
    ("ReduceMean", [np.array([[2., 3.], [4., .5]]), np.array([0, -1])], 1, 18, {"keepdims": 0}),
    ("ScatterElements", [np.zeros((2, 3), np.float32), np.array([[1, -1, 0]]),
                         np.array([[5., 6., 7.]], np.float32)], 1, 13, {"axis": 0}),
    ("ScatterElements", [np.ones((2, 3)), np.array([[2, 2], [0, 1]]), np.array([[5., 6.], [7., 8.]])], 1, 18,
     {"axis": 1, "reduction": "mul"}),
    ("Gather", [np.arange(12.).reshape(3, 4), np.array([[-1, 0], [2, 1]])], 1, 13, {"axis": -1}),
    ("Unsqueeze", [np.arange(6.).reshape(2, 3)], 1, 11, {"axes": [-1, -3]}),
    ("Squeeze", [np.arange(3.).reshape(1, 3, 1)], 1, 11, {"axes": [0, -1]}),
    ("Flatten", [np.arange(24.).reshape(2, 3, 4)], 1, 11, {"axis": -2}),
    ("Softmax", [np.arange(24.).reshape(2, 3, 4)], 1, 11, {"axis": -2}),
])
def test_emitted_python_of_single_operators_with_run_time_inputs(tmp_path, op, inputs, n_out, opset, attrs):
    proto, values = _one_node(op, inputs, n_out, opset, **attrs)
    path = _save(proto, tmp_path / "m.onnx")
    assert convert_cli(path, tmp_path / "out", ["--emit-python", str(tmp_path / "op_model.py"), "--no-verify"]) == 0
    assert_emitted_equals_loaded(tmp_path / "out", tmp_path / "op_model.py",
                                 [torch.from_numpy(v) for v in values if v is not None])


# a Split whose sizes are a graph input does not run on the random sizes the conversion tries the model with
@pytest.mark.parametrize("op, inputs, n_out, opset, attrs", [c for c in OPERATOR_CASES if c[0] != "Split" or
                                                             len(c[1]) == 1])
def test_emitted_python_of_mask_clip_activation_split_and_reduce_operators(tmp_path, op, inputs, n_out, opset, attrs):
    """Comparisons, logic, Where, Clip, Max / Min / Sum / Mean, the activations, Split, ArgMax / ArgMin, Tile and
    the reductions with every input at run time (their constant forms: the recordings above)."""
    test_emitted_python_of_single_operators_with_run_time_inputs(tmp_path, op, inputs, n_out, opset, attrs)


def test_a_node_no_statement_can_write_is_refused_by_name_and_no_file_is_written(tmp_path, capsys):
    """Range with its start a run-time input: its type decides between torch.arange and onnxruntime's
    value-by-value accumulation of floating-point values; the command names the node and the reason (exit 2),
    writes no Python file, and the conversion itself (written) runs the node."""
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    graph = h.make_graph([h.make_node("Range", ["start", "limit", "delta"], ["y"], name="the_node")], "g",
                         [h.make_tensor_value_info(n, TP.INT64, []) for n in ("start", "limit")],
                         [h.make_tensor_value_info("y", TP.INT64, None)],
                         [nh.from_array(np.array(-3, np.int64), "delta")])
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    proto.ir_version = 8
    values = [np.array(2, np.int64), np.array(-7, np.int64)]
    path = _save(proto, tmp_path / "m.onnx")
    model_py = tmp_path / "range_model.py"
    assert convert_cli(path, tmp_path / "out", ["--emit-python", str(model_py)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --emit-python: ")
    assert "node 0 (Range, 'the_node')" in err[0] and "accumulates" in err[0]
    assert not model_py.exists()
    with pytest.raises(EmitError, match=r"node 0 \(Range, 'the_node'\): Range whose start"):
        emit_python(tmp_path / "out.json", model_py)
    with torch.no_grad():
        assert load(tmp_path / "out")(*[torch.from_numpy(v) for v in values]).tolist() == [2, -1, -4]
