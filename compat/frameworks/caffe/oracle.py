"""The converter's verification of Caffe LSTM layers against reference/caffe_lstm.py and the RNN layer against
reference/caffe_rnn.py."""
from __future__ import annotations

import numpy as np
from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _caffe(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.caffe_lstm import lstm_forward

    raw = spec.source[0][0]
    cont = np.ones(case.x.shape[:2])   # a stream continuing from (h0, c0)
    h, h_T, c_T, _ = lstm_forward(case.x, cont, _f64(raw["W_x"]), _f64(raw["b"]), _f64(raw["W_h"]), case.h0[0],
                                  case.c0[0])
    return h, h_T[None], c_T[None]


def _junhyukoh(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.caffe_lstm import junhyukoh_forward

    raw = spec.source[0][0]
    T, N, _ = case.x.shape
    h, h_T, c_T, _ = junhyukoh_forward(case.x.reshape(T * N, -1), _f64(raw["W_x"]), _f64(raw["W_h"]), _f64(raw["b"]),
                                       batch_size=N, clip=np.ones(T * N), h0=case.h0[0], c0=case.c0[0])
    return h.reshape(T, N, -1), h_T[None], c_T[None]


def _caffe_rnn(spec: LSTMSpec, case: Case) -> Outputs:
    """BVLC's RNN layer by reference/caffe_rnn.py: its output o and final h, a stream continuing from h0."""
    from compat.convert.verify import NO_CELL
    from reference.caffe_rnn import BLOBS, rnn_layer

    raw = spec.source[0][0]
    o, h_T = rnn_layer(case.x, None, [_f64(raw[n]) for n in BLOBS], case.h0[0])
    return o, h_T[None], NO_CELL


ORACLES = {"caffe": _caffe, "junhyukoh": _junhyukoh, "caffe_rnn": _caffe_rnn}


# -- whole nets (compat.convert.verify.check_model) ------------------------------------------------------------
STEPS, BATCH = 5, 3


def model_inputs(graph, rng: np.random.Generator):
    """Inputs the net takes, of its declared shapes: token ids within the vocabulary of each Embed an input
    feeds; an LSTM's or RNN's ``cont`` as 0 at the first step and at a restart in one stream, 1 elsewhere; other
    blobs uniform in [-1.5, 1.5)."""
    conts = {n.args[1][0] for n in graph.nodes if n.kind in ("LSTM", "RNN")}
    out = []
    for inp in graph.inputs:
        shape = [BATCH if d is None else d for d in inp.shape]
        readers = [n for n in graph.nodes if any(isinstance(a, list) and a[:1] == [inp.name] for a in n.args)]
        if inp.dtype == "int64":
            vocab = min([n.config["input_dim"] for n in readers if n.kind == "Embed"] or [10])
            out.append(rng.integers(0, vocab, shape).astype(np.int64))
        elif inp.name in conts:
            cont = np.ones(shape)
            if len(shape) == 2 and shape[0]:
                cont[0] = 0
                if shape[0] > 2 and shape[1] > 1:
                    cont[shape[0] // 2, 1] = 0
            out.append(cont.astype(inp.dtype))
        else:
            out.append(rng.uniform(-1.5, 1.5, shape).astype(inp.dtype))
    return out


def model_outputs(graph, inputs):
    """reference/caffe_layers.py's net forward from the prototxt's layers and the .caffemodel's blobs."""
    from reference.caffe_layers import net_forward

    src = graph.source
    blobs = net_forward(src["layers"], src["weights"], {i.name: x for i, x in zip(graph.inputs, inputs)})
    return [blobs[src["blob_names"][f"{name}:{k}"]] for name, k in graph.outputs]
