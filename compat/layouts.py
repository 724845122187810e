"""Legacy LSTM gate layouts and their exact conversions to and from the canonical parameters.

The canonical layout is PyTorch / cuDNN's (:class:`compat.lstm.LayerWeights`): gate blocks i, f, g, o;
``weight_ih [4H, in]``, ``weight_hh [4H, P]``, ``bias_ih [4H]``, ``bias_hh [4H]``, ``weight_hr [P, H]``
(projection), ``peephole [3, H]`` (rows i, f, o). Each legacy layout below is a :class:`Layout` whose
``to_canonical`` and ``from_canonical`` are a gate permutation, a transpose and a split, stack or
concatenation: no arithmetic on the values, so round trips are exact, and on torch tensors the result is
a differentiable view-plus-gather (ports keep the legacy parameters and hand the core this view at each
forward: one cheap permutation per forward, never per time step).

| layout | tensors (shapes; optional in brackets) | gate order | biases |
| --- | --- | --- | --- |
| ``tf`` BasicLSTMCell / LSTMCell | kernel [in+P, 4H] (rows x then h), bias [4H], [w_i_diag, w_f_diag, w_o_diag [H]], [projection/kernel [H, P]] | i, j, f, o | one; ``forget_bias`` added to f at run time |
| ``keras`` LSTM | kernel [in, 4H], recurrent_kernel [H, 4H], [bias [4H]] | i, f, c, o | one (none with use_bias=False) |
| ``keras_cudnn`` CuDNNLSTM | kernel [in, 4H], recurrent_kernel [H, 4H], bias [8H] = [input, recurrent] | i, f, c, o | two |
| ``torch`` / cuDNN | weight_ih [4H, in], weight_hh [4H, P], [bias_ih [4H]], [bias_hh [4H]], [weight_hr [P, H]] | i, f, g, o | two |
| ``theano`` tutorial lstm.py | W [in, 4H], U [H, 4H], b [4H] | i, f, o, c | one |
| ``caffe`` BVLC LSTM | W_xc [4H, in], b_c [4H], W_hc [4H, H] | i, f, o, g | one (input transform only) |
| ``junhyukoh`` caffe-lstm Lstm | W_x [4H, in], W_h [4H, H], b [4H] | i, f, o, g | one |
| ``onnx`` LSTM | W [1, 4H, in], R [1, 4H, H], [B [1, 8H] = [Wb, Rb]], [P [1, 3H] (i, o, f)] | i, o, f, c | two (in one tensor) |

Strictness: ``to_canonical`` raises :class:`LayoutError` on a missing tensor, on a tensor name the layout
does not know (a misspelt bias is an error, never "no bias"), and on any attribute it cannot honour.
Attributes (the legacy layer's constructor arguments or node attributes, ``attributes={...}``) that
change how the layer runs become keyword options of :func:`compat.lstm.lstm`: :func:`convert` returns
them with the weights, and ``to_canonical`` refuses them rather than drop them.

A one-bias layout maps to ``bias_hh = None``: the core treats it as zero and nothing trains it (were it
a second trainable zero vector, clipping by global norm and the optimizer would see the bias twice). The
TF forget bias is not stored in TF checkpoints (rnn_cell_impl.py ``BasicLSTMCell.call``:
``sigmoid(f + self._forget_bias)``); ``to_canonical(..., forget_bias=b)`` returns it as a constant
``bias_hh`` that is b on the f block and 0 elsewhere (``requires_grad=False``), and ``from_canonical``
removes it again, exactly.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from compat.lstm import LayerWeights
from compat.lstm_activations import ACTIVATIONS, ActivationError, activation

CANONICAL_ORDER = "ifgo"


class LayoutError(ValueError):
    """A legacy tensor that is missing, unknown or of the wrong shape, or an attribute that cannot be honoured."""


def _gate_index(src: str, dst: str) -> list:
    """Block indices taking gate blocks in order ``src`` to order ``dst`` (letters: i, f, g/c/j, o)."""
    canon = {"j": "g", "c": "g"}
    src = [canon.get(ch, ch) for ch in src]
    dst = [canon.get(ch, ch) for ch in dst]
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise ValueError(f"gate orders {src} and {dst} are not permutations of one another")
    return [src.index(g) for g in dst]


def permute_gates(t, src: str, dst: str, axis: int = 0):
    """Reorder the gate blocks of ``t`` along ``axis`` from order ``src`` to ``dst``.

    Four blocks (i, f, g, o in some order) or three (peepholes: i, f, o). Works on numpy arrays and torch
    tensors (differentiably); exact (a gather, no arithmetic).
    """
    index = _gate_index(src, dst)
    if index == list(range(len(index))):
        return t
    n = t.shape[axis]
    k = len(index)
    if n % k:
        raise LayoutError(f"axis {axis} of length {n} does not split into {k} gate blocks")
    h = n // k
    rows = np.concatenate([np.arange(j * h, (j + 1) * h) for j in index])
    if isinstance(t, torch.Tensor):
        return t.index_select(axis, torch.as_tensor(rows, device=t.device))
    return np.take(t, rows, axis=axis)


def _t(x):
    """Transpose a 2-D numpy array or tensor."""
    return x.t() if isinstance(x, torch.Tensor) else x.T


def _check(name: str, layout: str, t, expected: Tuple[int, ...]) -> None:
    if tuple(t.shape) != tuple(expected):
        raise LayoutError(f"{layout} tensor {name!r} has shape {list(t.shape)}; expected {list(expected)}")


def _zeros_like_rows(like, n: int):
    return like.new_zeros(n) if isinstance(like, torch.Tensor) else np.zeros(n, like.dtype)


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


def _stack(parts):
    if isinstance(parts[0], torch.Tensor):
        return torch.stack(parts)
    return np.stack(parts)


def _one_bias(w: LayerWeights, forget_bias: float, layout: str, keep_none: bool = False):
    """The single bias of a one-bias layout from canonical weights (exact when bias_hh is the constant)."""
    hidden = w.hidden_size
    b = w.bias_ih
    rec = w.bias_hh
    if rec is not None:
        rec = rec - _forget_bias_vector(rec, hidden, forget_bias)
        b = rec if b is None else b + rec
    elif forget_bias:
        raise LayoutError(f"{layout}: canonical weights with no bias_hh cannot carry forget_bias={forget_bias}")
    if b is None and not keep_none:
        b = _zeros_like_rows(w.weight_hh, 4 * hidden)
    return b


def _no_run_time_forget_bias(layout: str, forget_bias: float) -> None:
    # Two-bias layouts have no run-time forget bias; folding one into a trainable bias_hh would not
    # round-trip exactly, so such a layout takes the value in its biases instead.
    if forget_bias:
        raise LayoutError(f"the {layout} layout has no run-time forget bias (got forget_bias={forget_bias}); "
                          "add it to its bias before converting")


def _run_time_bias(like, hidden: int, forget_bias: float):
    return _forget_bias_vector(like, hidden, forget_bias) if forget_bias else None


def _no_extras(w: LayerWeights, layout: str, allowed: Sequence[str] = ()) -> None:
    """from_canonical of a layout that cannot store a projection or peepholes refuses weights that have them."""
    for name in ("weight_hr", "peephole"):
        if getattr(w, name) is not None and name not in allowed:
            raise LayoutError(f"the {layout} layout has no place for the canonical {name}")


# ----------------------------------------------------------------------------------------- attributes
class Converted(NamedTuple):
    """What :func:`convert` returns.

    ``weights``: :class:`LayerWeights`, or a (forward, backward) pair for a bidirectional ONNX node.
    ``options``: keyword arguments for :func:`compat.lstm.lstm` / :class:`compat.lstm.LSTM` that the
    attributes call for (empty when the layer is the plain recurrence).
    ``not_applied``: ``(attribute, why)`` for attributes accepted that do not change the layer's outputs
    (initialisers, regularisers, training-only dropout, ...), for a converter's report.
    """

    weights: object
    options: dict
    not_applied: Tuple[Tuple[str, str], ...] = ()


def _unset(value) -> bool:
    """None, False, 0, an empty string or container: an attribute left at "nothing"."""
    if value is None or isinstance(value, (bool, numbers.Number)):
        return not value
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return len(value) == 0
    return False


class _Attributes:
    """Reads a layer's attributes once each; whatever is left unread at the end is an error."""

    def __init__(self, layout: str, attributes: Optional[Mapping[str, object]]):
        self.layout = layout
        self.left = dict(attributes or {})
        self.not_applied: List[Tuple[str, str]] = []

    def take(self, name: str, default=None):
        return self.left.pop(name, default)

    def inert(self, names: Sequence[str], why: str) -> None:
        for name in names:
            if name in self.left:
                value = self.left.pop(name)
                if not _unset(value):
                    self.not_applied.append((name, why))

    def expect(self, name: str, actual, what: str) -> None:
        value = self.left.pop(name, None)
        if value is not None and value != actual:
            raise LayoutError(f"{self.layout} attribute {name}={value!r} does not match the tensors ({what} {actual!r})")

    def done(self) -> None:
        if self.left:
            raise LayoutError(f"{self.layout} attributes {sorted(self.left)} are not understood by this layout "
                              f"(values {self.left}); nothing is dropped silently")


