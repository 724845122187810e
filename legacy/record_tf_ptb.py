"""ptb_word_lm.py's PTBModel built in real TensorFlow (graph mode), run on random weights and recorded.

    python legacy/record_tf_ptb.py [--out tests/golden/tf_ptb.npz] [--cases 4] [--seed 0]

The graph follows tensorflow/models ``tutorials/rnn/ptb/ptb_word_lm.py`` (the static-unroll
``_build_rnn_graph_lstm`` / TF 1.0 tutorial): ``variable_scope("Model", initializer=uniform)``,
embedding lookup, ``MultiRNNCell`` of ``BasicLSTMCell(size, forget_bias, state_is_tuple=True)``
unrolled by hand under ``variable_scope("RNN")`` with ``reuse_variables()`` from step 1, ``xw_plus_b``,
``sequence_loss_by_example`` (written below in TF ops as TF 1.x ``legacy_seq2seq/seq2seq.py`` has it,
since TF 2 dropped it), ``cost = reduce_sum(loss) / batch_size``, then
``clip_by_global_norm(tf.gradients(cost, tvars), max_grad_norm)`` and
``GradientDescentOptimizer(lr).apply_gradients``. keep_prob is 1 (dropout masks come from TF's RNG and
cannot be replayed). Weights, the initial state and the word ids are random and fed in; the vocabulary is
small so ids repeat in every batch (the IndexedSlices global norm differs from the dense one then).

Recorded per case: the inputs, logits, final state, cost, the dense gradients, TF's global norm, and the
variables after one clipped SGD step. tests/test_golden.py replays them through ``ports.tf_ptb``.
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import GOLDEN, import_tf, store_case, tf_session, write_golden


def make_case(seed: int, *, vocab: int, hidden: int, layers: int, batch: int, steps: int, forget_bias: float,
              clip: str, dtype: str, init_scale: float = 0.5) -> dict:
    """Random weights (uniform +-init_scale, as the tutorial's initializer), state and ids."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    u = lambda *shape: rng.uniform(-init_scale, init_scale, shape).astype(dt)  # noqa: E731
    case = {
        "embedding": u(vocab, hidden),
        "softmax_w": u(hidden, vocab),
        "softmax_b": u(vocab),
        "inputs": rng.integers(0, vocab, (batch, steps)).astype(np.int64),
        "targets": rng.integers(0, vocab, (batch, steps)).astype(np.int64),
    }
    for k in range(layers):
        case[f"kernel_{k}"] = u(2 * hidden, 4 * hidden)
        case[f"bias_{k}"] = u(4 * hidden)
        case[f"c0_{k}"] = u(batch, hidden)
        case[f"h0_{k}"] = u(batch, hidden)
    config = dict(vocab_size=vocab, hidden_size=hidden, num_layers=layers, batch_size=batch, num_steps=steps,
                  forget_bias=forget_bias, dtype=dtype, learning_rate=0.7, seed=seed, clip=clip)
    case["config"] = config
    return case


def sequence_loss_by_example(tf, logits, targets, weights, average_across_timesteps=True):
    """TF 1.x tensorflow/contrib/legacy_seq2seq/python/ops/seq2seq.py ``sequence_loss_by_example``."""
    if len(targets) != len(logits) or len(weights) != len(logits):
        raise ValueError("Lengths of logits, weights, and targets must be the same")
    log_perp_list = []
    for logit, target, weight in zip(logits, targets, weights):
        target = tf.reshape(target, [-1])
        crossent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=logit)
        log_perp_list.append(crossent * weight)
    log_perps = tf.add_n(log_perp_list)
    if average_across_timesteps:
        total_size = tf.add_n(weights)
        total_size += 1e-12  # seq2seq.py: "Just to avoid division by 0 for all-0 weights."
        log_perps /= total_size
    return log_perps


class PTBGraph:
    """The tutorial's PTBModel graph (keep_prob 1) with handles on what the recorders run."""

    def __init__(self, tf, cfg: dict):
        V, H, L, B, T = (cfg[k] for k in ("vocab_size", "hidden_size", "num_layers", "batch_size", "num_steps"))
        dtype = tf.float64 if cfg["dtype"] == "float64" else tf.float32
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._build(tf, V, H, L, B, T, cfg, dtype)

    def _build(self, tf, V, H, L, B, T, cfg, dtype):
        input_data = tf.compat.v1.placeholder(tf.int32, [B, T])
        targets = tf.compat.v1.placeholder(tf.int32, [B, T])
        initializer = tf.compat.v1.random_uniform_initializer(-0.1, 0.1)
        with tf.compat.v1.variable_scope("Model", reuse=None, initializer=initializer):
            embedding = tf.compat.v1.get_variable("embedding", [V, H], dtype=dtype)
            inputs = tf.nn.embedding_lookup(embedding, input_data)
            cells = [tf.compat.v1.nn.rnn_cell.BasicLSTMCell(H, forget_bias=cfg["forget_bias"], state_is_tuple=True)
                     for _ in range(L)]
            cell = tf.compat.v1.nn.rnn_cell.MultiRNNCell(cells, state_is_tuple=True)
            initial_state = cell.zero_state(B, dtype)
            outputs = []
            state = initial_state
            with tf.compat.v1.variable_scope("RNN"):
                for time_step in range(T):
                    if time_step > 0:
                        tf.compat.v1.get_variable_scope().reuse_variables()
                    (cell_output, state) = cell(inputs[:, time_step, :], state)
                    outputs.append(cell_output)
            output = tf.reshape(tf.concat(outputs, 1), [-1, H])
            softmax_w = tf.compat.v1.get_variable("softmax_w", [H, V], dtype=dtype)
            softmax_b = tf.compat.v1.get_variable("softmax_b", [V], dtype=dtype)
            logits = tf.compat.v1.nn.xw_plus_b(output, softmax_w, softmax_b)
            loss = sequence_loss_by_example(tf, [logits], [tf.reshape(targets, [-1])], [tf.ones([B * T], dtype=dtype)])
            cost = tf.reduce_sum(loss) / B
            final_state = state
            lr = tf.Variable(0.0, trainable=False, dtype=dtype)
            tvars = tf.compat.v1.trainable_variables()
            raw_grads = tf.gradients(cost, tvars)
            max_grad_norm = tf.compat.v1.placeholder(dtype, [])
            grads, norm = tf.clip_by_global_norm(raw_grads, max_grad_norm)
            optimizer = tf.compat.v1.train.GradientDescentOptimizer(lr)
            train_op = optimizer.apply_gradients(zip(grads, tvars))
            dense_grads = [tf.convert_to_tensor(g) for g in raw_grads]
            dense_norm = tf.linalg.global_norm(dense_grads)
            saver = tf.compat.v1.train.Saver()
        self.__dict__.update(input_data=input_data, targets=targets, initial_state=initial_state, logits=logits,
                             cost=cost, final_state=final_state, lr=lr, tvars=tvars, max_grad_norm=max_grad_norm,
                             norm=norm, train_op=train_op, dense_grads=dense_grads, dense_norm=dense_norm,
                             saver=saver)


