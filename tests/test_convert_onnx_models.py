"""Whole ONNX models: converted to one torch module, predicting what onnxruntime predicted.

The recordings (legacy/record_convert_onnx_models.py, onnxruntime) are models built with onnx's helper API
around LSTM, GRU and RNN nodes of every variant onnxruntime runs (a GRU feeding an LSTM among them), graphs of
the operators masks, clamping and heads are built from (comparisons, Where, Clip, ArgMax, Split, ...), and
PyTorch's own exports of a sentiment model with an nn.LSTM, an nn.GRU and an nn.RNN and of masked classifiers;
the converted model's outputs on the recorded inputs must equal onnxruntime's (float32: 1e-5 of the output's
scale; float64: 1e-10; integer and bool outputs exactly). What onnxruntime cannot run (``layout=1``; float64
LSTMs, GRUs and RNNs) is checked against reference/onnx_model.py (onnx's reference evaluator, LSTM nodes by
reference/onnx_lstm.py, GRU and RNN nodes by reference/onnx_rnn.py) at float64's 1e-10.
"""
from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch

from compat import checkpoint
from compat.convert import WholeModelError, convert, load
from compat.convert.graph import GraphModel
from compat.gru import GRU
from compat.lstm import LSTM
from compat.simple_rnn import RNN
from compat.convert.store import KIND
from compat.frameworks.onnx.directions import part_names
from compat.frameworks.onnx.layers import LAYERS
from compat.frameworks.onnx.ops import RecurrentNode
from tests.convert_cases import GOLDEN_CONVERT, cases, convert_cli, load_edited
from tests.tolerances import assert_close_scaled

onnx = pytest.importorskip("onnx", reason="the onnx package is in the test extra")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

FOLDER = GOLDEN_CONVERT / "onnx_models"
CASES = list(cases("onnx_models"))


def _outputs(model, arrays, config):
    xs = [torch.from_numpy(arrays[f"input{k}"]) for k in range(len(config["inputs"]))]
    with torch.no_grad():
        got = model(*xs)
    return [got] if isinstance(got, torch.Tensor) else list(got)


# what a recurrent node of each operator may run: the core's module, or torch's own where it is exact (a
# GRU with linear_before_reset 1 and standard activations; a Tanh or Relu RNN; neither reading sequence_lens)
RUNS = {"LSTM": (LSTM, torch.nn.LSTM), "GRU": (GRU, torch.nn.GRU), "RNN": (RNN, torch.nn.RNN)}


def assert_same_outputs(got, want, msg=""):
    """A floating-point output within the float tolerance of its scale; an integer or bool output (ArgMax's
    indices, a comparison's mask) equal."""
    if got.dtype.is_floating_point:
        assert_close_scaled(got, want, msg=msg)
    else:
        assert tuple(got.shape) == np.shape(want), msg
        np.testing.assert_array_equal(got.numpy(), want, err_msg=msg)


def check_case(folder, name, config, arrays, tmp_path):
    """Convert one recorded model whole and compare its predictions with onnxruntime's."""
    assert convert_cli(folder / config["file"], tmp_path / name, ["--model", "whole"]) == 0
    model = load(tmp_path / name)
    assert isinstance(model, GraphModel) and len(model.input_names) == len(config["inputs"])
    got = _outputs(model, arrays, config)
    assert len(got) == config["outputs"]
    for k, g in enumerate(got):
        assert g.dtype == torch.from_numpy(arrays[f"output{k}"]).dtype
        assert_same_outputs(g, arrays[f"output{k}"], msg=f"{name} output {k}")
    # every recurrent node runs the project's converted module of that node, of the node's own kind
    runners = [m for m in model.children() if isinstance(m, RecurrentNode)]
    assert sorted(id(m.rnn) for m in runners) == sorted(id(m) for m in model.values())
    nodes = [n for n in onnx.load(str(folder / config["file"])).graph.node if n.op_type in RUNS]
    layers = {n.name: [n.name] if n.name in model else list(part_names(n.name)) for n in nodes}
    assert sorted(m.op for m in runners) == sorted(n.op_type for n in nodes for _ in layers[n.name])
    for node in nodes:
        for name in layers[node.name]:    # a node whose directions run different activations: two layers
            module = model[name]
            assert isinstance(module, RUNS[node.op_type]), (name, type(module))
            if node.op_type == "GRU":   # linear_before_reset 0 (the default): the core's reset-before GRU
                after = any(a.name == "linear_before_reset" and a.i == 1 for a in node.attribute)
                assert isinstance(module, torch.nn.GRU) or module.reset_after == after
                assert after or not isinstance(module, torch.nn.GRU)


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in CASES])
def test_a_whole_onnx_model_predicts_what_onnxruntime_predicted(case, tmp_path):
    check_case(FOLDER, *case, tmp_path)


def test_the_recordings_cover_the_operators_and_recurrent_variants():
    covered = set()
    for _, config, _ in CASES:
        covered |= set(config["covers"])
    assert {"Gather", "Transpose", "Squeeze", "Reshape", "Concat", "MatMul", "Add", "Gemm", "Softmax", "LogSoftmax",
            "Slice", "Flatten", "ReduceMean", "Softmax-11", "Softmax-9", "Slice-9", "Unsqueeze-9"} <= covered
    assert {"bidirectional", "reverse", "peepholes", "clip", "input_forget", "activations", "sequence_lens",
            "initial_h", "initial_c", "folded weights", "float64"} <= covered
    assert {"GRU linear_before_reset 0", "GRU linear_before_reset 1", "GRU bidirectional", "GRU reverse",
            "GRU sequence_lens", "GRU initial_h", "GRU clip", "GRU activations", "GRU no bias", "RNN tanh", "RNN relu",
            "RNN bidirectional", "RNN sequence_lens", "RNN clip", "RNN initial_h", "GRU into LSTM",
            "activations per direction"} <= covered
    exports = {c["file"]: c["covers"] for _, c, _ in CASES
               if any(k.startswith("torch.onnx.export") for k in c["covers"])}
    assert len(exports) == 10
    # the opset-9 exports compute the recurrent node's weights with Slice / Concat and its initial states with
    # Expand; the exporter writes nn.GRU as a GRU node and nn.RNN as one RNN node per layer
    for name in ("torch_sentiment_opset9.onnx", "torch_gru_opset9.onnx"):
        assert {"Slice", "Concat", "Expand", "Shape"} <= set(exports[name])
    assert "GRU" in exports["torch_gru_opset14_dynamic.onnx"] and "RNN" in exports["torch_rnn_relu_opset14.onnx"]
    # pack_padded_sequence: the lengths reach the GRU's sequence_lens through Casts
    packed = onnx.load(str(FOLDER / "torch_gru_packed_opset14.onnx")).graph
    (gru,) = [n for n in packed.node if n.op_type == "GRU"]
    made_by = {o: n for n in packed.node for o in n.output}
    assert made_by[gru.input[4]].op_type == "Cast" and made_by[made_by[gru.input[4]].input[0]].input[0] == "lengths"
    # enforce_sorted=False: the batch sorted by length and put back in order
    assert {"TopK", "Range", "ReduceProd", "ScatterElements"} <= set(exports["torch_rnn_packed_unsorted_opset17.onnx"])
    # a mask from the padded ids, masked_fill, clamp and argmax around an nn.LSTM and an nn.GRU
    for name, cell in (("torch_lstm_masked_opset14.onnx", "LSTM"), ("torch_gru_masked_opset17.onnx", "GRU")):
        assert {cell, "Equal", "Not", "Where", "Clip", "ArgMax", "ReduceSum"} <= set(exports[name])
    # attention pooling: masked_fill(pad, float("-inf")) before the softmax over time; constants of ±inf
    assert {"LSTM", "masked_fill -inf", "Where", "Softmax", "ReduceSum", "Gemm"} <= set(
        exports["torch_lstm_attention_opset14.onnx"])
    assert {"Clip max +inf", "Clip min -inf", "Max -inf", "Min +inf", "Where -inf", "ConstantOfShape -inf"} <= covered
    assert {"Equal", "Not", "Greater", "LessOrEqual", "And", "Or", "Less", "GreaterOrEqual", "Where",
            "Where broadcasting", "Clip-6", "Clip-13", "Clip without min", "Clip without max", "Clip int64", "Max",
            "Min", "Sum", "Mean", "Softplus", "Softsign", "Elu", "Selu", "HardSigmoid", "Erf", "Sign", "Floor", "Ceil",
            "Split-2", "Split-13", "Split-18", "Split unequal", "Split num_outputs", "ArgMax",
            "ArgMax select_last_index", "ArgMin", "ArgMin select_last_index", "Tile", "ReduceMin", "ReduceMin-18",
            "ReduceL2", "ReduceLogSumExp", "noop_with_empty_axes"} <= covered


