"""ONNX LSTM nodes with random weights, saved as .onnx files and run by onnxruntime, for the converter.

    python legacy/record_convert_onnx.py [--out tests/golden/convert/onnx]

One model per case (every direction, peepholes, clip, input_forget, other activations and their defaults,
sequence_lens with lengths of 0, initial states; layout 1 is not recorded: onnxruntime's CPU LSTM refuses
it); ``expected.npz`` holds each case's input (and initial state) and onnxruntime's Y, Y_h, Y_c.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from _common import GOLDEN

CASES = [
    # name, direction, hidden, input, options
    ("forward_bias", "forward", 4, 3, dict(B=True)),
    ("forward_nobias", "forward", 3, 2, dict()),
    ("peepholes", "forward", 4, 3, dict(B=True, P=True)),
    ("reverse", "reverse", 4, 3, dict(B=True)),
    ("reverse_lengths", "reverse", 3, 3, dict(B=True, lens=[5, 2, 4])),
    ("bidirectional", "bidirectional", 3, 2, dict(B=True, P=True)),
    ("bidirectional_lengths", "bidirectional", 3, 2, dict(B=True, lens=[5, 3, 1])),
    ("clip", "forward", 4, 3, dict(B=True, clip=0.6)),
    ("input_forget", "forward", 4, 3, dict(B=True, P=True, input_forget=1)),
    ("activations", "forward", 3, 3, dict(B=True, activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
                                          alpha=[0.3, 0.1, 0.9], beta=[0.4, 1.3])),
    ("activations_more", "bidirectional", 3, 2, dict(B=True, activations=["Sigmoid", "Softsign", "Elu"] * 2,
                                                      alpha=[0.7, 0.7])),
    ("affine_relu", "forward", 3, 2, dict(B=True, activations=["Sigmoid", "Affine", "Relu"], alpha=[0.5], beta=[0.1])),
    ("softplus_thresholded", "forward", 3, 2, dict(B=True, activations=["Sigmoid", "Softplus", "ThresholdedRelu"],
                                                   alpha=[0.2])),
    # Initial states and sequences of length 0, for which onnxruntime writes zeros to Y_h and Y_c.
    ("reverse_lengths_zero_initial", "reverse", 3, 3, dict(B=True, lens=[5, 0, 3], initial=True)),
    ("bidirectional_lengths_zero_initial", "bidirectional", 3, 2, dict(B=True, P=True, lens=[0, 4, 5],
                                                                       initial=True)),
    # onnxruntime's defaults where activation_alpha / activation_beta run out (ThresholdedRelu 0.0, not 1.0).
    ("activation_defaults", "forward", 3, 2, dict(B=True, initial=True,
                                                  activations=["HardSigmoid", "LeakyRelu", "ThresholdedRelu"])),
    # An input equal to ThresholdedRelu's alpha: onnxruntime keeps x only where x > alpha.
    ("thresholded_relu_at_alpha", "forward", 2, 2, dict(activations=["Sigmoid", "ThresholdedRelu", "Affine"],
                                                        alpha=[0.5, 1.0], beta=[0.0], at_alpha=True)),
    # layout=1 is not recorded: onnxruntime refuses it ("Batchwise recurrent operations (layout == 1) are not
    # supported"); the ONNX backend case test_lstm_batchwise covers it (tests/test_convert_onnx_backend.py).
    # float64 is not recorded: onnxruntime's CPU LSTM "does not support double yet".
]
T, BATCH = 5, 3


def build(name, direction, H, n_in, opts, rng):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dt = np.dtype(opts.get("dtype", "float32"))
    elem = TensorProto.DOUBLE if dt == np.float64 else TensorProto.FLOAT
    dirs = 2 if direction == "bidirectional" else 1
    W = rng.uniform(-0.8, 0.8, (dirs, 4 * H, n_in)).astype(dt)
    R = rng.uniform(-0.8, 0.8, (dirs, 4 * H, H)).astype(dt)
    if opts.get("at_alpha"):
        # the cell input's pre-activation is x itself (W_c the identity, nothing else): inputs of exactly 0.5
        W[:], R[:] = 0.0, 0.0
        W[0, 3 * H:] = np.eye(H, n_in, dtype=dt)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")]
    inputs = ["X", "W", "R", "", "", "", "", ""]
    if opts.get("B"):
        inits.append(numpy_helper.from_array(rng.uniform(-0.5, 0.5, (dirs, 8 * H)).astype(dt), "B"))
        inputs[3] = "B"
    if opts.get("P"):
        inits.append(numpy_helper.from_array(rng.uniform(-0.7, 0.7, (dirs, 3 * H)).astype(dt), "P"))
        inputs[7] = "P"
    graph_inputs = []
    layout = opts.get("layout", 0)
    x_shape = [BATCH, T, n_in] if layout else [T, BATCH, n_in]
    graph_inputs.append(helper.make_tensor_value_info("X", elem, x_shape))
    if "lens" in opts:
        inputs[4] = "sequence_lens"
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [BATCH]))
    if opts.get("initial"):
        inputs[5], inputs[6] = "initial_h", "initial_c"
        for n in ("initial_h", "initial_c"):
            graph_inputs.append(helper.make_tensor_value_info(n, elem, [dirs, BATCH, H]))
    while inputs and inputs[-1] == "":
        inputs.pop()
    attrs = dict(hidden_size=H, direction=direction)
    for k, a in (("clip", "clip"), ("input_forget", "input_forget"), ("layout", "layout"), ("activations", "activations"),
                 ("alpha", "activation_alpha"), ("beta", "activation_beta")):
        if k in opts:
            attrs[a] = opts[k]
    node = helper.make_node("LSTM", inputs, ["Y", "Y_h", "Y_c"], name=name, **attrs)
    y_shape = [BATCH, T, dirs, H] if layout else [T, dirs, BATCH, H]
    s_shape = [BATCH, dirs, H] if layout else [dirs, BATCH, H]
    outs = [helper.make_tensor_value_info("Y", elem, y_shape), helper.make_tensor_value_info("Y_h", elem, s_shape),
            helper.make_tensor_value_info("Y_c", elem, s_shape)]
    graph = helper.make_graph([node], name, graph_inputs, outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    x = rng.uniform(-1.5, 1.5, x_shape).astype(dt)
    if opts.get("at_alpha"):
        x = rng.choice(np.array([0.5, 0.5, 0.25, 0.75, -0.5], dt), x_shape)
    feeds = {"X": x}
    if "lens" in opts:
        feeds["sequence_lens"] = np.array(opts["lens"], dtype=np.int32)
    if opts.get("initial"):
        feeds["initial_h"] = rng.uniform(-0.8, 0.8, (dirs, BATCH, H)).astype(dt)
        feeds["initial_c"] = rng.uniform(-0.8, 0.8, (dirs, BATCH, H)).astype(dt)
    return model, feeds


def main():
    import onnx
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "onnx")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(14)
    arrays = {}
    for name, direction, H, n_in, opts in CASES:
        model, feeds = build(name, direction, H, n_in, opts, rng)
        path = args.out / f"{name}.onnx"
        onnx.save(model, str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        Y, Y_h, Y_c = sess.run(None, feeds)
        arrays[f"{name}/config"] = np.array(json.dumps({"file": path.name, "direction": direction,
                                                        "layout": opts.get("layout", 0), "lens": opts.get("lens")}))
        arrays[f"{name}/x"] = feeds["X"]
        for n in ("initial_h", "initial_c"):
            if n in feeds:
                arrays[f"{name}/{n}"] = feeds[n]
        arrays[f"{name}/Y"], arrays[f"{name}/Y_h"], arrays[f"{name}/Y_c"] = Y, Y_h, Y_c
        print(name, Y.shape)
    arrays["versions"] = np.array(json.dumps({"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                                              "numpy": np.__version__}))
    np.savez_compressed(args.out / "expected.npz", **arrays)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
