"""Every LSTM layer of a Caffe ``.caffemodel``: BVLC ``LSTM`` and junhyukoh/caffe-lstm ``Lstm``.

BVLC ``LSTM`` (src/caffe/layers/lstm_layer.cpp ``FillUnrolledNet``): blobs ``W_xc`` [4H, in], ``b_c`` [4H],
``W_hc`` [4H, H], gate blocks i, f, o, g; with a static input (a third bottom x_static [N, ...]) a fourth blob
``W_xc_static`` [4H, S] between ``b_c`` and ``W_hc``, whose product with x_static is added to every step's gate
input: the layer converts to compat.convert.modules.CaffeLSTM (``static_size`` S, ``weight_static``), which takes
``x_static=``. The ``cont`` input restarts a stream where it is 0 (``cont=`` of compat.lstm). junhyukoh ``Lstm``
(lstm_layer.cpp ``LayerSetUp``): blobs ``W_x`` [4H, in] (or the older [1, 4, H, in]), ``W_h`` [4H, H],
``b`` [4H], gate blocks i, f, o, g; its data are rows ``t * N + n``, here [T, N, in]; its ``clip`` input
is read as a boolean (lstm_layer.cpp Forward_cpu ``const bool cont``): ``cont = (clip != 0)``. Caffe's
``tanh`` in the LSTM unit is ``2 * sigmoid(2x) - 1``, tanh to the last bit or two. A ``.prototxt`` beside
the model, when given, is checked against the blobs (``num_output``).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from compat import layouts
from compat.convert.spec import CAFFE_LSTM, Found, LSTMSpec, SourceItem, Unknown, carry, numpy_weights
from compat.errors import InputError
from compat.formats.caffemodel import read_caffemodel
from compat.formats.prototxt import read_prototxt
from compat.formats.shapes import DEFAULT_MAX_TENSOR_BYTES, format_shape

CAFFE_LSTM_TYPES = ("LSTM", "Lstm")
# BVLC's simple RNN layer (src/caffe/layers/rnn_layer.cpp): compat.convert.modules.CaffeRNN
CAFFE_RNN_TYPES = ("RNN",)
CAFFE_OTHER_RECURRENT = ()


class CaffeLayerError(InputError, ValueError):
    """A Caffe LSTM layer whose blobs cannot be converted exactly."""


def _matrix(blob: np.ndarray, rows: int, what: str) -> np.ndarray:
    if blob.ndim == 2 and blob.shape[0] == rows:
        return blob
    if blob.ndim == 4 and blob.shape[0] == 1 and blob.shape[1] * blob.shape[2] == rows:
        return blob.reshape(rows, blob.shape[3])
    raise CaffeLayerError(f"{what} has shape {list(blob.shape)}; expected [{rows}, n]")


def _num_outputs(prototxt, path) -> Dict[str, int]:
    out = {}
    for layer in prototxt.getall("layer") + prototxt.getall("layers"):
        name, ltype = layer.get("name"), layer.get("type")
        if ltype in CAFFE_LSTM_TYPES + CAFFE_RNN_TYPES:
            field = "lstm_param" if ltype == "Lstm" else "recurrent_param"
            param = layer.message(field)
            if param.has("num_output"):
                h = param.get("num_output")
                if type(h) is not int or not 1 <= h <= 2 ** 31 - 1:
                    shown = repr(h)[:40] if isinstance(h, (int, float, str)) else "a message"
                    raise CaffeLayerError(f"{path}: layer {str(name)[:80]!r}: {field}.num_output is {shown}; expected "
                                          "a positive integer (Caffe's uint32)")
                out[str(name)] = h
    return out


def discover(path, *, prototxt: Optional[str] = None, weights: Optional[str] = None,
             max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES) -> Found:
    """Every LSTM layer of the ``.caffemodel`` at ``path`` (checked against ``prototxt`` when given) and every
    other layer accounted for; with the net's ``.prototxt`` (``path`` a ``.prototxt`` and ``weights`` the
    ``.caffemodel``, or ``path`` the ``.caffemodel`` and ``prototxt`` given), the whole TEST-phase net too
    (:mod:`compat.frameworks.caffe.net`), or why it is not converted whole. A blob's values are in the file, so
    the file's size bounds what is parsed; a blob above ``max_tensor_bytes`` is refused all the same, as in
    every framework."""
    if str(path).lower().endswith(".prototxt"):
        if prototxt is not None:
            raise CaffeLayerError(f"{path}: the source is the .prototxt; --prototxt names it a second time")
        if weights is None:
            raise CaffeLayerError(f"{path}: a net definition holds no weights; pass the trained .caffemodel with "
                                  "--weights")
        path, prototxt = weights, path
    elif weights is not None:
        raise CaffeLayerError(f"{path}: --weights goes with a .prototxt source (the .caffemodel is the source here; "
                              "--prototxt names the net)")
    model = read_caffemodel(path)
    net = read_prototxt(prototxt) if prototxt else None
    declared = _num_outputs(net, prototxt) if prototxt else {}
    for name, (_, blobs) in model.items():
        for k, blob in enumerate(blobs):
            if blob.nbytes > max_tensor_bytes:
                raise CaffeLayerError(f"{path}: layer {str(name)[:80]!r} blob {k} of shape {format_shape(blob.shape)} "
                                      f"has {blob.nbytes:,} bytes; the ceiling is {max_tensor_bytes:,} "
                                      "(--max-tensor-bytes raises it)")
    specs, items = [], []
    for name, (ltype, blobs) in model.items():
        if ltype in CAFFE_RNN_TYPES:
            spec = _rnn_spec(path, name, blobs, declared)
            specs.append(spec)
            items.append(SourceItem(name, f"{ltype} layer", {f"{name}/{k}": tuple(b.shape) for k, b in enumerate(blobs)},
                                    converted=spec, recurrent=True))
            continue
        if ltype not in CAFFE_LSTM_TYPES:
            recurrent = ltype in CAFFE_OTHER_RECURRENT
            item = SourceItem(name, f"{ltype} layer", {f"{name}/{k}": tuple(b.shape) for k, b in enumerate(blobs)},
                              recurrent=recurrent,
                              reason=(f"a Caffe {ltype} layer: a recurrent kind this converter does not convert yet"
                                      if recurrent else "not a recurrent layer"))
            for k, b in enumerate(blobs):
                carry(item, f"{name}/{k}", b)
            items.append(item)
            continue
        where = f"{path}: layer {name!r} ({ltype})"
        static_b = None
        if ltype == "LSTM":
            if len(blobs) not in (3, 4):
                raise CaffeLayerError(f"{where}: {len(blobs)} blobs; expected [W_xc, b_c, W_hc], or [W_xc, b_c, "
                                      "W_xc_static, W_hc] with a static input")
            # the unrolled net's params in the order its layers name them: x_transform (W_xc, b_c), then
            # W_xc_x_static (W_xc_static) when the layer has a third bottom, then transform_t (W_hc)
            b = blobs[1].reshape(-1)
            wx_b, wh_b = blobs[0], blobs[-1]
            static_b = blobs[2] if len(blobs) == 4 else None
            variant, layout = "Caffe LSTM (BVLC)", "caffe"
        else:
            if len(blobs) != 3:
                raise CaffeLayerError(f"{where}: {len(blobs)} blobs; expected [W_x, W_h, b]")
            b = blobs[2].reshape(-1)
            wx_b, wh_b = blobs[0], blobs[1]
            variant, layout = "Caffe Lstm (junhyukoh)", "junhyukoh"
        if b.size % 4 or b.size == 0:
            raise CaffeLayerError(f"{where}: bias has {b.size} values; expected 4H")
        H = b.size // 4
        wx = _matrix(wx_b, 4 * H, f"{where}: input weights")
        wh = _matrix(wh_b, 4 * H, f"{where}: recurrent weights")
        if name in declared and declared[name] != H:
            raise CaffeLayerError(f"{where}: the prototxt says num_output {declared[name]}; the blobs have H = {H}")
        dtype = np.promote_types(wx.dtype, np.float32)
        names = ("W_xc", "b_c", "W_hc") if layout == "caffe" else ("W_x", "b", "W_h")
        tensors = {n: a.astype(dtype, copy=False) for n, a in zip(names, (wx, b, wh))}
        try:
            weights = numpy_weights(layouts.to_canonical(layout, tensors))
        except layouts.LayoutError as e:
            raise CaffeLayerError(f"{where}: {e}") from None
        static = None if static_b is None else _matrix(static_b, 4 * H, f"{where}: W_xc_static").astype(dtype)
        unknown = ("cont", "?", "the cont input restarts a stream where it is 0: pass compat.lstm.lstm(..., cont=)") \
            if ltype == "LSTM" else \
            ("clip, batch_size", "?", "the clip input and lstm_param.batch_size (rows t * N + n): pass [T, N, in] and "
                                      "compat.lstm.lstm(..., cont=(clip != 0)) (the fork reads clip as a boolean)")
        spec = LSTMSpec(name=name, source_format="caffe", variant=variant, layers=[weights],
                        unknowns=[Unknown(*unknown)], source=[({"W_x": wx, "W_h": wh, "b": b},)],
                        oracle="caffe" if ltype == "LSTM" else "junhyukoh")
        if static is not None:
            _static_input(spec, where, static, CAFFE_LSTM, "W_xc_static",
                          layouts.permute_gates(static, "ifog", layouts.CANONICAL_ORDER))
        spec.notes.append("Caffe's tanh is 2 * sigmoid(2x) - 1: equal to tanh within rounding (the module uses "
                          "tanh; compat.lstm.LSTM(activations=('sigmoid', 'caffe_tanh', 'caffe_tanh')) computes it "
                          "Caffe's way)")
        specs.append(spec)
        items.append(SourceItem(name, f"{ltype} layer", {f"{name}/{k}": tuple(b.shape) for k, b in enumerate(blobs)},
                                converted=spec, recurrent=True))
    if net is None:
        return Found(specs, items)
    from compat.frameworks.caffe.net import CaffeNetError, read_net

    try:
        graph = read_net(net, model, {s.name: s for s in specs}, str(prototxt))
    except CaffeNetError as e:
        return Found(specs, items, None, str(e))
    return Found(specs, items, graph, None)


def _rnn_spec(path, name: str, blobs, declared: Dict[str, int]) -> LSTMSpec:
    """BVLC's ``RNN`` layer (rnn_layer.cpp ``FillUnrolledNet``): blobs W_xh [H, in], b_h [H], W_hh [H, H],
    W_ho [H, H], b_o [H] in the order its unrolled net names its params; h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t
    + b_h), the output o_t = tanh(W_ho h_t + b_o): compat.convert.modules.CaffeRNN. With a static input (a third
    bottom x_static [N, ...]) a sixth blob W_xh_static [H, S] comes third, after b_h, and W_xh_static x_static is
    added to every step's pre-activation: the module's ``static_size`` S and ``weight_static``, ``x_static=``."""
    from compat.convert.spec import CAFFE_RNN

    where = f"{path}: layer {name!r} (RNN)"
    if len(blobs) not in (5, 6):
        raise CaffeLayerError(f"{where}: {len(blobs)} blobs; expected [W_xh, b_h, W_hh, W_ho, b_o], or [W_xh, b_h, "
                              "W_xh_static, W_hh, W_ho, b_o] with a static input")
    # x_transform's params (W_xh, b_h), W_xh_x_static's (W_xh_static) with a third bottom, then W_hh, W_ho, b_o
    static_b = blobs[2] if len(blobs) == 6 else None
    blobs = list(blobs[:2]) + list(blobs[3 if static_b is not None else 2:])
    b_h, b_o = blobs[1].reshape(-1), blobs[4].reshape(-1)
    H = b_h.size
    if H == 0 or b_o.size != H:
        raise CaffeLayerError(f"{where}: b_h has {b_h.size} values and b_o {b_o.size}; both are [H]")
    w_xh = _matrix(blobs[0], H, f"{where}: W_xh")
    w_hh, w_ho = _matrix(blobs[2], H, f"{where}: W_hh"), _matrix(blobs[3], H, f"{where}: W_ho")
    for what, w in (("W_hh", w_hh), ("W_ho", w_ho)):
        if w.shape != (H, H):
            raise CaffeLayerError(f"{where}: {what} has shape {list(w.shape)}; expected [H, H] = [{H}, {H}]")
    if name in declared and declared[name] != H:
        raise CaffeLayerError(f"{where}: the prototxt says num_output {declared[name]}; the blobs have H = {H}")
    dtype = np.promote_types(w_xh.dtype, np.float32)
    t = {n: a.astype(dtype, copy=False) for n, a in zip(("W_xh", "b_h", "W_hh", "W_ho", "b_o"),
                                                         (w_xh, b_h, w_hh, w_ho, b_o))}
    from compat.lstm import LayerWeights

    weights = numpy_weights(LayerWeights(t["W_xh"], t["W_hh"], t["b_h"], np.zeros(H, dtype)))
    spec = LSTMSpec(name=name, source_format="caffe", variant="Caffe RNN (BVLC)", layers=[weights],
                    unknowns=[Unknown("cont", "?", "the cont input restarts a stream where it is 0: pass "
                                                   "module(x, cont=cont)")],
                    source=[(t,)], oracle="caffe_rnn", cell="rnn", module=CAFFE_RNN,
                    extra={"weight_ho": t["W_ho"], "bias_o": t["b_o"]})
    spec.notes.append("the layer's output is o = tanh(W_ho h + b_o) (the module returns it; h_T is the state)")
    if static_b is not None:
        _static_input(spec, where, _matrix(static_b, H, f"{where}: W_xh_static").astype(dtype), CAFFE_RNN,
                      "W_xh_static")
    return spec


def _static_input(spec: LSTMSpec, where: str, static: np.ndarray, module: str, blob: str, canonical=None) -> None:
    """A static input (recurrent_layer.cpp: a third bottom x_static [N, ...]; lstm_layer.cpp / rnn_layer.cpp
    ``FillUnrolledNet``: W_static x_static, an InnerProduct with axis 1 and no bias, added to every step's input
    transform): the module's ``weight_static`` (``canonical``: the rows in the core's gate order, else as
    Caffe's), its ``static_size``, the oracle's blob under Caffe's name, and the extra input."""
    if static.shape[1] == 0:
        raise CaffeLayerError(f"{where}: {blob} has shape {list(static.shape)}; a static input has at least one "
                              "feature")
    spec.module = module
    spec.module_config["static_size"] = int(static.shape[1])
    spec.extra["weight_static"] = static if canonical is None else canonical
    spec.source[0][0][blob] = static
    spec.unknowns.append(Unknown("x_static", "?", f"the layer's third bottom [N, {static.shape[1]}] (its {blob} "
                                                  "term is added at every step): pass module(x, cont=cont, "
                                                  "x_static=x_static)"))