def test_auto_converts_the_whole_model_and_layers_the_lstms_only(tmp_path):
    source = FOLDER / "sentiment_bidirectional_mean.onnx"
    whole = convert(source, tmp_path / "auto")
    assert whole.graph is not None and all(c.ok for c in whole.checks)
    assert isinstance(load(tmp_path / "auto"), GraphModel)
    layers = convert(source, tmp_path / "layers", model="layers")
    assert layers.graph is None
    modules = load(tmp_path / "layers")
    assert isinstance(modules, dict) and list(modules) == ["bilstm"]


def _model(nodes, inputs, outputs, inits, opset=17):
    m = h.make_model(h.make_graph(nodes, "g", inputs, outputs, inits), opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _lstm_model(rng, dtype=np.float32, layout=0, direction="forward", extra_nodes=(), out="probs", lengths=False):
    """X -> LSTM (peepholes, clip, input_forget, layout) -> MatMul -> Softmax."""
    elem = TP.DOUBLE if dtype == np.float64 else TP.FLOAT
    D, H, F, C = (2 if direction == "bidirectional" else 1), 3, 2, 4
    inits = [nh.from_array(rng.uniform(-0.7, 0.7, (D, 4 * H, F)).astype(dtype), "W"),
             nh.from_array(rng.uniform(-0.7, 0.7, (D, 4 * H, H)).astype(dtype), "R"),
             nh.from_array(rng.uniform(-0.5, 0.5, (D, 8 * H)).astype(dtype), "B"),
             nh.from_array(rng.uniform(-0.5, 0.5, (D, 3 * H)).astype(dtype), "P"),
             nh.from_array(rng.uniform(-1, 1, (D * H, C)).astype(dtype), "V"),
             nh.from_array(np.array([0, 0, -1], np.int64), "flat")]
    x_shape = ["batch", "steps", F] if layout else ["steps", "batch", F]
    inputs = [h.make_tensor_value_info("X", elem, x_shape)]
    if lengths:
        inputs.append(h.make_tensor_value_info("lens", TP.INT32, ["batch"]))
    perm = [0, 1, 2, 3] if layout else [0, 2, 1, 3]       # Y to [T or B, B or T, D, H]
    nodes = [h.make_node("LSTM", ["X", "W", "R", "B", "lens" if lengths else "", "", "", "P"], ["Y"], hidden_size=H,
                         clip=2.0, input_forget=1, layout=layout, direction=direction, name="lstm"),
             h.make_node("Transpose", ["Y"], ["Yt"], perm=perm),
             h.make_node("Reshape", ["Yt", "flat"], ["seq"]),
             h.make_node("MatMul", ["seq", "V"], ["logits"], name="project"),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax"), *extra_nodes]
    return _model(nodes, inputs, [h.make_tensor_value_info(out, elem, None)], inits)


@pytest.mark.parametrize("layout, direction, dtype", [(1, "bidirectional", np.float64), (1, "forward", np.float32),
                                                      (0, "reverse", np.float64)])
def test_what_onnxruntime_cannot_run_matches_the_reference_model(tmp_path, layout, direction, dtype):
    """layout=1 and float64 LSTMs (onnxruntime's CPU LSTM refuses both) against reference/onnx_model.py."""
    path = tmp_path / "m.onnx"
    onnx.save(_lstm_model(np.random.default_rng(layout), dtype, layout, direction, lengths=True), str(path))
    conversion = convert(path, tmp_path / "out", model="whole")
    checks = [c for c in conversion.checks if c.name.startswith("model output")]
    assert checks and all(c.ok for c in conversion.checks)
    assert all(c.err64 <= 1e-10 for c in checks)
    model = load(tmp_path / "out")
    assert model.conversion["framework"] == "onnx"
    x = torch.rand((3, 5, 2) if layout else (5, 3, 2), dtype=getattr(torch, np.dtype(dtype).name)) * 2 - 1
    from reference import onnx_model

    lens = np.array([3, 0, 2], np.int32)
    want = onnx_model.run(onnx.load(str(path)), [x.numpy(), lens])[0]
    with torch.no_grad():
        got = model(x, torch.from_numpy(lens))
    assert got.dtype == x.dtype
    assert_close_scaled(got, want)


def test_a_split_node_with_a_malformed_constant_initial_state_is_refused_by_node(tmp_path, capsys):
    """A bidirectional node split by direction whose constant initial_h does not hold two directions: the whole
    model is refused naming the node and the input; --model auto converts the two layers alone."""
    rng = np.random.default_rng(3)
    proto = _one_state_model(rng, "GRU", np.float32, 0, "bidirectional",
                             activations={"activations": ["Sigmoid", "Tanh", "Sigmoid", "Relu"]})
    proto.graph.initializer.append(nh.from_array(np.zeros((1, 3, 3), np.float32), "h0_const"))
    proto.graph.node[0].input[5] = "h0_const"
    del proto.graph.input[2]
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(WholeModelError, match=r"node 0 \(GRU, 'rnn'\): input initial_h has shape \[1, 3, 3\]; a "
                                              r"bidirectional node's has 2 directions on axis 0"):
        convert(path, tmp_path / "whole", model="whole")
    assert convert_cli(path, tmp_path / "auto") == 0
    assert "warning: the whole model is not converted" in capsys.readouterr().err
    assert list(load(tmp_path / "auto")) == ["rnn/forward", "rnn/reverse"]


def _one_node(op, inputs, n_out=1, opset=17, **attrs):
    """One node whose inputs are all graph inputs (None: an optional input left out)."""
    values = [None if v is None else np.asarray(v) for v in inputs]
    elem = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE, np.dtype(np.int64): TP.INT64,
            np.dtype(np.int32): TP.INT32, np.dtype(bool): TP.BOOL}
    names = ["" if v is None else f"in{k}" for k, v in enumerate(values)]
    outs = [f"out{k}" for k in range(n_out)]
    graph = h.make_graph([h.make_node(op, names, outs, name="the_node", **attrs)], "g",
                         [h.make_tensor_value_info(n, elem[v.dtype], list(v.shape))
                          for n, v in zip(names, values) if v is not None],
                         [h.make_tensor_value_info(o, TP.UNDEFINED, None) for o in outs])
    return _model(graph.node, list(graph.input), list(graph.output), [], opset), values


@pytest.mark.parametrize("op, inputs, n_out, opset, attrs", [
    # ties: the lower index first, largest and smallest, along an inner axis; k as an input (10+)
    ("TopK", [np.array([[3., 1., 3., 2., 1.], [0., 0., 5., 5., -1.]], np.float32), np.array([3])], 2, 17, {}),
    ("TopK", [np.array([[3., 1., 3., 2., 1.], [0., 0., 5., 5., -1.]], np.float32), np.array([4])], 2, 11,
     {"largest": 0, "axis": 1}),
    ("TopK", [np.array([[4, 7, 7], [2, 2, 9]], np.int64), np.array([2])], 2, 13, {"axis": 0}),
    ("TopK", [np.array([[3., 1., 3., 2.]], np.float32)], 2, 1, {"k": 2}),                  # k an attribute
    ("ReduceProd", [np.array([[2, 3, 4], [1, 5, 6]], np.int64)], 1, 13, {"keepdims": 0}),
    ("ReduceProd", [np.array([[2., 3.], [4., .5]]), np.array([1])], 1, 18, {}),
    ("ScatterElements", [np.zeros((2, 3), np.float32), np.array([[1, -1, 0]]),
                         np.array([[5., 6., 7.]], np.float32)], 1, 13, {"axis": 0}),
    ("ScatterElements", [np.ones((2, 3)), np.array([[2, 2], [0, 1]]), np.array([[5., 6.], [7., 8.]])], 1, 18,
     {"axis": 1, "reduction": "mul"}),
    ("ScatterElements", [np.ones((2, 3)), np.array([[2, 2], [0, 1]]), np.array([[5., 6.], [7., 8.]])], 1, 18,
     {"axis": 1, "reduction": "max"}),
    ("Range", [np.array(2, np.int64), np.array(-7, np.int64), np.array(-3, np.int64)], 1, 17, {}),
    # a negative axis counts from the back of the input's rank (axis + r), r itself the whole tensor as one row
    ("Flatten", [np.arange(24.).reshape(2, 3, 4)], 1, 11, {"axis": -1}),
    ("Flatten", [np.arange(24.).reshape(2, 3, 4)], 1, 13, {"axis": -3}),
    ("Flatten", [np.arange(24.).reshape(2, 3, 4)], 1, 13, {"axis": 3}),
])
def test_sorting_and_scattering_operators_match_onnx_reference(op, inputs, n_out, opset, attrs):
    """The operators PyTorch's export of ``pack_padded_sequence(enforce_sorted=False)`` sorts and unsorts the
    batch with, against onnx's reference evaluator (Operators.md's semantics; onnxruntime's on the recordings:
    torch_rnn_packed_unsorted_opset17). Float Range accumulates as onnxruntime does, which onnx.reference does
    not: tests/legacy/test_live_onnx_models.py checks it against onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    from compat.frameworks.onnx.ops import OPS

    proto, values = _one_node(op, inputs, n_out, opset, **attrs)
    want = ReferenceEvaluator(proto).run(None, {f"in{k}": v for k, v in enumerate(values)})
    got = OPS[op]({**attrs, "__opset": opset}, *[torch.from_numpy(v) for v in values])
    assert len(got) == n_out
    for g, w in zip(got, want):
        assert g.dtype == torch.from_numpy(np.asarray(w)).dtype and tuple(g.shape) == np.shape(w)
        np.testing.assert_array_equal(g.numpy(), w)


F32 = np.array([[-2.5, -1.0, -0.5, 0.0], [0.5, 1.0, 1.5, 3.25], [-0.0, 2.0, -3.0, 0.25]], np.float32)
B = np.array([[True, False, True], [False, False, True]])
# what mask handling, clamping, activations and heads are built from: each operator's attributes and opsets,
# broadcasting, ties, optional inputs left out, unequal and num_outputs splits
OPERATOR_CASES = [
    ("Equal", [np.array([[1, 0, 2], [0, 0, 3]]), np.array(0)], 1, 13, {}),
    ("Equal", [F32, F32[1]], 1, 11, {}),
    ("Less", [F32, np.array([0.5], np.float32)], 1, 9, {}),
    ("Greater", [np.array([[1, 5], [7, 2]], np.int32), np.array([2, 5], np.int32)], 1, 13, {}),
    ("LessOrEqual", [F32.astype(np.float64), np.array([[0.0], [1.0], [2.0]])], 1, 12, {}),
    ("GreaterOrEqual", [F32, np.array(0.25, np.float32)], 1, 16, {}),
    ("Not", [B], 1, 1, {}),
    ("And", [B, np.array([True, True, False])], 1, 7, {}),
    ("Or", [B, np.array([[False], [True]])], 1, 7, {}),
    # condition, X and Y broadcast together
    ("Where", [np.array([[True], [False]]), np.array([[1., 2., 3.]], np.float32), np.array(-1., np.float32)], 1, 9, {}),
    ("Where", [B, np.array([[4, 5, 6]]), np.array([[7], [8]])], 1, 16, {}),
    # Clip: attributes before 11 (either alone; float's lowest / max by default), inputs after (either left out,
    # min above max: max everywhere), integers from 12
    ("Clip", [F32], 1, 6, {"max": 0.75}),
    ("Clip", [F32], 1, 9, {"min": -1.0}),
    ("Clip", [np.array([1e39, -1e39, 0.5])], 1, 6, {}),
    ("Clip", [F32, np.array(-0.75, np.float32)], 1, 11, {}),
    ("Clip", [F32, None, np.array(1.0, np.float32)], 1, 13, {}),
    ("Clip", [F32, np.array(2.0, np.float32), np.array(1.0, np.float32)], 1, 13, {}),
    ("Clip", [np.array([[-4, 0, 9]]), np.array(-1), np.array(5)], 1, 12, {}),
    ("Clip", [F32], 1, 13, {}),
    ("Max", [F32, np.array([0.0, 1.0, -1.0, 2.0], np.float32), np.array([[0.5], [0.75], [-4.0]], np.float32)], 1, 8,
     {}),
    ("Min", [np.array([[3, -1], [2, 8]]), np.array([2, 2])], 1, 13, {}),
    ("Sum", [F32, F32[0], np.array([[1.0], [2.0], [3.0]], np.float32)], 1, 13, {}),
    ("Sum", [F32], 1, 6, {}),
    ("Mean", [F32, np.array([1.0, 2.0, 3.0, 4.0], np.float32)], 1, 8, {}),
    ("Mean", [F32.astype(np.float64), F32.astype(np.float64) * 3, np.ones((1, 4))], 1, 13, {}),
    ("Softplus", [F32 * 6], 1, 1, {}),
    ("Softsign", [F32], 1, 1, {}),
    ("Elu", [F32], 1, 6, {}),
    ("Elu", [F32.astype(np.float64)], 1, 6, {"alpha": 0.25}),
    ("Selu", [F32], 1, 6, {}),
    ("Selu", [F32], 1, 6, {"alpha": 2.0, "gamma": 0.5}),
    ("HardSigmoid", [F32 * 4], 1, 6, {}),
    ("HardSigmoid", [F32], 1, 6, {"alpha": 0.5, "beta": 0.25}),
    ("Erf", [F32], 1, 13, {}),
    ("Sign", [F32], 1, 9, {}),
    ("Sign", [np.array([-3, 0, 7])], 1, 13, {}),
    ("Floor", [F32], 1, 6, {}),
    ("Ceil", [F32.astype(np.float64)], 1, 13, {}),
    # Split: the attribute (before 13), the input (13), equal parts, num_outputs with a smaller last part (18)
    ("Split", [F32], 3, 11, {"axis": 1, "split": [1, 0, 3]}),
    ("Split", [F32], 2, 2, {"axis": -1}),
    ("Split", [F32, np.array([2, 1])], 2, 13, {}),
    ("Split", [np.arange(14.).reshape(2, 7)], 3, 18, {"axis": 1, "num_outputs": 3}),
    ("Split", [np.arange(12.).reshape(6, 2)], 2, 18, {"num_outputs": 2}),
    # ArgMax / ArgMin: ties to the first index, or the last with select_last_index (12)
    ("ArgMax", [np.array([[1., 3., 3., 0.], [2., 2., 2., 2.]], np.float32)], 1, 11, {"axis": 1}),
    ("ArgMax", [np.array([[1., 3., 3., 0.], [2., 2., 2., 2.]], np.float32)], 1, 13,
     {"axis": -1, "keepdims": 0, "select_last_index": 1}),
    ("ArgMax", [np.array([[1, 3], [1, 0]])], 1, 12, {"select_last_index": 1}),
    ("ArgMin", [np.array([[4, 1, 1], [0, 5, 0]])], 1, 13, {"axis": 1, "keepdims": 0}),
    ("ArgMin", [np.array([[4, 1, 1], [0, 5, 0]])], 1, 13, {"axis": 1, "select_last_index": 1}),
    ("Tile", [F32[:2], np.array([2, 3])], 1, 13, {}),
    ("Tile", [np.array([[True, False]]), np.array([1, 2])], 1, 6, {}),
    # reductions: axes an attribute before 18, an input from 18; noop_with_empty_axes
    ("ReduceMin", [F32], 1, 13, {"axes": [1], "keepdims": 0}),
    ("ReduceMin", [F32], 1, 11, {}),
    ("ReduceMin", [F32, np.array([0, -1])], 1, 18, {}),
    ("ReduceMin", [F32], 1, 18, {"noop_with_empty_axes": 1}),
    ("ReduceL2", [F32], 1, 13, {"axes": [0]}),
    ("ReduceL2", [F32.astype(np.float64), np.array([-1])], 1, 18, {"keepdims": 0}),
    ("ReduceLogSumExp", [F32 * 10], 1, 11, {"axes": [1], "keepdims": 0}),
    ("ReduceLogSumExp", [F32, np.array([0])], 1, 18, {}),
]


@pytest.mark.parametrize("op, inputs, n_out, opset, attrs", OPERATOR_CASES)
def test_mask_clip_activation_split_and_reduce_operators_match_onnx_reference(op, inputs, n_out, opset, attrs):
    """Against onnx's reference evaluator (Operators.md's semantics; onnxruntime's on the recordings
    masks_and_logic, clip_activations_opset9, clip_split_reduce_opset18 and PyTorch's masked exports): the same
    dtype and shape, integer and bool results equal, floating-point ones within the float tolerance."""
    from onnx.reference import ReferenceEvaluator

    from compat.frameworks.onnx.ops import OPS

    proto, values = _one_node(op, inputs, n_out, opset, **attrs)
    want = ReferenceEvaluator(proto).run(None, {f"in{k}": v for k, v in enumerate(values) if v is not None})
    got = OPS[op]({**attrs, "__opset": opset, "__outputs": n_out},
                  *[None if v is None else torch.from_numpy(v) for v in values])
    assert len(got) == n_out
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.dtype == torch.from_numpy(w).dtype and tuple(g.shape) == w.shape
        assert_same_outputs(g, w, msg=op)


@pytest.mark.parametrize("op, inputs, n_out, opset, attrs, message", [
    ("Equal", [F32, F32], 1, 1, {"broadcast": 1}, "attribute 'broadcast' is not one the converter honours"),
    ("Clip", [F32], 1, 1, {"consumed_inputs": [0]}, "attribute 'consumed_inputs' is not one"),
    ("Tile", [F32, np.array(2), np.array(1)], 1, 5, {}, "opset: Tile before opset 6"),
    ("Selu", [F32], 1, 3, {}, "opset: Selu before opset 6 defaults alpha and gamma"),
    ("Clip", [F32], 1, 6, {"max": float("inf")}, "attribute 'max' is inf; Clip's max is of type float"),
    # ConstantOfShape's value may be ±inf (a constant of the graph), never NaN
    ("ConstantOfShape", [np.array([2, 3])], 1, 13, {"value": nh.from_array(np.array([np.nan], np.float32))},
     "attributes/value: expected fill"),
])
def test_an_operator_form_the_converter_does_not_run_is_refused_by_node(tmp_path, op, inputs, n_out, opset, attrs,
                                                                         message):
    proto, _ = _one_node(op, inputs, n_out, opset, **attrs)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(WholeModelError, match=rf"node 0 \({op}, 'the_node'\): {message}"):
        convert(path, tmp_path / "out", model="whole")


@pytest.mark.parametrize("attrs, n_out, dim, message", [
    ({}, 2, 5, "a dimension of 5 does not split into 2 equal parts"),
    ({"num_outputs": 4}, 4, 5, "a dimension of 5 does not make 4 parts of 2"),
    ({"split": [2, 2]}, 2, 5, r"parts \[2, 2\] for 2 outputs of a dimension of 5"),
])
def test_a_split_its_input_does_not_fit_raises_naming_the_operator(attrs, n_out, dim, message):
    from compat.frameworks.onnx.ops import OPS

    with pytest.raises(ValueError, match=f"^Split: {message}"):
        OPS["Split"]({**attrs, "__opset": 18 if "num_outputs" in attrs else 11, "__outputs": n_out}, torch.zeros(dim))


def test_a_split_whose_num_outputs_is_not_its_outputs_is_refused_in_the_stored_configuration():
    config = {"op": "Split", "opset": 18, "attributes": {"num_outputs": 3}, "inputs": ["x"], "outputs": 2}
    with pytest.raises(ValueError, match="^attributes/num_outputs: num_outputs is the number of outputs"):
        LAYERS["Split"].check(config, _error)


def test_topk_with_an_undefined_order_is_refused_by_node(tmp_path):
    proto, _ = _one_node("TopK", [np.zeros((2, 3), np.float32), np.array([2])], 2, 17, sorted=0)
    path = tmp_path / "topk.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(WholeModelError, match=r"'the_node'\): attributes/sorted: TopK with sorted=0"):
        convert(path, tmp_path / "out", model="whole")


def test_topk_over_a_constant_is_refused_by_node(tmp_path):
    """A TopK of a constant with a run-time k fits only the k it was exported with (a stored edit of one made
    the loaded model fail at run time): refused by node at conversion, and by field on load."""
    k_input = h.make_tensor_value_info("k", TP.INT64, [1])
    node = h.make_node("TopK", ["table", "k"], ["values", "indices"], name="the_node")
    graph = h.make_graph([node], "g", [k_input], [h.make_tensor_value_info("values", TP.FLOAT, None)],
                         [nh.from_array(np.array([3., 1., 2.], np.float32), "table")])
    path = tmp_path / "topk_const.onnx"
    onnx.save(_model(graph.node, list(graph.input), list(graph.output), list(graph.initializer), 17), str(path))
    with pytest.raises(WholeModelError, match=r"'the_node'\): inputs/0: TopK's X is a run-time input"):
        convert(path, tmp_path / "out", model="whole")
    config = {"op": "TopK", "opset": 17, "attributes": {}, "outputs": 2,
              "inputs": [{"value": [1], "shape": [1], "dtype": "int64"}, "x"]}
    with pytest.raises(ValueError, match="^inputs/0: TopK's X is a run-time input"):
        LAYERS["TopK"].check(config, _error)


# ---------------------------------------------------------------------------------------------- refusals
def _float_input(name="X", shape=("batch", 3)):
    return h.make_tensor_value_info(name, TP.FLOAT, list(shape))


def test_an_operator_outside_the_set_is_refused_by_node_and_nothing_of_it_runs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    m = _lstm_model(rng, extra_nodes=[h.make_node("Cos", ["probs"], ["e"], name="the_cos")], out="e")
    path = tmp_path / "cos.onnx"
    onnx.save(m, str(path))
    with pytest.raises(WholeModelError, match=r"node 5 \(Cos, 'the_cos'\): the operator 'Cos' is not one"):
        convert(path, tmp_path / "whole", model="whole")
    # auto: the LSTM alone, with the reason
    assert convert_cli(path, tmp_path / "auto") == 0
    err = capsys.readouterr().err
    assert "warning: the whole model is not converted" in err and "'Cos'" in err
    assert list(load(tmp_path / "auto")) == ["lstm"]


def test_a_subgraph_another_domain_or_an_unknown_attribute_is_refused_by_node(tmp_path):
    body = h.make_graph([h.make_node("Identity", ["X"], ["y"])], "body", [], [_float_input("y")])
    cases_ = {
        "If": (h.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=body, name="branch"),
               r"node 0 \(If, 'branch'\)"),
        "custom": (h.make_node("Relu", ["X"], ["y"], domain="com.example", name="mine"), "domain 'com.example'"),
        "attr": (h.make_node("Gather", ["X", "idx"], ["y"], axis=0, mode=3, name="g"),
                 "attribute: mode for operator Gather"),
        "type": (h.make_node("LeakyRelu", ["X"], ["y"], alpha=[1, 2], name="lr"),
                 r"'lr'\): onnx.checker refuses it \(Mismatched attribute type"),
        "cast": (h.make_node("Cast", ["X"], ["y"], to=TP.BFLOAT16, name="bf"), r"'bf'\): attributes/to: a data type"),
    }
    for key, (node, message) in cases_.items():
        inputs = [_float_input()] + ([h.make_tensor_value_info("cond", TP.BOOL, [])] if key == "If" else [])
        inits = [nh.from_array(np.array([0], np.int64), "idx")]
        m = _model([node], inputs, [_float_input("y")], inits)
        if key == "custom":
            m.opset_import.append(h.make_opsetid("com.example", 1))
        path = tmp_path / f"{key}.onnx"
        onnx.save(m, str(path))
        with pytest.raises(WholeModelError, match=message):
            convert(path, tmp_path / key, model="whole")


def test_a_large_integer_constant_is_refused_by_node(tmp_path):
    idx = nh.from_array(np.zeros(70_000, np.int64), "idx")
    m = _model([h.make_node("Gather", ["X", "idx"], ["y"], name="big")], [_float_input("X", (10, 2))],
               [_float_input("y")], [idx])
    path = tmp_path / "big.onnx"
    onnx.save(m, str(path))
    with pytest.raises(WholeModelError, match=r"'big'\): constant input 1 has 70,000 elements"):
        convert(path, tmp_path / "out", model="whole")


def _one_state_model(rng, op, dtype, layout, direction, outputs=("probs", "Y_h"), activations=None):
    """X, sequence_lens, initial_h -> GRU (linear_before_reset=0, clip) or RNN (Relu, clip) -> Transpose ->
    Reshape -> MatMul -> Softmax; the model outputs ``outputs`` (``probs`` and / or the node's Y_h)."""
    elem = TP.DOUBLE if dtype == np.float64 else TP.FLOAT
    G, D, H, F, C = {"GRU": 3, "RNN": 1}[op], (2 if direction == "bidirectional" else 1), 3, 2, 4
    inits = [nh.from_array(rng.uniform(-1, 1, (D, G * H, F)).astype(dtype), "W"),
             nh.from_array(rng.uniform(-1, 1, (D, G * H, H)).astype(dtype), "R"),
             nh.from_array(rng.uniform(-0.5, 0.5, (D, 2 * G * H)).astype(dtype), "B"),
             nh.from_array(rng.uniform(-1, 1, (D * H, C)).astype(dtype), "V"),
             nh.from_array(np.array([0, 0, -1], np.int64), "flat")]
    inputs = [h.make_tensor_value_info("X", elem, ["batch", "steps", F] if layout else ["steps", "batch", F]),
              h.make_tensor_value_info("lens", TP.INT32, ["batch"]),
              h.make_tensor_value_info("h0", elem, ["batch", D, H] if layout else [D, "batch", H])]
    extra = {"linear_before_reset": 0} if op == "GRU" else {"activations": ["Relu"] * D}
    extra.update(activations or {})
    nodes = [h.make_node(op, ["X", "W", "R", "B", "lens", "h0"], ["Y", "Y_h"], hidden_size=H, clip=1.5, layout=layout,
                         direction=direction, name="rnn", **extra),
             h.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 1, 2, 3] if layout else [0, 2, 1, 3]),
             h.make_node("Reshape", ["Yt", "flat"], ["seq"]),
             h.make_node("MatMul", ["seq", "V"], ["logits"]),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1)]
    return _model(nodes, inputs, [h.make_tensor_value_info(o, elem, None) for o in outputs], inits)


