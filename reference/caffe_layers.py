"""Numpy float64 oracle of BVLC Caffe's layers around recurrent layers, and of a whole net of them.

Written from BVLC caffe's C++ only (src/caffe/layers/<name>_layer.cpp, src/caffe/proto/caffe.proto for the
defaults); imports nothing from ``compat`` or ``ports``. Blobs are arrays of any rank; no axis is special.

A net is a list of layers as plain data, in the prototxt's order (the phase's layers only)::

    {"name": "ip", "type": "InnerProduct", "bottom": ["h"], "top": ["y"], "param": {"num_output": 3, "axis": 2}}

``param`` holds the layer's ``<type>_param`` fields under their caffe.proto names (``shape`` as a list of dims);
:func:`net_forward` runs the layers in order on a dict of blobs, as ``Net::Forward`` does, with each layer's
trained blobs from ``weights`` ({layer name: [arrays in Caffe's blob order]}).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from reference.caffe_lstm import lstm_forward
from reference.caffe_rnn import rnn_layer


def _axis(axis: int, num_axes: int) -> int:
    # blob.hpp CanonicalAxisIndex
    assert -num_axes <= axis < num_axes, f"axis {axis} out of range for a {num_axes}-D blob"
    return axis + num_axes if axis < 0 else axis


def embed(bottom, weight, bias=None):
    """embed_layer.cpp Forward_cpu: for each of the bottom's M values, index = static_cast<int>(value) and the
    top's row n is weight[index] (weight [K, N]); then bias added to every row (a gemm with a ones vector)."""
    flat = np.asarray(bottom).reshape(-1)
    K, N = weight.shape
    top = np.empty((flat.size, N))
    for n in range(flat.size):
        index = int(flat[n])          # static_cast<int>: toward zero
        assert 0 <= index < K
        top[n] = weight[index]
    if bias is not None:
        top = top + np.asarray(bias, dtype=np.float64)[None, :]
    return top.reshape(tuple(np.shape(bottom)) + (N,))


def inner_product(bottom, weight, bias=None, axis: int = 1, transpose: bool = False):
    """inner_product_layer.cpp Reshape / Forward_cpu: M = count(0, axis), K = count(axis); top [M, N] =
    bottom [M, K] x weight^T ([N, K]; weight [K, N] with transpose) + bias; top shape = bottom.shape[:axis] + N."""
    x = np.asarray(bottom, dtype=np.float64)
    a = _axis(axis, x.ndim)
    M = int(np.prod(x.shape[:a], dtype=np.int64))
    w = np.asarray(weight, dtype=np.float64)
    W = w if transpose else w.T                    # [K, N]
    top = x.reshape(M, -1) @ W
    if bias is not None:
        top = top + np.asarray(bias, dtype=np.float64)
    return top.reshape(tuple(x.shape[:a]) + (W.shape[1],))


def softmax(bottom, axis: int = 1):
    """softmax_layer.cpp Forward_cpu: per (outer, inner) position, subtract the max over the axis, exp, divide
    by the sum over the axis."""
    x = np.asarray(bottom, dtype=np.float64)
    a = _axis(axis, x.ndim)
    e = np.exp(x - x.max(axis=a, keepdims=True))
    return e / e.sum(axis=a, keepdims=True)


def reshape(bottom, dims: Sequence[int], axis: int = 0, num_axes: int = -1):
    """reshape_layer.cpp Reshape: dims replace the bottom's axes [start, end); 0 copies, one -1 inferred."""
    x = np.asarray(bottom)
    n = x.ndim
    start = axis if axis >= 0 else n + axis + 1
    end = n if num_axes == -1 else start + num_axes
    assert 0 <= start <= n and start <= end <= n
    top = list(x.shape[:start]) + list(dims) + list(x.shape[end:])
    for i, d in enumerate(dims):
        if d == 0:
            top[start + i] = x.shape[start + i]
    if -1 in dims:
        k = start + list(dims).index(-1)
        others = int(np.prod([d for j, d in enumerate(top) if j != k], dtype=np.int64))
        assert x.size % others == 0
        top[k] = x.size // others
    assert int(np.prod(top, dtype=np.int64)) == x.size
    return x.reshape(top)


