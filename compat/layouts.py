"""Legacy LSTM gate layouts and their exact conversions to and from the canonical parameters.

The canonical layout is PyTorch / cuDNN's (:class:`compat.lstm.LayerWeights`): gate blocks i, f, g, o;
``weight_ih [4H, in]``, ``weight_hh [4H, H]``, ``bias_ih [4H]``, ``bias_hh [4H]``. Each legacy layout
below is a :class:`Layout` whose ``to_canonical`` and ``from_canonical`` are a gate permutation, a
transpose and a split or concatenation: no arithmetic on the values, so round trips are exact, and on
torch tensors the result is a differentiable view-plus-gather (ports keep the legacy parameters and hand
the core this view at each forward: one cheap permutation per forward, never per time step).

| layout | tensors (shapes) | gate order | biases |
| --- | --- | --- | --- |
| ``tf`` BasicLSTMCell / LSTMCell | kernel [in+H, 4H] (rows x then h), bias [4H] | i, j, f, o | one; ``forget_bias`` added to f at run time |
| ``keras`` LSTM | kernel [in, 4H], recurrent_kernel [H, 4H], bias [4H] | i, f, c, o | one |
| ``torch`` / cuDNN | weight_ih [4H, in], weight_hh [4H, H], bias_ih [4H], bias_hh [4H] | i, f, g, o | two |
| ``theano`` tutorial lstm.py | W [in, 4H], U [H, 4H], b [4H] | i, f, o, c | one |
| ``caffe`` BVLC LSTM | W_xc [4H, in], b_c [4H], W_hc [4H, H] | i, f, o, g | one (input transform only) |
| ``junhyukoh`` caffe-lstm Lstm | W_x [4H, in], W_h [4H, H], b [4H] | i, f, o, g | one |
| ``onnx`` LSTM | W [1, 4H, in], R [1, 4H, H], B [1, 8H] = [Wb, Rb] | i, o, f, c | two |

A one-bias layout maps to ``bias_hh = None``: the core treats it as zero and nothing trains it (were it
a second trainable zero vector, clipping by global norm and the optimizer would see the bias twice). The
TF forget bias is not stored in TF checkpoints (rnn_cell_impl.py ``BasicLSTMCell.call``:
``sigmoid(f + self._forget_bias)``); ``to_canonical(..., forget_bias=b)`` returns it as a constant
``bias_hh`` that is b on the f block and 0 elsewhere (``requires_grad=False``), and ``from_canonical``
removes it again, exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Tuple

import numpy as np
import torch

from compat.lstm import LayerWeights

CANONICAL_ORDER = "ifgo"


class LayoutError(ValueError):
    """A legacy tensor that is missing or has the wrong shape for its layout."""


def _gate_index(src: str, dst: str) -> list:
    """Block indices taking gate blocks in order ``src`` to order ``dst`` (letters: i, f, g/c/j, o)."""
    canon = {"j": "g", "c": "g"}
    src = [canon.get(ch, ch) for ch in src]
    dst = [canon.get(ch, ch) for ch in dst]
    if sorted(src) != sorted(dst) or len(set(src)) != 4:
        raise ValueError(f"gate orders {src} and {dst} are not permutations of one another")
    return [src.index(g) for g in dst]


def permute_gates(t, src: str, dst: str, axis: int = 0):
    """Reorder the four gate blocks of ``t`` along ``axis`` from order ``src`` to ``dst``.

    Works on numpy arrays and torch tensors (differentiably); exact (a gather, no arithmetic).
    """
    index = _gate_index(src, dst)
    if index == [0, 1, 2, 3]:
        return t
    n = t.shape[axis]
    if n % 4:
        raise LayoutError(f"axis {axis} of length {n} does not split into four gate blocks")
    h = n // 4
    rows = np.concatenate([np.arange(k * h, (k + 1) * h) for k in index])
    if isinstance(t, torch.Tensor):
        return t.index_select(axis, torch.as_tensor(rows, device=t.device))
    return np.take(t, rows, axis=axis)


def _t(x):
    """Transpose a 2-D numpy array or tensor."""
    return x.t() if isinstance(x, torch.Tensor) else x.T


def _check(name: str, layout: str, t, expected: Tuple[int, ...]) -> None:
    if tuple(t.shape) != tuple(expected):
        raise LayoutError(f"{layout} tensor {name!r} has shape {list(t.shape)}; expected {list(expected)}")


def _forget_bias_vector(like, hidden: int, forget_bias: float):
    """A constant [4H] vector with ``forget_bias`` on the canonical f block, zeros elsewhere."""
    if isinstance(like, torch.Tensor):
        v = torch.zeros(4 * hidden, dtype=like.dtype, device=like.device)
    else:
        v = np.zeros(4 * hidden, dtype=like.dtype)
    v[hidden:2 * hidden] = forget_bias
    return v


def _concat(a, b, axis):
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b], dim=axis)
    return np.concatenate([a, b], axis=axis)


def _one_bias(w: LayerWeights, forget_bias: float, layout: str):
    """The single bias of a one-bias layout from canonical weights (exact when bias_hh is the constant)."""
    hidden = w.weight_hh.shape[1]
    b = w.bias_ih
    rec = w.bias_hh
    if rec is not None:
        rec = rec - _forget_bias_vector(rec, hidden, forget_bias)
        b = rec if b is None else b + rec
    elif forget_bias:
        raise LayoutError(f"{layout}: canonical weights with no bias_hh cannot carry forget_bias={forget_bias}")
    if b is None:
        like = w.weight_hh
        b = like.new_zeros(4 * hidden) if isinstance(like, torch.Tensor) else np.zeros(4 * hidden, like.dtype)
    return b


def _no_run_time_forget_bias(layout: str, forget_bias: float) -> None:
    # Two-bias layouts have no run-time forget bias; folding one into a trainable bias_hh would not
    # round-trip exactly, so such a layout takes the value in its biases instead.
    if forget_bias:
        raise LayoutError(f"the {layout} layout has no run-time forget bias (got forget_bias={forget_bias}); "
                          "add it to its bias before converting")


def _run_time_bias(b, hidden: int, forget_bias: float):
    return _forget_bias_vector(b, hidden, forget_bias) if forget_bias else None


@dataclass(frozen=True)
class Layout:
    """A legacy layout: the names and shapes of its tensors and its exact conversions."""

    name: str
    gate_order: str
    tensor_names: Tuple[str, ...]
    source: str
    _to: Callable
    _from: Callable

    def to_canonical(self, params: Mapping[str, object], *, forget_bias: float = 0.0) -> LayerWeights:
        """Canonical :class:`LayerWeights` from the legacy tensors named in ``tensor_names``."""
        missing = [n for n in self.tensor_names if n not in params]
        if missing:
            raise LayoutError(f"{self.name} layout needs tensors {list(self.tensor_names)}; missing {missing}")
        return self._to(params, forget_bias)

    def from_canonical(self, weights: LayerWeights, *, forget_bias: float = 0.0) -> Dict[str, object]:
        """The legacy tensors of this layout from canonical weights."""
        return self._from(LayerWeights(*weights), forget_bias)


# --- TF BasicLSTMCell / LSTMCell (rnn_cell_impl.py BasicLSTMCell.call: i, j, f, o = split(concat([x, h]) @ kernel + bias))
def _tf_to(p, forget_bias):
    kernel, bias = p["kernel"], p["bias"]
    if len(kernel.shape) != 2 or kernel.shape[1] % 4:
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + H, 4H]")
    hidden = kernel.shape[1] // 4
    if kernel.shape[0] <= hidden:
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + H, 4H] with H = {hidden}")
    _check("bias", "tf", bias, (4 * hidden,))
    n_in = kernel.shape[0] - hidden
    w_ih = permute_gates(_t(kernel[:n_in]), "ijfo", CANONICAL_ORDER)
    w_hh = permute_gates(_t(kernel[n_in:]), "ijfo", CANONICAL_ORDER)
    b = permute_gates(bias, "ijfo", CANONICAL_ORDER)
    return LayerWeights(w_ih, w_hh, b, _run_time_bias(b, hidden, forget_bias))


def _tf_from(w, forget_bias):
    kernel = _t(_concat(w.weight_ih, w.weight_hh, 1))
    return {"kernel": permute_gates(kernel, CANONICAL_ORDER, "ijfo", axis=1),
            "bias": permute_gates(_one_bias(w, forget_bias, "tf"), CANONICAL_ORDER, "ijfo")}


# --- Keras LSTM (keras/layers/recurrent.py LSTMCell: kernel split i, f, c, o)
def _keras_to(p, forget_bias):
    k, r, b = p["kernel"], p["recurrent_kernel"], p["bias"]
    if len(r.shape) != 2 or r.shape[1] != 4 * r.shape[0]:
        raise LayoutError(f"keras tensor 'recurrent_kernel' has shape {list(r.shape)}; expected [H, 4H]")
    hidden = r.shape[0]
    if len(k.shape) != 2 or k.shape[1] != 4 * hidden:
        raise LayoutError(f"keras tensor 'kernel' has shape {list(k.shape)}; expected [in, 4H={4 * hidden}]")
    _check("bias", "keras", b, (4 * hidden,))
    bc = permute_gates(b, "ifco", CANONICAL_ORDER)
    return LayerWeights(permute_gates(_t(k), "ifco", CANONICAL_ORDER), permute_gates(_t(r), "ifco", CANONICAL_ORDER),
                        bc, _run_time_bias(bc, hidden, forget_bias))


def _keras_from(w, forget_bias):
    return {"kernel": permute_gates(_t(w.weight_ih), CANONICAL_ORDER, "ifco", axis=1),
            "recurrent_kernel": permute_gates(_t(w.weight_hh), CANONICAL_ORDER, "ifco", axis=1),
            "bias": permute_gates(_one_bias(w, forget_bias, "keras"), CANONICAL_ORDER, "ifco")}


# --- PyTorch / cuDNN (the canonical layout itself)
def _torch_to(p, forget_bias):
    w_ih, w_hh = p["weight_ih"], p["weight_hh"]
    if len(w_hh.shape) != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise LayoutError(f"torch tensor 'weight_hh' has shape {list(w_hh.shape)}; expected [4H, H]")
    hidden = w_hh.shape[1]
    if len(w_ih.shape) != 2 or w_ih.shape[0] != 4 * hidden:
        raise LayoutError(f"torch tensor 'weight_ih' has shape {list(w_ih.shape)}; expected [4H={4 * hidden}, in]")
    for n in ("bias_ih", "bias_hh"):
        if p.get(n) is not None:
            _check(n, "torch", p[n], (4 * hidden,))
    _no_run_time_forget_bias("torch", forget_bias)
    return LayerWeights(w_ih, w_hh, p.get("bias_ih"), p.get("bias_hh"))


def _torch_from(w, forget_bias):
    _no_run_time_forget_bias("torch", forget_bias)
    return {"weight_ih": w.weight_ih, "weight_hh": w.weight_hh, "bias_ih": w.bias_ih, "bias_hh": w.bias_hh}


# --- Theano tutorial (DeepLearningTutorials code/lstm.py lstm_layer._step: _slice 0 i, 1 f, 2 o, 3 c)
def _theano_to(p, forget_bias):
    W, U, b = p["W"], p["U"], p["b"]
    if len(U.shape) != 2 or U.shape[1] != 4 * U.shape[0]:
        raise LayoutError(f"theano tensor 'U' has shape {list(U.shape)}; expected [H, 4H]")
    hidden = U.shape[0]
    if len(W.shape) != 2 or W.shape[1] != 4 * hidden:
        raise LayoutError(f"theano tensor 'W' has shape {list(W.shape)}; expected [in, 4H={4 * hidden}]")
    _check("b", "theano", b, (4 * hidden,))
    bc = permute_gates(b, "ifoc", CANONICAL_ORDER)
    return LayerWeights(permute_gates(_t(W), "ifoc", CANONICAL_ORDER), permute_gates(_t(U), "ifoc", CANONICAL_ORDER),
                        bc, _run_time_bias(bc, hidden, forget_bias))


def _theano_from(w, forget_bias):
    return {"W": permute_gates(_t(w.weight_ih), CANONICAL_ORDER, "ifoc", axis=1),
            "U": permute_gates(_t(w.weight_hh), CANONICAL_ORDER, "ifoc", axis=1),
            "b": permute_gates(_one_bias(w, forget_bias, "theano"), CANONICAL_ORDER, "ifoc")}


# --- Caffe-style [4H, ...] blobs in gate order i, f, o, g
def _caffe_like_to(layout, names):
    wx_name, b_name, wh_name = names

    def to(p, forget_bias):
        wx, b, wh = p[wx_name], p[b_name], p[wh_name]
        if len(wh.shape) != 2 or wh.shape[0] != 4 * wh.shape[1]:
            raise LayoutError(f"{layout} tensor {wh_name!r} has shape {list(wh.shape)}; expected [4H, H]")
        hidden = wh.shape[1]
        if len(wx.shape) != 2 or wx.shape[0] != 4 * hidden:
            raise LayoutError(f"{layout} tensor {wx_name!r} has shape {list(wx.shape)}; expected [4H={4 * hidden}, in]")
        _check(b_name, layout, b, (4 * hidden,))
        bc = permute_gates(b, "ifog", CANONICAL_ORDER)
        return LayerWeights(permute_gates(wx, "ifog", CANONICAL_ORDER), permute_gates(wh, "ifog", CANONICAL_ORDER),
                            bc, _run_time_bias(bc, hidden, forget_bias))

    def frm(w, forget_bias):
        return {wx_name: permute_gates(w.weight_ih, CANONICAL_ORDER, "ifog"),
                b_name: permute_gates(_one_bias(w, forget_bias, layout), CANONICAL_ORDER, "ifog"),
                wh_name: permute_gates(w.weight_hh, CANONICAL_ORDER, "ifog")}

    return to, frm


_caffe_to, _caffe_from = _caffe_like_to("caffe", ("W_xc", "b_c", "W_hc"))
_junhyukoh_to, _junhyukoh_from = _caffe_like_to("junhyukoh", ("W_x", "b", "W_h"))


# --- ONNX LSTM (onnx/docs/Operators.md LSTM: W[iofc], R[iofc], B = [Wb[iofc], Rb[iofc]], one direction)
def _onnx_to(p, forget_bias):
    W, R = p["W"], p["R"]
    if len(R.shape) != 3 or R.shape[0] != 1 or R.shape[1] != 4 * R.shape[2]:
        raise LayoutError(f"onnx tensor 'R' has shape {list(R.shape)}; expected [1, 4H, H] (one direction)")
    hidden = R.shape[2]
    if len(W.shape) != 3 or W.shape[0] != 1 or W.shape[1] != 4 * hidden:
        raise LayoutError(f"onnx tensor 'W' has shape {list(W.shape)}; expected [1, 4H={4 * hidden}, in]")
    _no_run_time_forget_bias("onnx", forget_bias)
    B = p.get("B")
    w_ih = permute_gates(W[0], "iofc", CANONICAL_ORDER)
    w_hh = permute_gates(R[0], "iofc", CANONICAL_ORDER)
    if B is None:
        return LayerWeights(w_ih, w_hh, None, None)
    _check("B", "onnx", B, (1, 8 * hidden))
    b_ih = permute_gates(B[0, :4 * hidden], "iofc", CANONICAL_ORDER)
    b_hh = permute_gates(B[0, 4 * hidden:], "iofc", CANONICAL_ORDER)
    return LayerWeights(w_ih, w_hh, b_ih, b_hh)


def _onnx_from(w, forget_bias):
    _no_run_time_forget_bias("onnx", forget_bias)
    hidden = w.weight_hh.shape[1]
    like = w.weight_hh

    def zeros():
        return like.new_zeros(4 * hidden) if isinstance(like, torch.Tensor) else np.zeros(4 * hidden, like.dtype)

    b_ih = w.bias_ih if w.bias_ih is not None else zeros()
    b_hh = w.bias_hh if w.bias_hh is not None else zeros()
    out = {"W": permute_gates(w.weight_ih, CANONICAL_ORDER, "iofc")[None],
           "R": permute_gates(w.weight_hh, CANONICAL_ORDER, "iofc")[None],
           "B": _concat(permute_gates(b_ih, CANONICAL_ORDER, "iofc"), permute_gates(b_hh, CANONICAL_ORDER, "iofc"), 0)[None]}
    return out


LAYOUTS: Dict[str, Layout] = {
    "tf": Layout("tf", "ijfo", ("kernel", "bias"),
                 "tensorflow/python/ops/rnn_cell_impl.py BasicLSTMCell.call / LSTMCell.call", _tf_to, _tf_from),
    "keras": Layout("keras", "ifco", ("kernel", "recurrent_kernel", "bias"),
                    "keras/layers/recurrent.py LSTMCell.call", _keras_to, _keras_from),
    "torch": Layout("torch", "ifgo", ("weight_ih", "weight_hh"),
                    "torch/nn/modules/rnn.py LSTM; cuDNN cudnnRNNForward (CUDNN_LSTM)", _torch_to, _torch_from),
    "theano": Layout("theano", "ifoc", ("W", "U", "b"),
                     "DeepLearningTutorials code/lstm.py param_init_lstm / lstm_layer._step", _theano_to, _theano_from),
    "caffe": Layout("caffe", "ifog", ("W_xc", "b_c", "W_hc"),
                    "BVLC caffe src/caffe/layers/lstm_layer.cpp FillUnrolledNet; lstm_unit_layer.cpp", _caffe_to, _caffe_from),
    "junhyukoh": Layout("junhyukoh", "ifog", ("W_x", "W_h", "b"),
                        "junhyukoh/caffe-lstm src/caffe/layers/lstm_layer.cpp LayerSetUp / Forward_cpu",
                        _junhyukoh_to, _junhyukoh_from),
    "onnx": Layout("onnx", "iofc", ("W", "R"), "onnx/docs/Operators.md LSTM (direction forward)", _onnx_to, _onnx_from),
}


def to_canonical(layout: str, params: Mapping[str, object], *, forget_bias: float = 0.0) -> LayerWeights:
    """``LAYOUTS[layout].to_canonical(params, forget_bias=...)``."""
    try:
        spec = LAYOUTS[layout]
    except KeyError:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}") from None
    return spec.to_canonical(params, forget_bias=forget_bias)


def from_canonical(layout: str, weights: LayerWeights, *, forget_bias: float = 0.0) -> Dict[str, object]:
    """``LAYOUTS[layout].from_canonical(weights, forget_bias=...)``."""
    try:
        spec = LAYOUTS[layout]
    except KeyError:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}") from None
    return spec.from_canonical(weights, forget_bias=forget_bias)