def _clip_value(attrs: _Attributes, name: str) -> Optional[float]:
    v = attrs.take(name)
    if v is None:
        return None
    if not isinstance(v, numbers.Real) or not float(v) > 0:
        raise LayoutError(f"{attrs.layout} attribute {name}={v!r} must be a number > 0 (or None)")
    return float(v)


# Keras / TF activation names (``keras.activations.get``) and the core's equivalents.
_KERAS_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear", None: "linear",
                      "softsign": "softsign", "softplus": "softplus", "elu": "elu", "selu": "selu"}


def _keras_activation(attrs: _Attributes, name: str, value, keras_version) -> str:
    if value == "hard_sigmoid":
        if keras_version is None:
            raise LayoutError(f"{attrs.layout} attribute {name}='hard_sigmoid' is clip(0.2 x + 0.5, 0, 1) in Keras 1/2 "
                              "and tf.keras, relu6(x + 3) / 6 in Keras 3: give attributes['keras_version'] (2 or 3)")
        return "hard_sigmoid_keras2" if int(keras_version) < 3 else "hard_sigmoid_keras3"
    if isinstance(value, str) and value in ACTIVATIONS and value in _KERAS_ACTIVATIONS.values():
        return value
    if value in _KERAS_ACTIVATIONS:
        return _KERAS_ACTIVATIONS[value]
    raise LayoutError(f"{attrs.layout} attribute {name}={value!r}: not an activation the core has "
                      f"(known: {sorted(k for k in _KERAS_ACTIVATIONS if k)} and 'hard_sigmoid')")


