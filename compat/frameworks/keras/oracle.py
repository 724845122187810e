"""The converter's verification of Keras layers against reference/keras_lstm.py."""
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


ORACLES = {"keras": _keras}
