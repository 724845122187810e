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
