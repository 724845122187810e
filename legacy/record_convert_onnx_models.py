"""Whole ONNX models, saved as .onnx files and run by onnxruntime, for the converter's whole-model path.

    python legacy/record_convert_onnx_models.py [--out tests/golden/convert/onnx_models] [--seed 22]

Models built with onnx's helper API around LSTM nodes of every variant onnxruntime runs (directions,
peepholes, clip, input_forget, activations with alpha / beta, sequence_lens with a length of 0, constant
initial states), around GRU nodes (linear_before_reset 0 and 1, bidirectional and reverse, clip, activations
with alpha / beta, sequence_lens with a 0, initial_h constant and given) and RNN nodes (Tanh, Relu,
bidirectional, clip, sequence_lens), a GRU feeding an LSTM, and bidirectional GRU, RNN and LSTM nodes whose
directions run different activations; with the operators real recurrent models are built from: an
embedding as ``Gather``, ``Transpose`` / ``Squeeze`` / ``Unsqueeze`` / ``Reshape`` / ``Flatten`` / ``Slice``
/ ``Concat``, ``MatMul`` + ``Add`` and ``Gemm``, ``ReduceMean``, ``Softmax`` / ``LogSoftmax`` (the 2-D
coercion before opset 13), ``Tanh``. And PyTorch's own exports (``torch.onnx.export``, the TorchScript
exporter) of a small sentiment model: opset 9 without constant folding (the LSTM's weights computed by Slice
/ Concat / Unsqueeze, initial states by Shape / Gather / Expand) and opset 14 with dynamic axes
(ConstantOfShape), the same with a bidirectional nn.GRU (a GRU node, linear_before_reset 1), a two-layer Relu
nn.RNN (two RNN nodes), the GRU model over ``pack_padded_sequence`` (lengths cast into the node's
sequence_lens) and the RNN model over ``pack_padded_sequence(enforce_sorted=False)`` (TopK, Range,
ReduceProd, ScatterElements); an nn.LSTM and an nn.GRU classifier over padded ids with a mask-derived
length, ``masked_fill``, ``clamp`` and ``argmax`` (Equal, Not, Where, Clip, ArgMax). The operators mask
handling and heads are built from are recorded too: comparisons and logic, Where broadcasting, Clip in both
forms (min or max alone, int64), Max / Min / Sum / Mean, the activations Softplus to Ceil, Split (unequal
sizes, num_outputs), ArgMax / ArgMin (select_last_index over ties), Tile, ReduceMin / ReduceL2 /
ReduceLogSumExp. Graph constants that are infinite: an nn.LSTM encoder with attention pooling whose scores are
``masked_fill(pad, float("-inf"))`` (a Where with a constant -inf) before the softmax over time, and a helper
graph with Clip bounds of +inf and -inf, Max / Min with infinite constants, a Where filling with -inf and
ConstantOfShape with value -inf. A float64 model without a recurrent node is recorded too; ``layout=1`` and
float64 LSTMs, GRUs and RNNs are not: onnxruntime's CPU kernels refuse both (the converter's verification
covers them against reference/onnx_model.py). ``expected.npz`` holds each model's inputs and onnxruntime's
outputs; ``--seed`` draws other weights and inputs (the live test uses it).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from _common import GOLDEN

BATCH, T = 3, 7


def _helpers():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    return onnx, TensorProto, helper, numpy_helper


def lstm_weights(rng, name, dirs, H, n_in, B=True, P=False):
    _, _, _, nh = _helpers()
    out = [nh.from_array(rng.uniform(-0.7, 0.7, (dirs, 4 * H, n_in)).astype(np.float32), f"{name}_W"),
           nh.from_array(rng.uniform(-0.7, 0.7, (dirs, 4 * H, H)).astype(np.float32), f"{name}_R")]
    roles = [f"{name}_W", f"{name}_R", "", "", "", "", ""]
    if B:
        out.append(nh.from_array(rng.uniform(-0.5, 0.5, (dirs, 8 * H)).astype(np.float32), f"{name}_B"))
        roles[2] = f"{name}_B"
    if P:
        out.append(nh.from_array(rng.uniform(-0.6, 0.6, (dirs, 3 * H)).astype(np.float32), f"{name}_P"))
        roles.append(f"{name}_P")
    return out, roles


def f32(rng, *shape, scale=0.8):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def sentiment_bidirectional_mean(rng):
    """ids -> Gather -> Transpose -> bidirectional LSTM with peepholes -> Transpose / Reshape -> ReduceMean over
    time -> Gemm(transB) -> Softmax (opset 13)."""
    onnx, TP, h, nh = _helpers()
    V, E, H, C = 40, 6, 5, 3
    inits, roles = lstm_weights(rng, "lstm", 2, H, E, P=True)
    inits += [nh.from_array(f32(rng, V, E, scale=1.0), "embedding"), nh.from_array(f32(rng, C, 2 * H), "dense_W"),
              nh.from_array(f32(rng, C), "dense_b"), nh.from_array(np.array([0, 0, -1], np.int64), "flat")]
    nodes = [h.make_node("Gather", ["embedding", "ids"], ["emb"], name="embedding_lookup"),
             h.make_node("Transpose", ["emb"], ["emb_t"], perm=[1, 0, 2], name="time_major"),
             h.make_node("LSTM", ["emb_t", *roles[:3], "", "", "", roles[-1]], ["Y"], hidden_size=H,
                         direction="bidirectional", name="bilstm"),
             h.make_node("Transpose", ["Y"], ["Y_b"], perm=[2, 0, 1, 3], name="batch_major"),
             h.make_node("Reshape", ["Y_b", "flat"], ["seq"], name="merge_directions"),
             h.make_node("ReduceMean", ["seq"], ["pooled"], axes=[1], keepdims=0, name="mean_over_time"),
             h.make_node("Gemm", ["pooled", "dense_W", "dense_b"], ["logits"], transB=1, name="dense"),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax")]
    graph = h.make_graph(nodes, "sentiment", [h.make_tensor_value_info("ids", TP.INT64, ["batch", "steps"])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, ["batch", C])], inits)
    feeds = {"ids": rng.integers(0, V, (BATCH, T))}
    return graph, 13, feeds, ["bidirectional", "peepholes", "Gather", "Transpose", "Reshape", "ReduceMean", "Gemm",
                              "Softmax"]


def lengths_clip_input_forget(rng):
    """ids and lengths (one of 0) -> Gather -> Transpose -> LSTM(clip, input_forget, sequence_lens) -> Squeeze
    Y_h -> MatMul + Add -> LogSoftmax; the sequence output also returned (opset 13)."""
    onnx, TP, h, nh = _helpers()
    V, E, H, C = 25, 4, 6, 4
    inits, roles = lstm_weights(rng, "lstm", 1, H, E, P=True)
    inits += [nh.from_array(f32(rng, V, E, scale=1.5), "table"), nh.from_array(f32(rng, H, C), "W_out"),
              nh.from_array(f32(rng, C), "b_out"), nh.from_array(np.array([0], np.int64), "axis0")]
    nodes = [h.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
             h.make_node("Transpose", ["emb"], ["x"], perm=[1, 0, 2], name="to_time_major"),
             h.make_node("LSTM", ["x", *roles[:3], "lengths", "", "", roles[-1]], ["Y", "Y_h"], hidden_size=H,
                         clip=1.5, input_forget=1, name="lstm"),
             h.make_node("Squeeze", ["Y_h", "axis0"], ["last"], name="drop_direction"),
             h.make_node("MatMul", ["last", "W_out"], ["mm"], name="project"),
             h.make_node("Add", ["mm", "b_out"], ["logits"], name="bias"),
             h.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=1, name="log_softmax")]
    graph = h.make_graph(nodes, "lengths", [h.make_tensor_value_info("ids", TP.INT64, ["batch", "steps"]),
                                            h.make_tensor_value_info("lengths", TP.INT32, ["batch"])],
                         [h.make_tensor_value_info("log_probs", TP.FLOAT, ["batch", C]),
                          h.make_tensor_value_info("Y", TP.FLOAT, ["steps", 1, "batch", H])], inits)
    feeds = {"ids": rng.integers(0, V, (BATCH, T)), "lengths": np.array([T, 0, 3], np.int32)}
    return graph, 13, feeds, ["clip", "input_forget", "sequence_lens", "Squeeze", "MatMul", "Add", "LogSoftmax"]


def activations_reverse_concat(rng):
    """X (time-major floats) -> a reverse LSTM with other activations and constant initial states, and a
    forward LSTM -> Concat of the final states -> Squeeze (attribute axes) -> Gemm(alpha, beta) -> Tanh; the
    forward LSTM's sequence Sliced in time, Transposed and put through opset 11's Softmax (2-D coercion at
    axis 1) and Flatten (opset 11)."""
    onnx, TP, h, nh = _helpers()
    F, H, C = 3, 4, 2
    rev, rev_roles = lstm_weights(rng, "rev", 1, H, F)
    fwd, fwd_roles = lstm_weights(rng, "fwd", 1, H, F, B=False)
    inits = rev + fwd + [nh.from_array(f32(rng, 1, BATCH, H), "h0"), nh.from_array(f32(rng, 1, BATCH, H), "c0"),
                         nh.from_array(f32(rng, 2 * H, C), "head_W"), nh.from_array(f32(rng, 1, C), "head_b"),
                         nh.from_array(np.array([1], np.int64), "start"),
                         nh.from_array(np.array([-1], np.int64), "end"), nh.from_array(np.array([0], np.int64), "ax")]
    nodes = [h.make_node("LSTM", ["X", *rev_roles[:3], "", "h0", "c0"], ["rY", "rY_h", "rY_c"], hidden_size=H,
                         direction="reverse", activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
                         activation_alpha=[0.3, 0.1, 0.9], activation_beta=[0.4, 1.3], name="reverse_lstm"),
             h.make_node("LSTM", ["X", *fwd_roles[:2]], ["fY", "fY_h"], hidden_size=H, name="forward_lstm"),
             h.make_node("Concat", ["rY_h", "fY_h"], ["both"], axis=-1, name="concat_states"),
             h.make_node("Squeeze", ["both"], ["state"], axes=[0], name="squeeze"),
             h.make_node("Gemm", ["state", "head_W", "head_b"], ["pre"], alpha=0.5, beta=2.0, name="head"),
             h.make_node("Tanh", ["pre"], ["score"], name="tanh"),
             h.make_node("Slice", ["fY", "start", "end", "ax"], ["fY_mid"], name="drop_first_and_last_step"),
             h.make_node("Squeeze", ["fY_mid"], ["seq"], axes=[1], name="squeeze_direction"),
             h.make_node("Transpose", ["seq"], ["seq_b"], perm=[1, 0, 2], name="batch_major"),
             h.make_node("Softmax", ["seq_b"], ["attention"], axis=1, name="softmax_2d"),
             h.make_node("Flatten", ["attention"], ["flat"], axis=1, name="flatten")]
    graph = h.make_graph(nodes, "activations", [h.make_tensor_value_info("X", TP.FLOAT, [T, BATCH, F])],
                         [h.make_tensor_value_info("score", TP.FLOAT, [BATCH, C]),
                          h.make_tensor_value_info("flat", TP.FLOAT, [BATCH, (T - 2) * H]),
                          h.make_tensor_value_info("rY_c", TP.FLOAT, [1, BATCH, H])], inits)
    feeds = {"X": f32(rng, T, BATCH, F, scale=1.5)}
    return graph, 11, feeds, ["reverse", "activations", "initial_h", "initial_c", "Concat", "Squeeze", "Gemm",
                              "Tanh", "Slice", "Softmax-11", "Flatten"]


def opset9_slices(rng):
    """Opset 9: Unsqueeze with attribute axes, Slice with attributes (negative and past-the-end bounds), a
    bidirectional LSTM with peepholes whose weights are Concat / Unsqueeze of initializers, Softmax."""
    onnx, TP, h, nh = _helpers()
    F, H = 2, 3
    W = f32(rng, 4 * H, F)
    R = f32(rng, 4 * H, H)
    inits = [nh.from_array(W, "w_fw"), nh.from_array(f32(rng, 4 * H, F), "w_bw"), nh.from_array(R, "r_fw"),
             nh.from_array(f32(rng, 4 * H, H), "r_bw"), nh.from_array(f32(rng, 2, 8 * H, scale=0.4), "B"),
             nh.from_array(f32(rng, 2, 3 * H, scale=0.4), "P")]
    nodes = [h.make_node("Unsqueeze", ["w_fw"], ["w_fw3"], axes=[0]),
             h.make_node("Unsqueeze", ["w_bw"], ["w_bw3"], axes=[0]),
             h.make_node("Concat", ["w_fw3", "w_bw3"], ["W"], axis=0),
             h.make_node("Unsqueeze", ["r_fw"], ["r_fw3"], axes=[0]),
             h.make_node("Unsqueeze", ["r_bw"], ["r_bw3"], axes=[0]),
             h.make_node("Concat", ["r_fw3", "r_bw3"], ["R"], axis=0),
             h.make_node("LSTM", ["X", "W", "R", "B", "", "", "", "P"], ["Y"], hidden_size=H,
                         direction="bidirectional", name="lstm"),
             h.make_node("Slice", ["Y"], ["Y_tail"], starts=[-3, 1], ends=[100, 2], axes=[0, 1], name="slice"),
             h.make_node("Unsqueeze", ["Y_tail"], ["Y5"], axes=[0], name="unsqueeze"),
             h.make_node("Softmax", ["Y5"], ["probs"], axis=3, name="softmax")]
    graph = h.make_graph(nodes, "opset9", [h.make_tensor_value_info("X", TP.FLOAT, [T, BATCH, F])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, [1, 3, 1, BATCH, H])], inits)
    feeds = {"X": f32(rng, T, BATCH, F, scale=1.5)}
    return graph, 9, feeds, ["bidirectional", "peepholes", "folded weights", "Unsqueeze-9", "Slice-9", "Softmax-9"]


def float64_head(rng):
    """A float64 model (onnxruntime runs these operators in double; its LSTM does not): ids -> Gather -> MatMul
    -> Add -> Tanh -> ReduceSum over time (axes as an input) -> Div -> LogSoftmax."""
    onnx, TP, h, nh = _helpers()
    V, E, C = 30, 5, 3
    inits = [nh.from_array(rng.uniform(-1, 1, (V, E)), "table"), nh.from_array(rng.uniform(-1, 1, (E, C)), "W"),
             nh.from_array(rng.uniform(-1, 1, (C,)), "b"), nh.from_array(np.array([1], np.int64), "time"),
             nh.from_array(np.array(float(T)), "steps")]
    nodes = [h.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
             h.make_node("MatMul", ["e", "W"], ["m"], name="project"), h.make_node("Add", ["m", "b"], ["a"]),
             h.make_node("Tanh", ["a"], ["t"]), h.make_node("ReduceSum", ["t", "time"], ["s"], keepdims=0),
             h.make_node("Div", ["s", "steps"], ["mean"]), h.make_node("LogSoftmax", ["mean"], ["out"], axis=-1)]
    graph = h.make_graph(nodes, "float64", [h.make_tensor_value_info("ids", TP.INT64, ["batch", "steps"])],
                         [h.make_tensor_value_info("out", TP.DOUBLE, ["batch", C])], inits)
    return graph, 13, {"ids": rng.integers(0, V, (BATCH, T))}, ["float64", "ReduceSum", "Div", "Tanh"]


def one_state_weights(rng, op, name, dirs, H, n_in, B=True):
    """W, R (and B) of a GRU (gate blocks z, r, h) or RNN node, and its input names W, R, B."""
    _, _, _, nh = _helpers()
    G = 3 if op == "GRU" else 1
    out = [nh.from_array(rng.uniform(-0.8, 0.8, (dirs, G * H, n_in)).astype(np.float32), f"{name}_W"),
           nh.from_array(rng.uniform(-0.8, 0.8, (dirs, G * H, H)).astype(np.float32), f"{name}_R")]
    roles = [f"{name}_W", f"{name}_R", ""]
    if B:
        out.append(nh.from_array(rng.uniform(-0.5, 0.5, (dirs, 2 * G * H)).astype(np.float32), f"{name}_B"))
        roles[2] = f"{name}_B"
    return out, roles


def gru_sentiment_lengths(rng):
    """ids and lengths (one of 0) -> Gather -> Transpose -> bidirectional GRU (linear_before_reset 0, clip,
    sequence_lens, a constant initial_h) -> Y_h Transpose -> Reshape -> Gemm(transB) -> Softmax; the
    sequence output also returned (opset 14)."""
    onnx, TP, h, nh = _helpers()
    V, E, H, C = 30, 5, 4, 3
    inits, roles = one_state_weights(rng, "GRU", "gru", 2, H, E)
    inits += [nh.from_array(f32(rng, V, E, scale=1.5), "embedding"), nh.from_array(f32(rng, 2, BATCH, H), "h0"),
              nh.from_array(f32(rng, C, 2 * H), "dense_W"), nh.from_array(f32(rng, C), "dense_b"),
              nh.from_array(np.array([0, -1], np.int64), "flat")]
    nodes = [h.make_node("Gather", ["embedding", "ids"], ["emb"], name="embedding_lookup"),
             h.make_node("Transpose", ["emb"], ["x"], perm=[1, 0, 2], name="time_major"),
             h.make_node("GRU", ["x", *roles, "lengths", "h0"], ["Y", "Y_h"], hidden_size=H, clip=1.2,
                         direction="bidirectional", name="bigru"),
             h.make_node("Transpose", ["Y_h"], ["h_b"], perm=[1, 0, 2], name="batch_major"),
             h.make_node("Reshape", ["h_b", "flat"], ["state"], name="merge_directions"),
             h.make_node("Gemm", ["state", "dense_W", "dense_b"], ["logits"], transB=1, name="dense"),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax")]
    graph = h.make_graph(nodes, "gru_sentiment", [h.make_tensor_value_info("ids", TP.INT64, [BATCH, "steps"]),
                                                  h.make_tensor_value_info("lengths", TP.INT32, [BATCH])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, [BATCH, C]),
                          h.make_tensor_value_info("Y", TP.FLOAT, ["steps", 2, BATCH, H])], inits)
    feeds = {"ids": rng.integers(0, V, (BATCH, T)), "lengths": np.array([3, 0, T], np.int32)}
    return graph, 14, feeds, ["GRU", "GRU linear_before_reset 0", "GRU bidirectional", "GRU clip",
                              "GRU sequence_lens", "GRU initial_h", "Gather", "Transpose", "Reshape", "Gemm",
                              "Softmax"]


def gru_activations_reverse(rng):
    """X (time-major floats) and initial_h as a graph input -> a reverse GRU (linear_before_reset 1,
    HardSigmoid / LeakyRelu with activation_alpha / activation_beta) and a forward GRU (linear_before_reset 1,
    no bias, ScaledTanh) -> Concat of the sequences -> Squeeze -> Slice in time -> ReduceMean over time ->
    MatMul + Add -> LogSoftmax (opset 13)."""
    onnx, TP, h, nh = _helpers()
    F, H, C = 3, 4, 3
    rev, rev_roles = one_state_weights(rng, "GRU", "rev", 1, H, F)
    fwd, fwd_roles = one_state_weights(rng, "GRU", "fwd", 1, H, F, B=False)
    inits = rev + fwd + [nh.from_array(f32(rng, 2 * H, C), "W_out"), nh.from_array(f32(rng, C), "b_out"),
                         nh.from_array(np.array([1], np.int64), "axis1"),
                         nh.from_array(np.array([1], np.int64), "start"),
                         nh.from_array(np.array([T], np.int64), "end"), nh.from_array(np.array([0], np.int64), "ax0")]
    nodes = [h.make_node("GRU", ["X", *rev_roles, "", "h0"], ["rY"], hidden_size=H, direction="reverse",
                         linear_before_reset=1, activations=["HardSigmoid", "LeakyRelu"],
                         activation_alpha=[0.3, 0.2], activation_beta=[0.45], name="reverse_gru"),
             h.make_node("GRU", ["X", *fwd_roles[:2]], ["fY", ""], hidden_size=H, linear_before_reset=1,
                         activations=["Sigmoid", "ScaledTanh"], activation_alpha=[1.1], activation_beta=[0.8],
                         name="forward_gru"),
             h.make_node("Concat", ["fY", "rY"], ["both"], axis=-1, name="concat_sequences"),
             h.make_node("Squeeze", ["both", "axis1"], ["seq"], name="drop_direction"),
             h.make_node("Slice", ["seq", "start", "end", "ax0"], ["tail"], name="drop_first_step"),
             h.make_node("ReduceMean", ["tail"], ["pooled"], axes=[0], keepdims=0, name="mean_over_time"),
             h.make_node("MatMul", ["pooled", "W_out"], ["mm"], name="project"),
             h.make_node("Add", ["mm", "b_out"], ["logits"], name="bias"),
             h.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1, name="log_softmax")]
    graph = h.make_graph(nodes, "gru_activations", [h.make_tensor_value_info("X", TP.FLOAT, [T, "batch", F]),
                                                    h.make_tensor_value_info("h0", TP.FLOAT, [1, "batch", H])],
                         [h.make_tensor_value_info("log_probs", TP.FLOAT, ["batch", C])], inits)
    feeds = {"X": f32(rng, T, BATCH, F, scale=1.5), "h0": f32(rng, 1, BATCH, H)}
    return graph, 13, feeds, ["GRU", "GRU linear_before_reset 1", "GRU reverse", "GRU activations", "GRU initial_h",
                              "GRU no bias", "Concat", "Squeeze", "Slice", "ReduceMean", "MatMul", "Add",
                              "LogSoftmax"]


def rnn_tanh_relu(rng):
    """ids and lengths -> Gather -> Transpose -> a bidirectional tanh RNN (sequence_lens, one of 0) and a
    forward Relu RNN (clip, a constant initial_h) over the same embedding -> Concat of the final states ->
    Transpose -> Flatten -> Gemm(alpha, beta) -> Tanh; the Relu RNN's sequence through Transpose, Reshape (a 0
    copying the batch dimension) and opset 11's Softmax (over time and units together: the 2-D coercion at
    axis 1)."""
    onnx, TP, h, nh = _helpers()
    V, E, H, C = 20, 4, 3, 2
    bi, bi_roles = one_state_weights(rng, "RNN", "birnn", 2, H, E)
    relu, relu_roles = one_state_weights(rng, "RNN", "relu_rnn", 1, H, E)
    inits = bi + relu + [nh.from_array(f32(rng, V, E, scale=1.5), "table"), nh.from_array(f32(rng, 1, BATCH, H), "h0"),
                         nh.from_array(f32(rng, C, 3 * H), "head_W"), nh.from_array(f32(rng, C), "head_b"),
                         nh.from_array(np.array([0, -1, H], np.int64), "rows")]
    nodes = [h.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
             h.make_node("Transpose", ["emb"], ["x"], perm=[1, 0, 2], name="to_time_major"),
             h.make_node("RNN", ["x", *bi_roles, "lengths"], ["bY", "bY_h"], hidden_size=H,
                         direction="bidirectional", name="tanh_rnn"),
             h.make_node("RNN", ["x", *relu_roles, "", "h0"], ["rY", "rY_h"], hidden_size=H, activations=["Relu"],
                         clip=2.5, name="relu_rnn"),
             h.make_node("Concat", ["bY_h", "rY_h"], ["states"], axis=0, name="concat_states"),
             h.make_node("Transpose", ["states"], ["states_b"], perm=[1, 0, 2], name="batch_major"),
             h.make_node("Flatten", ["states_b"], ["flat"], axis=1, name="flatten"),
             h.make_node("Gemm", ["flat", "head_W", "head_b"], ["pre"], transB=1, alpha=0.7, beta=1.5, name="head"),
             h.make_node("Tanh", ["pre"], ["score"], name="tanh"),
             h.make_node("Transpose", ["rY"], ["rY_b"], perm=[2, 1, 0, 3], name="relu_batch_major"),
             h.make_node("Reshape", ["rY_b", "rows"], ["rows_out"], name="drop_direction"),
             h.make_node("Softmax", ["rows_out"], ["attention"], axis=1, name="softmax_2d")]
    graph = h.make_graph(nodes, "rnn", [h.make_tensor_value_info("ids", TP.INT64, [BATCH, T]),
                                        h.make_tensor_value_info("lengths", TP.INT32, [BATCH])],
                         [h.make_tensor_value_info("score", TP.FLOAT, [BATCH, C]),
                          h.make_tensor_value_info("attention", TP.FLOAT, [BATCH, T, H])], inits)
    feeds = {"ids": rng.integers(0, V, (BATCH, T)), "lengths": np.array([T, 2, 0], np.int32)}
    return graph, 11, feeds, ["RNN", "RNN tanh", "RNN relu", "RNN bidirectional", "RNN sequence_lens",
                              "RNN clip", "RNN initial_h", "Concat", "Flatten", "Gemm", "Tanh", "Softmax-11"]


def gru_into_lstm(rng):
    """A mixed stack: ids and lengths -> Gather -> Transpose -> GRU (linear_before_reset 1, sequence_lens) ->
    Squeeze -> LSTM (peepholes, the same sequence_lens) -> Y_h Squeeze -> MatMul + Add -> Softmax (opset 13)."""
    onnx, TP, h, nh = _helpers()
    V, E, H1, H2, C = 25, 4, 5, 3, 3
    gru, gru_roles = one_state_weights(rng, "GRU", "gru", 1, H1, E)
    lstm, lstm_roles = lstm_weights(rng, "lstm", 1, H2, H1, P=True)
    inits = gru + lstm + [nh.from_array(f32(rng, V, E, scale=1.5), "table"), nh.from_array(f32(rng, H2, C), "W_out"),
                          nh.from_array(f32(rng, C), "b_out"), nh.from_array(np.array([1], np.int64), "axis1"),
                          nh.from_array(np.array([0], np.int64), "axis0")]
    nodes = [h.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
             h.make_node("Transpose", ["emb"], ["x"], perm=[1, 0, 2], name="to_time_major"),
             h.make_node("GRU", ["x", *gru_roles, "lengths"], ["gY"], hidden_size=H1, linear_before_reset=1,
                         name="gru"),
             h.make_node("Squeeze", ["gY", "axis1"], ["g_seq"], name="drop_gru_direction"),
             h.make_node("LSTM", ["g_seq", *lstm_roles[:3], "lengths", "", "", lstm_roles[-1]], ["", "Y_h"],
                         hidden_size=H2, name="lstm"),
             h.make_node("Squeeze", ["Y_h", "axis0"], ["last"], name="drop_lstm_direction"),
             h.make_node("MatMul", ["last", "W_out"], ["mm"], name="project"),
             h.make_node("Add", ["mm", "b_out"], ["logits"], name="bias"),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax")]
    graph = h.make_graph(nodes, "mixed", [h.make_tensor_value_info("ids", TP.INT64, ["batch", "steps"]),
                                          h.make_tensor_value_info("lengths", TP.INT32, ["batch"])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, ["batch", C])], inits)
    feeds = {"ids": rng.integers(0, V, (BATCH, T)), "lengths": np.array([4, T, 0], np.int32)}
    return graph, 13, feeds, ["GRU", "LSTM", "GRU into LSTM", "GRU linear_before_reset 1", "GRU sequence_lens",
                              "peepholes", "sequence_lens", "Squeeze", "MatMul", "Add", "Softmax"]


def directions_differ(rng):
    """Bidirectional nodes whose two directions run different activations (Operators.md lists them per
    direction; onnxruntime runs each direction with its own), opset 9: X and initial_h (a graph input) ->
    a GRU (forward Sigmoid / Tanh, reverse HardSigmoid / Softsign) -> Transpose -> Reshape -> an RNN (forward
    Tanh, reverse Relu, a constant initial_h) -> an LSTM (HardSigmoid / Tanh / Tanh in both directions,
    one activation_alpha: the reverse direction's HardSigmoid takes onnxruntime's default) -> Concat of the
    final states -> Squeeze -> Gemm -> Softmax; the GRU's Y_h also returned."""
    onnx, TP, h, nh = _helpers()
    F, H1, H2, H3, C = 3, 3, 2, 2, 2
    gru, gru_roles = one_state_weights(rng, "GRU", "gru", 2, H1, F)
    rnn, rnn_roles = one_state_weights(rng, "RNN", "rnn", 2, H2, 2 * H1)
    lstm, lstm_roles = lstm_weights(rng, "lstm", 2, H3, 2 * H2)
    inits = gru + rnn + lstm + [nh.from_array(f32(rng, 2, BATCH, H2), "rnn_h0"),
                                nh.from_array(np.array([0, 0, -1], np.int64), "merge"),
                                nh.from_array(f32(rng, C, 4 * H3), "head_W"), nh.from_array(f32(rng, C), "head_b")]
    nodes = [h.make_node("GRU", ["X", *gru_roles, "", "h0"], ["gY", "gY_h"], hidden_size=H1,
                         direction="bidirectional", activations=["Sigmoid", "Tanh", "HardSigmoid", "Softsign"],
                         activation_alpha=[0.25], activation_beta=[0.45], name="gru"),
             h.make_node("Transpose", ["gY"], ["gY_t"], perm=[0, 2, 1, 3], name="gru_directions_last"),
             h.make_node("Reshape", ["gY_t", "merge"], ["g_seq"], name="merge_gru_directions"),
             h.make_node("RNN", ["g_seq", *rnn_roles, "", "rnn_h0"], ["rY"], hidden_size=H2,
                         direction="bidirectional", activations=["Tanh", "Relu"], name="rnn"),
             h.make_node("Transpose", ["rY"], ["rY_t"], perm=[0, 2, 1, 3], name="rnn_directions_last"),
             h.make_node("Reshape", ["rY_t", "merge"], ["r_seq"], name="merge_rnn_directions"),
             h.make_node("LSTM", ["r_seq", *lstm_roles[:3]], ["", "lY_h", "lY_c"], hidden_size=H3,
                         direction="bidirectional", activations=["HardSigmoid", "Tanh", "Tanh"] * 2,
                         activation_alpha=[0.3], name="lstm"),
             h.make_node("Concat", ["lY_h", "lY_c"], ["states"], axis=0, name="concat_states"),
             h.make_node("Transpose", ["states"], ["states_b"], perm=[1, 0, 2], name="batch_major"),
             h.make_node("Flatten", ["states_b"], ["flat"], axis=1, name="flatten"),
             h.make_node("Gemm", ["flat", "head_W", "head_b"], ["logits"], transB=1, name="head"),
             h.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax")]
    graph = h.make_graph(nodes, "directions", [h.make_tensor_value_info("X", TP.FLOAT, [T, BATCH, F]),
                                               h.make_tensor_value_info("h0", TP.FLOAT, [2, BATCH, H1])],
                         [h.make_tensor_value_info("probs", TP.FLOAT, [BATCH, C]),
                          h.make_tensor_value_info("gY_h", TP.FLOAT, [2, BATCH, H1])], inits)
    feeds = {"X": f32(rng, T, BATCH, F, scale=1.5), "h0": f32(rng, 2, BATCH, H1)}
    return graph, 9, feeds, ["activations per direction", "GRU", "RNN", "LSTM", "GRU initial_h", "RNN initial_h",
                             "Transpose", "Reshape", "Concat", "Flatten", "Gemm", "Softmax-9"]


def masks_and_logic(rng):
    """What mask handling exports are built from (opset 13): token ids -> Equal 0 / Not (the valid steps),
    Greater / LessOrEqual / And / Or of the ids, GreaterOrEqual / Less of floats; Where with its condition
    broadcast over features and a scalar or a row as the other branch; ArgMax of the mask with ties (the last
    valid step with select_last_index, the first with the default) and ArgMin over floats; Split-13 with the
    sizes an input (unequal parts); bool and int64 outputs."""
    onnx, TP, h, nh = _helpers()
    F = 4
    inits = [nh.from_array(np.array(0, np.int64), "zero"), nh.from_array(np.array(5, np.int64), "five"),
             nh.from_array(np.array(20, np.int64), "twenty"), nh.from_array(np.array(0.25, np.float32), "quarter"),
             nh.from_array(np.array(-0.5, np.float32), "neg_half"), nh.from_array(np.array(-1.5, np.float32), "fill"),
             nh.from_array(f32(rng, F), "row"), nh.from_array(np.array([2], np.int64), "feature_axis"),
             nh.from_array(np.array([1, 3], np.int64), "parts")]
    nodes = [h.make_node("Equal", ["ids", "zero"], ["pad"], name="is_padding"),
             h.make_node("Not", ["pad"], ["valid"], name="valid"),
             h.make_node("Greater", ["ids", "five"], ["big"]), h.make_node("LessOrEqual", ["ids", "twenty"], ["small"]),
             h.make_node("And", ["big", "small"], ["mid"]), h.make_node("Or", ["mid", "pad"], ["keep"]),
             h.make_node("Unsqueeze", ["valid", "feature_axis"], ["valid3"]),
             h.make_node("Where", ["valid3", "X", "fill"], ["masked"], name="masked_fill"),
             h.make_node("Less", ["X", "neg_half"], ["low"]),
             h.make_node("Where", ["low", "row", "masked"], ["masked2"], name="where_row"),
             h.make_node("GreaterOrEqual", ["masked2", "quarter"], ["high"]),
             h.make_node("Cast", ["valid"], ["valid_i"], to=TP.INT64),
             h.make_node("ArgMax", ["valid_i"], ["last_valid"], axis=1, keepdims=0, select_last_index=1),
             h.make_node("ArgMax", ["valid_i"], ["first_valid"], axis=-1),
             h.make_node("ArgMin", ["masked2"], ["lowest"], axis=2, keepdims=0),
             h.make_node("Split", ["masked2", "parts"], ["head", "tail"], axis=-1, name="split_features")]
    graph = h.make_graph(nodes, "masks", [h.make_tensor_value_info("ids", TP.INT64, ["batch", T]),
                                          h.make_tensor_value_info("X", TP.FLOAT, ["batch", T, F])],
                         [h.make_tensor_value_info(n, t, d) for n, t, d in (
                             ("tail", TP.FLOAT, ["batch", T, 3]), ("head", TP.FLOAT, ["batch", T, 1]),
                             ("keep", TP.BOOL, ["batch", T]), ("high", TP.BOOL, ["batch", T, F]),
                             ("last_valid", TP.INT64, ["batch"]), ("first_valid", TP.INT64, ["batch", 1]),
                             ("lowest", TP.INT64, ["batch", T]))], inits)
    ids = rng.integers(1, 30, (BATCH, T))
    ids[0, 5:], ids[1, 2:], ids[2, :] = 0, 0, 0          # padding at the end; one row all padding (ties)
    ids[2, 3] = 7
    feeds = {"ids": ids, "X": f32(rng, BATCH, T, F, scale=1.5)}
    return graph, 13, feeds, ["Equal", "Not", "Greater", "LessOrEqual", "And", "Or", "Less", "GreaterOrEqual",
                              "Where", "Where broadcasting", "ArgMax", "ArgMax select_last_index", "ArgMin",
                              "Split-13", "Split unequal"]


def clip_activations_opset9(rng):
    """Opset 9: Clip with attributes (max alone, both), Max / Min / Sum / Mean of several inputs broadcasting,
    Softplus, Softsign, Elu(alpha), Selu (the defaults), HardSigmoid(alpha, beta), Erf, Sign, Floor, Ceil,
    Split with the attribute split (unequal parts), Tile, ReduceMin with attribute axes, ArgMax."""
    onnx, TP, h, nh = _helpers()
    F = 6
    inits = [nh.from_array(f32(rng, F, scale=1.0), "row"), nh.from_array(f32(rng, T, 1, scale=1.0), "column"),
             nh.from_array(np.array([1, 2, 1], np.int64), "reps")]
    nodes = [h.make_node("Clip", ["X"], ["capped"], max=0.6, name="clip_max_only"),
             h.make_node("Clip", ["X"], ["clipped"], min=-0.4, max=0.9, name="clip_both"),
             h.make_node("Max", ["capped", "row", "column"], ["mx"]), h.make_node("Min", ["X", "row"], ["mn"]),
             h.make_node("Sum", ["mx", "mn", "column"], ["sm"]), h.make_node("Mean", ["sm", "clipped"], ["mean"]),
             h.make_node("Mean", ["mean"], ["mean1"], name="mean_of_one"),
             h.make_node("Softplus", ["X"], ["sp"]), h.make_node("Softsign", ["X"], ["ss"]),
             h.make_node("Elu", ["X"], ["elu"], alpha=0.7), h.make_node("Selu", ["X"], ["selu"]),
             h.make_node("HardSigmoid", ["X"], ["hs"], alpha=0.3, beta=0.4), h.make_node("Erf", ["X"], ["erf"]),
             h.make_node("Sign", ["X"], ["sign"]), h.make_node("Floor", ["X"], ["floor"]),
             h.make_node("Ceil", ["X"], ["ceil"]),
             h.make_node("Sum", ["mean1", "sp", "ss", "elu", "selu", "hs", "erf", "sign", "floor", "ceil"], ["acts"]),
             h.make_node("Split", ["acts"], ["a", "b", "c"], axis=2, split=[1, 3, 2], name="split_unequal"),
             h.make_node("Tile", ["a", "reps"], ["tiled"]),
             h.make_node("ReduceMin", ["b"], ["least"], axes=[1, -1], keepdims=0),
             h.make_node("ArgMax", ["c"], ["top"], axis=1)]
    graph = h.make_graph(nodes, "clip9", [h.make_tensor_value_info("X", TP.FLOAT, [BATCH, T, F])],
                         [h.make_tensor_value_info(n, t, d) for n, t, d in (
                             ("tiled", TP.FLOAT, [BATCH, 2 * T, 1]), ("least", TP.FLOAT, [BATCH]),
                             ("top", TP.INT64, [BATCH, 1, 2]), ("acts", TP.FLOAT, [BATCH, T, F]))], inits)
    X = f32(rng, BATCH, T, F, scale=2.5)
    X[0, 0, :3] = [1.0, -2.0, 0.0]                  # whole numbers: Floor, Ceil and Sign at their edges
    return graph, 9, {"X": X}, ["Clip-6", "Clip without min", "Max", "Min", "Sum", "Mean", "Softplus", "Softsign",
                                "Elu", "Selu", "HardSigmoid", "Erf", "Sign", "Floor", "Ceil", "Split-2",
                                "Split unequal", "Tile", "ReduceMin", "ArgMax"]


def clip_split_reduce_opset18(rng):
    """Opset 18: Clip with inputs (min alone; both; on int64), Split by num_outputs (7 steps in parts of
    3, 3, 1) and by an input, ReduceMin / ReduceL2 / ReduceLogSumExp with axes inputs, noop_with_empty_axes,
    Selu(alpha, gamma), ArgMin with select_last_index over ties, Where broadcasting both branches."""
    onnx, TP, h, nh = _helpers()
    F = 3
    inits = [nh.from_array(np.array(-0.3, np.float32), "lo"), nh.from_array(np.array(0.8, np.float32), "hi"),
             nh.from_array(np.array(2, np.int64), "lo_i"), nh.from_array(np.array(6, np.int64), "hi_i"),
             nh.from_array(np.array([1], np.int64), "time"), nh.from_array(np.array([0, 2], np.int64), "outer"),
             nh.from_array(np.array([2, 5], np.int64), "sizes"), nh.from_array(f32(rng, 1, F), "other")]
    nodes = [h.make_node("Clip", ["X", "lo"], ["above"], name="clip_min_only"),
             h.make_node("Clip", ["X", "lo", "hi"], ["between"], name="clip_both"),
             h.make_node("Clip", ["counts", "lo_i", "hi_i"], ["counts_clipped"], name="clip_int"),
             h.make_node("Split", ["between"], ["s0", "s1", "s2"], axis=1, num_outputs=3, name="split_num_outputs"),
             h.make_node("Split", ["above", "sizes"], ["p0", "p1"], axis=1, name="split_sizes"),
             h.make_node("ReduceMin", ["s0", "time"], ["m0"], keepdims=1),
             h.make_node("ReduceL2", ["s1", "outer"], ["l2"], keepdims=0),
             h.make_node("ReduceLogSumExp", ["p1", "time"], ["lse"], keepdims=0),
             h.make_node("ReduceLogSumExp", ["s2"], ["same"], noop_with_empty_axes=1, name="noop"),
             h.make_node("ReduceL2", ["p0"], ["all_l2"], keepdims=0, name="every_axis"),
             h.make_node("Selu", ["lse"], ["selu"], alpha=1.2, gamma=0.9),
             h.make_node("ArgMin", ["counts_clipped"], ["first_least"], axis=1, select_last_index=1, keepdims=0),
             h.make_node("Greater", ["selu", "other"], ["cond"]),
             h.make_node("Where", ["cond", "l2", "other"], ["picked"], name="where_broadcast")]
    graph = h.make_graph(nodes, "clip18", [h.make_tensor_value_info("X", TP.FLOAT, [BATCH, T, F]),
                                           h.make_tensor_value_info("counts", TP.INT64, [BATCH, 5])],
                         [h.make_tensor_value_info(n, t, d) for n, t, d in (
                             ("picked", TP.FLOAT, [BATCH, F]), ("m0", TP.FLOAT, [BATCH, 1, F]),
                             ("same", TP.FLOAT, [BATCH, 1, F]), ("all_l2", TP.FLOAT, []),
                             ("counts_clipped", TP.INT64, [BATCH, 5]), ("first_least", TP.INT64, [BATCH]))], inits)
    feeds = {"X": f32(rng, BATCH, T, F, scale=1.5), "counts": np.array([[0, 9, 1, 4, 2], [3, 3, 7, 8, 3],
                                                                         [6, 6, 6, 6, 6]], np.int64)}
    return graph, 18, feeds, ["Clip-13", "Clip without max", "Clip int64", "Split-18", "Split num_outputs",
                              "Split-13", "ReduceMin-18", "ReduceL2", "ReduceLogSumExp", "noop_with_empty_axes",
                              "Selu", "ArgMin select_last_index", "Where broadcasting", "Greater"]


def infinite_bounds_opset13(rng):
    """Graph constants that are infinite (opset 13): Clip whose max input is +inf (a bound left open), Clip whose
    min is -inf, Max with a -inf constant and Min with a row holding +inf, then Where filling with a -inf
    constant and a Softmax over it (a masked softmax: exp(-inf) is 0), and the same fill made at run time by
    ConstantOfShape(Shape(X)) with value -inf (as PyTorch exports ``torch.full_like(x, float("-inf"))``)."""
    onnx, TP, h, nh = _helpers()
    F = 5
    row = f32(rng, F)
    row[[1, 3]] = np.inf
    inits = [nh.from_array(np.array(-0.25, np.float32), "lo"), nh.from_array(np.array(np.inf, np.float32), "open_hi"),
             nh.from_array(np.array(-np.inf, np.float32), "open_lo"), nh.from_array(np.array(0.5, np.float32), "hi"),
             nh.from_array(np.array(-np.inf, np.float32), "minus_inf"), nh.from_array(row, "row_inf"),
             nh.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [h.make_node("Clip", ["X", "lo", "open_hi"], ["above"], name="clip_max_inf"),
             h.make_node("Clip", ["X", "open_lo", "hi"], ["below"], name="clip_min_inf"),
             h.make_node("Max", ["below", "minus_inf"], ["mx"], name="max_minus_inf"),
             h.make_node("Min", ["above", "row_inf"], ["mn"], name="min_row_inf"),
             h.make_node("Greater", ["X", "zero"], ["keep"]),
             h.make_node("Where", ["keep", "mx", "minus_inf"], ["scores"], name="masked_fill_minus_inf"),
             h.make_node("Softmax", ["scores"], ["probs"], axis=-1),
             h.make_node("Shape", ["X"], ["x_shape"]),
             h.make_node("ConstantOfShape", ["x_shape"], ["full"], value=nh.from_array(np.array([-np.inf], np.float32)),
                         name="full_like_minus_inf"),
             h.make_node("Where", ["keep", "X", "full"], ["scores_full"], name="where_full"),
             h.make_node("Softmax", ["scores_full"], ["probs_full"], axis=-1)]
    graph = h.make_graph(nodes, "inf13", [h.make_tensor_value_info("X", TP.FLOAT, ["batch", F])],
                         [h.make_tensor_value_info(n, TP.FLOAT, ["batch", F])
                          for n in ("above", "mn", "probs", "probs_full")], inits)
    X = f32(rng, BATCH, F, scale=1.5)
    X[:, 0] = np.abs(X[:, 0]) + 0.1                # every row keeps a step: no softmax over -inf alone
    return graph, 13, {"X": X}, ["Clip max +inf", "Clip min -inf", "Max -inf", "Min +inf", "Where -inf",
                                 "ConstantOfShape -inf"]


HELPER_MODELS = [sentiment_bidirectional_mean, lengths_clip_input_forget, activations_reverse_concat, opset9_slices,
                 float64_head, gru_sentiment_lengths, gru_activations_reverse, rnn_tanh_relu, gru_into_lstm,
                 directions_differ, masks_and_logic, clip_activations_opset9, clip_split_reduce_opset18,
                 infinite_bounds_opset13]


def torch_sentiment(path: Path, opset: int, fold: bool, dynamic: bool, seed: int, cell: str = "LSTM",
                    packed: str = ""):
    """A small sentiment model exported by torch.onnx.export (the TorchScript exporter): Embedding -> a
    batch-first recurrent layer -> last step -> Linear -> softmax. ``cell``: ``LSTM`` (bidirectional nn.LSTM),
    ``GRU`` (bidirectional nn.GRU: a GRU node with linear_before_reset 1) or ``RNN`` (a two-layer nn.RNN with
    Relu: two RNN nodes with activations ["Relu"]). ``packed``: the model also takes the lengths, packs the
    embedded sequence with ``pack_padded_sequence`` and classifies the final states (at each sequence's
    length), and returns the padded sequence output too (the exporter needs it read): ``"sorted"`` with
    ``enforce_sorted=True`` (the default; the exporter hands the lengths to the node's sequence_lens through
    two Casts), ``"unsorted"`` with ``enforce_sorted=False`` (the exporter sorts the batch with TopK and
    Gather, and puts it back in order with Range, ReduceProd and ScatterElements; two equal lengths)."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class Sentiment(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(50, 8)
            if cell == "RNN":
                layer = nn.RNN(8, 6, num_layers=2, nonlinearity="relu", batch_first=True)
            else:
                layer = getattr(nn, cell)(8, 6, batch_first=True, bidirectional=True)
            setattr(self, cell.lower(), layer)     # the exported nodes are named after it ("/lstm/LSTM")
            self.out = nn.Linear(6 if cell == "RNN" else 12, 2)

        def forward(self, ids, lengths=None):
            layer = getattr(self, cell.lower())
            if lengths is None:
                y, _ = layer(self.embedding(ids))
                return torch.softmax(self.out(y[:, -1]), dim=-1)
            y, h_n = layer(pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                                enforce_sorted=packed == "sorted"))
            h_n = h_n[0] if isinstance(h_n, tuple) else h_n              # the LSTM's (h_n, c_n)
            last = h_n[-1] if cell == "RNN" else torch.cat([h_n[-2], h_n[-1]], -1)   # the last layer's
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=ids.shape[1])
            return torch.softmax(self.out(last), dim=-1), y

    torch.manual_seed(seed)
    model = Sentiment().eval()
    ids = torch.randint(0, 50, (BATCH, T))
    lengths = {"sorted": [T, 4, 2], "unsorted": [4, T, 4]}.get(packed)
    inputs = (ids, torch.tensor(lengths)) if packed else (ids,)
    names = ["ids", "lengths"][:len(inputs)]
    outputs = ["probs", "sequence"] if packed else ["probs"]
    dynamic_axes = {"ids": {0: "batch", 1: "steps"}, "probs": {0: "batch"}} if dynamic else None
    if dynamic and packed:
        dynamic_axes.update(lengths={0: "batch"}, sequence={0: "batch", 1: "steps"})
    torch.onnx.export(model, inputs, str(path), opset_version=opset, do_constant_folding=fold, dynamo=False,
                      input_names=names, output_names=outputs, dynamic_axes=dynamic_axes)
    return {n: t.numpy() for n, t in zip(names, inputs)}, torch.__version__


def torch_masked(path: Path, opset: int, seed: int, cell: str):
    """A classifier over padded token ids exported by torch.onnx.export (the TorchScript exporter): the mask
    ``ids != 0`` (Equal, Not), its lengths ``mask.sum(1)`` (Cast, ReduceSum), a bidirectional nn.LSTM or
    nn.GRU over the embedded ids, ``masked_fill`` of the padded steps (Where), the mean over the valid steps
    with the lengths clamped to at least 1 (Clip on int64, min alone), Linear, ``clamp(-3, 3)`` of the logits
    (Clip), softmax and ``argmax`` (ArgMax). Clip on integers takes opset 12 or later."""
    import torch
    from torch import nn

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(40, 8, padding_idx=0)
            self.rnn = getattr(nn, cell)(8, 6, batch_first=True, bidirectional=True)
            self.out = nn.Linear(12, 3)

        def forward(self, ids):
            mask = ids != 0
            lengths = mask.sum(1)
            y, _ = self.rnn(self.embedding(ids))
            y = y.masked_fill(~mask.unsqueeze(-1), 0.0)
            pooled = y.sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(y.dtype)
            logits = self.out(pooled).clamp(-3, 3)
            return torch.softmax(logits, dim=-1), logits.argmax(-1)

    torch.manual_seed(seed)
    model = Masked().eval()
    ids = torch.randint(1, 40, (BATCH, T))
    ids[1, 4:], ids[2, 1:] = 0, 0
    torch.onnx.export(model, (ids,), str(path), opset_version=opset, dynamo=False, input_names=["ids"],
                      output_names=["probs", "label"], dynamic_axes={"ids": {0: "batch", 1: "steps"}})
    return {"ids": ids.numpy()}, torch.__version__


MASKED_MODELS = [("torch_lstm_masked_opset14", 14, "LSTM"), ("torch_gru_masked_opset17", 17, "GRU")]


def torch_attention(path: Path, opset: int, seed: int):
    """An LSTM encoder with attention pooling exported by torch.onnx.export (the TorchScript exporter): embedded
    ids -> nn.LSTM -> scores = Linear(h), ``scores.masked_fill(ids == 0, float("-inf"))`` (a Where whose value is
    a constant -inf), softmax over time, the weighted sum of h, a Linear head. Every row keeps a step."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(40, 8, padding_idx=0)
            self.lstm = nn.LSTM(8, 6, batch_first=True)
            self.score = nn.Linear(6, 1)
            self.out = nn.Linear(6, 3)

        def forward(self, ids):
            h, _ = self.lstm(self.embedding(ids))
            scores = self.score(h).squeeze(-1).masked_fill(ids == 0, float("-inf"))
            weights = torch.softmax(scores, dim=1)
            return self.out((weights.unsqueeze(-1) * h).sum(1)), weights

    torch.manual_seed(seed)
    model = Attention().eval()
    ids = torch.randint(1, 40, (BATCH, T))
    ids[1, 4:], ids[2, 1:] = 0, 0
    torch.onnx.export(model, (ids,), str(path), opset_version=opset, dynamo=False, input_names=["ids"],
                      output_names=["logits", "attention"], dynamic_axes={"ids": {0: "batch", 1: "steps"}})
    return {"ids": ids.numpy()}, torch.__version__


ATTENTION_MODELS = [("torch_lstm_attention_opset14", 14)]


# name, opset, constant folding, dynamic axes, recurrent layer, packed sequences
TORCH_MODELS = [("torch_sentiment_opset9", 9, False, False, "LSTM", ""),
                ("torch_sentiment_opset14_dynamic", 14, True, True, "LSTM", ""),
                ("torch_gru_opset9", 9, False, False, "GRU", ""),
                ("torch_gru_opset14_dynamic", 14, True, True, "GRU", ""),
                ("torch_rnn_relu_opset14", 14, True, True, "RNN", ""),
                ("torch_gru_packed_opset14", 14, True, True, "GRU", "sorted"),
                ("torch_rnn_packed_unsorted_opset17", 17, True, True, "RNN", "unsorted")]


def main():
    import warnings

    import onnxruntime as ort

    onnx, TP, h, nh = _helpers()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "onnx_models")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    arrays, versions = {}, {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__}
    jobs = []
    for build in HELPER_MODELS:
        graph, opset, feeds, covers = build(rng)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        path = args.out / f"{build.__name__}.onnx"
        onnx.save(model, str(path))
        jobs.append((build.__name__, path, feeds, covers))
    for name, opset, fold, dynamic, cell, packed in TORCH_MODELS:
        path = args.out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feeds, versions["torch"] = torch_sentiment(path, opset, fold, dynamic, args.seed, cell, packed)
        ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
        jobs.append((name, path, feeds, [f"torch.onnx.export opset {opset}", *ops]))
    for name, opset, cell in MASKED_MODELS:
        path = args.out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feeds, versions["torch"] = torch_masked(path, opset, args.seed, cell)
        ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
        jobs.append((name, path, feeds, [f"torch.onnx.export opset {opset}", *ops]))
    for name, opset in ATTENTION_MODELS:
        path = args.out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feeds, versions["torch"] = torch_attention(path, opset, args.seed)
        ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
        jobs.append((name, path, feeds, [f"torch.onnx.export opset {opset}", "masked_fill -inf", *ops]))
    for name, path, feeds, covers in jobs:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = sess.run(None, feeds)
        arrays[f"{name}/config"] = np.array(json.dumps({"file": path.name, "inputs": list(feeds),
                                                        "outputs": len(outs), "covers": covers}))
        for k, (n, v) in enumerate(feeds.items()):
            arrays[f"{name}/input{k}"] = v
        for k, o in enumerate(outs):
            arrays[f"{name}/output{k}"] = o
        print(name, [o.shape for o in outs])
    arrays["versions"] = np.array(json.dumps(versions))
    np.savez_compressed(args.out / "expected.npz", **arrays)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
