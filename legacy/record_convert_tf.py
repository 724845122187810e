"""TF1 LSTM cells built in TensorFlow 2.21 (tf.compat.v1 graph mode), saved by Saver, run and recorded.

    python legacy/record_convert_tf.py [--out tests/golden/convert/tf1]

Each case is one small checkpoint (``<case>/model.ckpt``) and, in ``expected.npz``, the input fed to the
graph and what TF returned for every LSTM in it (outputs batch-major, both directions concatenated as
callers of bidirectional_dynamic_rnn do; final h and c per layer and direction in torch.nn.LSTM's order),
with the command-line options the converter needs for what the checkpoint does not store.

Weights are random (seeded) and assigned after initialisation, so that no bias is zero. Cells TF 2.21 no
longer has are built from what it still has, with the variable names of the legacy sources:

- ``LSTMBlockCell`` / ``LSTMBlockFusedCell`` (tf.contrib.rnn, gone): their kernels ``tf.raw_ops.LSTMBlockCell``
  (a step loop) and ``tf.raw_ops.BlockLSTM`` still run on the CPU; the variables get lstm_ops.py's names
  (``lstm_cell/kernel``, ``bias``, ``w_i_diag``, ``w_f_diag``, ``w_o_diag``).
- ``CudnnLSTM``: TF has no CPU kernel for ``CudnnRNN``. Its canonical checkpoint form is what
  ``CudnnCompatibleLSTMCell`` reads, an ``LSTMCell(forget_bias=0)`` named ``cudnn_compatible_lstm_cell``,
  which runs here; the opaque buffer is written in cuDNN's layout from two random biases whose sum that
  cell is given.
- TF 1.0/1.1 (``weights``, ``biases``) and <= 0.12 (``Linear/Matrix``, ``W_0``, ``W_I_diag``, ...) names:
  the modern cells' variables saved under the old names (``Saver(var_list={old_name: variable})``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import GOLDEN, fresh_folder, import_tf, tf_session, write_expected

B, T, SEED = 3, 6, 14
LENGTHS = [6, 4, 2]


def _assign_random(tf, sess, variables, rng, scale=0.8):
    for v in variables:
        value = rng.uniform(-scale, scale, v.shape.as_list()).astype(v.dtype.base_dtype.as_numpy_dtype)
        v.load(value, sess)


def _states(state):
    """(h [n, B, .], c [n, B, H]) from an LSTMStateTuple or a tuple of them."""
    if hasattr(state, "c"):
        state = (state,)
    return np.stack([s.h for s in state]), np.stack([s.c for s in state])


class Recorder:
    def __init__(self, tf, out: Path):
        self.tf, self.out = tf, out
        self.arrays = {}
        self.rng = np.random.default_rng(SEED)
        self.initial = {}   # case -> {lstm: (h0, c0)} for cases fed an initial state (torch.nn.LSTM's layout)

    def save_case(self, name, sess, var_list, x, lstms, cli, lengths=None):
        v1 = self.tf.compat.v1
        saver = v1.train.Saver(var_list=var_list)
        (self.out / name).mkdir(parents=True)
        saver.save(sess, str(self.out / name / "model.ckpt"), write_meta_graph=False, write_state=False)
        self.arrays[f"{name}/config"] = np.array(json.dumps({"checkpoint": f"{name}/model.ckpt", "cli": cli,
                                                             "lstms": list(lstms), "lengths": lengths}))
        self.arrays[f"{name}/x"] = x
        for spec, (h0, c0) in self.initial.get(name, {}).items():
            self.arrays[f"{name}/{spec}/h0"], self.arrays[f"{name}/{spec}/c0"] = h0, c0
        for spec, (y, h, c) in lstms.items():
            self.arrays[f"{name}/{spec}/y"] = y
            self.arrays[f"{name}/{spec}/h"] = h
            self.arrays[f"{name}/{spec}/c"] = c
        print(name, list(lstms))

    def case(self, name, build, cli, *, dtype="float32", n_in=3, lengths=None, var_names=None, scale=0.8):
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
                _assign_random(tf, sess, variables, self.rng, scale)
                xv = self.rng.uniform(-1.5, 1.5, (B, T, n_in)).astype(dtype)
                got = sess.run(fetches, {x: xv})
                lstms = {k: (np.asarray(y), *_states(s)) if not isinstance(s, tuple) or hasattr(s, "c") or hasattr(s[0], "c")
                         else (np.asarray(y), *s) for k, (y, s) in got.items()}
                var_list = {(var_names or {}).get(v.op.name, v.op.name): v for v in variables}
                self.save_case(name, sess, var_list, xv, lstms, cli, lengths)


def build_cases(rec: Recorder):
    tf = rec.tf
    v1 = tf.compat.v1
    cells = v1.nn.rnn_cell

    def basic(tf, x, seq):
        with v1.variable_scope("basic"):
            y, s = v1.nn.dynamic_rnn(cells.BasicLSTMCell(4), x, dtype=x.dtype)
        return {"basic/rnn/basic_lstm_cell": (y, s)}
    rec.case("basic", basic, [])

    def basic_fb(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.BasicLSTMCell(3, forget_bias=0.25), x, dtype=x.dtype)
        return {"rnn/basic_lstm_cell": (y, s)}
    rec.case("basic_forget_bias", basic_fb, ["--forget-bias", "0.25"])

    def peep_proj(tf, x, seq):
        with v1.variable_scope("peep"):
            cell = cells.LSTMCell(5, use_peepholes=True, num_proj=3, cell_clip=0.8, proj_clip=0.4, forget_bias=0.5)
            y, s = v1.nn.dynamic_rnn(cell, x, dtype=x.dtype)
        return {"peep/rnn/lstm_cell": (y, s)}
    rec.case("lstmcell_peepholes_proj_clips", peep_proj,
             ["--forget-bias", "0.5", "--cell-clip", "0.8", "--proj-clip", "0.4"], scale=1.5)

    def proj(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.LSTMCell(4, num_proj=2), x, dtype=x.dtype)
        return {"rnn/lstm_cell": (y, s)}
    rec.case("lstmcell_proj", proj, [])

    def bidi(tf, x, seq):
        (fw, bw), (sf, sb) = v1.nn.bidirectional_dynamic_rnn(cells.LSTMCell(3), cells.LSTMCell(3), x,
                                                             sequence_length=seq, dtype=x.dtype)
        return {"bidirectional_rnn": (tf.concat([fw, bw], 2), (tf.stack([sf.h, sb.h]), tf.stack([sf.c, sb.c])))}
    rec.case("bidirectional_lengths", bidi, ["--forget-bias", "1.0"], lengths=LENGTHS)

    def multi(tf, x, seq):
        with v1.variable_scope("multi"):
            y, s = v1.nn.dynamic_rnn(cells.MultiRNNCell([cells.LSTMCell(4), cells.LSTMCell(4)]), x, dtype=x.dtype)
        return {"multi/rnn/multi_rnn_cell": (y, s)}
    rec.case("multi_rnn_cell", multi, [])

    def multi_peep(tf, x, seq):
        stack = cells.MultiRNNCell([cells.LSTMCell(3, use_peepholes=True), cells.LSTMCell(3)])
        y, s = v1.nn.dynamic_rnn(stack, x, dtype=x.dtype, sequence_length=seq)
        return {"rnn/multi_rnn_cell": (y, s)}
    rec.case("multi_rnn_cell_mixed_peepholes_lengths", multi_peep, [], lengths=LENGTHS)

    def bidi_multi(tf, x, seq):
        fw = cells.MultiRNNCell([cells.LSTMCell(3), cells.LSTMCell(3)])
        bw = cells.MultiRNNCell([cells.LSTMCell(3), cells.LSTMCell(3)])
        (yf, yb), (sf, sb) = v1.nn.bidirectional_dynamic_rnn(fw, bw, x, dtype=x.dtype)
        return {"bidirectional_rnn/fw": (yf, sf), "bidirectional_rnn/bw": (yb, sb)}
    rec.case("bidirectional_multi_rnn_cell", bidi_multi, [])

    def stack(tf, x, seq):
        fws = [cells.LSTMCell(3), cells.LSTMCell(3)]
        bws = [cells.LSTMCell(3), cells.LSTMCell(3)]
        y, sf, sb = _stack_bidi(tf, fws, bws, x, seq)
        hs = [s for pair in zip(sf, sb) for s in pair]
        return {"stack_bidirectional_rnn": (y, (tf.stack([s.h for s in hs]), tf.stack([s.c for s in hs])))}
    rec.case("stack_bidirectional", stack, [], lengths=LENGTHS)

    def cudnn(tf, x, seq):
        with v1.variable_scope("cudnn_lstm"):
            cell = cells.MultiRNNCell([cells.LSTMCell(4, forget_bias=0.0, name="cudnn_compatible_lstm_cell")])
            y, s = v1.nn.dynamic_rnn(cell, x, dtype=x.dtype)
        return {"cudnn_lstm/rnn/multi_rnn_cell": (y, s)}
    rec.case("cudnn_canonical", cudnn, [])

    def cudnn_bidi(tf, x, seq):
        with v1.variable_scope("cudnn_lstm"):
            fws = [cells.LSTMCell(3, forget_bias=0.0, name="cudnn_compatible_lstm_cell") for _ in range(2)]
            bws = [cells.LSTMCell(3, forget_bias=0.0, name="cudnn_compatible_lstm_cell") for _ in range(2)]
            y, sf, sb = _stack_bidi(tf, fws, bws, x, seq)
        hs = [s for pair in zip(sf, sb) for s in pair]
        return {"cudnn_lstm/stack_bidirectional_rnn": (y, (tf.stack([s.h for s in hs]), tf.stack([s.c for s in hs])))}
    rec.case("cudnn_canonical_bidirectional_2layers", cudnn_bidi, [])

    # TF 1.0 / 1.1 names of BasicLSTMCell, TF <= 0.12 names of a MultiRNNCell of BasicLSTMCells and of an
    # LSTMCell with peepholes and a projection.
    def old_basic(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.BasicLSTMCell(4), x, dtype=x.dtype)
        return {"rnn/basic_lstm_cell": (y, s)}
    rec.case("names_tf1_0", old_basic, [], var_names={"rnn/basic_lstm_cell/kernel": "rnn/basic_lstm_cell/weights",
                                                      "rnn/basic_lstm_cell/bias": "rnn/basic_lstm_cell/biases"})

    def old_multi(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.MultiRNNCell([cells.BasicLSTMCell(3), cells.BasicLSTMCell(3)]), x, dtype=x.dtype)
        return {"RNN/MultiRNNCell": (y, s)}
    rec.case("names_tf0_12_multi", old_multi, [], var_names={
        f"rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell/{n}": f"RNN/MultiRNNCell/Cell{k}/BasicLSTMCell/Linear/{m}"
        for k in range(2) for n, m in (("kernel", "Matrix"), ("bias", "Bias"))})

    def old_lstm(tf, x, seq):
        y, s = v1.nn.dynamic_rnn(cells.LSTMCell(4, use_peepholes=True, num_proj=2), x, dtype=x.dtype)
        return {"RNN/LSTMCell": (y, s)}
    rec.case("names_tf0_12_lstmcell", old_lstm, [], var_names={
        f"rnn/lstm_cell/{n}": f"RNN/LSTMCell/{m}" for n, m in (
            ("kernel", "W_0"), ("bias", "B"), ("w_i_diag", "W_I_diag"), ("w_f_diag", "W_F_diag"),
            ("w_o_diag", "W_O_diag"), ("projection/kernel", "W_P_0"))})

    def f64(tf, x, seq):
        cell = cells.LSTMCell(3, use_peepholes=True, num_proj=2, cell_clip=0.9, forget_bias=0.75)
        y, s = v1.nn.dynamic_rnn(cell, x, dtype=x.dtype)
        return {"rnn/lstm_cell": (y, s)}
    rec.case("float64_lstmcell", f64, ["--forget-bias", "0.75", "--cell-clip", "0.9"], dtype="float64", scale=1.5)


def _stack_bidi(tf, fws, bws, x, seq):
    """stack_bidirectional_dynamic_rnn as TF 1.x contrib/rnn/python/ops/rnn.py writes it (gone from 2.21):
    layer k in scope stack_bidirectional_rnn/cell_k, bidirectional_dynamic_rnn on the previous outputs."""
    v1 = tf.compat.v1
    inp = x
    sf, sb = [], []
    with v1.variable_scope("stack_bidirectional_rnn"):
        for k, (fw, bw) in enumerate(zip(fws, bws)):
            with v1.variable_scope(f"cell_{k}"):
                (yf, yb), (s_f, s_b) = v1.nn.bidirectional_dynamic_rnn(fw, bw, inp, sequence_length=seq, dtype=x.dtype)
                inp = tf.concat([yf, yb], 2)
                sf.append(s_f)
                sb.append(s_b)
    return inp, sf, sb


def block_cases(rec: Recorder):
    """LSTMBlockCell (step op, peepholes, the early cell_clip default 3.0) and LSTMBlockFusedCell (BlockLSTM)."""
    tf = rec.tf
    v1 = tf.compat.v1
    n_in, H = 3, 4
    for name, fused, peep, clip, scale, cli in (("lstm_block_cell_peepholes_clip3", False, True, 3.0, 0.8, ["--cell-clip", "3"]),
                                               ("lstm_block_fused_cell", True, False, -1.0, 0.8, [])):
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, [B, T, n_in])
            with v1.variable_scope("block/lstm_cell"):
                w = v1.get_variable("kernel", [n_in + H, 4 * H])
                b = v1.get_variable("bias", [4 * H])
                diag = [v1.get_variable(n, [H]) for n in ("w_i_diag", "w_f_diag", "w_o_diag")] if peep else \
                    [tf.zeros([H])] * 3
            if fused:
                outs = tf.raw_ops.BlockLSTM(seq_len_max=tf.constant(T, tf.int64), x=tf.transpose(x, [1, 0, 2]),
                                            cs_prev=tf.zeros([B, H]), h_prev=tf.zeros([B, H]), w=w, wci=diag[0],
                                            wcf=diag[1], wco=diag[2], b=b, forget_bias=1.0, cell_clip=clip,
                                            use_peephole=peep)
                y = tf.transpose(outs.h, [1, 0, 2])
                h_n, c_n = outs.h[-1], outs.cs[-1]
            else:
                h, c, ys, cs = tf.zeros([B, H]), tf.zeros([B, H]), [], []
                for t in range(T):
                    r = tf.raw_ops.LSTMBlockCell(x=x[:, t], cs_prev=c, h_prev=h, w=w, wci=diag[0], wcf=diag[1],
                                                 wco=diag[2], b=b, forget_bias=1.0, cell_clip=clip, use_peephole=peep)
                    h, c = r.h, r.cs
                    ys.append(h)
                    cs.append(c)
                y, h_n, c_n, c_all = tf.stack(ys, 1), h, c, tf.stack(cs)
            variables = v1.global_variables()
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                _assign_random(tf, sess, variables, rec.rng, scale)
                if clip > 0:
                    # large positive biases: i, f near 1 and the cell input near tanh(3), so |c| grows past the clip
                    b.load(rec.rng.uniform(2.0, 3.5, 4 * H).astype(np.float32), sess)
                xv = rec.rng.uniform(-1.5, 1.5, (B, T, n_in)).astype(np.float32)
                yv, hv, cv = sess.run([y, h_n, c_n], {x: xv})
                assert not fused or np.abs(cv).max() < 50
                if clip > 0:
                    # the clip must act for the case to test it: some |c| reaches the bound
                    reached = float(np.abs(sess.run(c_all, {x: xv})).max())
                    assert reached >= clip, f"cell_clip {clip} never acts (max |c| {reached})"
                rec.save_case(name, sess, {v.op.name: v for v in variables}, xv,
                              {"block/lstm_cell": (yv, hv[None], cv[None])}, cli)


def opaque_case(rec: Recorder):
    """A CudnnLSTM opaque buffer (cuDNN's layout) whose outputs come from CudnnCompatibleLSTMCell."""
    tf = rec.tf
    v1 = tf.compat.v1
    n_in, H = 3, 4
    rng = rec.rng
    W = rng.uniform(-0.8, 0.8, (4, H, n_in)).astype(np.float32)   # gates i, f, c, o
    R = rng.uniform(-0.8, 0.8, (4, H, H)).astype(np.float32)
    bw = rng.uniform(-0.5, 0.5, (4, H)).astype(np.float32)
    br = rng.uniform(-0.5, 0.5, (4, H)).astype(np.float32)
    buf = np.concatenate([W.ravel(), R.ravel(), bw.ravel(), br.ravel()])
    # The same LSTM as TF's canonical i, j, f, o kernel [in + H, 4H] and summed bias (cudnn_rnn_ops.py
    # CudnnLSTMSaveable._cudnn_to_tf_weights / _cudnn_to_tf_biases).
    order = [0, 2, 1, 3]
    kernel = np.concatenate([np.concatenate([W[g], R[g]], axis=1) for g in order], axis=0).T
    bias = np.concatenate([(bw + br)[g] for g in order])
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [B, T, n_in])
        opaque = v1.get_variable("cudnn_lstm/opaque_kernel", initializer=buf)
        cell = v1.nn.rnn_cell.LSTMCell(H, forget_bias=0.0, name="cudnn_compatible_lstm_cell")
        y, s = v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        variables = v1.global_variables()
        with tf_session(tf, graph) as sess:
            sess.run(v1.global_variables_initializer())
            cell_vars = [v for v in variables if "opaque" not in v.op.name]
            for v in cell_vars:
                v.load(kernel if v.op.name.endswith("kernel") else bias, sess)
            xv = rng.uniform(-1.5, 1.5, (B, T, n_in)).astype(np.float32)
            yv, sv = sess.run([y, s], {x: xv})
            rec.save_case("cudnn_opaque", sess, {"cudnn_lstm/opaque_kernel": opaque}, xv,
                          {"cudnn_lstm": (yv, sv.h[None], sv.c[None])}, ["--cudnn-num-units", str(H)])


