"""Every LSTM layer of a Theano tutorial archive (``lstm_model.npz``).

Each ``<prefix>_W`` [in, 4H], ``<prefix>_U`` [H, 4H], ``<prefix>_b`` [4H] triple is one layer, gate blocks
i, f, o, c (lstm.py ``lstm_layer._step``: ``_slice(preact, 0..3, dim)``; the ``theano`` layout of
:mod:`compat.layouts`). The archive is read member by member with :mod:`compat.formats.npz` (no pickles;
only the triples are decompressed). The tutorial's mask carries the state at padded steps (``mask=`` of
compat.lstm, or a PackedSequence for right padding); lstm.py before May 2015 added ``lstm_b`` twice
(``--theano-doubled-bias``).
"""
from __future__ import annotations

import numpy as np

from compat import layouts
from compat.convert.spec import Found, LSTMSpec, SourceItem, Unknown, carry, numpy_weights
from compat.errors import InputError
from compat.formats.npz import NpzArchive


class TheanoParamsError(InputError, ValueError):
    """A tutorial archive whose LSTM parameters do not fit together."""


def discover(path, *, theano_doubled_bias: bool = False) -> Found:
    doubled_bias = theano_doubled_bias
    with NpzArchive(path, "Theano parameter archive") as archive:
        names = set(archive.names)
        prefixes = sorted(k[:-2] for k in names if k.endswith("_U") and f"{k[:-2]}_W" in names
                          and f"{k[:-2]}_b" in names)
        triples = {p: {key: archive.read(f"{p}_{key}") for key in ("W", "U", "b")} for p in prefixes}
        in_triples = {f"{p}_{k}" for p in prefixes for k in ("W", "U", "b")}
        others = {n: archive.read(n) for n in sorted(names - in_triples)}
    if not triples:
        raise TheanoParamsError(f"{path}: no <prefix>_W, <prefix>_U, <prefix>_b triple (the tutorial's lstm_W, "
                                f"lstm_U, lstm_b); the archive holds {sorted(names)[:10]}")
    specs, items = [], []
    for p, raw in triples.items():
        where = f"{path}: {p}_W/{p}_U/{p}_b"
        if any(a.dtype.kind != "f" for a in raw.values()):
            raise TheanoParamsError(f"{where}: the parameters must be floating point")
        dtype = np.promote_types(raw["W"].dtype, np.float32)
        tensors = {k: v.astype(dtype, copy=False) for k, v in raw.items()}
        if doubled_bias:
            tensors["b"] = 2 * tensors["b"]
        try:
            weights = numpy_weights(layouts.to_canonical("theano", tensors))
        except layouts.LayoutError as e:
            raise TheanoParamsError(f"{where}: {e}") from None
        spec = LSTMSpec(name=p, source_format="theano", variant="Theano tutorial lstm_layer", layers=[weights],
                        unknowns=[Unknown("masks", "?", "the tutorial's mask carries the state at padded steps: pass "
                                                   "compat.lstm.lstm(..., mask=[T, B]) (or a PackedSequence for right "
                                                   "padding)")],
                        source=[(raw,)], oracle="theano")
        if doubled_bias:
            spec.notes.append("lstm_b doubled (lstm.py before May 2015 added it twice)")
        spec.semantics = {"doubled_bias": doubled_bias}
        specs.append(spec)
        items.append(SourceItem(p, "LSTM layer (lstm_layer)", {f"{p}_{k}": tuple(raw[k].shape) for k in raw},
                                converted=spec, recurrent=True))
    for name, array in others.items():
        item = SourceItem(name, "array", {name: tuple(array.shape)},
                          reason="not an LSTM layer's parameters (the tutorial's Wemb, U and b are the embedding and "
                                 "the classifier; history_errs the training history)")
        carry(item, name, array)
        items.append(item)
    return Found(specs, items)
