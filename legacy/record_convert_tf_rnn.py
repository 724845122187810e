"""TF1 GRU and simple-RNN cells built in TensorFlow 2.21 (tf.compat.v1 graph mode), saved by Saver, run and recorded.

    python legacy/record_convert_tf_rnn.py [--out tests/golden/convert/tf1_rnn]

Each case is one small checkpoint (``<case>/model.ckpt``) and, in ``expected.npz``, the input fed to the graph
and what TF returned for every recurrent layer in it (outputs batch-major, both directions concatenated; final
h per layer and direction in torch.nn.GRU's order), with the command-line options the converter needs.

Weights are random (seeded) and assigned after initialisation. Cells TF 2.21 no longer has are built from what
it still has, with the variable names of the legacy sources:

- ``GRUBlockCell`` (tf.contrib.rnn gru_ops.py, gone): its kernel ``tf.raw_ops.GRUBlockCell`` still runs on the
  CPU (a step loop here); the variables get gru_ops.py's names (``gru_cell/w_ru``, ``b_ru``, ``w_c``, ``b_c``).
- ``CudnnGRU``: TF has no CPU kernel for ``CudnnRNN``. Its canonical checkpoint form is what
  ``CudnnCompatibleGRUCell`` (contrib cudnn_rnn_ops.py, gone) reads: that cell's ``call`` is written here in TF
  ops as TF 1.x computes it (``gates`` r, u from ``[x, h]``; the candidate ``tanh(x W_i + b_i + r * (h W_h +
  b_h))`` under ``candidate/input_projection`` and ``candidate/hidden_projection``), in
  ``cudnn_gru/.../cudnn_compatible_gru_cell``; the opaque buffers (``cudnn_gru``, ``cudnn_rnn_tanh``,
  ``cudnn_rnn_relu``) are written by this recorder in cuDNN's layout, their outputs computed by the same TF ops.
- TF 1.0/1.1 (``weights``, ``biases``) and <= 0.12 (``Gates/Linear/Matrix``, ``Linear/Matrix``, ...) names: the
  modern cells' variables saved under the old names (``Saver(var_list={old_name: variable})``).

Also tf.keras ``GRU`` (both resets), ``SimpleRNN`` and ``Bidirectional(GRU)`` in a TF1 graph, under TF 2.x's and
tf.keras 1.x's variable names (``keras_graph_gru``, ``keras_graph_gru_tf1x_names``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import GOLDEN, fresh_folder, import_tf, tf_session, write_expected
from record_convert_tf import _assign_random, _stack_bidi

B, T, SEED = 3, 6, 22
LENGTHS = [6, 4, 2]


class Recorder:
    def __init__(self, tf, out: Path):
        self.tf, self.out = tf, out
        self.arrays = {}
        self.rng = np.random.default_rng(SEED)

    def save(self, name, sess, var_list, x, layers, cli, lengths=None, kinds=None, initial=None):
        saver = self.tf.compat.v1.train.Saver(var_list=var_list)
        (self.out / name).mkdir(parents=True)
        saver.save(sess, str(self.out / name / "model.ckpt"), write_meta_graph=False, write_state=False)
        self.arrays[f"{name}/config"] = np.array(json.dumps({"checkpoint": f"{name}/model.ckpt", "cli": cli,
                                                             "layers": list(layers), "lengths": lengths,
                                                             "kinds": kinds or {}}))
        self.arrays[f"{name}/x"] = x
        for layer, (y, h) in layers.items():
            self.arrays[f"{name}/{layer}/y"], self.arrays[f"{name}/{layer}/h"] = y, h
        for layer, h0 in (initial or {}).items():
            self.arrays[f"{name}/{layer}/h0"] = h0
        print(name, list(layers))

    def case(self, name, build, cli=(), *, lengths=None, var_names=None, kinds=None, n_in=3, dtype="float32",
             layer_names=None):
        tf = self.tf
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(dtype, [B, T, n_in])
            seq = None if lengths is None else tf.constant(lengths)
            fetches = build(tf, x, seq)
            variables = v1.global_variables()
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                _assign_random(tf, sess, variables, self.rng)
                xv = self.rng.uniform(-1.5, 1.5, (B, T, n_in)).astype(dtype)
                got = sess.run(fetches, {x: xv})
                rename = layer_names or {}
                layers = {rename.get(k, k): (np.asarray(y), np.stack(s) if isinstance(s, (tuple, list))
                                             else np.asarray(s)[None]) for k, (y, s) in got.items()}
                kinds = {rename.get(k, k): v for k, v in (kinds or {}).items()}
                var_list = {(var_names or {}).get(v.op.name, v.op.name): v for v in variables}
                self.save(name, sess, var_list, xv, layers, list(cli), lengths, kinds)


def cell_cases(rec: Recorder):
    v1 = rec.tf.compat.v1
    cells = v1.nn.rnn_cell

    def gru(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.GRUCell(4), x, sequence_length=seq, dtype=x.dtype)
        return {"rnn/gru_cell": (y, s)}
    rec.case("gru_cell_lengths", gru, lengths=LENGTHS, kinds={"rnn/gru_cell": "GRUCell"})
    rec.case("gru_cell_names_tf1_0", gru, kinds={"rnn/gru_cell": "GRUCell"}, var_names={
        f"rnn/gru_cell/{g}/{n}": f"rnn/gru_cell/{g}/{m}" for g in ("gates", "candidate")
        for n, m in (("kernel", "weights"), ("bias", "biases"))})
    rec.case("gru_cell_names_tf0_12", gru, kinds={"rnn/gru_cell": "GRUCell"},
             layer_names={"rnn/gru_cell": "RNN/GRUCell"}, var_names={
        f"rnn/gru_cell/{g}/{n}": f"RNN/GRUCell/{g.capitalize()}/Linear/{m}" for g in ("gates", "candidate")
        for n, m in (("kernel", "Matrix"), ("bias", "Bias"))})

    def basic(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.BasicRNNCell(4), x, sequence_length=seq, dtype=x.dtype)
        return {"rnn/basic_rnn_cell": (y, s)}
    rec.case("basic_rnn_cell_lengths", basic, lengths=LENGTHS, kinds={"rnn/basic_rnn_cell": "BasicRNNCell"})
    rec.case("basic_rnn_cell_names_tf1_0", basic, kinds={"rnn/basic_rnn_cell": "BasicRNNCell"}, var_names={
        "rnn/basic_rnn_cell/kernel": "rnn/basic_rnn_cell/weights", "rnn/basic_rnn_cell/bias": "rnn/basic_rnn_cell/biases"})
    rec.case("basic_rnn_cell_names_tf0_12", basic, kinds={"rnn/basic_rnn_cell": "BasicRNNCell"},
             layer_names={"rnn/basic_rnn_cell": "RNN/BasicRNNCell"}, var_names={
        "rnn/basic_rnn_cell/kernel": "RNN/BasicRNNCell/Linear/Matrix",
        "rnn/basic_rnn_cell/bias": "RNN/BasicRNNCell/Linear/Bias"})

    def multi(tf, x, seq):
        with v1.variable_scope("multi"):
            y, s = v1.nn.dynamic_rnn(cells.MultiRNNCell([cells.GRUCell(3), cells.GRUCell(3)]), x,
                                     sequence_length=seq, dtype=x.dtype)
        return {"multi/rnn/multi_rnn_cell": (y, s)}
    rec.case("multi_rnn_cell_gru_lengths", multi, lengths=LENGTHS, kinds={"multi/rnn/multi_rnn_cell": "GRUCell"})

    def bidi(tf, x, seq):
        (fw, bw), (sf, sb) = v1.nn.bidirectional_dynamic_rnn(cells.GRUCell(3), cells.GRUCell(3), x,
                                                             sequence_length=seq, dtype=x.dtype)
        return {"bidirectional_rnn": (tf.concat([fw, bw], 2), (sf, sb))}
    rec.case("bidirectional_gru_lengths", bidi, lengths=LENGTHS, kinds={"bidirectional_rnn": "GRUCell"})

    def stack(tf, x, seq):
        y, sf, sb = _stack_bidi(tf, [cells.BasicRNNCell(3) for _ in range(2)], [cells.BasicRNNCell(3) for _ in range(2)],
                                x, seq)
        return {"stack_bidirectional_rnn": (y, [s for pair in zip(sf, sb) for s in pair])}
    rec.case("stack_bidirectional_basic_rnn", stack, lengths=LENGTHS,
             kinds={"stack_bidirectional_rnn": "BasicRNNCell"})

    def f64(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.GRUCell(3), x, dtype=x.dtype)
        return {"rnn/gru_cell": (y, s)}
    rec.case("float64_gru_cell", f64, dtype="float64", kinds={"rnn/gru_cell": "GRUCell"})


def _cudnn_compatible_gru(tf, x, H, n_in, scope):
    """CudnnCompatibleGRUCell.call (TF 1.x contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py) over x, statically
    unrolled, its variables under ``scope``: returns (y, h_T)."""
    v1 = tf.compat.v1
    with v1.variable_scope(scope):
        with v1.variable_scope("gates"):
            gk, gb = v1.get_variable("kernel", [n_in + H, 2 * H]), v1.get_variable("bias", [2 * H])
        with v1.variable_scope("candidate/input_projection"):
            ik, ib = v1.get_variable("kernel", [n_in, H]), v1.get_variable("bias", [H])
        with v1.variable_scope("candidate/hidden_projection"):
            hk, hb = v1.get_variable("kernel", [H, H]), v1.get_variable("bias", [H])
    h, ys = tf.zeros([B, H]), []
    for t in range(T):
        value = tf.sigmoid(tf.matmul(tf.concat([x[:, t], h], 1), gk) + gb)
        r, u = tf.split(value, 2, axis=1)
        c = tf.tanh(tf.matmul(x[:, t], ik) + ib + r * (tf.matmul(h, hk) + hb))
        h = u * h + (1 - u) * c
        ys.append(h)
    return tf.stack(ys, 1), h, (gk, gb, ik, ib, hk, hb)


def special_cases(rec: Recorder):
    tf = rec.tf
    v1 = tf.compat.v1
    n_in, H = 3, 4

    # GRUBlockCell: tf.raw_ops.GRUBlockCell, variables named as gru_ops.py names them
    def block(tf, x, seq):
        with v1.variable_scope("rnn/gru_cell"):
            w_ru, w_c = v1.get_variable("w_ru", [n_in + H, 2 * H]), v1.get_variable("w_c", [n_in + H, H])
            b_ru, b_c = v1.get_variable("b_ru", [2 * H]), v1.get_variable("b_c", [H])
        h, ys = tf.zeros([B, H]), []
        for t in range(T):
            h = tf.raw_ops.GRUBlockCell(x=x[:, t], h_prev=h, w_ru=w_ru, w_c=w_c, b_ru=b_ru, b_c=b_c).h
            ys.append(h)
        return {"rnn/gru_cell": (tf.stack(ys, 1), h)}
    rec.case("gru_block_cell", block, kinds={"rnn/gru_cell": "GRUBlockCell"})

    def cudnn(tf, x, seq):
        y, h, _ = _cudnn_compatible_gru(tf, x, H, n_in, "cudnn_gru/rnn/multi_rnn_cell/cell_0/cudnn_compatible_gru_cell")
        return {"cudnn_gru/rnn/multi_rnn_cell": (y, h)}
    rec.case("cudnn_gru_canonical", cudnn, kinds={"cudnn_gru/rnn/multi_rnn_cell": "CudnnCompatibleGRUCell"})

    # Opaque buffers in cuDNN's layout (per gate W then R, then biases bW, bR; GRU gates r, u, h)
    rng = rec.rng
    for mode in ("gru", "rnn_tanh", "rnn_relu"):
        G = 3 if mode == "gru" else 1
        W = rng.uniform(-0.8, 0.8, (G, H, n_in)).astype(np.float32)
        R = rng.uniform(-0.8, 0.8, (G, H, H)).astype(np.float32)
        bw = rng.uniform(-0.5, 0.5, (G, H)).astype(np.float32)
        br = rng.uniform(-0.5, 0.5, (G, H)).astype(np.float32)
        buf = np.concatenate([W.ravel(), R.ravel(), bw.ravel(), br.ravel()])
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, [B, T, n_in])
            scope = {"gru": "cudnn_gru", "rnn_tanh": "cudnn_rnn_tanh", "rnn_relu": "cudnn_rnn_relu"}[mode]
            opaque = v1.get_variable(f"{scope}/opaque_kernel", initializer=buf)
            h, ys = tf.zeros([B, H]), []
            for t in range(T):
                xt = x[:, t]
                if mode == "gru":
                    r = tf.sigmoid(tf.matmul(xt, W[0].T) + bw[0] + tf.matmul(h, R[0].T) + br[0])
                    u = tf.sigmoid(tf.matmul(xt, W[1].T) + bw[1] + tf.matmul(h, R[1].T) + br[1])
                    c = tf.tanh(tf.matmul(xt, W[2].T) + bw[2] + r * (tf.matmul(h, R[2].T) + br[2]))
                    h = u * h + (1 - u) * c
                else:
                    pre = tf.matmul(xt, W[0].T) + bw[0] + tf.matmul(h, R[0].T) + br[0]
                    h = tf.tanh(pre) if mode == "rnn_tanh" else tf.nn.relu(pre)
                ys.append(h)
            y = tf.stack(ys, 1)
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                xv = rng.uniform(-1.5, 1.5, (B, T, n_in)).astype(np.float32)
                yv, hv = sess.run([y, h], {x: xv})
                rec.save(f"{scope}_opaque", sess, {f"{scope}/opaque_kernel": opaque}, xv, {scope: (yv, hv[None])},
                         ["--cudnn-num-units", str(H)], kinds={scope: f"cudnn {mode}"})


def keras_graph_cases(rec: Recorder):
    """tf.keras GRU (reset after and before the product), SimpleRNN and Bidirectional(GRU) built in a
    tf.compat.v1 graph and saved by Saver under TF 2.x's names (``gru/gru_cell/kernel``) and, with tf.keras 1.x's
    default recurrent_activation hard_sigmoid, under tf.keras 1.x's (``gru/kernel``: the cell's variables in the
    layer's scope; Saver's var_list renames them)."""
    tf = rec.tf
    v1 = tf.compat.v1
    keras = tf.keras
    for case, tf1x in (("keras_graph_gru", False), ("keras_graph_gru_tf1x_names", True)):
        rec_act = "hard_sigmoid" if tf1x else "sigmoid"
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, [B, T, 3])
            seq = dict(return_sequences=True, return_state=True, recurrent_activation=rec_act)
            layers = {"gru": keras.layers.GRU(4, reset_after=True, **seq, name="gru"),
                      "gru_before": keras.layers.GRU(3, reset_after=False, **seq, name="gru_before"),
                      "simple_rnn": keras.layers.SimpleRNN(3, return_sequences=True, return_state=True,
                                                           name="simple_rnn"),
                      "bidirectional": keras.layers.Bidirectional(keras.layers.GRU(2, **seq), name="bidirectional")}
            fetches = {}
            for name, layer in layers.items():
                out = layer(x)
                fetches[name] = (out[0], list(out[1:]))
            variables = v1.global_variables()
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                _assign_random(tf, sess, variables, rec.rng)
                xv = rec.rng.uniform(-1.5, 1.5, (B, T, 3)).astype(np.float32)
                got = sess.run(fetches, {x: xv})
                names = {}
                for v in variables:
                    name = v.op.name
                    if tf1x:
                        name = name.replace("/gru_cell/", "/").replace("/simple_rnn_cell/", "/")
                    names[name] = v
                kinds = {"gru": "tf.keras GRU", "gru_before": "tf.keras GRU reset before", "simple_rnn":
                         "tf.keras SimpleRNN", "bidirectional": "tf.keras GRU"}
                rec.save(case, sess, names, xv, {k: (np.asarray(y), np.stack(h)) for k, (y, h) in got.items()},
                         ["--keras-recurrent-activation", "hard_sigmoid"] if tf1x else [], kinds=kinds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "tf1_rnn")
    args = parser.parse_args()
    tf = import_tf()
    fresh_folder(args.out)
    rec = Recorder(tf, args.out)
    cell_cases(rec)
    special_cases(rec)
    keras_graph_cases(rec)
    write_expected(args.out, rec.arrays)


if __name__ == "__main__":
    main()
