"""The converter's verification of the Theano tutorial's layer against reference/theano_lstm.py."""
from __future__ import annotations

import numpy as np
from compat.convert.spec import LSTMSpec
from compat.convert.verify import Case, Outputs, f64 as _f64


def _theano(spec: LSTMSpec, case: Case) -> Outputs:
    from reference.theano_lstm import lstm_layer

    raw = spec.source[0][0]
    b = _f64(raw["b"]) * (2 if spec.semantics.get("doubled_bias") else 1)
    h, c = lstm_layer(case.x, np.ones(case.x.shape[:2]), _f64(raw["W"]), _f64(raw["U"]), b, case.h0[0], case.c0[0])
    return h, h[-1][None], c[-1][None]


ORACLES = {"theano": _theano}
