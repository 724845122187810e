"""The converter's verification of TF cells (reference/tf_lstm.py; GRU and simple-RNN cells: reference/tf_rnn_cells.py,
CudnnCompatibleGRUCell through reference/onnx_rnn.py) and cuDNN buffers (reference/onnx_lstm.py; GRU and RNN modes:
reference/cudnn_params.py)."""
from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _tf(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import tf_lstm

    sem = spec.semantics

    def cell(raw):
        return partial(_tf_cell, tf_lstm.lstm_cell, raw, sem)

    D = 2 if spec.direction == "bidirectional" else 1
    L = spec.num_layers
    states = [(case.c0[k], case.h0[k]) for k in range(L * D)]
    if spec.direction == "bidirectional":
        out, st_fw, st_bw = tf_lstm.stack_bidirectional_dynamic_rnn(
            [cell(layer[0]) for layer in spec.source], [cell(layer[1]) for layer in spec.source], case.x,
            states[0::2], states[1::2], case.lengths)
        final = [s for pair in zip(st_fw, st_bw) for s in pair]
    else:
        run = tf_lstm.reverse_dynamic_rnn if spec.direction == "reverse" else tf_lstm.dynamic_rnn
        out, final = run(tf_lstm.multi_cell([cell(layer[0]) for layer in spec.source]), case.x, states, case.lengths)
    return out, np.stack([m for c, m in final]), np.stack([c for c, m in final])


# TF's activation functions (python/ops/nn_ops.py, math_ops.py) in numpy, for a cell whose graph applies one
# other than tanh; selu's constants are nn_ops.py's.
_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x, 0.0))),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(x, 0.0),
}


def _tf_cell(lstm_cell, raw, sem, x, state):
    return lstm_cell(x, state, _f64(raw["kernel"]), _f64(raw["bias"]), sem["forget_bias"],
                     w_i_diag=_f64(raw.get("w_i_diag")), w_f_diag=_f64(raw.get("w_f_diag")),
                     w_o_diag=_f64(raw.get("w_o_diag")), cell_clip=sem["cell_clip"],
                     proj_kernel=_f64(raw.get("projection/kernel")), proj_clip=sem["proj_clip"],
                     activation=_ACTIVATIONS[sem.get("activation", "tanh")])


def _cudnn(spec: LSTMSpec, case: Case) -> Outputs:
    """The opaque buffer unpacked by reference/cudnn_params.py (written from TF's and cuDNN's description of
    the layout, not from the converter's reader), layer by layer through reference/onnx_lstm.py (cuDNN's gates
    i, f, c, o -> ONNX's i, o, f, c; cuDNN's two biases are ONNX's Wb and Rb)."""
    from reference import cudnn_params, onnx_lstm

    sem = spec.semantics
    if sem["mode"] != "lstm" or sem.get("num_proj"):
        raise ValueError(f"{spec.name}: reference/onnx_lstm.py runs cuDNN LSTMs without a projection only")
    buf = _f64(spec.source[0][0]["buffer"])
    H, L, bidi, n_in = sem["num_units"], sem["num_layers"], sem["bidirectional"], sem["input_size"]
    params = cudnn_params.unpack(buf, "lstm", n_in, H, L, bidi)
    D = 2 if bidi else 1
    onnx_order = [0, 3, 1, 2]
    inp, hs, cs = case.x, [], []
    for k in range(L):
        W = np.stack([np.concatenate([params["W", k, d, g] for g in onnx_order]) for d in range(D)])
        R = np.stack([np.concatenate([params["R", k, d, g] for g in onnx_order]) for d in range(D)])
        B = np.stack([np.concatenate([params[b, k, d, g] for b in ("bW", "bR") for g in onnx_order]) for d in range(D)])
        sl = slice(k * D, (k + 1) * D)
        Y, Y_h, Y_c = onnx_lstm.lstm(inp, W, R, B, case.lengths, case.h0[sl], case.c0[sl],
                                     direction="bidirectional" if D == 2 else "forward")
        T, _, Bn, _ = Y.shape
        inp = Y.transpose(0, 2, 1, 3).reshape(T, Bn, D * H)
        hs += list(Y_h)
        cs += list(Y_c)
    return inp, np.stack(hs), np.stack(cs)


