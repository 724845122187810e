"""The ONNX backend node test cases for LSTM, GRU and RNN, through ``compat.convert``.

The ``onnx`` package ships the generators of its backend node tests (onnx/backend/test/case/node/lstm.py:
``test_lstm_defaults``, ``test_lstm_with_initial_bias``, ``test_lstm_with_peepholes``,
``test_lstm_batchwise``, ...; gru.py, rnn.py likewise), whose expected outputs come from onnx's own numpy implementation. Each
generator is run here with its ``expect`` captured; the node becomes a model file (weights as
initializers, the rest as graph inputs), is converted, and the module must give the expected outputs.
"""
from __future__ import annotations

import pytest
import torch

from compat.convert import load
from tests.convert_cases import convert_cli
from tests.tolerances import assert_close

onnx = pytest.importorskip("onnx", reason="onnx is in the test extra (pip install legacy-lstm[test])")


def _cases(op: str = "LSTM"):
    import importlib

    generators = importlib.import_module(f"onnx.backend.test.case.node.{op.lower()}")
    captured = []

    def expect(node, inputs, outputs, name, **kwargs):
        captured.append((name, node, inputs, outputs))

    original = generators.expect
    generators.expect = expect
    try:
        for attr in sorted(dir(getattr(generators, op))):
            if attr.startswith("export"):
                getattr(getattr(generators, op), attr)()
    finally:
        generators.expect = original
    return captured


CASES = _cases()


def test_the_onnx_generators_cover_the_documented_cases():
    names = {c[0] for c in CASES}
    assert {"test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
            "test_lstm_batchwise"} <= names


def _model(node, inputs):
    from onnx import helper, numpy_helper

    inits, graph_inputs, feeds = [], [], {}
    for role, name, value in zip(("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"), node.input, inputs):
        if not name:
            continue
        if role in ("W", "R", "B", "P"):
            inits.append(numpy_helper.from_array(value, name))
        else:
            feeds[role] = value
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                              list(value.shape)))
    outs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in node.output if n]
    graph = helper.make_graph([node], "case", graph_inputs, outs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), feeds


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_onnx_backend_case_through_the_converter(case, tmp_path):
    name, node, inputs, outputs = case
    model, feeds = _model(node, inputs)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "model.safetensors"
    assert convert_cli(path, out) == 0
    (module,) = load(out).values()
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    x = torch.from_numpy(feeds["X"])
    hx = None
    if "initial_h" in feeds:
        h0, c0 = (torch.from_numpy(feeds[k]) for k in ("initial_h", "initial_c"))
        if layout:
            h0, c0 = h0.transpose(0, 1), c0.transpose(0, 1)
        hx = (h0.contiguous(), c0.contiguous())
    with torch.no_grad():
        y, (h, c) = module(x, hx)
    got = {}
    if layout:   # Y [B, T, dirs, H], Y_h [B, dirs, H]
        B, T = y.shape[:2]
        got["Y"] = y.reshape(B, T, -1, module.hidden_size)
        got["Y_h"], got["Y_c"] = h.transpose(0, 1), c.transpose(0, 1)
    else:        # Y [T, dirs, B, H]
        T, B = y.shape[:2]
        got["Y"] = y.reshape(T, B, -1, module.hidden_size).transpose(1, 2)
        got["Y_h"], got["Y_c"] = h, c
    roles = [r for r, n in zip(("Y", "Y_h", "Y_c"), node.output) if n]
    assert len(roles) == len(outputs)
    for role, expected in zip(roles, outputs):
        assert_close(got[role], expected, msg=f"{name} {role}")


GRU_RNN_CASES = _cases("GRU") + _cases("RNN")


def test_the_onnx_gru_and_rnn_generators_cover_the_documented_cases():
    names = {c[0] for c in GRU_RNN_CASES}
    assert {"test_gru_defaults", "test_gru_with_initial_bias", "test_gru_seq_length", "test_gru_batchwise",
            "test_simple_rnn_defaults", "test_simple_rnn_with_initial_bias", "test_simple_rnn_batchwise"} <= names


@pytest.mark.parametrize("case", GRU_RNN_CASES, ids=[c[0] for c in GRU_RNN_CASES])
def test_onnx_backend_gru_and_rnn_case_through_the_converter(case, tmp_path):
    """onnx's own numpy GRU (linear_before_reset 0 by default: never torch.nn.GRU) and RNN, every layout."""
    name, node, inputs, outputs = case
    model, feeds = _model(node, inputs)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "model.safetensors"
    assert convert_cli(path, out) == 0
    (module,) = load(out).values()
    lbr = next((a.i for a in node.attribute if a.name == "linear_before_reset"), 0)
    if node.op_type == "GRU" and not lbr:
        assert not isinstance(module, torch.nn.GRU) and module.reset_after is False
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    x = torch.from_numpy(feeds["X"])
    h0 = None
    if "initial_h" in feeds:
        h0 = torch.from_numpy(feeds["initial_h"])
        h0 = (h0.transpose(0, 1) if layout else h0).contiguous()
    with torch.no_grad():
        y, h = module(x, h0)
    if layout:   # Y [B, T, dirs, H], Y_h [B, dirs, H]
        B, T = y.shape[:2]
        got = {"Y": y.reshape(B, T, -1, module.hidden_size), "Y_h": h.transpose(0, 1)}
    else:        # Y [T, dirs, B, H]
        T, B = y.shape[:2]
        got = {"Y": y.reshape(T, B, -1, module.hidden_size).transpose(1, 2), "Y_h": h}
    roles = [r for r, n in zip(("Y", "Y_h"), node.output) if n]
    assert len(roles) == len(outputs)
    for role, expected in zip(roles, outputs):
        assert_close(got[role], expected, msg=f"{name} {role}")