@pytest.mark.parametrize("op, layout, direction, dtype", [
    ("GRU", 1, "bidirectional", np.float64), ("GRU", 1, "reverse", np.float32), ("GRU", 0, "forward", np.float64),
    ("RNN", 1, "bidirectional", np.float32), ("RNN", 1, "forward", np.float64), ("RNN", 0, "reverse", np.float64)])
def test_gru_and_rnn_nodes_onnxruntime_cannot_run_match_the_reference_model(tmp_path, op, layout, direction, dtype):
    """GRU and RNN nodes inside a graph, of the kinds onnxruntime's CPU kernels refuse (``layout=1``; float64
    GRU and RNN), with sequence lengths 0 to T and an initial state: the whole converted model (the node's Y
    through the graph, its Y_h as an output) against reference/onnx_model.py (GRU / RNN nodes by
    reference/onnx_rnn.py); the reset-before GRU runs the core's GRU, never torch.nn.GRU."""
    from reference import onnx_model

    rng = np.random.default_rng(layout + len(direction))
    proto = _one_state_model(rng, op, dtype, layout, direction)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    conversion = convert(path, tmp_path / "out")                   # --model auto: converted whole
    checks = [c for c in conversion.checks if c.name.startswith("model output")]
    assert len(checks) == 2 and all(c.ok for c in conversion.checks)
    assert all(c.err64 <= 1e-10 for c in checks)
    model = load(tmp_path / "out")
    assert isinstance(model, GraphModel) and model.input_names == ["X", "lens", "h0"]
    (runner,) = [m for m in model.children() if isinstance(m, RecurrentNode)]
    assert runner.rnn is model["rnn"]
    assert not isinstance(model["rnn"], (torch.nn.GRU, torch.nn.RNN))   # it reads sequence_lens: the core runs it
    D, B, T = (2 if direction == "bidirectional" else 1), 3, 5
    x = rng.standard_normal((B, T, 2) if layout else (T, B, 2)).astype(dtype)
    lens = np.array([T, 0, 2], np.int32)
    h0 = rng.standard_normal((B, D, 3) if layout else (D, B, 3)).astype(dtype)
    want = onnx_model.run(proto, [x, lens, h0])
    with torch.no_grad():
        got = model(torch.from_numpy(x), torch.from_numpy(lens), torch.from_numpy(h0))
    assert [tuple(g.shape) for g in got] == [w.shape for w in want]
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == torch.from_numpy(x).dtype
        assert_close_scaled(g, w, msg=f"{op} output {k}")
    # a sequence of length 0: its Y_h is zeros (onnxruntime's convention, the initial state is not kept)
    y_h = got[1].transpose(0, 1) if layout else got[1]
    assert torch.equal(y_h[:, 1], torch.zeros_like(y_h[:, 1]))