def _activation_option(gate: str, cell: str) -> dict:
    if (gate, cell) == ("sigmoid", "tanh"):
        return {}
    return {"activations": (gate, cell, cell)}


# -------------------------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class Layout:
    """A legacy layout: the names and shapes of its tensors and its exact conversions."""

    name: str
    gate_order: str
    tensor_names: Tuple[str, ...]
    source: str
    _to: Callable
    _from: Callable
    optional_names: Tuple[str, ...] = ()
    _attributes: Optional[Callable] = None

    def _tensors(self, params: Mapping[str, object]) -> dict:
        known = set(self.tensor_names) | set(self.optional_names)
        unknown = sorted(str(n) for n in params if n not in known)
        if unknown:
            optional = f" and optionally {list(self.optional_names)}" if self.optional_names else ""
            raise LayoutError(f"{self.name} layout does not know tensors {unknown}; it takes {list(self.tensor_names)}"
                              f"{optional}")
        missing = [n for n in self.tensor_names if params.get(n) is None]
        if missing:
            raise LayoutError(f"{self.name} layout needs tensors {list(self.tensor_names)}; missing {missing}")
        return {n: v for n, v in params.items() if v is not None}

    def convert(self, params: Mapping[str, object], attributes: Optional[Mapping[str, object]] = None, *,
                forget_bias: Optional[float] = None) -> Converted:
        """Canonical weights and the :func:`compat.lstm.lstm` options that ``attributes`` call for."""
        tensors = self._tensors(params)
        attrs = _Attributes(self.name, attributes)
        if self._attributes is None:
            fb = 0.0 if forget_bias is None else forget_bias
            attrs.done()
            return Converted(self._to(tensors, fb), {}, ())
        weights, options = self._attributes(self, tensors, attrs, forget_bias)
        attrs.done()
        return Converted(weights, options, tuple(attrs.not_applied))

    def to_canonical(self, params: Mapping[str, object], *, forget_bias: float = 0.0,
                     attributes: Optional[Mapping[str, object]] = None) -> LayerWeights:
        """Canonical :class:`LayerWeights` from the legacy tensors (names in ``tensor_names`` /
        ``optional_names``). Refuses attributes that need run-time options: use :func:`convert`."""
        converted = self.convert(params, attributes, forget_bias=forget_bias if forget_bias else None)
        if converted.options or not isinstance(converted.weights, LayerWeights):
            raise LayoutError(f"{self.name} attributes call for run-time options {converted.options or 'of two directions'} "
                              "that weights alone cannot carry; use compat.layouts.convert(), which returns them")
        return converted.weights

    def from_canonical(self, weights: LayerWeights, *, forget_bias: float = 0.0) -> Dict[str, object]:
        """The legacy tensors of this layout from canonical weights."""
        return self._from(LayerWeights(*weights), forget_bias)


# --- TF BasicLSTMCell / LSTMCell (rnn_cell_impl.py LSTMCell.build / LSTMCell.call:
#     i, j, f, o = split(concat([x, m_prev]) @ kernel + bias); peepholes w_f_diag, w_i_diag, w_o_diag;
#     m = m @ projection/kernel)
_TF_PEEPHOLES = ("w_i_diag", "w_f_diag", "w_o_diag")


def _tf_to(p, forget_bias):
    kernel, bias = p["kernel"], p["bias"]
    if len(kernel.shape) != 2 or kernel.shape[1] % 4:
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + H, 4H]")
    hidden = kernel.shape[1] // 4
    proj_kernel = p.get("projection/kernel")
    proj = hidden
    if proj_kernel is not None:
        if len(proj_kernel.shape) != 2 or proj_kernel.shape[0] != hidden:
            raise LayoutError(f"tf tensor 'projection/kernel' has shape {list(proj_kernel.shape)}; "
                              f"expected [H={hidden}, num_proj]")
        proj = proj_kernel.shape[1]
    if kernel.shape[0] <= proj:
        what = "num_proj" if proj_kernel is not None else "H"
        raise LayoutError(f"tf tensor 'kernel' has shape {list(kernel.shape)}; expected [in + {what}, 4H] "
                          f"with {what} = {proj}")
    _check("bias", "tf", bias, (4 * hidden,))
    diags = [p.get(n) for n in _TF_PEEPHOLES]
    if any(d is not None for d in diags):
        missing = [n for n, d in zip(_TF_PEEPHOLES, diags) if d is None]
        if missing:
            raise LayoutError(f"tf peepholes need all of {list(_TF_PEEPHOLES)}; missing {missing}")
        for n, d in zip(_TF_PEEPHOLES, diags):
            _check(n, "tf", d, (hidden,))
        peephole = _stack(diags)
    else:
        peephole = None
    n_in = kernel.shape[0] - proj
    w_ih = permute_gates(_t(kernel[:n_in]), "ijfo", CANONICAL_ORDER)
    w_hh = permute_gates(_t(kernel[n_in:]), "ijfo", CANONICAL_ORDER)
    b = permute_gates(bias, "ijfo", CANONICAL_ORDER)
    w_hr = None if proj_kernel is None else _t(proj_kernel)
    return LayerWeights(w_ih, w_hh, b, _run_time_bias(b, hidden, forget_bias), w_hr, peephole)


