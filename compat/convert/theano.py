"""Every LSTM layer of a Theano tutorial archive (``lstm_model.npz``).

Each ``<prefix>_W`` [in, 4H], ``<prefix>_U`` [H, 4H], ``<prefix>_b`` [4H] triple is one layer, gate blocks
i, f, o, c (lstm.py ``lstm_layer._step``: ``_slice(preact, 0..3, dim)``). The tutorial's mask carries the
state at padded steps (``mask=`` of compat.lstm, or a PackedSequence for right padding); lstm.py before
May 2015 added ``lstm_b`` twice (``--theano-doubled-bias``).
"""
from __future__ import annotations

from typing import List

import numpy as np

from compat.convert.spec import LSTMSpec, Unknown, check_shapes
from compat.errors import InputError
from compat.formats.theano_npz import read_npz
from compat.layouts import permute_gates


class TheanoParamsError(InputError, ValueError):
    """A tutorial archive whose LSTM parameters do not fit together."""


def discover(path, *, doubled_bias: bool = False) -> List[LSTMSpec]:
    arrays = read_npz(path)
    prefixes = sorted(k[:-2] for k in arrays if k.endswith("_U") and f"{k[:-2]}_W" in arrays and f"{k[:-2]}_b" in arrays)
    specs = []
    for p in prefixes:
        W, U, b = arrays[f"{p}_W"], arrays[f"{p}_U"], arrays[f"{p}_b"]
        where = f"{path}: {p}_W/{p}_U/{p}_b"
        if U.ndim != 2 or U.shape[1] != 4 * U.shape[0]:
            raise TheanoParamsError(f"{where}: {p}_U has shape {list(U.shape)}; expected [H, 4H]")
        H = U.shape[0]
        if W.ndim != 2 or W.shape[1] != 4 * H:
            raise TheanoParamsError(f"{where}: {p}_W has shape {list(W.shape)}; expected [in, {4 * H}]")
        if b.shape != (4 * H,):
            raise TheanoParamsError(f"{where}: {p}_b has shape {list(b.shape)}; expected [{4 * H}]")
        if any(a.dtype.kind != "f" for a in (W, U, b)):
            raise TheanoParamsError(f"{where}: the parameters must be floating point")
        dtype = np.promote_types(W.dtype, np.float32)
        bias = (2 * b if doubled_bias else b).astype(dtype)
        w = {"weight_ih": np.ascontiguousarray(permute_gates(W.T.astype(dtype), "ifoc", "ifgo")),
             "weight_hh": np.ascontiguousarray(permute_gates(U.T.astype(dtype), "ifoc", "ifgo")),
             "bias_ih": np.ascontiguousarray(permute_gates(bias, "ifoc", "ifgo"))}
        check_shapes(p, [w])
        spec = LSTMSpec(name=p, source_format="theano", variant="Theano tutorial lstm_layer", layers=[w],
                        unknowns=[Unknown("masks", "?", "the tutorial's mask carries the state at padded steps: pass "
                                                   "mask= [T, B] (or a PackedSequence for right padding)")],
                        source=[({"W": W, "U": U, "b": b},)])
        if doubled_bias:
            spec.notes.append("lstm_b doubled (lstm.py before May 2015 added it twice)")
        spec.semantics = {"oracle": "theano", "doubled_bias": doubled_bias}
        specs.append(spec)
    if not specs:
        raise TheanoParamsError(f"{path}: no <prefix>_W, <prefix>_U, <prefix>_b triple (the tutorial's lstm_W, "
                                f"lstm_U, lstm_b); the archive holds {sorted(arrays)[:10]}")
    return specs