@pytest.mark.parametrize("op", ["GRU", "RNN"])
def test_a_recurrent_node_whose_y_or_y_h_only_is_read(tmp_path, op):
    """A GRU / RNN node one of whose outputs no node reads or names: the graph takes the one it names."""
    from reference import onnx_model

    for outputs in (["probs"], ["Y_h"]):
        rng = np.random.default_rng(5)
        proto = _one_state_model(rng, op, np.float64, 0, "forward", outputs=outputs)
        if outputs == ["Y_h"]:   # drop the nodes after the recurrent node: it names Y_h alone
            del proto.graph.node[1:]
            proto.graph.node[0].output[0] = ""
        path = tmp_path / f"{outputs[0]}.onnx"
        onnx.save(proto, str(path))
        convert(path, tmp_path / outputs[0])
        model = load(tmp_path / outputs[0])
        feeds = [rng.standard_normal((5, 3, 2)), np.array([1, 5, 0], np.int32), rng.standard_normal((1, 3, 3))]
        (want,) = onnx_model.run(proto, feeds)
        with torch.no_grad():
            got = model(*[torch.from_numpy(f) for f in feeds])
        assert_close_scaled(got, want, msg=f"{op} {outputs}")


def test_a_node_whose_directions_run_different_activations_converts_as_two_layers(tmp_path):
    """Operators.md lists a bidirectional node's activations per direction, and onnxruntime runs each direction
    with its own (the recorded ``directions_differ`` model, against onnxruntime, in the test above); the
    modules run one set, so such a node converts as its forward and reverse layers, each with its direction's
    activations and weights, named after the node."""
    conversion = convert(FOLDER / "directions_differ.onnx", tmp_path / "layers", model="layers")
    assert all(c.ok for c in conversion.checks)
    modules = load(tmp_path / "layers")
    assert list(modules) == [f"{n}/{d}" for n in ("lstm", "gru", "rnn") for d in ("forward", "reverse")]
    assert modules["gru/forward"].cell.activations == ("sigmoid", "tanh")
    assert modules["gru/reverse"].cell.activations == (("HardSigmoid", pytest.approx(0.25), pytest.approx(0.45)),
                                                        "Softsign")
    # the LSTM's one activation_alpha is the forward HardSigmoid's; the reverse one takes onnxruntime's default
    fw, rv = modules["lstm/forward"].cell.activations[0], modules["lstm/reverse"].cell.activations[0]
    assert fw == ("HardSigmoid", pytest.approx(0.3), 0.5) and rv == ("HardSigmoid", 0.2, 0.5)
    assert isinstance(modules["rnn/forward"], torch.nn.RNN) and modules["rnn/forward"].nonlinearity == "tanh"
    assert modules["rnn/reverse"].cell.activations == ("Relu",) and modules["rnn/reverse"].direction == "reverse"
    proto = onnx.load(str(FOLDER / "directions_differ.onnx"))
    W = nh.to_array(next(t for t in proto.graph.initializer if t.name == "gru_W"))
    weight = modules["gru/reverse"].weight_ih_l0.detach().numpy()     # torch's gate rows r, z, n
    np.testing.assert_array_equal(weight[:3], W[1, 3:6])               # ONNX's z, r, h: the reverse direction's r
    assert "runs different activations in its two directions" in modules["gru/forward"].conversion["notes"][0]