def run_tf(tf, case: dict) -> dict:
    cfg = case["config"]
    L = cfg["num_layers"]
    g = PTBGraph(tf, cfg)
    graph, input_data, targets, initial_state, logits, cost, final_state, lr, tvars, max_grad_norm, norm, \
        train_op, dense_grads, dense_norm = (getattr(g, k) for k in (
            "graph", "input_data", "targets", "initial_state", "logits", "cost", "final_state", "lr", "tvars",
            "max_grad_norm", "norm", "train_op", "dense_grads", "dense_norm"))
    names = {v.op.name: v for v in tvars}
    feeds_for_vars = {"Model/embedding": case["embedding"], "Model/softmax_w": case["softmax_w"],
                      "Model/softmax_b": case["softmax_b"]}
    for k in range(L):
        feeds_for_vars[f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/kernel"] = case[f"kernel_{k}"]
        feeds_for_vars[f"Model/RNN/multi_rnn_cell/cell_{k}/basic_lstm_cell/bias"] = case[f"bias_{k}"]
    assert sorted(names) == sorted(feeds_for_vars), (sorted(names), sorted(feeds_for_vars))
    feed = {input_data: case["inputs"], targets: case["targets"]}
    for k, (c, h) in enumerate(initial_state):
        feed[c] = case[f"c0_{k}"]
        feed[h] = case[f"h0_{k}"]
    with tf_session(tf, graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for name, value in feeds_for_vars.items():
            names[name].load(value, sess)
        lr.load(cfg["learning_rate"], sess)
        out_logits, out_state, out_cost, out_grads, out_dense_norm = sess.run(
            [logits, final_state, cost, dense_grads, dense_norm], feed)
        # clip: "active" -> a threshold at 30% of the norm; "inactive" -> 10x above it.
        unclipped = sess.run(norm, {**feed, max_grad_norm: 1e30})
        threshold = 0.3 * unclipped if cfg["clip"] == "active" else 10.0 * unclipped
        feed[max_grad_norm] = threshold
        out_norm, _ = sess.run([norm, train_op], feed)
        updated = {name: sess.run(names[name]) for name in feeds_for_vars}
    out = {"logits": out_logits, "cost": np.asarray(out_cost), "global_norm": np.asarray(out_norm),
           "dense_norm": np.asarray(out_dense_norm), "max_grad_norm": np.asarray(threshold, dtype=case["embedding"].dtype)}
    for k, (c, h) in enumerate(out_state):
        out[f"final_c_{k}"], out[f"final_h_{k}"] = c, h
    for var, g in zip(tvars, out_grads):
        out[f"grad/{var.op.name}"] = g
    for name, value in updated.items():
        out[f"updated/{name}"] = value
    return out


GOLDEN_CASES = [  # (vocab, hidden, layers, batch, steps, forget_bias, clip, dtype)
    (7, 5, 2, 3, 4, 0.0, "active", "float64"),
    (5, 4, 1, 2, 6, 1.0, "inactive", "float64"),
    (9, 6, 3, 2, 3, 0.0, "inactive", "float32"),
    (6, 8, 2, 4, 5, 1.0, "active", "float32"),
]


def record(tf, cases, seed0: int) -> dict:
    arrays = {}
    for i, (V, H, L, B, T, fb, clip, dtype) in enumerate(cases):
        case = make_case(seed0 + i, vocab=V, hidden=H, layers=L, batch=B, steps=T, forget_bias=fb, clip=clip,
                         dtype=dtype)
        out = run_tf(tf, case)
        store_case(arrays, i, case, out)
    return arrays


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(GOLDEN / "tf_ptb.npz"), help="npz file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case (then +1 per case)")
    args = parser.parse_args()
    tf = import_tf()
    arrays = record(tf, GOLDEN_CASES, args.seed)
    write_golden(args.out, arrays, len(GOLDEN_CASES))


if __name__ == "__main__":
    main()