def _tf_from(w, forget_bias):
    kernel = _t(_concat(w.weight_ih, w.weight_hh, 1))
    out = {"kernel": permute_gates(kernel, CANONICAL_ORDER, "ijfo", axis=1),
           "bias": permute_gates(_one_bias(w, forget_bias, "tf"), CANONICAL_ORDER, "ijfo")}
    if w.peephole is not None:
        for k, name in enumerate(_TF_PEEPHOLES):
            out[name] = w.peephole[k]
    if w.weight_hr is not None:
        out["projection/kernel"] = _t(w.weight_hr)
    return out


def _tf_attributes(layout, p, attrs: _Attributes, forget_bias):
    fb_attr = attrs.take("forget_bias")
    if fb_attr is not None and forget_bias is not None and float(fb_attr) != float(forget_bias):
        raise LayoutError(f"tf forget_bias given twice: attribute {fb_attr}, argument {forget_bias}")
    fb = float(fb_attr if fb_attr is not None else (forget_bias or 0.0))
    w = _tf_to(p, fb)
    attrs.expect("num_units", w.hidden_size, "H")
    use_peepholes = attrs.take("use_peepholes", attrs.take("use_peephole"))  # LSTMBlockCell: use_peephole
    if use_peepholes is not None and bool(use_peepholes) != (w.peephole is not None):
        raise LayoutError(f"tf attribute use_peepholes={use_peepholes!r} but the tensors "
                          f"{'have' if w.peephole is not None else 'lack'} {list(_TF_PEEPHOLES)}")
    num_proj = attrs.take("num_proj")
    if num_proj is not None and (w.weight_hr is None or int(num_proj) != w.proj_size):
        raise LayoutError(f"tf attribute num_proj={num_proj!r} but the tensors' projection is "
                          f"{w.proj_size or 'absent'}")
    if num_proj is None and attrs.left.get("proj_clip") is not None and w.weight_hr is None:
        raise LayoutError("tf attribute proj_clip needs a projection (num_proj, 'projection/kernel')")
    options = {}
    for name in ("cell_clip", "proj_clip"):
        v = _clip_value(attrs, name)
        if v is not None:
            options[name] = v
    act = attrs.take("activation")
    if act is not None:
        options.update(_activation_option("sigmoid", _keras_activation(attrs, "activation", act, 2)))
    for name in ("num_unit_shards", "num_proj_shards"):
        if attrs.take(name) is not None:
            raise LayoutError(f"tf attribute {name}: sharded variables must be concatenated into one tensor first")
    attrs.take("state_is_tuple")  # how TF packs (c, h), not what they are
    attrs.inert(("initializer", "reuse", "name", "dtype", "trainable"), "initialisation or variable bookkeeping")
    return w, options


# --- Keras LSTM (keras/layers/recurrent.py LSTMCell.call: kernel split i, f, c, o; use_bias=False: no bias)
def _keras_dims(p, layout: str) -> int:
    k, r = p["kernel"], p["recurrent_kernel"]
    if len(r.shape) != 2 or r.shape[1] != 4 * r.shape[0]:
        raise LayoutError(f"{layout} tensor 'recurrent_kernel' has shape {list(r.shape)}; expected [H, 4H]")
    hidden = r.shape[0]
    if len(k.shape) != 2 or k.shape[1] != 4 * hidden:
        raise LayoutError(f"{layout} tensor 'kernel' has shape {list(k.shape)}; expected [in, 4H={4 * hidden}]")
    return hidden


def _keras_to(p, forget_bias):
    hidden = _keras_dims(p, "keras")
    w_ih = permute_gates(_t(p["kernel"]), "ifco", CANONICAL_ORDER)
    w_hh = permute_gates(_t(p["recurrent_kernel"]), "ifco", CANONICAL_ORDER)
    b = p.get("bias")
    if b is None:
        return LayerWeights(w_ih, w_hh, None, _run_time_bias(w_hh, hidden, forget_bias))
    _check("bias", "keras", b, (4 * hidden,))
    bc = permute_gates(b, "ifco", CANONICAL_ORDER)
    return LayerWeights(w_ih, w_hh, bc, _run_time_bias(bc, hidden, forget_bias))


def _keras_from(w, forget_bias):
    _no_extras(w, "keras")
    out = {"kernel": permute_gates(_t(w.weight_ih), CANONICAL_ORDER, "ifco", axis=1),
           "recurrent_kernel": permute_gates(_t(w.weight_hh), CANONICAL_ORDER, "ifco", axis=1)}
    b = _one_bias(w, forget_bias, "keras", keep_none=True)
    if b is not None:
        out["bias"] = permute_gates(b, CANONICAL_ORDER, "ifco")
    return out


# --- Keras CuDNNLSTM (keras/layers/cudnn_recurrent.py CuDNNLSTM.build / _process_batch: bias [8H],
#     input biases i, f, c, o then recurrent biases i, f, c, o)
def _keras_cudnn_to(p, forget_bias):
    hidden = _keras_dims(p, "keras_cudnn")
    _no_run_time_forget_bias("keras_cudnn", forget_bias)
    b = p["bias"]
    _check("bias", "keras_cudnn", b, (8 * hidden,))
    return LayerWeights(permute_gates(_t(p["kernel"]), "ifco", CANONICAL_ORDER),
                        permute_gates(_t(p["recurrent_kernel"]), "ifco", CANONICAL_ORDER),
                        permute_gates(b[:4 * hidden], "ifco", CANONICAL_ORDER),
                        permute_gates(b[4 * hidden:], "ifco", CANONICAL_ORDER))