@pytest.mark.parametrize("op, layout", [("GRU", 1), ("RNN", 0), ("GRU", 0)])
def test_directions_with_different_activations_onnxruntime_cannot_run_match_the_reference_model(tmp_path, op, layout):
    """The same in float64 and with ``layout=1`` (which onnxruntime refuses), the initial state given at run
    time (split by direction along its directions axis): against reference/onnx_model.py."""
    from reference import onnx_model

    acts = {"GRU": {"activations": ["Sigmoid", "Tanh", "HardSigmoid", "Softsign"], "activation_alpha": [0.4]},
            "RNN": {"activations": ["Relu", "ScaledTanh"], "activation_alpha": [0.9], "activation_beta": [1.2]}}[op]
    rng = np.random.default_rng(layout)
    proto = _one_state_model(rng, op, np.float64, layout, "bidirectional", activations=acts)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    conversion = convert(path, tmp_path / "out")
    assert all(c.ok for c in conversion.checks) and conversion.graph is not None
    model = load(tmp_path / "out")
    assert sorted(model) == ["rnn/forward", "rnn/reverse"]
    B, T = 3, 5
    x = rng.standard_normal((B, T, 2) if layout else (T, B, 2))
    lens = np.array([T, 0, 2], np.int32)
    h0 = rng.standard_normal((B, 2, 3) if layout else (2, B, 3))
    want = onnx_model.run(proto, [x, lens, h0])
    with torch.no_grad():
        got = model(torch.from_numpy(x), torch.from_numpy(lens), torch.from_numpy(h0))
    for k, (g, w) in enumerate(zip(got, want)):
        assert tuple(g.shape) == w.shape
        assert_close_scaled(g, w, msg=f"{op} output {k}")


