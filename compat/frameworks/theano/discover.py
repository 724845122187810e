"""Every LSTM layer of a Theano tutorial archive (``lstm_model.npz``).

Each ``<prefix>_W`` [in, 4H], ``<prefix>_U`` [H, 4H], ``<prefix>_b`` [4H] triple is one layer, gate blocks
i, f, o, c (lstm.py ``lstm_layer._step``: ``_slice(preact, 0..3, dim)``; the ``theano`` layout of
:mod:`compat.layouts`). The archive is read member by member with :mod:`compat.formats.npz` (no pickles;
only the triples are decompressed). The tutorial's mask carries the state at padded steps (``mask=`` of
compat.lstm, or a PackedSequence for right padding); lstm.py before May 2015 added ``lstm_b`` twice
(``--theano-doubled-bias``).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from compat import layouts
from compat.convert.spec import Found, LSTMSpec, SourceItem, Unknown, carry, numpy_weights
from compat.errors import InputError
from compat.formats.npz import NpzArchive
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES, format_shape


class TheanoParamsError(InputError, ValueError):
    """A tutorial archive whose LSTM parameters do not fit together."""


def _check_headers(where: str, headers: Dict[str, Tuple[np.dtype, Tuple[int, ...]]]) -> None:
    """The triple's dtypes and shapes from the members' .npy headers, before any data is inflated: one floating
    dtype (the tutorial's floatX), ``U`` [H, 4H], ``b`` [4H], ``W`` [n, 4H]."""
    dtypes = {k: d for k, (d, _) in headers.items()}
    if any(d.kind != "f" for d in dtypes.values()):
        raise TheanoParamsError(f"{where}: the parameters must be floating point "
                                f"({', '.join(f'{k} {d}' for k, d in dtypes.items())})")
    if len(set(dtypes.values())) != 1:
        raise TheanoParamsError(f"{where}: the parameters have different dtypes "
                                f"({', '.join(f'{k} {d}' for k, d in dtypes.items())}); the tutorial's share one floatX")
    (_, w), (_, u), (_, b) = headers["W"], headers["U"], headers["b"]
    if len(u) != 2 or u[1] != 4 * u[0] or u[0] == 0:
        raise TheanoParamsError(f"{where}: U has shape {format_shape(u)}; expected [H, 4H]")
    if tuple(b) != (u[1],) or len(w) != 2 or w[1] != u[1]:
        raise TheanoParamsError(f"{where}: W {format_shape(w)}, U {format_shape(u)}, b {format_shape(b)}; expected "
                                f"[n, {u[1]}], [{u[0]}, {u[1]}], [{u[1]}]")


def discover(path, *, theano_doubled_bias: bool = False, max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> Found:
    """Every LSTM triple of the archive at ``path`` and every other member accounted for; no member declaring
    more than ``max_tensor_bytes`` is inflated."""
    doubled_bias = theano_doubled_bias
    with NpzArchive(path, "Theano parameter archive") as archive:
        names = set(archive.names)
        prefixes = sorted(k[:-2] for k in names if k.endswith("_U") and f"{k[:-2]}_W" in names
                          and f"{k[:-2]}_b" in names)
        for p in prefixes:
            headers = {key: archive.header(f"{p}_{key}", max_bytes=max_tensor_bytes)[:2] for key in ("W", "U", "b")}
            _check_headers(f"{path}: {p}_W/{p}_U/{p}_b", headers)
        triples = {p: {key: archive.read(f"{p}_{key}", max_bytes=max_tensor_bytes) for key in ("W", "U", "b")}
                   for p in prefixes}
        in_triples = {f"{p}_{k}" for p in prefixes for k in ("W", "U", "b")}
        others = {n: archive.read(n, max_bytes=max_tensor_bytes) for n in sorted(names - in_triples)}
    if not triples:
        raise TheanoParamsError(f"{path}: no <prefix>_W, <prefix>_U, <prefix>_b triple (the tutorial's lstm_W, "
                                f"lstm_U, lstm_b); the archive holds {sorted(names)[:10]}")
    specs, items = [], []
    for p, raw in triples.items():
        where = f"{path}: {p}_W/{p}_U/{p}_b"
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
