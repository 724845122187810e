"""The TF cookbook's LSTM_Model (03_implementing_lstm) built in real TensorFlow, run and recorded.

    python legacy/record_tf_shakespeare.py [--out tests/golden/tf_shakespeare.npz] [--seed 100]

The graph follows nfmcclure/tensorflow_cookbook ``09_Recurrent_Neural_Networks/03_Implementing_LSTM``:
``variable_scope('lstm_model')`` holding the training model and, after ``scope.reuse_variables()``, the
infer model (batch 1, seq 1, ``loop_function=inferred_loop``); ``lstm_vars/{W, b, embedding_mat}``,
one ``BasicLSTMCell(rnn_size)``, ``tf.split`` + ``squeeze`` of the embedded batch, ``rnn_decoder`` and
``sequence_loss_by_example`` (gone from TF 2: written below in TF ops as TF 1.x
``legacy_seq2seq/seq2seq.py`` has them; the recipe passes ``vocab_size`` as the fourth positional argument,
which is ``average_across_timesteps``), ``cost = reduce_sum(loss) / (batch * seq)``,
``clip_by_global_norm(tf.gradients(cost, tvars), 4.5)`` and ``AdamOptimizer(lr)``.

Recorded per case: the inputs; logits, final state and cost; dense gradients and TF's global norm; the
variables after each of two Adam steps on the same batch (clipping active: random-normal weights give
norms far above 4.5); the infer model's greedy ``sample()`` ids for a prime sequence; and the decoder
outputs of a multi-step ``rnn_decoder`` with ``inferred_loop`` (the argmax fed back, no gradient).
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import GOLDEN, import_tf, store_case, tf_session, write_golden


def make_case(seed: int, *, vocab: int, rnn_size: int, batch: int, seq: int, dtype: str,
              learning_rate: float = 0.001, clip: float = 4.5, prime_len: int = 3, num: int = 10,
              loop_steps: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    x = rng.integers(0, vocab, (batch, seq)).astype(np.int64)
    case = {
        "W": rng.standard_normal((rnn_size, vocab)).astype(dt),  # random_normal_initializer()
        "b": (0.1 * rng.standard_normal(vocab)).astype(dt),
        "embedding_mat": rng.standard_normal((vocab, rnn_size)).astype(dt),
        "kernel": (rng.uniform(-1, 1, (2 * rnn_size, 4 * rnn_size)) / np.sqrt(rnn_size)).astype(dt),
        "bias": (0.1 * rng.standard_normal(4 * rnn_size)).astype(dt),
        "x": x,
        "y": np.roll(x, -1, axis=1),  # the recipe's targets
        "c0": (0.5 * rng.standard_normal((batch, rnn_size))).astype(dt),
        "h0": (0.5 * rng.standard_normal((batch, rnn_size))).astype(dt),
        "prime_ids": rng.integers(1, vocab, prime_len).astype(np.int64),
        "loop_first": rng.integers(0, vocab, (1,)).astype(np.int64),
    }
    case["config"] = dict(vocab_size=vocab, rnn_size=rnn_size, batch_size=batch, training_seq_len=seq,
                          dtype=dtype, learning_rate=learning_rate, clip=clip, num=num, loop_steps=loop_steps,
                          seed=seed)
    return case


def rnn_decoder(tf, decoder_inputs, initial_state, cell, loop_function=None, scope=None):
    """TF 1.x tensorflow/contrib/legacy_seq2seq/python/ops/seq2seq.py ``rnn_decoder``."""
    with tf.compat.v1.variable_scope(scope or "rnn_decoder"):
        state = initial_state
        outputs = []
        prev = None
        for i, inp in enumerate(decoder_inputs):
            if loop_function is not None and prev is not None:
                with tf.compat.v1.variable_scope("loop_function", reuse=True):
                    inp = loop_function(prev, i)
            if i > 0:
                tf.compat.v1.get_variable_scope().reuse_variables()
            output, state = cell(inp, state)
            outputs.append(output)
            if loop_function is not None:
                prev = output
    return outputs, state


def sequence_loss_by_example(tf, logits, targets, weights, average_across_timesteps=True):
    """TF 1.x seq2seq.py ``sequence_loss_by_example`` (softmax_loss_function None)."""
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
        total_size += 1e-12
        log_perps /= total_size
    return log_perps


class LSTMModel:
    """The recipe's ``LSTM_Model``, with the float type as a parameter (the recipe hard-codes float32)."""

    def __init__(self, tf, rnn_size, batch_size, learning_rate, training_seq_len, vocab_size, clip=4.5,
                 infer_sample=False, dtype=None):
        dtype = dtype or tf.float32
        self.rnn_size, self.vocab_size = rnn_size, vocab_size
        if infer_sample:
            self.batch_size, self.training_seq_len = 1, training_seq_len if training_seq_len else 1
        else:
            self.batch_size, self.training_seq_len = batch_size, training_seq_len
        self.lstm_cell = tf.compat.v1.nn.rnn_cell.BasicLSTMCell(rnn_size)
        self.initial_state = self.lstm_cell.zero_state(self.batch_size, dtype)
        self.x_data = tf.compat.v1.placeholder(tf.int32, [self.batch_size, self.training_seq_len])
        self.y_output = tf.compat.v1.placeholder(tf.int32, [self.batch_size, self.training_seq_len])
        with tf.compat.v1.variable_scope("lstm_vars"):
            W = tf.compat.v1.get_variable("W", [rnn_size, vocab_size], dtype, tf.compat.v1.random_normal_initializer())
            b = tf.compat.v1.get_variable("b", [vocab_size], dtype, tf.compat.v1.constant_initializer(0.0))
            embedding_mat = tf.compat.v1.get_variable("embedding_mat", [vocab_size, rnn_size], dtype,
                                                      tf.compat.v1.random_normal_initializer())
            embedding_output = tf.nn.embedding_lookup(embedding_mat, self.x_data)
            rnn_inputs = tf.split(axis=1, num_or_size_splits=self.training_seq_len, value=embedding_output)
            rnn_inputs_trimmed = [tf.squeeze(x, [1]) for x in rnn_inputs]

        def inferred_loop(prev, count):
            prev_transformed = tf.matmul(prev, W) + b
            prev_symbol = tf.stop_gradient(tf.argmax(prev_transformed, 1))
            return tf.nn.embedding_lookup(embedding_mat, prev_symbol)

        outputs, last_state = rnn_decoder(tf, rnn_inputs_trimmed, self.initial_state, self.lstm_cell,
                                          loop_function=inferred_loop if infer_sample else None)
        output = tf.reshape(tf.concat(axis=1, values=outputs), [-1, rnn_size])
        self.logit_output = tf.matmul(output, W) + b
        self.model_output = tf.nn.softmax(self.logit_output)
        loss = sequence_loss_by_example(tf, [self.logit_output], [tf.reshape(self.y_output, [-1])],
                                        [tf.ones([self.batch_size * self.training_seq_len], dtype=dtype)],
                                        vocab_size)
        self.cost = tf.reduce_sum(loss) / (self.batch_size * self.training_seq_len)
        self.final_state = last_state
        self.tvars = tf.compat.v1.trainable_variables()
        self.raw_gradients = tf.gradients(self.cost, self.tvars)
        if infer_sample:
            # The recipe builds the train op in the infer model too, under the reused scope; TF >= 1.x then
            # fails creating Adam slots ("Variable .../W/Adam_2/ does not exist"). The infer model never
            # trains, so it is left out here.
            return
        gradients, self.global_norm = tf.clip_by_global_norm(self.raw_gradients, clip)
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate)
        self.train_op = optimizer.apply_gradients(zip(gradients, self.tvars))

    def sample_ids(self, sess, prime_ids, num):
        """The recipe's ``sample()`` on ids: the argmax of model_output, stop at 0."""
        state = sess.run(self.lstm_cell.zero_state(1, self.initial_state.c.dtype))
        for word in prime_ids[:-1]:
            x = np.zeros((1, 1))
            x[0, 0] = word
            [state] = sess.run([self.final_state], feed_dict={self.x_data: x, self.initial_state: state})
        word = prime_ids[-1]
        out = []
        for _ in range(num):
            x = np.zeros((1, 1))
            x[0, 0] = word
            model_output, state = sess.run([self.model_output, self.final_state],
                                           feed_dict={self.x_data: x, self.initial_state: state})
            sample = int(np.argmax(model_output[0]))
            if sample == 0:
                break
            out.append(sample)
            word = sample
        return out