def slice_(bottom, axis: int = 1, slice_point: Sequence[int] = (), tops: int = 2) -> List[np.ndarray]:
    """slice_layer.cpp Reshape / Forward_cpu: pieces between the slice points, or ``tops`` equal pieces."""
    x = np.asarray(bottom)
    a = _axis(axis, x.ndim)
    if slice_point:
        assert len(slice_point) == tops - 1
        cuts = list(slice_point)
    else:
        assert x.shape[a] % tops == 0
        cuts = [x.shape[a] // tops * k for k in range(1, tops)]
    return [np.array(p) for p in np.split(x, cuts, axis=a)]


def concat(bottoms, axis: int = 1):
    """concat_layer.cpp Forward_cpu: the bottoms in order along the axis."""
    return np.concatenate([np.asarray(b, dtype=np.float64) for b in bottoms], axis=_axis(axis, np.ndim(bottoms[0])))


def eltwise(bottoms, operation: str = "SUM", coeff: Sequence[float] = ()):
    """eltwise_layer.cpp Forward_cpu: PROD (caffe_mul in order), SUM (caffe_set 0, then caffe_axpy(coeff_i,
    bottom_i) in order; coeff 1 where none is given), MAX (elementwise largest)."""
    xs = [np.asarray(b, dtype=np.float64) for b in bottoms]
    if operation == "PROD":
        top = xs[0] * xs[1]
        for x in xs[2:]:
            top = top * x
    elif operation == "SUM":
        c = list(coeff) if coeff else [1.0] * len(xs)
        top = np.zeros_like(xs[0])
        for ck, x in zip(c, xs):
            top = top + ck * x
    else:
        top = xs[0]
        for x in xs[1:]:
            top = np.where(x > top, x, top)
    return top


def dropout(bottom, dropout_ratio: float = 0.5, train: bool = False, uniform=None):
    """dropout_layer.cpp Forward_cpu: TEST copies the bottom; TRAIN keeps each value where a Bernoulli(1 -
    ratio) draw is 1 and scales by 1 / (1 - ratio). ``uniform``: the draws as uniforms in [0, 1) (kept where
    >= ratio), to compare a given mask."""
    x = np.asarray(bottom, dtype=np.float64)
    if not train:
        return x.copy()
    keep = np.asarray(uniform) >= dropout_ratio
    return x * keep * (1.0 / (1.0 - dropout_ratio))


def split(bottom, tops: int):
    """split_layer.cpp Forward_cpu: each top shares the bottom's data."""
    return [np.asarray(bottom) for _ in range(tops)]


def net_forward(layers: Sequence[dict], weights: Dict[str, Sequence[np.ndarray]], inputs: Dict[str, np.ndarray]
                ) -> Dict[str, np.ndarray]:
    """Net::Forward over ``layers`` (see the module docstring); returns every blob by name (a later top of the
    same name, an in-place layer, replaces the earlier)."""
    blobs: Dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    for layer in layers:
        t, p = layer["type"], layer.get("param", {})
        b = [blobs[n] for n in layer["bottom"]]
        w = [np.asarray(a, dtype=np.float64) for a in weights.get(layer["name"], [])]
        if t in ("Input", "Silence"):
            continue
        if t == "Embed":
            out = [embed(b[0], w[0].reshape(p["input_dim"], p["num_output"]),
                         w[1].reshape(-1) if p.get("bias_term", True) else None)]
        elif t == "InnerProduct":
            out = [inner_product(b[0], w[0].reshape(w[0].shape[-2:]), w[1].reshape(-1) if p.get("bias_term", True)
                                 else None, p.get("axis", 1), p.get("transpose", False))]
        elif t == "Softmax":
            out = [softmax(b[0], p.get("axis", 1))]
        elif t == "Reshape":
            out = [reshape(b[0], p.get("shape", []), p.get("axis", 0), p.get("num_axes", -1))]
        elif t == "Slice":
            out = slice_(b[0], p["slice_dim"] if "slice_dim" in p else p.get("axis", 1), p.get("slice_point", ()),
                         len(layer["top"]))
        elif t == "Concat":
            out = [concat(b, p["concat_dim"] if "concat_dim" in p else p.get("axis", 1))]
        elif t == "Eltwise":
            out = [eltwise(b, p.get("operation", "SUM"), p.get("coeff", ()))]
        elif t == "Dropout":
            out = [dropout(b[0], p.get("dropout_ratio", 0.5))]
        elif t == "Split":
            out = split(b[0], len(layer["top"]))
        elif t == "LSTM":
            # lstm_layer.cpp / recurrent_layer.cpp: bottoms x [T, N, ...], cont [T, N] (, h0, c0 with
            # expose_hidden); blobs W_xc, b_c, W_hc
            H = p["num_output"]
            expose = p.get("expose_hidden", False)
            h0 = b[2].reshape(-1, H) if expose else None
            c0 = b[3].reshape(-1, H) if expose else None
            h, h_T, c_T, _ = lstm_forward(b[0], b[1], w[0].reshape(4 * H, -1), w[1].reshape(-1),
                                          w[2].reshape(4 * H, H), h0, c0, caffe_tanh=True)
            out = [h] + ([h_T[None], c_T[None]] if expose else [])
        elif t == "RNN":
            # rnn_layer.cpp / recurrent_layer.cpp: bottoms x [T, N, ...], cont [T, N], then x_static [N, ...] (a
            # static input) and h0 [1, N, H] (expose_hidden); tops o (, h_T); blobs as reference/caffe_rnn.py
            expose = p.get("expose_hidden", False)
            static = len(b) > 2 + expose
            x = b[0].reshape(b[0].shape[0], b[0].shape[1], -1)
            h0 = b[2 + static].reshape(1, x.shape[1], -1) if expose else None
            x_static = b[2].reshape(x.shape[1], -1) if static else None
            rnn_blobs = [a.reshape(a.shape[-2:]) if a.ndim > 1 else a.reshape(-1) for a in w]
            o, h_T = rnn_layer(x, b[1], rnn_blobs, h0, x_static)
            out = [o] + ([h_T[None]] if expose else [])
        else:
            raise ValueError(f"layer type {t!r} is not in this oracle")
        for name, value in zip(layer["top"], out):
            blobs[name] = value
    return blobs