def _keras_cudnn_from(w, forget_bias):
    _no_extras(w, "keras_cudnn")
    _no_run_time_forget_bias("keras_cudnn", forget_bias)
    hidden = w.hidden_size
    b_ih = w.bias_ih if w.bias_ih is not None else _zeros_like_rows(w.weight_hh, 4 * hidden)
    b_hh = w.bias_hh if w.bias_hh is not None else _zeros_like_rows(w.weight_hh, 4 * hidden)
    return {"kernel": permute_gates(_t(w.weight_ih), CANONICAL_ORDER, "ifco", axis=1),
            "recurrent_kernel": permute_gates(_t(w.weight_hh), CANONICAL_ORDER, "ifco", axis=1),
            "bias": _concat(permute_gates(b_ih, CANONICAL_ORDER, "ifco"), permute_gates(b_hh, CANONICAL_ORDER, "ifco"), 0)}


_KERAS_INERT = ("kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias",
                "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                "kernel_constraint", "recurrent_constraint", "bias_constraint", "name", "trainable", "dtype",
                "implementation", "unroll", "time_major", "seed", "batch_input_shape", "input_shape", "batch_size",
                "init", "inner_init", "forget_bias_init", "W_regularizer", "U_regularizer", "b_regularizer",
                "input_dim", "input_length", "use_cudnn", "input_dtype", "consume_less")
_KERAS_OUTPUT_SHAPE = ("return_sequences", "return_state", "stateful")


def _keras_common(layout, w, attrs: _Attributes, options: dict) -> None:
    units = attrs.take("units", attrs.take("output_dim"))  # Keras 1 called it output_dim
    if units is not None and int(units) != w.hidden_size:
        raise LayoutError(f"{layout.name} attribute units={units!r} does not match the tensors (H {w.hidden_size})")
    if attrs.take("go_backwards"):
        # Keras returns the outputs in the order it read them (reversed); lstm() returns them in time order.
        options["direction"] = "reverse"
    attrs.inert(("dropout", "recurrent_dropout", "W_dropout", "U_dropout", "dropout_W", "dropout_U"),
                "dropout acts in training only")
    attrs.inert(_KERAS_INERT, "initialisation, regularisation or bookkeeping")
    for name in _KERAS_OUTPUT_SHAPE:
        attrs.take(name)  # which outputs the layer returns; the caller picks them from lstm()'s


def _keras_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _keras_to(p, 0.0 if forget_bias is None else forget_bias)
    use_bias = attrs.take("use_bias")
    if use_bias is not None and bool(use_bias) != ("bias" in p):
        raise LayoutError(f"keras attribute use_bias={use_bias!r} but the tensors {'have' if 'bias' in p else 'lack'} "
                          "'bias'")
    version = attrs.take("keras_version")
    if version is not None and int(version) not in (1, 2, 3):
        raise LayoutError(f"keras attribute keras_version={version!r}: 1, 2 or 3")
    gate = _keras_activation(attrs, "recurrent_activation",
                             attrs.take("recurrent_activation", attrs.take("inner_activation", "sigmoid")), version)
    cell = _keras_activation(attrs, "activation", attrs.take("activation", "tanh"), version)
    options = _activation_option(gate, cell)
    _keras_common(layout, w, attrs, options)
    return w, options


def _keras_cudnn_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _keras_cudnn_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.take("keras_version")
    options: dict = {}
    _keras_common(layout, w, attrs, options)
    return w, options


# --- PyTorch / cuDNN (the canonical layout itself; torch/nn/modules/rnn.py LSTM, proj_size: weight_hr)
def _torch_to(p, forget_bias):
    w_ih, w_hh, w_hr = p["weight_ih"], p["weight_hh"], p.get("weight_hr")
    if len(w_hh.shape) != 2 or w_hh.shape[0] % 4 or w_hh.shape[0] == 0:
        raise LayoutError(f"torch tensor 'weight_hh' has shape {list(w_hh.shape)}; expected [4H, H]")
    hidden = w_hh.shape[0] // 4
    if w_hr is not None:
        if len(w_hr.shape) != 2 or w_hr.shape[1] != hidden:
            raise LayoutError(f"torch tensor 'weight_hr' has shape {list(w_hr.shape)}; expected [P, H={hidden}]")
        if w_hh.shape[1] != w_hr.shape[0]:
            raise LayoutError(f"torch tensor 'weight_hh' has shape {list(w_hh.shape)}; expected [4H, P] = "
                              f"{[4 * hidden, w_hr.shape[0]]}")
    elif w_hh.shape[1] != hidden:
        raise LayoutError(f"torch tensor 'weight_hh' has shape {list(w_hh.shape)}; expected [4H, H]")
    if len(w_ih.shape) != 2 or w_ih.shape[0] != 4 * hidden:
        raise LayoutError(f"torch tensor 'weight_ih' has shape {list(w_ih.shape)}; expected [4H={4 * hidden}, in]")
    for n in ("bias_ih", "bias_hh"):
        if p.get(n) is not None:
            _check(n, "torch", p[n], (4 * hidden,))
    _no_run_time_forget_bias("torch", forget_bias)
    return LayerWeights(w_ih, w_hh, p.get("bias_ih"), p.get("bias_hh"), w_hr)


def _torch_from(w, forget_bias):
    _no_extras(w, "torch", allowed=("weight_hr",))
    _no_run_time_forget_bias("torch", forget_bias)
    out = {"weight_ih": w.weight_ih, "weight_hh": w.weight_hh, "bias_ih": w.bias_ih, "bias_hh": w.bias_hh}
    if w.weight_hr is not None:
        out["weight_hr"] = w.weight_hr
    return out


