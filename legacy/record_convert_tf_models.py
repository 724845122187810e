"""Whole models in TF checkpoints, as TensorFlow 2.21 and tf-keras 2.21 write them, run and recorded.

    python legacy/record_convert_tf_models.py [--out tests/golden/convert/tf_models]

Cases (each a checkpoint under ``<case>/`` and, in ``expected.npz``, per converted layer the input it was
fed, its outputs batch-major and its final h and c per direction; the options the checkpoint does not store;
what must stay unconverted):

- ``keras_tf1_graph``: a tf.keras ``LSTM`` and a ``Bidirectional(LSTM)`` built in a ``tf.compat.v1`` graph and
  saved by ``tf.compat.v1.train.Saver`` under the names TF 2.x gives them (``lstm/lstm_cell/kernel``,
  ``bidirectional/forward_lstm_1/lstm_cell/kernel``, ...).
- ``keras_tf1x_names``: the same layers with tf.keras 1.x's default ``recurrent_activation="hard_sigmoid"`` and a
  tf.keras ``GRU``, saved under the names tf.keras of TF 1.x gave them (``lstm/kernel``: the variables sat in the
  layer's scope, not its cell's; Saver's ``var_list`` renames them).
- ``object_save_weights`` and ``object_checkpoint``: a functional tf-keras model (``LSTM`` named ``encoder``,
  ``Bidirectional(LSTM)`` named ``bidi``, ``Dense``) after one Adam step, saved by ``model.save_weights`` in
  TF format and by ``tf.train.Checkpoint(model=...)``: object-based checkpoints with their object graph.
- ``seq2seq``: a TF1 encoder-decoder: an embedding, a ``GRUCell`` encoder (``dynamic_rnn`` with
  ``sequence_length``), Bahdanau attention over the encoder's outputs and an ``AttentionWrapper`` around a
  ``BasicLSTMCell`` decoder, after one Adam step (slots, beta powers, ``global_step``). ``tf.contrib.seq2seq``
  is gone from TF 2.21, so the wrapper is written in TF ops as TF 1.x's
  ``tensorflow/contrib/seq2seq/python/ops/attention_wrapper.py`` computes it (``AttentionWrapper.call``,
  ``_compute_attention``, ``BahdanauAttention`` with ``_bahdanau_score``, memory masked by
  ``memory_sequence_length``, ``attention_layer_size`` set, ``output_attention=True``), its variables created
  under the names and scopes that file gives them (``memory_layer/kernel``,
  ``decoder/attention_wrapper/basic_lstm_cell/kernel``, ``.../bahdanau_attention/query_layer/kernel``,
  ``.../bahdanau_attention/attention_v``, ``.../attention_layer/kernel``). Recorded: the encoder's outputs and
  state, the embedded ids and the decoder's attention outputs and final cell state, so that a test can rebuild
  them from the tensors the converter carries.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import GOLDEN, fresh_folder, tf_session, write_expected

B, T, SEED = 3, 6, 23
LENGTHS = [6, 4, 2]


def import_tf():
    import tensorflow as tf  # eager stays on: the TF1 cases build their own tf.Graph

    tf.get_logger().setLevel("ERROR")
    return tf


class Recorder:
    def __init__(self, out: Path):
        self.out = out
        self.arrays = {}
        self.rng = np.random.default_rng(SEED)

    def uniform(self, shape, scale=0.8, dtype=np.float32):
        return self.rng.uniform(-scale, scale, shape).astype(dtype)

    def config(self, case, **config):
        self.arrays[f"{case}/config"] = np.array(json.dumps(config))
        print(case, config.get("lstms"), config.get("not_converted", []))


def _assign_random(rec, sess, variables):
    for v in variables:
        v.load(rec.uniform(v.shape.as_list()), sess)


# ------------------------------------------------------------------------------------------- tf.keras, TF1
def keras_graph_case(rec: Recorder, tf, case, *, tf1x_names: bool):
    v1 = tf.compat.v1
    keras = tf.keras
    rec_act = "hard_sigmoid" if tf1x_names else "sigmoid"
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [B, T, 3])
        lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True, recurrent_activation=rec_act)
        y1, h1, c1 = lstm(x)
        bidi = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, return_state=True,
                                                            recurrent_activation=rec_act))
        y2, hf, cf, hb, cb = bidi(y1)
        fetches = {"lstm": (x, y1, [h1], [c1]), "bidirectional": (y1, y2, [hf, hb], [cf, cb])}
        if tf1x_names:
            gru_out = keras.layers.GRU(2)(y2)
        variables = v1.global_variables()
        with tf_session(tf, graph) as sess:
            sess.run(v1.global_variables_initializer())
            _assign_random(rec, sess, variables)
            xv = rec.uniform((B, T, 3), 1.5)
            got = sess.run({k: (inp, y, h, c) for k, (inp, y, h, c) in fetches.items()}, {x: xv})
            if tf1x_names:
                sess.run(gru_out, {x: xv})
            names = {}
            for v in variables:
                name = v.op.name
                if tf1x_names:  # tf.keras of TF 1.x: the cell's variables in the layer's own scope
                    name = name.replace("/lstm_cell/", "/").replace("/gru_cell/", "/")
                names[name] = v
            (rec.out / case).mkdir(parents=True)
            v1.train.Saver(var_list=names).save(sess, str(rec.out / case / "model.ckpt"), write_meta_graph=False,
                                                write_state=False)
    for layer, (inp, y, h, c) in got.items():
        rec.arrays[f"{case}/{layer}/x"] = inp
        rec.arrays[f"{case}/{layer}/y"], rec.arrays[f"{case}/{layer}/h"] = y, np.stack(h)
        rec.arrays[f"{case}/{layer}/c"] = np.stack(c)
    cli = ["--keras-recurrent-activation", "hard_sigmoid"] if tf1x_names else []
    rec.config(case, checkpoint=f"{case}/model.ckpt", cli=cli + (["--partial"] if tf1x_names else []),
               lstms=sorted(got), not_converted=["gru"] if tf1x_names else [],
               variables=sorted(names))


# ------------------------------------------------------------------------------------ object-based, eager
def object_cases(rec: Recorder, tf):
    keras = tf.keras
    inp = keras.Input((T, 3))
    y1, h1, c1 = keras.layers.LSTM(4, return_sequences=True, return_state=True, name="encoder")(inp)
    y2, hf, cf, hb, cb = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, return_state=True),
                                                    name="bidi")(y1)
    head = keras.layers.Dense(2, name="head")(y2)
    train = keras.Model(inp, head)
    probe = keras.Model(inp, [y1, h1, c1, y2, hf, cf, hb, cb])
    for layer in train.layers:
        layer.set_weights([rec.uniform(w.shape) for w in layer.get_weights()])
    train.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    xv = rec.uniform((B, T, 3), 1.5)
    train.fit(xv, rec.uniform((B, T, 2)), epochs=1, batch_size=B, verbose=0, shuffle=False)
    out = [np.asarray(a) for a in probe(xv)]
    save_weights = rec.out / "object_save_weights"
    train.save_weights(str(save_weights / "ckpt"))          # no .h5 suffix: the TF checkpoint format
    tf.train.Checkpoint(model=train).write(str(rec.out / "object_checkpoint" / "ckpt"))
    for case in ("object_save_weights", "object_checkpoint"):
        rec.arrays[f"{case}/encoder/x"] = xv
        rec.arrays[f"{case}/encoder/y"], rec.arrays[f"{case}/encoder/h"] = out[0], out[1][None]
        rec.arrays[f"{case}/encoder/c"] = out[2][None]
        rec.arrays[f"{case}/bidi/x"] = out[0]
        rec.arrays[f"{case}/bidi/y"] = out[3]
        rec.arrays[f"{case}/bidi/h"], rec.arrays[f"{case}/bidi/c"] = np.stack([out[4], out[6]]), np.stack([out[5], out[7]])
        rec.config(case, checkpoint=f"{case}/ckpt", cli=[], lstms=["bidi", "encoder"], not_converted=[])


# ----------------------------------------------------------------------------------- a TF1 seq2seq model
def seq2seq_case(rec: Recorder, tf):
    v1 = tf.compat.v1
    cells = v1.nn.rnn_cell
    V, E, H_ENC, H_DEC, UNITS, ATT, T_DEC = 11, 4, 5, 4, 3, 3, 4
    graph = tf.Graph()
    with graph.as_default():
        ids_enc = v1.placeholder(tf.int32, [B, T])
        ids_dec = v1.placeholder(tf.int32, [B, T_DEC])
        lengths = tf.constant(LENGTHS)
        embedding = v1.get_variable("embedding", [V, E])
        embedded = tf.nn.embedding_lookup(embedding, ids_enc)
        with v1.variable_scope("encoder"):
            enc_out, enc_state = v1.nn.dynamic_rnn(cells.GRUCell(H_ENC), embedded, sequence_length=lengths,
                                                   dtype=tf.float32)
        # BahdanauAttention(UNITS, enc_out, memory_sequence_length=lengths), built outside any scope:
        # _prepare_memory masks the memory, memory_layer makes the keys.
        mask = tf.sequence_mask(lengths, T, dtype=tf.float32)
        values = enc_out * mask[:, :, None]
        memory_kernel = v1.get_variable("memory_layer/kernel", [H_ENC, UNITS])
        keys = tf.tensordot(values, memory_kernel, 1)
        decoder_cell = cells.BasicLSTMCell(H_DEC)
        state = decoder_cell.zero_state(B, tf.float32)
        attention = tf.zeros([B, ATT])
        outputs = []
        with v1.variable_scope("decoder"):
            for t in range(T_DEC):
                with v1.variable_scope("attention_wrapper", reuse=t > 0):
                    cell_inputs = tf.concat([tf.nn.embedding_lookup(embedding, ids_dec[:, t]), attention], -1)
                    cell_output, state = decoder_cell(cell_inputs, state)
                    with v1.variable_scope("bahdanau_attention"):
                        query = tf.matmul(cell_output, v1.get_variable("query_layer/kernel", [H_DEC, UNITS]))
                        v = v1.get_variable("attention_v", [UNITS])
                        score = tf.reduce_sum(v * tf.tanh(keys + query[:, None, :]), [2])
                    score = tf.where(mask > 0, score, tf.fill(tf.shape(score), -np.inf))
                    alignments = tf.nn.softmax(score)
                    context = tf.matmul(alignments[:, None, :], values)[:, 0]
                    attention = tf.matmul(tf.concat([cell_output, context], 1),
                                          v1.get_variable("attention_layer/kernel", [H_DEC + H_ENC, ATT]))
                    outputs.append(attention)
        dec_out = tf.stack(outputs, 1)
        loss = tf.reduce_sum(tf.square(dec_out)) + tf.reduce_sum(tf.square(enc_out))
        step = v1.train.AdamOptimizer(0.01).minimize(loss, global_step=v1.train.get_or_create_global_step())
        with tf_session(tf, graph) as sess:
            sess.run(v1.global_variables_initializer())
            _assign_random(rec, sess, v1.trainable_variables())
            feed = {ids_enc: rec.rng.integers(0, V, (B, T)).astype(np.int32),
                    ids_dec: rec.rng.integers(0, V, (B, T_DEC)).astype(np.int32)}
            sess.run(step, feed)
            got = sess.run({"embedded": embedded, "encoder_outputs": enc_out, "encoder_state": enc_state,
                            "decoder_outputs": dec_out, "decoder_c": state.c, "decoder_h": state.h}, feed)
            variables = {v.op.name: v for v in v1.global_variables()}
            values_now = sess.run(variables)
            (rec.out / "seq2seq").mkdir(parents=True)
            v1.train.Saver(var_list=variables).save(sess, str(rec.out / "seq2seq" / "model.ckpt"),
                                                    write_meta_graph=False, write_state=False)
    for k, a in got.items():
        rec.arrays[f"seq2seq/out/{k}"] = a
    rec.arrays["seq2seq/in/ids_enc"], rec.arrays["seq2seq/in/ids_dec"] = feed[ids_enc], feed[ids_dec]
    rec.arrays["seq2seq/in/lengths"] = np.array(LENGTHS)
    for name, value in values_now.items():
        rec.arrays[f"seq2seq/variables/{name}"] = np.asarray(value)
    rec.config("seq2seq", checkpoint="seq2seq/model.ckpt", cli=["--partial"], lstms=[],
               not_converted=["decoder/attention_wrapper/basic_lstm_cell", "encoder/rnn/gru_cell"],
               variables=sorted(variables),
               sizes={"V": V, "E": E, "H_enc": H_ENC, "H_dec": H_DEC, "units": UNITS, "attention": ATT})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN / "convert" / "tf_models")
    args = parser.parse_args()
    tf = import_tf()
    fresh_folder(args.out)
    rec = Recorder(args.out)
    keras_graph_case(rec, tf, "keras_tf1_graph", tf1x_names=False)
    keras_graph_case(rec, tf, "keras_tf1x_names", tf1x_names=True)
    object_cases(rec, tf)
    seq2seq_case(rec, tf)
    write_expected(args.out, rec.arrays)


if __name__ == "__main__":
    main()