def initial_state_case(rec: Recorder):
    """Initial states fed to the graph and a sequence of length 0, for which dynamic_rnn (``_rnn_step``)
    outputs zeros and returns the initial state."""
    tf = rec.tf
    v1 = tf.compat.v1
    cells = v1.nn.rnn_cell
    H = 3
    h0 = rec.rng.uniform(-0.8, 0.8, (2, B, H)).astype(np.float32)
    c0 = rec.rng.uniform(-0.8, 0.8, (2, B, H)).astype(np.float32)

    def build(tf, x, seq):
        st = [cells.LSTMStateTuple(tf.constant(c0[k]), tf.constant(h0[k])) for k in range(2)]
        (fw, bw), (sf, sb) = v1.nn.bidirectional_dynamic_rnn(
            cells.LSTMCell(H, use_peepholes=True), cells.LSTMCell(H, use_peepholes=True), x, sequence_length=seq,
            initial_state_fw=st[0], initial_state_bw=st[1])
        with v1.variable_scope("multi"):
            stack = cells.MultiRNNCell([cells.LSTMCell(H, use_peepholes=True), cells.LSTMCell(H)])
            y, s = v1.nn.dynamic_rnn(stack, x, sequence_length=seq, initial_state=tuple(st))
        return {"bidirectional_rnn": (tf.concat([fw, bw], 2), (tf.stack([sf.h, sb.h]), tf.stack([sf.c, sb.c]))),
                "multi/rnn/multi_rnn_cell": (y, s)}
    rec.initial["initial_state_zero_length"] = {"bidirectional_rnn": (h0, c0), "multi/rnn/multi_rnn_cell": (h0, c0)}
    rec.case("initial_state_zero_length", build, ["--forget-bias", "1.0"], lengths=[6, 0, 3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "tf1")
    args = parser.parse_args()
    tf = import_tf()
    fresh_folder(args.out)
    rec = Recorder(tf, args.out)
    build_cases(rec)
    block_cases(rec)
    opaque_case(rec)
    initial_state_case(rec)
    write_expected(args.out, rec.arrays)


if __name__ == "__main__":
    main()