def _onnx_tensors(kind: str, raw: dict, n_in: int):
    """A TF GRU / simple-RNN cell's tensors as one direction of the ONNX operator's W, R, B (gate blocks z, r, h;
    TF's update gate u is ONNX's z) and its linear_before_reset: written from rnn_cell_impl.py GRUCell.call
    (r, u = split(sigmoid([x, h] @ gates/kernel + gates/bias)); c = tanh([x, r * h] @ candidate/kernel +
    candidate/bias); h' = u * h + (1 - u) * c), BasicRNNCell.call (tanh([x, h] @ kernel + bias)) and
    cudnn_rnn_ops.py CudnnCompatibleGRUCell.call (c = tanh(x @ input_projection + r * (h @ hidden_projection)))."""
    f = {k: _f64(v) for k, v in raw.items()}
    if kind == "BasicRNNCell":
        k = f["kernel"]
        H = k.shape[1]
        b = f.get("bias", np.zeros(H))
        return k[:n_in].T, k[n_in:].T, np.concatenate([b, np.zeros(H)]), 0
    gk = f["gates_kernel"]
    H = gk.shape[1] // 2
    gb = f.get("gates_bias", np.zeros(2 * H))
    r_x, u_x, r_h, u_h = gk[:n_in, :H].T, gk[:n_in, H:].T, gk[n_in:, :H].T, gk[n_in:, H:].T
    if kind == "CudnnCompatibleGRUCell":
        c_x, c_h = f["input_kernel"].T, f["hidden_kernel"].T
        wb_c, rb_c, lbr = f.get("input_bias", np.zeros(H)), f.get("hidden_bias", np.zeros(H)), 1
    else:
        ck = f["candidate_kernel"]
        c_x, c_h = ck[:n_in].T, ck[n_in:].T
        wb_c, rb_c, lbr = f.get("candidate_bias", np.zeros(H)), np.zeros(H), 0
    W = np.concatenate([u_x, r_x, c_x])
    R = np.concatenate([u_h, r_h, c_h])
    B = np.concatenate([gb[H:], gb[:H], wb_c, np.zeros(2 * H), rb_c])
    return W, R, B, lbr


def _tf_cell_fn(kind: str, raw: dict, n_in: int):
    """reference/tf_rnn_cells.py's cell for a TF GRUCell / GRUBlockCell / BasicRNNCell's own tensors; None for
    CudnnCompatibleGRUCell, which that oracle does not hold (it runs through reference/onnx_rnn.py)."""
    from reference import tf_rnn_cells

    f = {k: _f64(v) for k, v in raw.items()}
    if kind == "BasicRNNCell":
        H = f["kernel"].shape[1]
        return tf_rnn_cells.basic_rnn_cell(f["kernel"], f.get("bias", np.zeros(H)))
    if kind == "CudnnCompatibleGRUCell":
        return None
    H = f["candidate_kernel"].shape[1]
    gb, cb = f.get("gates_bias", np.zeros(2 * H)), f.get("candidate_bias", np.zeros(H))
    if kind == "GRUBlockCell":
        return tf_rnn_cells.gru_block_cell(f["gates_kernel"], gb, f["candidate_kernel"], cb)
    return tf_rnn_cells.gru_cell(f["gates_kernel"], gb, f["candidate_kernel"], cb)


