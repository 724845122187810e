"""The converter's verification of Keras layers against reference/keras_lstm.py and reference/keras_rnn.py."""
from __future__ import annotations

import numpy as np
from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _keras(spec: LSTMSpec, case: Case) -> Outputs:
    from reference import keras_lstm

    sem = spec.semantics
    x = case.x.transpose(1, 0, 2)
    acts = dict(recurrent_activation=sem["recurrent_activation"], activation=sem["activation"])
    masked = dict(mask=case.mask, masked_output=sem["masked_output"] or "previous_output")
    raw = {k: _f64(v) for k, v in spec.source[0][0].items()}
    if sem["bidirectional"]:
        bw = {k: _f64(v) for k, v in spec.source[0][1].items()}
        y, h_fw, c_fw, h_bw, c_bw = keras_lstm.bidirectional_layer(
            x, raw, bw, (case.h0[0], case.c0[0], case.h0[1], case.c0[1]), merge_mode=sem["merge_mode"],
            cudnn=sem["cudnn"], **(dict(acts, **masked) if not sem["cudnn"] else {}))
        h, c = np.stack([h_fw, h_bw]), np.stack([c_fw, c_bw])
    else:
        state = (case.h0[0], case.c0[0])
        if sem["cudnn"]:
            y, h1, c1 = keras_lstm.cudnn_lstm_layer(x, raw["kernel"], raw["recurrent_kernel"], raw["bias"], state,
                                                    go_backwards=sem["go_backwards"])
        else:
            y, h1, c1 = keras_lstm.lstm_layer(x, raw["kernel"], raw["recurrent_kernel"], raw.get("bias"), state,
                                              go_backwards=sem["go_backwards"], **acts, **masked)
        h, c = h1[None], c1[None]
    return y.transpose(1, 0, 2), h, c   # outputs in Keras's order (reversed in time for go_backwards)


def _keras_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """A Keras GRU, CuDNNGRU or SimpleRNN (and Bidirectional around one) by reference/keras_rnn.py."""
    from compat.convert.verify import NO_CELL
    from reference import keras_rnn

    sem = spec.semantics
    x = case.x.transpose(1, 0, 2)
    if sem["cudnn"]:
        layer, settings = keras_rnn.cudnn_gru_layer, {}
    elif sem["cell"] == "gru":
        layer = keras_rnn.gru_layer
        settings = dict(reset_after=sem["reset_after"], recurrent_activation=sem["recurrent_activation"],
                        activation=sem["activation"])
    else:
        layer, settings = keras_rnn.simple_rnn_layer, dict(activation=sem["activation"])
    raw = {k: _f64(v) for k, v in spec.source[0][0].items()}
    masked = {} if sem["cudnn"] else dict(mask=case.mask, masked_output=sem["masked_output"] or "previous_output")
    if sem["bidirectional"]:
        bw = {k: _f64(v) for k, v in spec.source[0][1].items()}
        y, h_fw, h_bw = keras_rnn.bidirectional(layer, x, raw, bw, (case.h0[0], case.h0[1]),
                                                merge_mode=sem["merge_mode"], **masked, **settings)
        h = np.stack([h_fw, h_bw])
    else:
        y, h1 = layer(x, raw["kernel"], raw["recurrent_kernel"], raw.get("bias"), case.h0[0],
                      go_backwards=sem["go_backwards"], **masked, **settings)
        h = h1[None]
    return y.transpose(1, 0, 2), h, NO_CELL


ORACLES = {"keras": _keras, "keras_rnn": _keras_rnn}


# ------------------------------------------------------------------------------------------ whole models
BATCH, STEPS = 3, 6


def model_inputs(graph, rng: np.random.Generator):
    """Random inputs the model takes: token ids within the vocabulary of each embedding an input feeds, with id
    0 at padded steps and a hole; floats with whole steps at each masking layer's ``mask_value`` likewise. Row 0
    is never padded, and every row keeps an unmasked step."""
    out = []
    for inp in graph.inputs:
        readers = [n for n in graph.nodes if any(isinstance(a, list) and a[:1] == [inp.name] for a in n.args)]
        shape = [BATCH] + [STEPS if d is None else d for d in inp.shape[1:]]
        if inp.dtype.startswith("int"):
            vocab = min([n.config["num_embeddings"] for n in readers if n.kind == "Embedding"] or [10])
            x = rng.integers(1, max(vocab, 2), shape)
            if len(shape) >= 2 and shape[1] >= 4:
                x[1, -2:] = 0
                x[2, 0] = 0
                x[2, shape[1] // 2] = 0
            out.append(x.astype(np.int64))
            continue
        x = rng.uniform(-1.5, 1.5, shape)
        values = [n.config["mask_value"] for n in readers if n.kind == "Masking"]
        if values and len(shape) >= 3 and shape[1] >= 4:
            x[1, -2:] = values[0]
            x[2, 0] = values[0]
            x[2, shape[1] // 2] = values[0]
        out.append(x.astype(inp.dtype))
    return out


def model_outputs(graph, inputs):
    """reference/keras_model.py's predictions from the file's own configuration and weights."""
    from reference import keras_model

    src = graph.source
    return keras_model.predict(src["config"], src["weights"], inputs, src["version"], src["backend"])
