"""``python -m compat.convert`` on files saved by the real frameworks, against what those frameworks computed.

tests/golden/convert/ holds checkpoints and model files written by TensorFlow 2.21 (tf.compat.v1),
Keras 3 (torch backend), tf-keras 2.21 and ONNX models run by onnxruntime, with the frameworks' outputs
and final states on fixed inputs (legacy/record_convert_*.py; provenance in tests/golden/README.md).
Each case is converted with the command line (its verification against reference/ must pass), loaded
with ``compat.convert.load``, and run on the recorded input: outputs and final h and c must match the
framework within the dtype's tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest

from compat.convert import load
from tests.convert_cases import GOLDEN_CONVERT, cases, convert_cli, run_module
from tests.tolerances import assert_close


def _params(framework):
    return [pytest.param(c, id=c[0]) for c in cases(framework)]


@pytest.mark.parametrize("case", _params("tf1"))
def test_tf1_checkpoint_converts_to_tensorflows_numbers(case, tmp_path):
    name, config, arrays = case
    out = tmp_path / "model.safetensors"
    assert convert_cli(GOLDEN_CONVERT / "tf1" / config["checkpoint"], out, config["cli"]) == 0
    modules = load(out)
    assert sorted(modules) == sorted(config["lstms"])
    for spec in config["lstms"]:
        y, h, c = run_module(modules[spec], arrays["x"], batch_first_input=True, lengths=config["lengths"])
        dtype = arrays["x"].dtype
        assert_close(y, arrays[f"{spec}/y"], dtype=dtype, msg=f"{name} {spec} outputs")
        assert_close(h, arrays[f"{spec}/h"], dtype=dtype, msg=f"{name} {spec} h_n")
        assert_close(c, arrays[f"{spec}/c"], dtype=dtype, msg=f"{name} {spec} c_n")


@pytest.mark.parametrize("case", _params("onnx"))
def test_onnx_node_converts_to_onnxruntimes_numbers(case, tmp_path):
    name, config, arrays = case
    out = tmp_path / "model.safetensors"
    assert convert_cli(GOLDEN_CONVERT / "onnx" / config["file"], out) == 0
    (module,) = load(out).values()
    y, h, c = run_module(module, arrays["x"], batch_first_input=False, lengths=config["lens"])
    T, dirs, B, H = arrays["Y"].shape
    assert_close(y, arrays["Y"].transpose(0, 2, 1, 3).reshape(T, B, dirs * H), msg=f"{name} Y")
    assert_close(h, arrays["Y_h"], msg=f"{name} Y_h")
    assert_close(c, arrays["Y_c"], msg=f"{name} Y_c")


def _keras_params():
    out = []
    for framework in ("keras3", "tf_keras"):
        for name, config, arrays in cases(framework):
            for f in config["files"]:
                out.append(pytest.param(framework, f, config, arrays, id=f"{framework}-{f}"))
    return out


@pytest.mark.parametrize("framework, filename, config, arrays", _keras_params())
def test_keras_file_converts_to_keras_numbers(framework, filename, config, arrays, tmp_path):
    from compat.lstm import lstm, weights_from_torch

    out = tmp_path / "model.safetensors"
    assert convert_cli(GOLDEN_CONVERT / framework / filename, out) == 0
    modules = load(out)
    assert set(config["layers"]) <= set(modules)
    x = arrays["x"]
    for layer in config["layers"]:
        m = modules[layer]
        label = f"{framework} {filename} {layer}"
        if "mask_value" in config:
            # Keras's Masking: a step whose features all equal mask_value is skipped (state carried).
            mask = np.any(x != config["mask_value"], axis=-1).astype(np.float32)
            import torch

            with torch.no_grad():
                y, (h, c) = lstm(torch.from_numpy(x), weights_from_torch(m), mask=torch.from_numpy(mask),
                                 batch_first=True)
            y, h, c = y.numpy(), h.numpy(), c.numpy()
        else:
            y, h, c = run_module(m, x, batch_first_input=True)
        if m.conversion["direction"] == "reverse":
            y = y[:, ::-1].copy()  # Keras returns a go_backwards layer's sequence reversed in time
        if f"{layer}/y_last" in arrays:
            assert_close(y[:, -1], arrays[f"{layer}/y_last"], msg=f"{label} output")
            continue
        assert_close(y, arrays[f"{layer}/y"], msg=f"{label} outputs")
        assert_close(h, arrays[f"{layer}/h"], msg=f"{label} h_n")
        assert_close(c, arrays[f"{layer}/c"], msg=f"{label} c_n")


def test_every_recorded_variant_is_covered():
    tf_variants = set()
    for _, config, _ in cases("tf1"):
        tf_variants.add(config["checkpoint"].split("/")[0])
    assert {"lstmcell_peepholes_proj_clips", "bidirectional_lengths", "multi_rnn_cell", "stack_bidirectional",
            "lstm_block_cell_peepholes_clip3", "lstm_block_fused_cell", "cudnn_canonical", "cudnn_opaque",
            "names_tf1_0", "names_tf0_12_multi", "names_tf0_12_lstmcell", "float64_lstmcell"} <= tf_variants
    onnx_cases = {c[0] for c in cases("onnx")}
    assert {"reverse", "bidirectional", "peepholes", "clip", "input_forget", "activations"} <= onnx_cases
