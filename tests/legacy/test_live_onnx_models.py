"""Whole ONNX models against live onnxruntime (``tox -e legacy-convert``).

The recorder (legacy/record_convert_onnx_models.py) runs again with other weights and inputs, PyTorch's
exports included; then random models (an embedding or float input, an LSTM, GRU or RNN node of a random
variant (a bidirectional node's activations may differ between its directions), constant or run-time initial
states, a random head) are built with onnx's helper API, run by onnxruntime, converted whole and compared; and
the activations, Clip, ArgMax / ArgMin and Split over random values.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compat.convert import convert, load
from compat.errors import CheckpointError
from tests.convert_cases import cases
from tests.test_convert_onnx_models import assert_same_outputs, check_case
from tests.tolerances import assert_close_scaled

from .conftest import LEGACY

# collected only where LEGACY_FRAMEWORKS names onnxruntime (tests/legacy/conftest.py): a failed import is an error
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402


def test_live_recorder_with_other_weights(tmp_path):
    out = tmp_path / "onnx_models"
    proc = subprocess.run([sys.executable, str(LEGACY / "record_convert_onnx_models.py"), "--out", str(out),
                           "--seed", "7"], cwd=LEGACY, env=dict(os.environ), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = list(cases("onnx_models", tmp_path))
    assert len(found) >= 14
    for case in found:
        check_case(out, *case, tmp_path)


ACTIVATIONS = {"LSTM": (["Sigmoid", "HardSigmoid"], ["Tanh", "Softsign", "Relu"], ["Tanh", "Softsign"]),
               "GRU": (["Sigmoid", "HardSigmoid"], ["Tanh", "Softsign", "Relu", "LeakyRelu", "ScaledTanh"]),
               "RNN": (["Tanh", "Relu", "Softsign", "LeakyRelu", "Elu", "ScaledTanh", "Affine"],)}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


@st.composite
def models(draw):
    """(ModelProto, feeds) of a random whole model around one LSTM, GRU or RNN node of a random variant."""
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    op = draw(st.sampled_from(["LSTM", "GRU", "RNN"]))
    G = GATES[op]
    direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]))
    D = 2 if direction == "bidirectional" else 1
    H, E, B, T = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    embed = draw(st.booleans())
    f = lambda *s, scale=0.8: rng.uniform(-scale, scale, s).astype(np.float32)  # noqa: E731
    inits = [nh.from_array(f(D, G * H, E), "W"), nh.from_array(f(D, G * H, H), "R")]
    roles = ["W", "R", "", "", "", "", ""]
    attrs = dict(hidden_size=H, direction=direction)
    if draw(st.booleans()):
        inits.append(nh.from_array(f(D, 2 * G * H, scale=0.5), "B"))
        roles[2] = "B"
    if op == "LSTM" and draw(st.booleans()):
        inits.append(nh.from_array(f(D, 3 * H, scale=0.5), "P"))
        roles[6] = "P"
    if op == "GRU" and draw(st.booleans()):
        attrs["linear_before_reset"] = 1
    if draw(st.booleans()):
        attrs["clip"] = draw(st.floats(0.3, 3.0))
    if op == "LSTM" and draw(st.booleans()):
        attrs["input_forget"] = 1
    if draw(st.booleans()):
        # one set per direction: a bidirectional node's may differ (in their functions or only their alphas)
        attrs["activations"] = [draw(st.sampled_from(names)) for _ in range(D) for names in ACTIVATIONS[op]]
        if draw(st.booleans()):
            attrs["activations"] = attrs["activations"][:len(ACTIVATIONS[op])] * D
        takes = sum(a in ("LeakyRelu", "ScaledTanh", "Elu", "Affine", "HardSigmoid") for a in attrs["activations"])
        alphas = draw(st.lists(st.floats(0.1, 1.5), max_size=takes))
        takes = sum(a in ("ScaledTanh", "Affine", "HardSigmoid") for a in attrs["activations"])
        betas = draw(st.lists(st.floats(0.1, 1.5), max_size=takes))
        # consumed in order by the functions that take them, onnxruntime's defaults once a list runs out
        attrs.update({k: v for k, v in (("activation_alpha", alphas), ("activation_beta", betas)) if v})
    inputs, feeds, nodes = [], {}, []
    initial = draw(st.sampled_from([None, "constant", "input"]))
    batch = B if initial == "constant" else "batch"     # constant initial states fix the batch size
    if embed:
        V = draw(st.integers(2, 20))
        inits.append(nh.from_array(f(V, E, scale=1.5), "table"))
        inputs.append(h.make_tensor_value_info("ids", TP.INT64, [batch, "steps"]))
        feeds["ids"] = rng.integers(0, V, (B, T))
        nodes += [h.make_node("Gather", ["table", "ids"], ["emb"]),
                  h.make_node("Transpose", ["emb"], ["X"], perm=[1, 0, 2])]
    else:
        inputs.append(h.make_tensor_value_info("X", TP.FLOAT, ["steps", batch, E]))
        feeds["X"] = f(T, B, E, scale=1.5)
    if draw(st.booleans()):
        roles[3] = "lens"
        inputs.append(h.make_tensor_value_info("lens", TP.INT32, [batch]))
        feeds["lens"] = rng.integers(0, T + 1, B).astype(np.int32)
    for k, state in enumerate(["h0", "c0"] if op == "LSTM" else ["h0"]):
        if initial == "constant":
            inits.append(nh.from_array(f(D, B, H), state))
        elif initial == "input":
            inputs.append(h.make_tensor_value_info(state, TP.FLOAT, [D, batch, H]))
            feeds[state] = f(D, B, H)
        roles[4 + k] = state if initial else ""
    while roles[-1] == "":
        roles.pop()
    state = "Y_c" if op == "LSTM" else "Y_h"
    nodes.append(h.make_node(op, ["X", *roles], ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2], name="rnn",
                             **attrs))
    C = draw(st.integers(1, 4))
    head = draw(st.sampled_from(["state", "sequence"]))
    if head == "state":
        inits += [nh.from_array(f(C, D * H), "Wd"), nh.from_array(f(C), "bd")]
        nodes += [h.make_node("Transpose", ["Y_h"], ["hb"], perm=[1, 0, 2]),
                  h.make_node("Flatten", ["hb"], ["hf"], axis=1),
                  h.make_node("Gemm", ["hf", "Wd", "bd"], ["logits"], transB=1),
                  h.make_node("Softmax", ["logits"], ["out"], axis=-1)]
    else:
        inits += [nh.from_array(f(D * H, C), "Wd"), nh.from_array(f(C), "bd"),
                  nh.from_array(np.array([0, 0, -1], np.int64), "shape")]
        nodes += [h.make_node("Transpose", ["Y"], ["Yt"], perm=[2, 0, 1, 3]),
                  h.make_node("Reshape", ["Yt", "shape"], ["seq"]),
                  h.make_node("MatMul", ["seq", "Wd"], ["mm"]), h.make_node("Add", ["mm", "bd"], ["logits"]),
                  h.make_node("LogSoftmax", ["logits"], ["out"], axis=-1)]
    outputs = [h.make_tensor_value_info("out", TP.FLOAT, None), h.make_tensor_value_info(state, TP.FLOAT, None)]
    model = h.make_model(h.make_graph(nodes, "random", inputs, outputs, inits),
                         opset_imports=[h.make_opsetid("", draw(st.sampled_from([13, 14, 17])))])
    model.ir_version = 8
    return model, feeds


@settings(max_examples=90, deadline=None)
@given(case=models())
def test_random_whole_models_against_live_onnxruntime(case, tmp_path_factory):
    model, feeds = case
    tmp = tmp_path_factory.mktemp("random")
    path = tmp / "m.onnx"
    onnx.save(model, str(path))
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    conversion = convert(path, tmp / "out", model="whole")
    assert all(c.ok for c in conversion.checks), conversion.checks
    converted = load(tmp / "out")
    with torch.no_grad():
        got = converted(*[torch.from_numpy(v) for v in feeds.values()])
    for g, w in zip(got, want):
        assert_close_scaled(g, w)


@settings(max_examples=40, deadline=None)
@given(start=st.floats(-5, 5, width=32), steps=st.integers(0, 200), delta=st.floats(0.0625, 2, width=32),
       down=st.booleans(), ties=st.lists(st.integers(0, 3), min_size=1, max_size=12))
def test_range_and_topk_against_live_onnxruntime(start, steps, delta, down, ties):
    """Float Range accumulates (onnxruntime's range.cc; onnx.reference computes np.arange instead), and TopK
    breaks ties by the lower index, as onnxruntime runs them."""
    from compat.frameworks.onnx.ops import OPS

    delta = -delta if down else delta
    limit = np.float32(start) + np.float32(steps * delta)
    graph = h.make_graph([h.make_node("Range", ["a", "b", "c"], ["r"]),
                          h.make_node("TopK", ["v", "k"], ["top", "at"])], "g",
                         [h.make_tensor_value_info(n, TP.FLOAT, []) for n in "abc"]
                         + [h.make_tensor_value_info("v", TP.FLOAT, [len(ties)]),
                            h.make_tensor_value_info("k", TP.INT64, [1])],
                         [h.make_tensor_value_info(n, t, None) for n, t in (("r", TP.FLOAT), ("top", TP.FLOAT),
                                                                              ("at", TP.INT64))])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    feeds = {"a": np.array(start, np.float32), "b": np.array(limit, np.float32), "c": np.array(delta, np.float32),
             "v": np.array(ties, np.float32), "k": np.array([len(ties)])}
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    got = [*OPS["Range"]({"__opset": 17}, t["a"], t["b"], t["c"]), *OPS["TopK"]({"__opset": 17}, t["v"], t["k"])]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=9), ties=st.lists(st.integers(0, 2),
       min_size=1, max_size=9), parts=st.integers(1, 4), opset=st.sampled_from([13, 18]))
def test_activations_clip_split_and_argmax_against_live_onnxruntime(values, ties, parts, opset):
    """The activations over a wide range (Softplus without overflow, Selu, Elu, HardSigmoid, Erf, ...), Clip with
    min above max, ArgMax / ArgMin over ties with select_last_index, and Split into equal parts (num_outputs from
    opset 18, a smaller last part) as onnxruntime runs them, through the converted model."""
    x = np.array(values, np.float32)
    t = np.array(ties, np.int64)
    if opset < 18 and len(values) % parts:
        parts = 1
    nodes = [h.make_node(op, ["x"], [op], **attrs) for op, attrs in (
                 ("Softplus", {}), ("Softsign", {}), ("Elu", {"alpha": 0.5}), ("Selu", {}), ("Erf", {}),
                 ("HardSigmoid", {}), ("Sign", {}), ("Floor", {}), ("Ceil", {}))]
    nodes.append(h.make_node("HardSigmoid", ["x"], ["HardSigmoid_2"], alpha=0.3, beta=0.6))
    nodes += [h.make_node("Clip", ["x", "hi", "lo"], ["Clip"]),
              h.make_node("ArgMax", ["t"], ["ArgMax"], select_last_index=1),
              h.make_node("ArgMin", ["t"], ["ArgMin"], keepdims=0),
              h.make_node("Split", ["x"], [f"part{k}" for k in range(parts)],
                          **({"num_outputs": parts} if opset >= 18 else {}))]
    outputs = [n.output for n in nodes]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", TP.FLOAT, [len(values)]),
                                      h.make_tensor_value_info("t", TP.INT64, [len(ties)])],
                         [h.make_tensor_value_info(o, TP.INT64 if o.startswith("Arg") else TP.FLOAT, None)
                          for out in outputs for o in out],
                         [nh.from_array(np.array(1.5, np.float32), "hi"),
                          nh.from_array(np.array(-2., np.float32), "lo")])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    try:
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x, "t": t})
    except ort.capi.onnxruntime_pybind11_state.Fail as e:      # a last part below 0: refused by both
        assert "negative final split" in str(e)
        want = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, str(path))
        convert(path, Path(tmp) / "out", model="whole", verify=False)
        if want is None:   # refused by both: the conversion's inputs are declared, so its load-time probe refuses it
            with pytest.raises(CheckpointError, match=r"does not run on inputs of its declared shapes \(ValueError: "
                               f"Split: a dimension of {len(values)} does not make {parts} parts"):
                load(Path(tmp) / "out")
            return
        converted = load(Path(tmp) / "out")
        with torch.no_grad():
            got = converted(torch.from_numpy(x), torch.from_numpy(t))
    for g, w, name in zip(got, want, [o for out in outputs for o in out]):
        assert_same_outputs(g, w, msg=name)