def _torch_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _torch_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("hidden_size", w.hidden_size, "H")
    attrs.expect("input_size", w.input_size, "input size")
    proj = attrs.take("proj_size")
    if proj is not None and int(proj) != w.proj_size:
        raise LayoutError(f"torch attribute proj_size={proj!r} but the tensors' projection is {w.proj_size}")
    bias = attrs.take("bias")
    if bias is not None and bool(bias) != (w.bias_ih is not None or w.bias_hh is not None):
        raise LayoutError(f"torch attribute bias={bias!r} does not match the tensors")
    return w, {}


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
    _no_extras(w, "theano")
    return {"W": permute_gates(_t(w.weight_ih), CANONICAL_ORDER, "ifoc", axis=1),
            "U": permute_gates(_t(w.weight_hh), CANONICAL_ORDER, "ifoc", axis=1),
            "b": permute_gates(_one_bias(w, forget_bias, "theano"), CANONICAL_ORDER, "ifoc")}


def _theano_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _theano_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("dim_proj", w.hidden_size, "H")
    return w, {}


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
        _no_extras(w, layout)
        return {wx_name: permute_gates(w.weight_ih, CANONICAL_ORDER, "ifog"),
                b_name: permute_gates(_one_bias(w, forget_bias, layout), CANONICAL_ORDER, "ifog"),
                wh_name: permute_gates(w.weight_hh, CANONICAL_ORDER, "ifog")}

    return to, frm


_caffe_to, _caffe_from = _caffe_like_to("caffe", ("W_xc", "b_c", "W_hc"))
_junhyukoh_to, _junhyukoh_from = _caffe_like_to("junhyukoh", ("W_x", "b", "W_h"))


def _caffe_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _caffe_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("num_output", w.hidden_size, "H")
    attrs.take("expose_hidden")  # whether h0/c0 and h_T/c_T are blobs; not the recurrence
    attrs.inert(("weight_filler", "bias_filler"), "initialisation")
    if attrs.take("caffe_tanh"):
        # lstm_unit_layer.cpp computes tanh as 2 * sigmoid(2x) - 1: the same to rounding
        return w, {"activations": ("sigmoid", "caffe_tanh", "caffe_tanh")}
    return w, {}


def _junhyukoh_attributes(layout, p, attrs: _Attributes, forget_bias):
    w = _junhyukoh_to(p, 0.0 if forget_bias is None else forget_bias)
    attrs.expect("num_output", w.hidden_size, "H")
    attrs.inert(("weight_filler", "bias_filler"), "initialisation")
    # caffe-lstm lstm_layer.cpp Backward_cpu: clipping_threshold clamps the gate gradients (training only;
    # the same layer's dW_h defect is lstm()'s recurrent_weight_grad_ignores_cont=True).
    clip = attrs.take("clipping_threshold")
    if clip:
        return w, {"preact_grad_clip": float(clip)}
    return w, {}


# --- ONNX LSTM (onnx/docs/Operators.md LSTM: W[iofc], R[iofc], B = [Wb[iofc], Rb[iofc]], P[iof]; one direction)
def _onnx_to(p, forget_bias):
    W, R = p["W"], p["R"]
    if len(R.shape) != 3 or R.shape[0] != 1 or R.shape[1] != 4 * R.shape[2]:
        raise LayoutError(f"onnx tensor 'R' has shape {list(R.shape)}; expected [1, 4H, H] (one direction; "
                          "split [num_directions, ...] tensors with compat.layouts.onnx_directions)")
    hidden = R.shape[2]
    if len(W.shape) != 3 or W.shape[0] != 1 or W.shape[1] != 4 * hidden:
        raise LayoutError(f"onnx tensor 'W' has shape {list(W.shape)}; expected [1, 4H={4 * hidden}, in]")
    _no_run_time_forget_bias("onnx", forget_bias)
    B, P = p.get("B"), p.get("P")
    w_ih = permute_gates(W[0], "iofc", CANONICAL_ORDER)
    w_hh = permute_gates(R[0], "iofc", CANONICAL_ORDER)
    b_ih = b_hh = peephole = None
    if B is not None:
        _check("B", "onnx", B, (1, 8 * hidden))
        b_ih = permute_gates(B[0, :4 * hidden], "iofc", CANONICAL_ORDER)
        b_hh = permute_gates(B[0, 4 * hidden:], "iofc", CANONICAL_ORDER)
    if P is not None:
        _check("P", "onnx", P, (1, 3 * hidden))
        peephole = permute_gates(P[0], "iof", "ifo").reshape(3, hidden)
    return LayerWeights(w_ih, w_hh, b_ih, b_hh, None, peephole)


def _onnx_from(w, forget_bias):
    _no_extras(w, "onnx", allowed=("peephole",))
    _no_run_time_forget_bias("onnx", forget_bias)
    hidden = w.hidden_size
    b_ih = w.bias_ih if w.bias_ih is not None else _zeros_like_rows(w.weight_hh, 4 * hidden)
    b_hh = w.bias_hh if w.bias_hh is not None else _zeros_like_rows(w.weight_hh, 4 * hidden)
    out = {"W": permute_gates(w.weight_ih, CANONICAL_ORDER, "iofc")[None],
           "R": permute_gates(w.weight_hh, CANONICAL_ORDER, "iofc")[None],
           "B": _concat(permute_gates(b_ih, CANONICAL_ORDER, "iofc"), permute_gates(b_hh, CANONICAL_ORDER, "iofc"), 0)[None]}
    if w.peephole is not None:
        out["P"] = permute_gates(w.peephole.reshape(3 * hidden), "ifo", "iof")[None]
    return out