def _tf_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """TF GRU / BasicRNNCell stacks layer by layer: reference/tf_rnn_cells.py's cells under its ``dynamic_rnn`` /
    ``bidirectional_dynamic_rnn`` (state copied through and output 0 past a sequence's length; a reverse-only
    stack, the backward stack of a bidirectional_dynamic_rnn of two MultiRNNCells, reads each sequence's valid
    prefix reversed). CudnnCompatibleGRUCell runs through reference/onnx_rnn.py, its tensors re-read as the ONNX
    GRU's with linear_before_reset=1, dynamic_rnn's final state for an empty sequence (its initial state) kept."""
    from compat.convert.verify import NO_CELL
    from reference import onnx_rnn, tf_rnn_cells

    kinds = spec.semantics["kinds"]
    D = 2 if spec.direction == "bidirectional" else 1
    inp, finals = case.x, []
    lengths = case.lengths
    for k, layer in enumerate(spec.source):
        n_in = inp.shape[2]
        h0 = case.h0[k * D:(k + 1) * D]
        cells = [_tf_cell_fn(kinds[k][d], layer[d], n_in) for d in range(D)]
        if cells[0] is None:
            parts = [_onnx_tensors(kinds[k][d], layer[d], n_in) for d in range(D)]
            W, R, B = (np.stack([p[i] for p in parts]) for i in range(3))
            direction = {"bidirectional": "bidirectional", "reverse": "reverse"}.get(spec.direction, "forward")
            Y, Y_h = onnx_rnn.gru(inp, W, R, B, lengths, h0, direction=direction, linear_before_reset=1)
            if lengths is not None:
                Y_h = np.where((np.asarray(lengths) == 0)[None, :, None], h0, Y_h)
            T, _, Bn, H = Y.shape
            inp = Y.transpose(0, 2, 1, 3).reshape(T, Bn, D * H)
            finals += list(Y_h)
            continue
        if D == 2:
            (y_fw, y_bw), (s_fw, s_bw) = tf_rnn_cells.bidirectional_dynamic_rnn(cells[0], cells[1], inp, h0[0], h0[1],
                                                                                lengths)
            inp = np.concatenate([y_fw, y_bw], axis=2)
            finals += [s_fw, s_bw]
        elif spec.direction == "reverse":
            y, s = tf_rnn_cells.dynamic_rnn(cells[0], tf_rnn_cells.reverse_sequence(inp, lengths), h0[0], lengths)
            inp = tf_rnn_cells.reverse_sequence(y, lengths)
            finals.append(s)
        else:
            inp, s = tf_rnn_cells.dynamic_rnn(cells[0], inp, h0[0], lengths)
            finals.append(s)
    return inp, np.stack(finals), NO_CELL


def _cudnn_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """A cuDNN GRU / RNN opaque buffer unpacked and run by reference/cudnn_params.py (its layout and cuDNN's
    recurrences written from cudnn_rnn_ops.py and NVIDIA's description; not from the converter's reader)."""
    from compat.convert.verify import NO_CELL
    from reference import cudnn_params

    sem = spec.semantics
    buf = _f64(spec.source[0][0]["buffer"])
    params = cudnn_params.unpack(buf, sem["mode"], sem["input_size"], sem["num_units"], sem["num_layers"],
                                 sem["bidirectional"])
    y, h = cudnn_params.run(sem["mode"], params, case.x, case.h0, sem["num_layers"], sem["bidirectional"])
    if case.lengths is not None:
        raise ValueError(f"{spec.name}: reference/cudnn_params.py runs whole sequences only")
    return y, h, NO_CELL


ORACLES = {"tf": _tf, "cudnn": _cudnn, "tf_rnn": _tf_rnn, "cudnn_rnn": _cudnn_rnn}


# -- whole models (compat.convert.verify.check_model): a language model read from the .meta graph -------------
STEPS, BATCH = 5, 3


