"""TF1 checkpoints with their ``.meta`` MetaGraphDef, built in TensorFlow 2.21 (tf.compat.v1), run and recorded.

    python legacy/record_convert_tf_meta.py [--out tests/golden/convert/tf_meta]

Each case is a checkpoint (``<case>/model.ckpt.index`` / ``.data-*``) with the graph that wrote it
(``<case>/model.ckpt.meta``), whose run-time settings the variables do not store: the forget_bias each cell
adds, cell and projection clips, the activation, ``time_major``, ``sequence_length``, DropoutWrapper keep
probabilities (and one ``static_rnn``, whose steps are ops of their own). ``expected.npz`` holds, per case, the input fed, what TF returned (outputs in the layout
dynamic_rnn returned them: batch-major unless time_major; final h and c [layers, B, .]) and the settings the
graph holds, for the converter to settle from the ``.meta`` alone.

The loops are built as TF 1.x built them (control flow v1: ``rnn/while/...`` nodes in the graph), one case as
TF 2's ``while_v2`` builds them (the loop body a function of the graph's library). A DropoutWrapper's graph
drops values at random whenever it runs; its case records the same cell without the wrapper (the inference the
converted module computes), restored from the same checkpoint. The ``.meta`` files are written without
``meta_info_def.stripped_op_list`` (the op definitions, tens of KB a file, which TF's importer re-reads from
its own registry) to keep them small.

The ``whole_*`` cases are language models built as tensorflow/models tutorials/rnn/ptb/ptb_word_lm.py builds
PTBModel (``embedding = tf.get_variable("embedding", [vocab_size, size])``, ``tf.nn.embedding_lookup``, the
cells, ``tf.reshape(tf.concat(outputs, 1), [-1, size])``, ``tf.nn.xw_plus_b(output, softmax_w, softmax_b)``,
``tf.reshape(logits, [batch_size, num_steps, vocab_size])``, its own unrolled loop ``cell(inputs[:, time_step, :],
state)`` under ``variable_scope("RNN")``) and its variations: ``static_rnn`` over
``tf.unstack(inputs, axis=1)`` with TF 1.x's reference variables (``VariableV2``, ``GatherV2`` on
``embedding/read``), ``dynamic_rnn`` with ``tf.matmul(output, softmax_w) + softmax_b``, a time-major GRUCell,
``tf.layers.dense`` followed by ``tf.nn.softmax``, a time-major LSTMCell reading a float placeholder (no
embedding) under ``tf.layers.dense``, a ``dynamic_rnn`` built as TF 2's ``while_v2`` builds it, ``dynamic_rnn``
with ``sequence_length`` fed by a ``lengths`` placeholder, ``bidirectional_dynamic_rnn`` (with those lengths) whose
two outputs ``tf.concat(outputs, 2)`` joins, a time-major LSTMCell with cell_clip and lengths, dynamic_rnn's ``initial_state`` fed by placeholders (a
MultiRNNCell in TF 1.x's loop; a BasicLSTMCell with lengths in while_v2), and one graph with an op the converter does not know (``tf.abs``) between
the cells and the projection. Then the state static_rnn's or the unrolled loop's first step reads: a non-zero
constant LSTMStateTuple (refused whole; its cells are recorded from that state), placeholders fed to static_rnn's
``initial_state`` (a MultiRNNCell), a GRUCell's ``zero_state`` in the unrolled loop, and a BasicLSTMCell with
``state_is_tuple=False`` (c and h in one zeros tensor) under static_rnn. Then contrib's
``stack_bidirectional_dynamic_rnn``, which TF 2 no longer ships, built op for op as TF 1.x
tensorflow/contrib/rnn/python/ops/rnn.py builds it (a loop over the layers of ``bidirectional_dynamic_rnn`` under
``variable_scope("cell_%d" % i)`` inside ``variable_scope("stack_bidirectional_rnn")``, ``tf.concat(outputs, 2)``
between): two BasicLSTMCell layers with lengths in TF 1.x's loops, two GRUCell layers time-major in while_v2
from ``initial_states_fw`` / ``initial_states_bw`` placeholders, two LSTMCell layers (cell_clip) time-major with
``sequence_length`` a ``tf.constant``; ``bidirectional_dynamic_rnn`` from ``initial_state_fw`` / ``_bw``
placeholders with lengths (while_v2); ``dynamic_rnn`` with a constant ``sequence_length``; and
``bidirectional_dynamic_rnn`` of two MultiRNNCells (each direction's stack run whole, one concat at the end): two
BasicLSTMCell layers a direction with lengths in TF 1.x's loops, two GRUCell layers forward and one backward
time-major in while_v2 with a constant ``sequence_length`` and fed initial states, one BasicLSTMCell layer forward
and two backward in while_v2 from fed initial states (these three draw from generators of their own:
``--add CASE ...`` records them into an existing folder, leaving the other cases as recorded). Then, each from a
generator of its own: ``MultiRNNCell(state_is_tuple=False)`` stacks (their state one tensor, sliced per layer) of
BasicLSTMCells, LSTMCells, GRUCells and BasicRNNCells, in TF 1.x's loop, while_v2 and static_rnn, from zero_state
and from one fed placeholder (TF's concatenated final state recorded too), and as the two stacks of a
bidirectional_dynamic_rnn; ``static_bidirectional_rnn`` of two MultiRNNCells and of two cells, and one with
``sequence_length`` (refused by name). Each records the token ids fed (and the lengths), what the graph returned
(logits or probabilities) and the cells' outputs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import GOLDEN, fresh_folder, import_tf, tf_session, write_expected

B, T, N_IN, SEED = 3, 5, 3, 22
LENGTHS = [5, 3, 1]
WHOLE_LENGTHS = [3, 5, 1]      # fed to a lengths placeholder: unsorted, one full, one of a single step
VOCAB, EMBED, HIDDEN = 11, 4, 5


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(GOLDEN / "convert" / "tf_meta"))
    ap.add_argument("--add", nargs="+", metavar="CASE",
                    help="record only these cases (ones that draw from a generator of their own) into the existing "
                         "--out folder, adding their folders and their keys to its expected.npz; the other cases' "
                         "files and arrays stay as recorded")
    args = ap.parse_args(argv)
    out = Path(args.out)
    add = set(args.add) if args.add else None
    if add is None:
        fresh_folder(out)
    tf = import_tf()
    v1 = tf.compat.v1
    rnn_cell = v1.nn.rnn_cell
    rng = np.random.default_rng(SEED)
    arrays = {}
    added = set()

    def record(name, make_cell, *, time_major=False, lengths=None, control_flow_v2=False, settings=None,
               plain_cell=None, static=False):
        if add is not None:
            return
        if control_flow_v2:
            v1.enable_control_flow_v2()
        else:
            v1.disable_control_flow_v2()
        graph = tf.Graph()
        with graph.as_default():
            shape = [T, B, N_IN] if time_major else [B, T, N_IN]
            x = v1.placeholder(tf.float32, shape, name="inputs")
            seq = None if lengths is None else tf.constant(lengths, name="lengths")
            if static:   # static_rnn on a list of [B, in] steps (time-major input; the steps' outputs stacked)
                ys, state = v1.nn.static_rnn(make_cell(), tf.unstack(x, axis=0), dtype=tf.float32)
                y = tf.stack(ys, axis=0)
            else:
                y, state = v1.nn.dynamic_rnn(make_cell(), x, sequence_length=seq, dtype=tf.float32,
                                             time_major=time_major)
            variables = v1.global_variables()
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                for v in variables:
                    v.load(rng.uniform(-0.8, 0.8, v.shape.as_list()).astype(np.float32), sess)
                (out / name).mkdir(parents=True)
                prefix = str(out / name / "model.ckpt")
                v1.train.Saver(var_list=variables).save(sess, prefix, write_meta_graph=False, write_state=False)
                meta = v1.train.export_meta_graph(graph=graph, clear_devices=True, strip_default_attrs=True,
                                                  saver_def=v1.train.Saver(var_list=variables).as_saver_def())
                meta.meta_info_def.ClearField("stripped_op_list")
                Path(prefix + ".meta").write_bytes(meta.SerializeToString())
                feed = rng.uniform(-1.5, 1.5, shape).astype(np.float32)
                got_y, got_state = sess.run([y, state], {x: feed})
        if plain_cell is not None:   # the same weights without the DropoutWrapper: inference
            v1.disable_control_flow_v2()
            graph = tf.Graph()
            with graph.as_default():
                x = v1.placeholder(tf.float32, shape)
                y, state = v1.nn.dynamic_rnn(plain_cell(), x, dtype=tf.float32, time_major=time_major)
                with tf_session(tf, graph) as sess:
                    v1.train.Saver().restore(sess, prefix)
                    got_y, got_state = sess.run([y, state], {x: feed})
        states = got_state if isinstance(got_state, tuple) and not hasattr(got_state, "c") else (got_state,)
        arrays[f"{name}/x"] = feed
        arrays[f"{name}/y"] = got_y
        arrays[f"{name}/h"] = np.stack([s.h for s in states])
        arrays[f"{name}/c"] = np.stack([s.c for s in states])
        arrays[f"{name}/config"] = np.array(json.dumps({
            "checkpoint": f"{name}/model.ckpt", "time_major": time_major, "lengths": lengths,
            "control_flow_v2": control_flow_v2, "static_rnn": static, "settings": settings or {}}))
        print(name, {k: v.shape for k, v in arrays.items() if k.startswith(name + "/") and k != f"{name}/config"})

    record("basic_forget0", lambda: rnn_cell.BasicLSTMCell(4, forget_bias=0.0),
           settings={"forget_bias": 0.0, "time_major": False, "activation": "tanh", "sequence_length": False})
    record("basic_forget1_time_major", lambda: rnn_cell.BasicLSTMCell(4, forget_bias=1.0), time_major=True,
           settings={"forget_bias": 1.0, "time_major": True, "activation": "tanh", "sequence_length": False})
    record("lstm_cell_clips", lambda: rnn_cell.LSTMCell(5, forget_bias=0.7, cell_clip=0.6, num_proj=3, proj_clip=0.4),
           lengths=LENGTHS, settings={"forget_bias": 0.7, "cell_clip": 0.6, "proj_clip": 0.4, "time_major": False,
                                      "activation": "tanh", "sequence_length": True})
    record("lstm_cell_peepholes_clip", lambda: rnn_cell.LSTMCell(4, forget_bias=0.3, use_peepholes=True, cell_clip=1.5),
           time_major=True, settings={"forget_bias": 0.3, "cell_clip": 1.5, "time_major": True, "activation": "tanh",
                                      "sequence_length": False})
    record("dropout_wrapper", lambda: rnn_cell.DropoutWrapper(rnn_cell.BasicLSTMCell(4, forget_bias=0.5),
                                                              input_keep_prob=0.8, state_keep_prob=0.9,
                                                              output_keep_prob=0.6),
           plain_cell=lambda: rnn_cell.BasicLSTMCell(4, forget_bias=0.5),
           settings={"forget_bias": 0.5, "time_major": False, "activation": "tanh", "sequence_length": False,
                     "keep_probs": [0.8, 0.9, 0.6]})
    record("multi_rnn_cell", lambda: rnn_cell.MultiRNNCell([rnn_cell.BasicLSTMCell(3, forget_bias=0.0),
                                                            rnn_cell.BasicLSTMCell(3, forget_bias=0.0)]),
           settings={"forget_bias": 0.0, "time_major": False, "activation": "tanh", "sequence_length": False})
    record("while_v2", lambda: rnn_cell.BasicLSTMCell(4, forget_bias=0.25), control_flow_v2=True,
           settings={"forget_bias": 0.25, "time_major": False, "activation": "tanh", "sequence_length": False})
    record("relu_activation", lambda: rnn_cell.BasicLSTMCell(4, forget_bias=1.0, activation=tf.nn.relu),
           settings={"forget_bias": 1.0, "time_major": False, "activation": "relu", "sequence_length": False})
    record("static_rnn", lambda: rnn_cell.LSTMCell(4, forget_bias=0.4, cell_clip=0.9), time_major=True, static=True,
           settings={"forget_bias": 0.4, "cell_clip": 0.9, "activation": "tanh"})
    def stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, states_fw, states_bw, sequence_length,
                                        time_major):
        """contrib's stack_bidirectional_dynamic_rnn (TF 1.x tensorflow/contrib/rnn/python/ops/rnn.py), which TF 2
        no longer ships, built op for op as its source builds it: in variable_scope("stack_bidirectional_rnn"),
        layer i a bidirectional_dynamic_rnn under variable_scope("cell_%d" % i) with the same sequence_length and
        its own initial states, the next layer reading tf.concat(outputs, 2)."""
        layer_input = inputs
        with v1.variable_scope("stack_bidirectional_rnn"):
            for i, (fw, bw) in enumerate(zip(cells_fw, cells_bw)):
                with v1.variable_scope("cell_%d" % i):
                    outputs, _ = v1.nn.bidirectional_dynamic_rnn(
                        fw, bw, layer_input, initial_state_fw=states_fw[i] if states_fw else None,
                        initial_state_bw=states_bw[i] if states_bw else None, sequence_length=sequence_length,
                        dtype=tf.float32, time_major=time_major)
                    layer_input = tf.concat(outputs, 2)
        return layer_input

    def record_whole(name, *, rnn, cell, projection, time_major=False, resource=True, between=None, softmax=False,
                     float_input=False, lengths=False, control_flow_v2=False, state_layers=0, constant_state=False,
                     layers=1, gru_state=False, layers_bw=None, seed=None, concat_state=0,
                     refused=False):
        """A ptb_word_lm.py-style language model: ids -> embedding -> cells -> [-1, size] -> projection.
        ``lengths``: dynamic_rnn's sequence_length fed by a placeholder ``lengths`` [batch];
        ``lengths="constant"``: sequence_length a ``tf.constant`` (named ``lengths``) of the graph;
        ``rnn="bidirectional"``: bidirectional_dynamic_rnn(cell(), cell(), ...) with its two outputs joined by
        ``tf.concat(outputs, 2)``; ``rnn="stack_bidirectional"``: contrib's stack_bidirectional_dynamic_rnn of
        ``layers`` layers; ``control_flow_v2``: the loop as TF 2's while_v2 builds it; ``state_layers``: the
        ``initial_state`` fed by placeholders, one LSTMStateTuple(c, h) a cell (``state_c<k>``, ``state_h<k>``;
        a GRU's ``state_h<k>`` with ``gru_state``), as a team feeds the last batch's final state (static_rnn's
        ``initial_state`` and the unrolled loop's first ``state`` likewise; bidirectionally the cells layer by
        layer, forward then backward: ``initial_state_fw`` / ``_bw``, ``initial_states_fw[i]`` / ``_bw[i]``);
        ``constant_state``: one LSTMStateTuple of non-zero constants (``initial_c``, ``initial_h``) as the state
        the cells start from; ``rnn="bidirectional_multi"``: bidirectional_dynamic_rnn(MultiRNNCell of ``layers``
        cells, MultiRNNCell of ``layers_bw`` cells, ...), each direction's stack run whole and the two outputs
        joined by ``tf.concat(outputs, 2)`` (its initial states: the forward stack's cells, then the backward
        stack's); ``seed``: the case draws its weights and inputs from a generator of its own (a case recorded
        with ``--add`` draws what a full run draws); ``concat_state``: the ``initial_state`` one placeholder
        ``state`` of that width (a MultiRNNCell(state_is_tuple=False): its layers' states concatenated; for
        ``bidirectional_multi`` two widths, ``state_fw`` and ``state_bw``). The final
        state as dynamic_rnn / static_rnn returned it is recorded too (``final``: one [batch, state size] tensor
        for a cell whose state is one tensor); ``refused``: a graph the converter refuses whole by name (its
        config says ``whole`` false)."""
        r = rng if seed is None else np.random.default_rng([SEED, seed])   # a case of its own: its own draws
        if add is not None and name not in add:
            return
        if add is not None and seed is None:
            raise SystemExit(f"{name} draws from the recording's one generator: --add records it otherwise than a "
                             "full run; record the whole folder")
        added.add(name)
        (v1.enable_control_flow_v2 if control_flow_v2 else v1.disable_control_flow_v2)()
        (v1.enable_resource_variables if resource else v1.disable_resource_variables)()
        width = 2 * HIDDEN if rnn in ("bidirectional", "stack_bidirectional", "bidirectional_multi",
                                      "static_bidirectional_multi", "static_bidirectional") else HIDDEN
        graph = tf.Graph()
        with graph.as_default():
            shape = [T, B] if time_major else [B, T]
            if float_input:   # no embedding: the cells read a float placeholder [B, T, features]
                shape = shape + [EMBED]
                ids = v1.placeholder(tf.float32, shape, name="inputs")
            else:
                ids = v1.placeholder(tf.int32, shape, name="input_data")
            seq_len = (tf.constant(WHOLE_LENGTHS, name="lengths") if lengths == "constant"
                       else v1.placeholder(tf.int32, [B], name="lengths") if lengths else None)
            if gru_state:
                cell_states = tuple(v1.placeholder(tf.float32, [B, HIDDEN], name=f"state_h{k}")
                                    for k in range(state_layers))
                state_flat = list(cell_states)
            else:
                cell_states = tuple(rnn_cell.LSTMStateTuple(
                    v1.placeholder(tf.float32, [B, HIDDEN], name=f"state_c{k}"),
                    v1.placeholder(tf.float32, [B, HIDDEN], name=f"state_h{k}")) for k in range(state_layers))
                state_flat = [t for pair in cell_states for t in pair]
            state_in = None if not cell_states else cell_states[0] if state_layers == 1 else cell_states  # one cell
            if concat_state and rnn == "bidirectional_multi":    # state_is_tuple=False: one tensor a stack
                cell_states = tuple(v1.placeholder(tf.float32, [B, w], name=f"state_{d}")
                                    for d, w in zip(("fw", "bw"), concat_state))
                state_flat = list(cell_states)
            elif concat_state:     # state_is_tuple=False: the whole state one tensor
                state_in = v1.placeholder(tf.float32, [B, concat_state], name="state")
                state_flat = [state_in]
            if constant_state:
                start = r.uniform(-0.8, 0.8, [2, B, HIDDEN]).astype(np.float32)
                state_in = rnn_cell.LSTMStateTuple(tf.constant(start[0], name="initial_c"),
                                                   tf.constant(start[1], name="initial_h"))
            with v1.variable_scope("Model"):
                if float_input:
                    inputs = ids
                else:
                    embedding = v1.get_variable("embedding", [VOCAB, EMBED], dtype=tf.float32)
                    inputs = tf.nn.embedding_lookup(embedding, ids)
                if rnn == "unrolled":   # ptb_word_lm.py's _build_rnn_graph_lstm: its own loop under "RNN"
                    c = cell()
                    state = c.zero_state(B, tf.float32) if state_in is None else state_in
                    outputs = []
                    with v1.variable_scope("RNN"):
                        for time_step in range(T):
                            if time_step > 0:
                                v1.get_variable_scope().reuse_variables()
                            cell_output, state = c(inputs[:, time_step, :], state)
                            outputs.append(cell_output)
                    output = tf.reshape(tf.concat(outputs, 1), [-1, HIDDEN])
                    rnn_out = tf.stack(outputs, axis=1)
                elif rnn == "static":   # ptb_word_lm.py's alternative: static_rnn over tf.unstack(inputs, axis=1)
                    steps = tf.unstack(inputs, num=T, axis=1)
                    outputs, final = v1.nn.static_rnn(cell(), steps, initial_state=state_in, dtype=tf.float32)
                    output = tf.reshape(tf.concat(outputs, 1), [-1, HIDDEN])
                    rnn_out = tf.stack(outputs, axis=1)
                elif rnn == "bidirectional":
                    (out_fw, out_bw), _ = v1.nn.bidirectional_dynamic_rnn(
                        cell(), cell(), inputs, sequence_length=seq_len, dtype=tf.float32, time_major=time_major,
                        initial_state_fw=cell_states[0] if cell_states else None,
                        initial_state_bw=cell_states[1] if cell_states else None)
                    rnn_out = tf.concat([out_fw, out_bw], 2)
                    output = tf.reshape(rnn_out, [-1, width])
                elif rnn == "bidirectional_multi":   # each direction a MultiRNNCell, concatenated at the end only
                    fw_states, bw_states = cell_states[:layers], cell_states[layers:]
                    if concat_state:     # one tensor a stack
                        fw_states, bw_states = cell_states
                    (out_fw, out_bw), _ = v1.nn.bidirectional_dynamic_rnn(
                        rnn_cell.MultiRNNCell([cell() for _ in range(layers)], state_is_tuple=not concat_state),
                        rnn_cell.MultiRNNCell([cell() for _ in range(layers_bw)], state_is_tuple=not concat_state),
                        inputs, sequence_length=seq_len, dtype=tf.float32, time_major=time_major,
                        initial_state_fw=fw_states if concat_state else fw_states or None,
                        initial_state_bw=bw_states if concat_state else bw_states or None)
                    rnn_out = tf.concat([out_fw, out_bw], 2)
                    output = tf.reshape(rnn_out, [-1, width])
                elif rnn == "static_bidirectional_multi":   # rnn.py static_bidirectional_rnn of two stacks
                    fw_states, bw_states = cell_states[:layers], cell_states[layers:]
                    outputs, _, _ = v1.nn.static_bidirectional_rnn(
                        rnn_cell.MultiRNNCell([cell() for _ in range(layers)]),
                        rnn_cell.MultiRNNCell([cell() for _ in range(layers_bw)]), tf.unstack(inputs, num=T, axis=1),
                        initial_state_fw=fw_states or None, initial_state_bw=bw_states or None, dtype=tf.float32,
                        sequence_length=seq_len)
                    output = tf.reshape(tf.concat(outputs, 1), [-1, width])
                    rnn_out = tf.stack(outputs, axis=1)
                elif rnn == "static_bidirectional":   # rnn.py static_bidirectional_rnn of two cells
                    outputs, _, _ = v1.nn.static_bidirectional_rnn(
                        cell(), cell(), tf.unstack(inputs, num=T, axis=1), dtype=tf.float32,
                        initial_state_fw=cell_states[0] if cell_states else None,
                        initial_state_bw=cell_states[1] if cell_states else None)
                    output = tf.reshape(tf.concat(outputs, 1), [-1, width])
                    rnn_out = tf.stack(outputs, axis=1)
                elif rnn == "stack_bidirectional":
                    rnn_out = stack_bidirectional_dynamic_rnn(
                        [cell() for _ in range(layers)], [cell() for _ in range(layers)], inputs,
                        list(cell_states[0::2]), list(cell_states[1::2]), seq_len, time_major)
                    output = tf.reshape(rnn_out, [-1, width])
                else:
                    rnn_out, final = v1.nn.dynamic_rnn(cell(), inputs, sequence_length=seq_len, dtype=tf.float32,
                                                       time_major=time_major, initial_state=state_in)
                    seq = between(rnn_out) if between is not None else rnn_out
                    output = tf.reshape(seq, [-1, HIDDEN])
                if projection == "dense":
                    logits = v1.layers.dense(output, VOCAB)
                else:
                    softmax_w = v1.get_variable("softmax_w", [width, VOCAB], dtype=tf.float32)
                    softmax_b = v1.get_variable("softmax_b", [VOCAB], dtype=tf.float32)
                    if projection == "xw_plus_b":
                        logits = v1.nn.xw_plus_b(output, softmax_w, softmax_b)
                    else:
                        logits = tf.matmul(output, softmax_w) + softmax_b
                if projection == "xw_plus_b" and not time_major:   # ptb_word_lm.py: logits as [batch, steps, vocab]
                    logits = tf.reshape(logits, [B, T, VOCAB])
                result = tf.nn.softmax(logits) if softmax else logits
            variables = v1.global_variables()
            with tf_session(tf, graph) as sess:
                sess.run(v1.global_variables_initializer())
                for v in variables:
                    v.load(r.uniform(-0.8, 0.8, v.shape.as_list()).astype(np.float32), sess)
                (out / name).mkdir(parents=True, exist_ok=add is None)
                prefix = str(out / name / "model.ckpt")
                v1.train.Saver(var_list=variables).save(sess, prefix, write_meta_graph=False, write_state=False)
                meta = v1.train.export_meta_graph(graph=graph, clear_devices=True, strip_default_attrs=True,
                                                  saver_def=v1.train.Saver(var_list=variables).as_saver_def())
                meta.meta_info_def.ClearField("stripped_op_list")
                Path(prefix + ".meta").write_bytes(meta.SerializeToString())
                feed = (r.uniform(-1.5, 1.5, shape).astype(np.float32) if float_input
                        else r.integers(0, VOCAB, shape).astype(np.int32))
                fed = {ids: feed, **({seq_len: np.array(WHOLE_LENGTHS, np.int32)} if lengths is True else {})}
                states = [r.uniform(-0.8, 0.8, [B, t.shape[1]]).astype(np.float32) for t in state_flat]
                fed.update(zip(state_flat, states))
                got, got_rnn = sess.run([result, rnn_out], fed)
                got_final = sess.run(final, fed) if name.startswith("whole_not_tuple") else None
        v1.enable_resource_variables()
        v1.disable_control_flow_v2()
        arrays[f"{name}/ids"] = feed
        if lengths:
            arrays[f"{name}/lengths"] = np.array(WHOLE_LENGTHS, np.int32)
        if got_final is not None:     # one tensor: the layers' states concatenated (c, h a layer for an LSTM)
            arrays[f"{name}/final"] = got_final
        if state_layers or concat_state:    # c0, h0, c1, h1, ... as fed (a GRU's h0, h1, ...; or the one tensor)
            arrays[f"{name}/state"] = np.stack(states)
        if constant_state:  # c, h the cells start from
            arrays[f"{name}/state"] = start
        arrays[f"{name}/out"] = got
        arrays[f"{name}/rnn"] = got_rnn
        arrays[f"{name}/config"] = np.array(json.dumps({
            "checkpoint": f"{name}/model.ckpt", "time_major": time_major, "rnn": rnn, "projection": projection,
            "softmax": softmax, "resource_variables": resource,
            "whole": between is None and not constant_state and not refused,
            "between": None if between is None else "Abs", "float_input": float_input,
            "lengths": lengths is True, "control_flow_v2": control_flow_v2,
            "state": [t.op.name for t in state_flat],
            **({"constant_lengths": WHOLE_LENGTHS} if lengths == "constant" else {}),
            **({"layers": layers} if rnn == "stack_bidirectional" else {}),
            **({"layers": [layers, layers_bw]} if rnn in ("bidirectional_multi", "static_bidirectional_multi") else {}),
            **({"constant_state": True} if constant_state else {})}))
        print(name, {k: v.shape for k, v in arrays.items() if k.startswith(name + "/") and k != f"{name}/config"})

    lstm = rnn_cell.BasicLSTMCell
    record_whole("whole_ptb_word_lm", rnn="unrolled", projection="xw_plus_b", resource=False,
                 cell=lambda: rnn_cell.MultiRNNCell([lstm(HIDDEN, forget_bias=0.0), lstm(HIDDEN, forget_bias=0.0)]))
    record_whole("whole_ptb_static", rnn="static", projection="xw_plus_b", resource=False,
                 cell=lambda: rnn_cell.MultiRNNCell([lstm(HIDDEN, forget_bias=0.0), lstm(HIDDEN, forget_bias=0.0)]))
    record_whole("whole_ptb_dynamic", rnn="dynamic", projection="matmul_add",
                 cell=lambda: rnn_cell.MultiRNNCell([lstm(HIDDEN, forget_bias=0.0), lstm(HIDDEN, forget_bias=0.0)]))
    record_whole("whole_gru_time_major", rnn="dynamic", projection="xw_plus_b", time_major=True, resource=False,
                 cell=lambda: rnn_cell.GRUCell(HIDDEN))
    record_whole("whole_dense_softmax", rnn="dynamic", projection="dense", softmax=True,
                 cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_unrecognised_op", rnn="dynamic", projection="xw_plus_b", between=tf.abs,
                 cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_float_input", rnn="dynamic", projection="dense", time_major=True,
                 cell=lambda: rnn_cell.LSTMCell(HIDDEN, forget_bias=0.5, cell_clip=0.8), float_input=True)
    record_whole("whole_while_v2", rnn="dynamic", projection="xw_plus_b", control_flow_v2=True,
                 cell=lambda: lstm(HIDDEN, forget_bias=0.0))
    record_whole("whole_sequence_length", rnn="dynamic", projection="matmul_add", lengths=True,
                 cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_bidirectional", rnn="bidirectional", projection="xw_plus_b", lengths=True,
                 cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_lengths_time_major", rnn="dynamic", projection="dense", time_major=True, lengths=True,
                 cell=lambda: rnn_cell.LSTMCell(HIDDEN, forget_bias=0.5, cell_clip=0.8))
    record_whole("whole_initial_state", rnn="dynamic", projection="xw_plus_b", state_layers=2,
                 cell=lambda: rnn_cell.MultiRNNCell([lstm(HIDDEN, forget_bias=0.0), lstm(HIDDEN, forget_bias=0.0)]))
    record_whole("whole_initial_state_v2", rnn="dynamic", projection="matmul_add", state_layers=1, lengths=True,
                 control_flow_v2=True, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    # the state static_rnn's / the unrolled loop's first step reads: a non-zero constant (refused by name, the cells
    # convert alone), placeholders (inputs of the model), zero_state of a GRUCell
    record_whole("whole_static_constant_state", rnn="static", projection="xw_plus_b", resource=False,
                 constant_state=True, cell=lambda: lstm(HIDDEN, forget_bias=0.0))
    record_whole("whole_static_initial_state", rnn="static", projection="xw_plus_b", resource=False, state_layers=2,
                 cell=lambda: rnn_cell.MultiRNNCell([lstm(HIDDEN, forget_bias=0.0), lstm(HIDDEN, forget_bias=0.0)]))
    record_whole("whole_unrolled_gru", rnn="unrolled", projection="matmul_add", cell=lambda: rnn_cell.GRUCell(HIDDEN))
    record_whole("whole_static_state_not_tuple", rnn="static", projection="matmul_add",   # c and h as one tensor
                 cell=lambda: lstm(HIDDEN, forget_bias=1.0, state_is_tuple=False))
    # contrib's stack_bidirectional_dynamic_rnn (a BiLSTM tagger's encoder), bidirectional_dynamic_rnn from fed
    # initial states, and sequence_length a constant of the graph
    record_whole("whole_stack_bidirectional", rnn="stack_bidirectional", layers=2, projection="xw_plus_b",
                 lengths=True, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_stack_bidirectional_gru", rnn="stack_bidirectional", layers=2, projection="dense",
                 time_major=True, softmax=True, state_layers=4, gru_state=True, control_flow_v2=True,
                 cell=lambda: rnn_cell.GRUCell(HIDDEN))
    record_whole("whole_stack_constant_lengths", rnn="stack_bidirectional", layers=2, projection="matmul_add",
                 time_major=True, lengths="constant", control_flow_v2=True,
                 cell=lambda: rnn_cell.LSTMCell(HIDDEN, forget_bias=0.5, cell_clip=0.8))
    record_whole("whole_bidirectional_initial_state", rnn="bidirectional", projection="matmul_add", state_layers=2,
                 lengths=True, control_flow_v2=True, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_constant_lengths", rnn="dynamic", projection="xw_plus_b", lengths="constant",
                 cell=lambda: lstm(HIDDEN, forget_bias=0.0))
    # bidirectional_dynamic_rnn of two MultiRNNCells (a TF1 encoder): each direction's stack whole, one concat at the
    # end; stacks of two depths, lengths fed, constant or none (the backward input tf.reverse), fed initial states
    record_whole("whole_bidirectional_multi", rnn="bidirectional_multi", layers=2, layers_bw=2,
                 projection="xw_plus_b", lengths=True, seed=1, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_bidirectional_multi_gru", rnn="bidirectional_multi", layers=2, layers_bw=1,
                 projection="dense", softmax=True, time_major=True, lengths="constant", control_flow_v2=True,
                 state_layers=3, gru_state=True, seed=2, cell=lambda: rnn_cell.GRUCell(HIDDEN))
    record_whole("whole_bidirectional_multi_state", rnn="bidirectional_multi", layers=1, layers_bw=2,
                 projection="matmul_add", control_flow_v2=True, state_layers=3, seed=3,
                 cell=lambda: lstm(HIDDEN, forget_bias=0.5))
    # MultiRNNCell(state_is_tuple=False) (TF 0.x's PTB tutorial): the stack's state one tensor, sliced per layer
    # (rnn_cell_impl.py MultiRNNCell.call), its LSTM cells' [c, h] concatenated too; from zero_state and from one
    # fed placeholder, in TF 1.x's loop, while_v2 and static_rnn
    def not_tuple(make, n=2):
        return lambda: rnn_cell.MultiRNNCell([make() for _ in range(n)], state_is_tuple=False)

    record_whole("whole_not_tuple_lstm", rnn="dynamic", projection="xw_plus_b", seed=4,
                 cell=not_tuple(lambda: lstm(HIDDEN, forget_bias=0.0, state_is_tuple=False)))
    record_whole("whole_not_tuple_lstm_state", rnn="dynamic", projection="matmul_add", seed=5, lengths=True,
                 control_flow_v2=True, concat_state=4 * HIDDEN,
                 cell=not_tuple(lambda: rnn_cell.LSTMCell(HIDDEN, forget_bias=0.5, cell_clip=0.8,
                                                          state_is_tuple=False)))
    record_whole("whole_not_tuple_gru_state", rnn="dynamic", projection="dense", time_major=True, seed=6,
                 concat_state=2 * HIDDEN, cell=not_tuple(lambda: rnn_cell.GRUCell(HIDDEN)))
    record_whole("whole_not_tuple_rnn_static", rnn="static", projection="xw_plus_b", resource=False, seed=7,
                 concat_state=3 * HIDDEN, cell=not_tuple(lambda: rnn_cell.BasicRNNCell(HIDDEN), 3))
    record_whole("whole_not_tuple_static_state", rnn="static", projection="matmul_add", seed=8,
                 concat_state=4 * HIDDEN,
                 cell=not_tuple(lambda: lstm(HIDDEN, forget_bias=1.0, state_is_tuple=False)))
    record_whole("whole_bidirectional_not_tuple", rnn="bidirectional_multi", layers=2, layers_bw=2, lengths=True,
                 projection="xw_plus_b", concat_state=(4 * HIDDEN, 4 * HIDDEN), seed=12,
                 cell=lambda: lstm(HIDDEN, forget_bias=0.5, state_is_tuple=False))
    # static_bidirectional_rnn of two MultiRNNCells (rnn.py: each stack by static_rnn, the backward one on the
    # steps reversed by _reverse_seq, per step tf.concat([fw, bw], 1)), and of two cells: from zero_state and from
    # fed initial states;
    # with sequence_length (each step under tf.cond, _reverse_seq by reverse_sequence) refused by name
    record_whole("whole_static_bidirectional_multi", rnn="static_bidirectional_multi", layers=2, layers_bw=2,
                 projection="xw_plus_b", resource=False, seed=9, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    record_whole("whole_static_bidirectional_multi_gru", rnn="static_bidirectional_multi", layers=2, layers_bw=1,
                 projection="matmul_add", state_layers=3, gru_state=True, seed=10,
                 cell=lambda: rnn_cell.GRUCell(HIDDEN))
    record_whole("whole_static_bidirectional_cells", rnn="static_bidirectional", projection="xw_plus_b",
                 state_layers=2, seed=13, cell=lambda: lstm(HIDDEN, forget_bias=0.5))
    record_whole("whole_static_bidirectional_lengths", rnn="static_bidirectional_multi", layers=1, layers_bw=1,
                 projection="dense", lengths=True, refused=True, seed=11, cell=lambda: lstm(HIDDEN, forget_bias=1.0))
    if add is None:
        write_expected(out, arrays)
        return
    if added != add:
        raise SystemExit(f"no case named {', '.join(sorted(add - added))}")
    with np.load(out / "expected.npz", allow_pickle=False) as z:
        kept = {k: z[k] for k in z.files}
    if any(k in kept for k in arrays):
        raise SystemExit(f"{out / 'expected.npz'} already holds {sorted(k for k in arrays if k in kept)[:3]}")
    np.savez_compressed(out / "expected.npz", **kept, **arrays)
    print("added", ", ".join(sorted(added)), "to", out)


if __name__ == "__main__":
    main()