# onnxruntime rnn_helpers.cc NameToArgUsageMap / NameToArgDefaultsMap: which functions consume an alpha
# and a beta from the node's lists, and the value used once a list runs out.
_ONNX_PARAMS = {"Affine": (True, True), "Relu": (False, False), "LeakyRelu": (True, False),
                "ThresholdedRelu": (True, False), "Tanh": (False, False), "ScaledTanh": (True, True),
                "Sigmoid": (False, False), "HardSigmoid": (True, True), "Elu": (True, False),
                "Softsign": (False, False), "Softplus": (False, False)}
_ONNX_DEFAULTS = {"LeakyRelu": (0.01, 0.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, 0.0)}


def onnx_activations(activations: Optional[Sequence[str]], activation_alpha: Sequence[float] = (),
                     activation_beta: Sequence[float] = (), num_directions: int = 1) -> List[tuple]:
    """Per direction an ``activations`` triple for :func:`compat.lstm.lstm` from an ONNX LSTM node's
    ``activations``, ``activation_alpha`` and ``activation_beta`` attributes.

    Alphas and betas are consumed in order by the functions that take them; once a list runs out a
    function gets onnxruntime's default (LeakyRelu 0.01, HardSigmoid 0.2 / 0.5, Elu 1.0, else 0.0:
    onnxruntime ``rnn_helpers.cc``; the operator text says "the same as of corresponding ONNX operators",
    which differs for ThresholdedRelu, Affine and ScaledTanh; onnxruntime's are what ONNX files run with,
    checked against onnxruntime by tests/golden/convert/onnx ``activation_defaults``).
    Names match case-insensitively, as in onnxruntime.
    """
    if activations is None:
        if activation_alpha or activation_beta:
            raise LayoutError("onnx activation_alpha / activation_beta given without activations")
        return [("Sigmoid", "Tanh", "Tanh")] * num_directions
    names = [a.decode() if isinstance(a, bytes) else str(a) for a in activations]
    if len(names) != 3 * num_directions:
        raise LayoutError(f"onnx attribute activations has {len(names)} entries; expected {3 * num_directions} "
                          f"(f, g, h per direction)")
    by_lower = {k.lower(): k for k in _ONNX_PARAMS}
    alphas, betas = [float(a) for a in activation_alpha], [float(b) for b in activation_beta]
    specs = []
    for name in names:
        key = by_lower.get(name.lower())
        if key is None:
            raise LayoutError(f"onnx activation {name!r} is not in the operator's list {list(_ONNX_PARAMS)}")
        takes_a, takes_b = _ONNX_PARAMS[key]
        da, db = _ONNX_DEFAULTS.get(key, (0.0, 0.0))
        args = []
        if takes_a:
            args.append(alphas.pop(0) if alphas else da)
        if takes_b:
            args.append(betas.pop(0) if betas else db)
        specs.append((key, *args) if args else key)
    if alphas or betas:
        raise LayoutError(f"onnx activation_alpha / activation_beta have values no activation takes "
                          f"(left over: alpha {alphas}, beta {betas})")
    return [tuple(specs[3 * d:3 * d + 3]) for d in range(num_directions)]


def onnx_directions(params: Mapping[str, object]) -> List[Dict[str, object]]:
    """Split ONNX LSTM tensors with a leading num_directions axis into one single-direction dict per
    direction (each tensor keeps a leading axis of 1), for :func:`to_canonical`."""
    W = params.get("W")
    if W is None or len(W.shape) != 3:
        raise LayoutError(f"onnx tensor 'W' has shape {None if W is None else list(W.shape)}; "
                          "expected [num_directions, 4H, in]")
    D = W.shape[0]
    out = []
    for d in range(D):
        part = {}
        for name, t in params.items():
            if t is None:
                continue
            if len(t.shape) < 1 or t.shape[0] != D:
                raise LayoutError(f"onnx tensor {name!r} has shape {list(t.shape)}; its leading axis must be "
                                  f"num_directions = {D} as W's")
            part[name] = t[d:d + 1]
        out.append(part)
    return out


def onnx_stack_directions(parts: Sequence[Mapping[str, object]]) -> Dict[str, object]:
    """The inverse of :func:`onnx_directions`: single-direction tensors concatenated on the leading axis."""
    names = list(parts[0])
    if any(list(p) != names for p in parts):
        raise LayoutError("onnx directions carry different tensors: " + ", ".join(str(sorted(p)) for p in parts))
    out = {}
    for name in names:
        tensors = [p[name] for p in parts]
        out[name] = torch.cat(tensors, 0) if isinstance(tensors[0], torch.Tensor) else np.concatenate(tensors, 0)
    return out