# ------------------------------------------------------------------------------ the stored configuration
def _error(field, message):
    return ValueError(f"{field}: {message}")


GOOD = {"op": "Gemm", "opset": 13, "attributes": {"transB": 1, "alpha": 0.5}, "outputs": 1,
        "inputs": ["x", {"tensor": "input1", "shape": [2, 3], "dtype": "float32"},
                   {"value": [1, 2], "shape": [2], "dtype": "int64"}]}


@pytest.mark.parametrize("edit, field", [
    (lambda c: c["attributes"].__setitem__("code", "import os"), "attributes/code"),
    (lambda c: c["attributes"].__setitem__("alpha", "1"), "attributes/alpha"),
    (lambda c: c["attributes"].__setitem__("alpha", float("nan")), "attributes/alpha"),
    (lambda c: c.__setitem__("op", "Gather"), "op"),
    (lambda c: c.__setitem__("opset", 99), "opset"),
    (lambda c: c["inputs"].append("x"), "inputs"),
    (lambda c: c["inputs"].__setitem__(1, {"tensor": "weight", "shape": [2, 3], "dtype": "float32"}),
     "inputs/1/tensor"),
    (lambda c: c["inputs"].__setitem__(1, {"tensor": "input1", "shape": [2, 3], "dtype": "int64"}), "inputs/1"),
    (lambda c: c["inputs"].__setitem__(2, {"value": [1], "shape": [2], "dtype": "int64"}), "inputs/2/value"),
    (lambda c: c["inputs"].__setitem__(2, {"value": [0] * 70_000, "shape": [70_000], "dtype": "int64"}), "inputs/2"),
    (lambda c: c["inputs"].__setitem__(2, {"value": [1, 2], "shape": [2], "dtype": "object"}), "inputs/2"),
    (lambda c: c["inputs"].__setitem__(0, None), "inputs/0"),
    (lambda c: c.__setitem__("outputs", 2), "outputs"),
    (lambda c: c.__setitem__("extra", 1), ""),
])
def test_a_node_configuration_is_checked_field_by_field(edit, field):
    LAYERS["Gemm"].check(copy.deepcopy(GOOD), _error)
    bad = copy.deepcopy(GOOD)
    edit(bad)
    with pytest.raises(ValueError, match=f"^{field}"):
        LAYERS["Gemm"].check(bad, _error)


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.__setitem__("layout", 2), "layout"),
    (lambda c: c.__setitem__("directions", 3), "directions"),
    (lambda c: c["inputs"].__setitem__(1, {"value": [0.0], "shape": [1], "dtype": "float32"}), "inputs/1"),
    (lambda c: c["inputs"].__setitem__(0, None), "inputs/0"),
    # a constant initial state holds finite numbers (NaN and ±inf alike)
    (lambda c: c["inputs"].append({"value": [float("nan")], "shape": [1, 1, 1], "dtype": "float32"}), "inputs/5/value"),
    (lambda c: c["inputs"].append({"value": [float("-inf")], "shape": [1, 1, 1], "dtype": "float32"}),
     "inputs/5/value"),
])
def test_a_recurrent_node_configuration_is_checked(edit, field):
    good = {"op": "LSTM", "layout": 0, "directions": 1, "inputs": ["x", None, None, None, "x"]}
    LAYERS["LSTM"].check(copy.deepcopy(good), _error)
    edit(good)
    with pytest.raises(ValueError, match=f"^{field}"):
        LAYERS["LSTM"].check(good, _error)