def model_inputs(graph, rng: np.random.Generator):
    """The model's input at the placeholder's static shape (where it has one): token ids within the embedding's
    vocabulary, or a float sequence uniform in [-1.5, 1.5)."""
    src = graph.source
    inp = next(i for i in graph.inputs if i.name != src["lengths"] and i.name not in src["state"])
    constant = src.get("constant_lengths")
    # a constant sequence_length fixes the batch, and its longest length is run
    batch_, steps_ = (len(constant), max(STEPS, max(constant))) if constant else (BATCH, STEPS)
    default = [batch_, steps_] if src["batch_major_in"] else [steps_, batch_]
    shape = [default[k] if d is None and k < 2 else d for k, d in enumerate(inp.shape)]
    if shape[-1] is None:
        shape[-1] = src["spec"].input_size
    if src["embedding"] is not None:
        x = rng.integers(0, src["embedding"].shape[0], shape).astype(np.int64)
    else:
        x = rng.uniform(-1.5, 1.5, shape).astype(inp.dtype)
    batch, steps = (shape[0], shape[1]) if src["batch_major_in"] else (shape[1], shape[0])
    fed = {inp.name: x}
    if src["lengths"] is not None:
        # sequence_length: every length from 1 to the steps, one sequence whole, the others in no order
        lengths = rng.integers(1, steps + 1, batch).astype(np.int64)
        lengths[rng.integers(batch)] = steps
        fed[src["lengths"]] = lengths
    for i in graph.inputs:      # the initial state's placeholders
        if i.name not in fed:
            fed[i.name] = rng.uniform(-0.5, 0.5, [batch, i.shape[1]]).astype(i.dtype)
    return [fed[i.name] for i in graph.inputs]


def _one_cell(spec, k: int, d: int):
    """The spec of one cell of a bidirectional stack (layer ``k``, direction ``d``: 0 forward, 1 backward) as a
    forward layer, for reference/tf_graph.py to compose the directions and the layers as the graph does."""
    sem = dict(spec.semantics)
    if "kinds" in sem:
        sem["kinds"] = [(sem["kinds"][k][d],)]
    return dataclasses.replace(spec, layers=[spec.directions(k)[d]], options={**spec.options, "direction": "forward"},
                               source=[(spec.source[k][d],)], semantics=sem)


def _state_parts(fed, spec):
    """(the state tensors of ``spec``'s cells as ``nest.flatten`` lists a tuple state: ``c``, ``h`` an LSTM cell, ``h``
    a GRU or basic RNN cell, layer by layer (a bidirectional layer's forward then backward cell), the tensors of
    ``fed`` left over). A state fed as one tensor (``state_is_tuple=False``) is sliced as Keras's
    legacy_rnn/rnn_cell_impl.py does: ``MultiRNNCell.call`` gives layer k ``array_ops.slice(state, [0,
    cur_state_pos], [-1, cell.state_size])``, the layers' sizes summed before it, and an LSTM cell takes ``c``
    then ``h`` from its part (``BasicLSTMCell.call``'s ``array_ops.split(state, 2, axis=1)``, ``LSTMCell.call``'s
    ``slice(state, [0, 0], [-1, num_units])`` and ``slice(state, [0, num_units], [-1, num_proj])``)."""
    cells = spec.num_layers * (2 if spec.direction == "bidirectional" else 1)
    widths = [w for _ in range(cells) for w in ([spec.hidden_size, spec.proj_size or spec.hidden_size]
                                                if spec.cell == "lstm" else [spec.hidden_size])]
    taken, columns = 0, 0
    while columns < sum(widths) and taken < len(fed):
        columns, taken = columns + fed[taken].shape[1], taken + 1
    if columns != sum(widths):
        raise ValueError(f"{spec.name}: the fed state has {columns} columns, its cells' states {sum(widths)}")
    state, parts, pos = np.concatenate(fed[:taken], axis=1), [], 0
    for w in widths:
        parts.append(state[:, pos:pos + w])
        pos += w
    return parts, fed[taken:]