def run_tf(tf, case: dict) -> dict:
    cfg = case["config"]
    dtype = tf.float64 if cfg["dtype"] == "float64" else tf.float32
    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.variable_scope("lstm_model") as scope:
            model = LSTMModel(tf, cfg["rnn_size"], cfg["batch_size"], cfg["learning_rate"], cfg["training_seq_len"],
                              cfg["vocab_size"], cfg["clip"], dtype=dtype)
            scope.reuse_variables()
            infer = LSTMModel(tf, cfg["rnn_size"], cfg["batch_size"], cfg["learning_rate"], None,
                              cfg["vocab_size"], cfg["clip"], infer_sample=True, dtype=dtype)
            looped = LSTMModel(tf, cfg["rnn_size"], cfg["batch_size"], cfg["learning_rate"], cfg["loop_steps"],
                               cfg["vocab_size"], cfg["clip"], infer_sample=True, dtype=dtype)
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        values = {"lstm_model/lstm_vars/W": case["W"], "lstm_model/lstm_vars/b": case["b"],
                  "lstm_model/lstm_vars/embedding_mat": case["embedding_mat"],
                  "lstm_model/rnn_decoder/basic_lstm_cell/kernel": case["kernel"],
                  "lstm_model/rnn_decoder/basic_lstm_cell/bias": case["bias"]}
        tvar_names = [v.op.name for v in model.tvars]
        assert sorted(tvar_names) == sorted(values), tvar_names
        with tf_session(tf, graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for name, value in values.items():
                variables[name].load(value, sess)
            feed = {model.x_data: case["x"], model.y_output: case["y"],
                    model.initial_state.c: case["c0"], model.initial_state.h: case["h0"]}
            logits, (fc, fh), cost, grads = sess.run(
                [model.logit_output, model.final_state, model.cost, model.raw_gradients], feed)
            norm1, _ = sess.run([model.global_norm, model.train_op], feed)
            step1 = {n: sess.run(variables[n]) for n in values}
            norm2, _ = sess.run([model.global_norm, model.train_op], feed)
            step2 = {n: sess.run(variables[n]) for n in values}
            for n, v in values.items():  # the samples and the loop run on the recorded weights
                variables[n].load(v, sess)
            samples = infer.sample_ids(sess, [int(i) for i in case["prime_ids"]], cfg["num"])
            loop_x = np.zeros((1, cfg["loop_steps"]), np.int64)
            loop_x[0, 0] = case["loop_first"][0]
            loop_logits, (lc, lh) = sess.run([looped.logit_output, looped.final_state], {looped.x_data: loop_x})
    out = {"logits": logits, "final_c": fc, "final_h": fh, "cost": np.asarray(cost),
           "global_norm_step1": np.asarray(norm1), "global_norm_step2": np.asarray(norm2),
           "sample_ids": np.asarray(samples, dtype=np.int64), "loop_logits": loop_logits, "loop_final_c": lc,
           "loop_final_h": lh}
    for name, g in zip(tvar_names, grads):
        if hasattr(g, "indices"):  # IndexedSlicesValue of the embedding: densify, summing repeated ids
            dense = np.zeros(tuple(g.dense_shape), dtype=g.values.dtype)
            np.add.at(dense, g.indices, g.values)
            g = dense
        out[f"grad/{name}"] = g
    for name in values:
        out[f"step1/{name}"] = step1[name]
        out[f"step2/{name}"] = step2[name]
    return out


GOLDEN_CASES = [  # (vocab, rnn_size, batch, seq, dtype, clip): 4.5 is the recipe's; 0.05 makes clipping active
    (11, 6, 3, 4, "float64", 4.5),
    (8, 5, 2, 6, "float64", 0.05),
    (13, 8, 4, 3, "float32", 4.5),
    (9, 7, 3, 5, "float32", 0.05),
]


def record(tf, cases, seed0: int) -> dict:
    arrays = {}
    for i, (V, H, B, T, dtype, clip) in enumerate(cases):
        case = make_case(seed0 + i, vocab=V, rnn_size=H, batch=B, seq=T, dtype=dtype, clip=clip)
        out = run_tf(tf, case)
        store_case(arrays, i, case, out)
    return arrays


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(GOLDEN / "tf_shakespeare.npz"), help="npz file to write")
    parser.add_argument("--seed", type=int, default=100, help="seed of the first case (then +1 per case)")
    args = parser.parse_args()
    tf = import_tf()
    arrays = record(tf, GOLDEN_CASES, args.seed)
    write_golden(args.out, arrays, len(GOLDEN_CASES))


if __name__ == "__main__":
    main()
