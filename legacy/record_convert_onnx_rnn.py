"""ONNX GRU and RNN nodes with random weights, saved as .onnx files and run by onnxruntime, for the converter.

    python legacy/record_convert_onnx_rnn.py [--out tests/golden/convert/onnx_rnn]

One model per case: the GRU with linear_before_reset 0 and 1, without bias, every direction, clip, other
activations (with and without activation_alpha / activation_beta), sequence_lens with lengths of 0, initial_h;
the RNN likewise. ``layout=1`` is not recorded: onnxruntime's CPU GRU and RNN refuse it as its LSTM does
("Batchwise recurrent operations (layout == 1) are not supported"); nor is float64 (its CPU kernels are float32).
``expected.npz`` holds each case's input (and initial state) and onnxruntime's Y and Y_h.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from _common import GOLDEN

CASES = [
    # name, op, direction, hidden, input, options
    ("gru_before_reset", "GRU", "forward", 4, 3, dict(B=True)),
    ("gru_after_reset", "GRU", "forward", 4, 3, dict(B=True, linear_before_reset=1)),
    ("gru_nobias", "GRU", "forward", 3, 2, dict()),
    ("gru_reverse", "GRU", "reverse", 3, 3, dict(B=True, linear_before_reset=1)),
    ("gru_bidirectional", "GRU", "bidirectional", 3, 2, dict(B=True)),
    ("gru_bidirectional_after", "GRU", "bidirectional", 3, 2, dict(B=True, linear_before_reset=1, initial=True)),
    ("gru_lengths_zero_initial", "GRU", "forward", 3, 3, dict(B=True, lens=[5, 0, 3], initial=True)),
    ("gru_bidirectional_lengths", "GRU", "bidirectional", 3, 2, dict(B=True, linear_before_reset=1,
                                                                         lens=[2, 5, 0], initial=True)),
    ("gru_clip", "GRU", "forward", 4, 3, dict(B=True, clip=0.7)),
    ("gru_activations", "GRU", "forward", 3, 3, dict(B=True, activations=["HardSigmoid", "LeakyRelu"],
                                                     alpha=[0.3, 0.1], beta=[0.4])),
    ("gru_activation_defaults", "GRU", "bidirectional", 3, 2, dict(B=True, linear_before_reset=1,
                                                                   activations=["HardSigmoid", "Softsign"] * 2)),
    ("rnn_tanh", "RNN", "forward", 4, 3, dict(B=True)),
    ("rnn_nobias", "RNN", "forward", 3, 2, dict()),
    ("rnn_relu", "RNN", "forward", 3, 3, dict(B=True, activations=["Relu"])),
    ("rnn_reverse_lengths", "RNN", "reverse", 3, 3, dict(B=True, lens=[5, 2, 4])),
    ("rnn_bidirectional_lengths_zero_initial", "RNN", "bidirectional", 3, 2, dict(B=True, lens=[0, 4, 5],
                                                                                  initial=True)),
    ("rnn_clip", "RNN", "forward", 3, 2, dict(B=True, clip=0.5)),
    ("rnn_activations", "RNN", "bidirectional", 3, 2, dict(B=True, activations=["ScaledTanh", "ScaledTanh"],
                                                           alpha=[0.8, 0.8], beta=[1.3, 1.3])),
    ("rnn_leaky", "RNN", "forward", 3, 2, dict(B=True, activations=["LeakyRelu"])),
]
T, BATCH = 5, 3


def build(name, op, direction, H, n_in, opts, rng):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    G = 3 if op == "GRU" else 1
    dirs = 2 if direction == "bidirectional" else 1
    W = rng.uniform(-0.8, 0.8, (dirs, G * H, n_in)).astype(np.float32)
    R = rng.uniform(-0.8, 0.8, (dirs, G * H, H)).astype(np.float32)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
    inputs = ["X", "W", "R", "", "", ""]
    if opts.get("B"):
        inits.append(numpy_helper.from_array(rng.uniform(-0.5, 0.5, (dirs, 2 * G * H)).astype(np.float32), "B"))
        inputs[3] = "B"
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, BATCH, n_in])]
    if "lens" in opts:
        inputs[4] = "sequence_lens"
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [BATCH]))
    if opts.get("initial"):
        inputs[5] = "initial_h"
        graph_inputs.append(helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [dirs, BATCH, H]))
    while inputs and inputs[-1] == "":
        inputs.pop()
    attrs = dict(hidden_size=H, direction=direction)
    for k, a in (("clip", "clip"), ("linear_before_reset", "linear_before_reset"), ("activations", "activations"),
                 ("alpha", "activation_alpha"), ("beta", "activation_beta")):
        if k in opts:
            attrs[a] = opts[k]
    node = helper.make_node(op, inputs, ["Y", "Y_h"], name=name, **attrs)
    outs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, dirs, BATCH, H]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [dirs, BATCH, H])]
    graph = helper.make_graph([node], name, graph_inputs, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    feeds = {"X": rng.uniform(-1.5, 1.5, (T, BATCH, n_in)).astype(np.float32)}
    if "lens" in opts:
        feeds["sequence_lens"] = np.array(opts["lens"], dtype=np.int32)
    if opts.get("initial"):
        feeds["initial_h"] = rng.uniform(-0.8, 0.8, (dirs, BATCH, H)).astype(np.float32)
    return model, feeds


def main():
    import onnx
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "onnx_rnn")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(21)
    arrays = {}
    for name, op, direction, H, n_in, opts in CASES:
        model, feeds = build(name, op, direction, H, n_in, opts, rng)
        path = args.out / f"{name}.onnx"
        onnx.save(model, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        Y, Y_h = sess.run(None, feeds)
        arrays[f"{name}/config"] = np.array(json.dumps({"file": path.name, "op": op, "direction": direction,
                                                        "lens": opts.get("lens"),
                                                        "linear_before_reset": opts.get("linear_before_reset", 0)}))
        for n, v in feeds.items():
            arrays[f"{name}/{n}"] = v
        arrays[f"{name}/Y"], arrays[f"{name}/Y_h"] = Y, Y_h
        print(name, Y.shape)
    arrays["versions"] = np.array(json.dumps({"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                                              "numpy": np.__version__}))
    np.savez_compressed(args.out / "expected.npz", **arrays)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