JUNK = [None, -1, 0, 1, 2 ** 40, 1e308, float("nan"), "", "a.b", "Loop", [], {}, ["nowhere", 0], True, [0, 0, -1],
        {"value": [1], "shape": [1], "dtype": "int64"}, "x"]


# the stored graphs the property below edits: an LSTM with lengths, and PyTorch's export of an nn.RNN over
# unsorted packed sequences (TopK, Range, ReduceProd, ScatterElements); both take token ids and lengths
EDITED = {"lengths_clip_input_forget.onnx": torch.int32, "torch_rnn_packed_unsorted_opset17.onnx": torch.int64}


@pytest.fixture(scope="module", params=sorted(EDITED))
def sealed_content(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sealed")
    convert(FOLDER / request.param, tmp / "good", verify=False)
    return request.param, checkpoint.read(tmp / "good", KIND, require_seal=True).materialize(allow_nonfinite=True)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_an_edited_onnx_graph_is_refused_with_one_error_or_loads_and_runs(sealed_content, tmp_path_factory, data):
    """Any one field of the stored graph replaced by junk, the conversion sealed again: load raises
    CheckpointError naming a field, or builds a model that runs on inputs of the declared shapes."""
    source, content = sealed_content
    model, path, value = load_edited(content, data, JUNK, tmp_path_factory)
    if model is None:
        return
    ids = torch.randint(0, 25, (2, 2))
    lengths = torch.tensor([2, 0], dtype=EDITED[source])
    try:
        with torch.no_grad():
            model(ids, lengths)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:   # an edit the checks let through
        pytest.fail(f"{path} = {value!r}: loaded, then failed at run time: {type(e).__name__}: {e}")


def test_the_stored_graph_is_json_and_safetensors_only(tmp_path):
    convert(FOLDER / "torch_sentiment_opset9.onnx", tmp_path / "out")
    manifest = json.loads((tmp_path / "out.json").read_text())
    nodes = manifest["content"]["model"]["nodes"]
    kinds = [n["kind"] for n in nodes]
    # the 73 nodes of the export: the 55 that compute the LSTM's weights from its parameters are folded
    assert len(onnx.load(str(FOLDER / "torch_sentiment_opset9.onnx")).graph.node) == 73 and len(nodes) == 20
    assert kinds.count("LSTM") == 1 and "Constant" not in kinds and kinds.count("Slice") == 1   # y[:, -1]
    assert [p.suffix for p in tmp_path.iterdir()].count(".safetensors") == 1


# ------------------------------------------------------------------------------- infinite graph constants
# A whole model's graph may hold ±inf where a constant is a constant of the graph, not a trained parameter
# (compat.convert.graph.infinite_allowed, declared per operator by compat.frameworks.onnx.layers.INFINITE_INPUTS):
# PyTorch's masked_fill(mask, float("-inf")) exports Where(mask, -inf, x); a Clip's open bound. NaN never; a
# weight, a bias, an embedding or a recurrent layer's weights never.
ATTENTION = "torch_lstm_attention_opset14.onnx"


def _nodes_of(conversion, op):
    content = checkpoint.read(conversion, KIND, require_seal=True).materialize(allow_nonfinite=True)
    return content, [k for k, n in enumerate(content["model"]["nodes"]) if n["kind"] == op]


def test_the_recorded_graphs_hold_infinite_constants_and_the_conversion_keeps_them(tmp_path):
    graph = onnx.load(str(FOLDER / ATTENTION)).graph
    constants = {o: nh.to_array(a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute
                 for o in n.output}
    (where,) = [n for n in graph.node if n.op_type == "Where"]
    assert np.isneginf(constants[where.input[1]]).all()     # the exporter's masked_fill value
    convert(FOLDER / ATTENTION, tmp_path / "attention", model="whole")
    content, (k,) = _nodes_of(tmp_path / "attention", "Where")
    assert torch.isneginf(content["model"]["nodes"][k]["weights"]["input1"]).all()
    convert(FOLDER / "infinite_bounds_opset13.onnx", tmp_path / "bounds", model="whole")
    content, clips = _nodes_of(tmp_path / "bounds", "Clip")
    stored = {content["model"]["nodes"][k]["name"]: content["model"]["nodes"][k]["weights"] for k in clips}
    assert torch.isposinf(stored["clip_max_inf"]["input2"]) and torch.isneginf(stored["clip_min_inf"]["input1"])


def test_only_graph_constants_are_declared_to_hold_infinities():
    from compat.convert.graph import infinite_allowed

    def node(op, n):
        return {"op": op, "opset": 17, "attributes": {}, "outputs": 1,
                "inputs": ["x"] + [{"tensor": f"input{k}", "shape": [], "dtype": "float32"} for k in range(1, n)]}

    assert infinite_allowed(LAYERS["Where"], {**node("Where", 3), "inputs": ["x", *node("Where", 3)["inputs"][1:]]}) \
        == {"input1", "input2"}
    assert infinite_allowed(LAYERS["Clip"], node("Clip", 3)) == {"input1", "input2"}
    assert infinite_allowed(LAYERS["Max"], node("Max", 4)) == {"input1", "input2", "input3"}
    for op in ("MatMul", "Add", "Mul", "Sub", "Div", "Pow", "Gather"):
        assert infinite_allowed(LAYERS[op], node(op, 2)) == set(), op
    assert infinite_allowed(LAYERS["Gemm"], node("Gemm", 3)) == set()
    assert infinite_allowed(LAYERS["LSTM"], {"op": "LSTM", "layout": 0, "directions": 1, "inputs": ["x"]}) == set()


def _constant_model(op, value, weight=None):
    """X -> MatMul(W) -> op with a constant ``value`` (Where: the fill of the steps X > 0 leaves; Clip: the max)."""
    inits = [nh.from_array(np.full((3, 3), 0.5, np.float32) if weight is None else weight, "W"),
             nh.from_array(np.array(value, np.float32), "c"), nh.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [h.make_node("MatMul", ["X", "W"], ["xw"], name="project")]
    if op == "Where":
        nodes += [h.make_node("Greater", ["X", "zero"], ["keep"]),
                  h.make_node("Where", ["keep", "xw", "c"], ["y"], name="the_constant")]
    else:
        nodes.append(h.make_node("Clip", ["xw", "zero", "c"], ["y"], name="the_constant"))
    return _model(nodes, [_float_input()], [h.make_tensor_value_info("y", TP.FLOAT, None)], inits, 13)


@pytest.mark.parametrize("op", ["Where", "Clip"])
def test_a_nan_graph_constant_is_refused_by_name(tmp_path, op):
    from compat.convert.store import NonFiniteWeightsError

    path = tmp_path / "nan.onnx"
    onnx.save(_constant_model(op, np.nan), str(path))
    with pytest.raises(NonFiniteWeightsError, match=r"the_constant: input\d holds 1 NaN values in the source file; "
                                                    r"a constant of the graph may hold ±inf, never NaN"):
        convert(path, tmp_path / "out", model="whole")
    assert convert_cli(path, tmp_path / "cli", ["--model", "whole"]) != 0
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("cli*"))


def test_an_infinite_weight_is_refused_by_name_at_conversion(tmp_path):
    from compat.convert.store import NonFiniteWeightsError

    weight = np.full((3, 3), 0.5, np.float32)
    weight[1, 2] = -np.inf
    path = tmp_path / "matmul.onnx"
    onnx.save(_constant_model("Where", -np.inf, weight), str(path))
    with pytest.raises(NonFiniteWeightsError, match=r"project: input1 holds 1 NaN or infinite values in the source"):
        convert(path, tmp_path / "out", model="whole")
    # a recurrent layer's weight: refused as before, whole or layers alone
    rng = np.random.default_rng(3)
    m = _lstm_model(rng)
    (w,) = [t for t in m.graph.initializer if t.name == "W"]
    array = nh.to_array(w).copy()
    array[0, 1, 0] = np.inf
    w.CopyFrom(nh.from_array(array, "W"))
    path = tmp_path / "lstm.onnx"
    onnx.save(m, str(path))
    for mode in ("whole", "layers"):
        with pytest.raises(NonFiniteWeightsError, match=r"lstm: weight_ih_l0 holds 1 NaN or infinite values"):
            convert(path, tmp_path / f"out_{mode}", model=mode)


@pytest.fixture(scope="module")
def attention_content(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attention")
    convert(FOLDER / ATTENTION, tmp / "good", model="whole", verify=False)
    return _nodes_of(tmp / "good", "Where")[0]


def _tampered(content, tmp, where, edit):
    """The conversion with one tensor edited and sealed again, as a tamperer would write it."""
    content = copy.deepcopy(content)
    target = content
    for key in where[:-1]:
        target = target[key]
    edit(target[where[-1]])
    checkpoint.save(tmp / "bad", KIND, content)
    return tmp / "bad"


def _node_index(content, op, tensor="input1"):
    """The one node of ``op`` that holds the constant ``tensor``."""
    (k,) = [k for k, n in enumerate(content["model"]["nodes"]) if n["kind"] == op and tensor in n["weights"]]
    return k


def test_a_tampered_sealed_file_with_an_infinite_weight_is_refused_on_load(attention_content, tmp_path):
    """The conversion loads with its -inf constant; the same file sealed again with an inf in the MatMul weight,
    the Gemm bias, the embedding or the LSTM's weights, or a NaN in the constant, is refused naming the tensor."""
    from compat.errors import CheckpointError

    content = attention_content
    where_k = _node_index(content, "Where")
    good = load(_tampered(content, tmp_path, ["model", "nodes", where_k, "weights", "input1"], lambda t: None))
    assert torch.isneginf(good.get_submodule(content["model"]["nodes"][where_k]["name"]).input1).all()
    # the constant may hold +inf just as well (another fill value): loads
    load(_tampered(content, tmp_path, ["model", "nodes", where_k, "weights", "input1"], lambda t: t.fill_(np.inf)))
    def at(op, tensor):
        return ["model", "nodes", _node_index(content, op, tensor), "weights", tensor]

    for where, value, message in (
            (at("MatMul", "input1"), np.inf, "NaN or infinite"), (at("Gemm", "input2"), -np.inf, "NaN or infinite"),
            (at("Gather", "input0"), np.inf, "NaN or infinite"), (at("Add", "input0"), -np.inf, "NaN or infinite"),
            (["lstms", 0, "weights", "weight_hh_l0"], np.inf, "NaN or infinite"),
            (at("Where", "input1"), np.nan, r"NaN \(it may hold infinities, never NaN\)")):
        path = _tampered(content, tmp_path, where, lambda t: t.view(-1).__setitem__(0, value))
        key = "/".join(map(str, where))
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(tmp_path))}/bad.json: tensor '{key}': 1 of its "
                                                  rf"\d+ values are {message}"):
            load(path)