def _onnx_attributes(layout, p, attrs: _Attributes, forget_bias):
    if forget_bias:
        _no_run_time_forget_bias("onnx", forget_bias)
    direction = attrs.take("direction", "forward")
    if isinstance(direction, bytes):
        direction = direction.decode()
    if direction not in ("forward", "reverse", "bidirectional"):
        raise LayoutError(f"onnx attribute direction={direction!r}: forward, reverse or bidirectional")
    D = 2 if direction == "bidirectional" else 1
    parts = onnx_directions(p)
    if len(parts) != D:
        raise LayoutError(f"onnx attribute direction={direction!r} needs num_directions = {D}; the tensors have "
                          f"{len(parts)}")
    dirs = [_onnx_to(part, 0.0) for part in parts]
    attrs.expect("hidden_size", dirs[0].hidden_size, "H")
    options: dict = {}
    if direction != "forward":
        options["direction"] = direction
    clip = _clip_value(attrs, "clip")
    if clip is not None:
        options["preact_clip"] = clip
    input_forget = attrs.take("input_forget", 0)
    if input_forget not in (0, 1, False, True):
        raise LayoutError(f"onnx attribute input_forget={input_forget!r}: 0 or 1")
    if input_forget:
        options["input_forget"] = True
    triples = onnx_activations(attrs.take("activations"), attrs.take("activation_alpha", ()) or (),
                               attrs.take("activation_beta", ()) or (), D)
    if len(set(triples)) != 1:
        raise LayoutError(f"onnx activations differ between the directions ({triples}); the core runs one set for "
                          "both")
    if triples[0] != ("Sigmoid", "Tanh", "Tanh"):
        try:
            for spec in triples[0]:
                activation(spec)
        except ActivationError as e:
            raise LayoutError(f"onnx activations {triples[0]}: {e}") from None
        options["activations"] = triples[0]
    layout_attr = attrs.take("layout", 0)
    if layout_attr not in (0, 1):
        raise LayoutError(f"onnx attribute layout={layout_attr!r}: 0 or 1")
    if layout_attr == 1:
        options["batch_first"] = True  # X [B, T, in]; the operator's Y is [B, T, D, H], lstm()'s [B, T, D * H]
    weights = dirs[0] if D == 1 else (dirs[0], dirs[1])
    return weights, options


LAYOUTS: Dict[str, Layout] = {
    "tf": Layout("tf", "ijfo", ("kernel", "bias"),
                 "tensorflow/python/ops/rnn_cell_impl.py BasicLSTMCell.call / LSTMCell.build, LSTMCell.call", _tf_to,
                 _tf_from, _TF_PEEPHOLES + ("projection/kernel",), _tf_attributes),
    "keras": Layout("keras", "ifco", ("kernel", "recurrent_kernel"),
                    "keras/layers/recurrent.py LSTMCell.build / LSTMCell.call", _keras_to, _keras_from, ("bias",),
                    _keras_attributes),
    "keras_cudnn": Layout("keras_cudnn", "ifco", ("kernel", "recurrent_kernel", "bias"),
                          "keras/layers/cudnn_recurrent.py CuDNNLSTM.build / _process_batch", _keras_cudnn_to,
                          _keras_cudnn_from, (), _keras_cudnn_attributes),
    "torch": Layout("torch", "ifgo", ("weight_ih", "weight_hh"),
                    "torch/nn/modules/rnn.py LSTM; cuDNN cudnnRNNForward (CUDNN_LSTM)", _torch_to, _torch_from,
                    ("bias_ih", "bias_hh", "weight_hr"), _torch_attributes),
    "theano": Layout("theano", "ifoc", ("W", "U", "b"),
                     "DeepLearningTutorials code/lstm.py param_init_lstm / lstm_layer._step", _theano_to, _theano_from,
                     (), _theano_attributes),
    "caffe": Layout("caffe", "ifog", ("W_xc", "b_c", "W_hc"),
                    "BVLC caffe src/caffe/layers/lstm_layer.cpp FillUnrolledNet; lstm_unit_layer.cpp", _caffe_to,
                    _caffe_from, (), _caffe_attributes),
    "junhyukoh": Layout("junhyukoh", "ifog", ("W_x", "W_h", "b"),
                        "junhyukoh/caffe-lstm src/caffe/layers/lstm_layer.cpp LayerSetUp / Forward_cpu",
                        _junhyukoh_to, _junhyukoh_from, (), _junhyukoh_attributes),
    "onnx": Layout("onnx", "iofc", ("W", "R"), "onnx/docs/Operators.md LSTM", _onnx_to, _onnx_from, ("B", "P"),
                   _onnx_attributes),
}


def _layout(layout: str) -> Layout:
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}") from None


def to_canonical(layout: str, params: Mapping[str, object], *, forget_bias: float = 0.0,
                 attributes: Optional[Mapping[str, object]] = None) -> LayerWeights:
    """``LAYOUTS[layout].to_canonical(params, forget_bias=..., attributes=...)``."""
    return _layout(layout).to_canonical(params, forget_bias=forget_bias, attributes=attributes)


def convert(layout: str, params: Mapping[str, object], attributes: Optional[Mapping[str, object]] = None, *,
            forget_bias: Optional[float] = None) -> Converted:
    """Weights and :func:`compat.lstm.lstm` options of one legacy layer: ``LAYOUTS[layout].convert(...)``.

    ONNX tensors keep their leading num_directions axis here (2 with ``direction="bidirectional"``, and
    then ``weights`` is a (forward, backward) pair).
    """
    return _layout(layout).convert(params, attributes, forget_bias=forget_bias)


def from_canonical(layout: str, weights: LayerWeights, *, forget_bias: float = 0.0) -> Dict[str, object]:
    """``LAYOUTS[layout].from_canonical(weights, forget_bias=...)``."""
    return _layout(layout).from_canonical(weights, forget_bias=forget_bias)