def model_outputs(graph, inputs):
    """reference/tf_graph.py's language model from the checkpoint's own variables, the cells by the reference
    their conversion is checked against (reference/tf_lstm.py, tf_rnn_cells.py), from zero states or the fed
    initial state; a bidirectional stack of TF cells composed by reference/tf_graph.py
    (``stack_bidirectional_dynamic_rnn``: each direction's cell run forward, the backward on the reversed
    sequence, the layers joined by concat), each cell by its reference; the two MultiRNNCell stacks of a
    bidirectional_dynamic_rnn composed the same way, each stack whole by its reference run forward; those of a
    static_bidirectional_rnn too (without sequence_length rnn.py's ``_reverse_seq`` reverses the list of steps,
    as reverse_sequence without lengths reverses the sequence)."""
    from compat.convert.verify import Case, oracle
    from reference.tf_graph import bidirectional_dynamic_rnn, language_model, stack_bidirectional_dynamic_rnn

    src = graph.source
    spec = src["spec"]
    n = spec.num_layers * (2 if spec.direction == "bidirectional" else 1)

    names = [i.name for i in graph.inputs]
    # dynamic_rnn's initial_state placeholders, flattened as TF nests the state (c, h a layer for an LSTM)
    state = [_f64(inputs[names.index(p)]) for p in src["state"]]
    backward = src.get("backward")
    state_bw = []
    if state:       # the forward stack's tensors first, then the backward stack's
        state, rest = _state_parts(state, spec)
        state_bw, rest = _state_parts(rest, backward) if backward is not None else ([], rest)
        if rest:
            raise ValueError(f"{spec.name}: {len(rest)} initial-state tensors more than its cells' states")

    def stacks(x, lengths=None):
        """bidirectional_dynamic_rnn of two MultiRNNCells: each stack run forward by its cells' reference (the
        backward one as a forward stack: reference/tf_graph.py reverses its input and its output)."""
        def run(one, fed):
            L, B = one.num_layers, x.shape[1]
            h0, c0 = np.zeros((L, B, one.proj_size or one.hidden_size)), np.zeros((L, B, one.hidden_size))
            if fed and one.cell == "lstm":
                h0, c0 = np.stack(fed[1::2]), np.stack(fed[0::2])
            elif fed:
                h0 = np.stack(fed)
            forward = dataclasses.replace(one, options={**one.options, "direction": "forward"})
            return lambda x, lengths: oracle(forward, Case(x=x, h0=h0, c0=c0, lengths=lengths))[0]

        return bidirectional_dynamic_rnn(run(spec, state), run(backward, state_bw), x, lengths)

    def start(B):
        h0, c0 = np.zeros((n, B, spec.proj_size or spec.hidden_size)), np.zeros((n, B, spec.hidden_size))
        if state and spec.cell == "lstm":
            h0, c0 = np.stack(state[1::2]), np.stack(state[0::2])
        elif state:
            h0 = np.stack(state)
        return h0, c0

    def cells(x, lengths=None):
        h0, c0 = start(x.shape[1])
        return oracle(spec, Case(x=x, h0=h0, c0=c0, lengths=lengths))[0]

    def stack(x, lengths=None):
        h0, c0 = start(x.shape[1])

        def run(k, d):
            one, j = _one_cell(spec, k, d), 2 * k + d
            return lambda x, lengths: oracle(one, Case(x=x, h0=h0[j:j + 1], c0=c0[j:j + 1], lengths=lengths))[0]

        return stack_bidirectional_dynamic_rnn([(run(k, 0), run(k, 1)) for k in range(spec.num_layers)], x, lengths)

    x = inputs[next(k for k, name in enumerate(names) if name != src["lengths"] and name not in src["state"])]
    lengths = None if src["lengths"] is None else inputs[names.index(src["lengths"])]
    if src.get("constant_lengths"):
        lengths = np.array(src["constant_lengths"], dtype=np.int64)
    composed = spec.direction == "bidirectional" and spec.oracle in ("tf", "tf_rnn")
    projection = None if src["projection"] is None else tuple(_f64(a) for a in src["projection"])
    return [language_model(x, stacks if backward is not None else stack if composed else cells, embedding=_f64(src["embedding"]), batch_major_in=src["batch_major_in"],
                           static_steps=src["static"], batch_major_out=src["rec_out"], projection=projection,
                           after=src["after"], lengths=lengths)]
