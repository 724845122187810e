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
from compat.lstm_activations import ACTIVATIONS

CANONICAL_ORDER = "ifgo"


class LayoutError(ValueError):
    """A legacy tensor that is missing, unknown or of the wrong shape, or an attribute that cannot be honoured."""


def gate_index(src: str, dst: str) -> list:
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
    index = gate_index(src, dst)
    if index == list(range(len(index))):
        return t
    n = t.shape[axis]
    k = len(index)
    if n % k:
        raise LayoutError(f"axis {axis} of length {n} does not split into {k} gate blocks")
    h = n // k
    if isinstance(t, torch.Tensor):
        # The rows built on the tensor's device: a copy from the host would wait for the device (and could not be
        # captured in a CUDA graph).
        rows = torch.cat([torch.arange(j * h, (j + 1) * h, device=t.device) for j in index])
        return t.index_select(axis, rows)
    rows = np.concatenate([np.arange(j * h, (j + 1) * h) for j in index])
    return np.take(t, rows, axis=axis)


def transpose(x):
    """Transpose a 2-D numpy array or tensor."""
    return x.t() if isinstance(x, torch.Tensor) else x.T


def check_shape(name: str, layout: str, t, expected: Tuple[int, ...]) -> None:
    if tuple(t.shape) != tuple(expected):
        raise LayoutError(f"{layout} tensor {name!r} has shape {list(t.shape)}; expected {list(expected)}")


def zeros_rows(like, n: int):
    return like.new_zeros(n) if isinstance(like, torch.Tensor) else np.zeros(n, like.dtype)


def forget_bias_vector(like, hidden: int, forget_bias: float):
    """A constant [4H] vector with ``forget_bias`` on the canonical f block, zeros elsewhere."""
    if isinstance(like, torch.Tensor):
        v = torch.zeros(4 * hidden, dtype=like.dtype, device=like.device)
    else:
        v = np.zeros(4 * hidden, dtype=like.dtype)
    v[hidden:2 * hidden] = forget_bias
    return v


def concat(a, b, axis):
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b], dim=axis)
    return np.concatenate([a, b], axis=axis)


def stack(parts):
    if isinstance(parts[0], torch.Tensor):
        return torch.stack(parts)
    return np.stack(parts)


def one_bias(w: LayerWeights, forget_bias: float, layout: str, keep_none: bool = False):
    """The single bias of a one-bias layout from canonical weights (exact when bias_hh is the constant)."""
    hidden = w.hidden_size
    b = w.bias_ih
    rec = w.bias_hh
    if rec is not None:
        rec = rec - forget_bias_vector(rec, hidden, forget_bias)
        b = rec if b is None else b + rec
    elif forget_bias:
        raise LayoutError(f"{layout}: canonical weights with no bias_hh cannot carry forget_bias={forget_bias}")
    if b is None and not keep_none:
        b = zeros_rows(w.weight_hh, 4 * hidden)
    return b


def no_run_time_forget_bias(layout: str, forget_bias: float) -> None:
    # Two-bias layouts have no run-time forget bias; folding one into a trainable bias_hh would not
    # round-trip exactly, so such a layout takes the value in its biases instead.
    if forget_bias:
        raise LayoutError(f"the {layout} layout has no run-time forget bias (got forget_bias={forget_bias}); "
                          "add it to its bias before converting")


def run_time_bias(like, hidden: int, forget_bias: float):
    return forget_bias_vector(like, hidden, forget_bias) if forget_bias else None


def no_extras(w: LayerWeights, layout: str, allowed: Sequence[str] = ()) -> None:
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


class Attributes:
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


def clip_value(attrs: Attributes, name: str) -> Optional[float]:
    v = attrs.take(name)
    if v is None:
        return None
    if not isinstance(v, numbers.Real) or not float(v) > 0:
        raise LayoutError(f"{attrs.layout} attribute {name}={v!r} must be a number > 0 (or None)")
    return float(v)


# Keras / TF activation names (``keras.activations.get``) and the core's equivalents.
_KERAS_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "linear": "linear", None: "linear",
                      "softsign": "softsign", "softplus": "softplus", "elu": "elu", "selu": "selu"}


def keras_activation(attrs: Attributes, name: str, value, keras_version) -> str:
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


def activation_option(gate: str, cell: str) -> dict:
    if (gate, cell) == ("sigmoid", "tanh"):
        return {}
    return {"activations": (gate, cell, cell)}


# -------------------------------------------------------------------------------------------- layouts
MISSING_FORGET_BIAS = ("the {layout} layout adds a forget bias at run time that checkpoints do not store: pass "
                       "forget_bias= (TF's default is 1.0; the value the model was built with, if it set one)")


def _as_torch(t):
    """A numpy array as a torch tensor sharing its memory (a read-only array is copied first)."""
    if isinstance(t, np.ndarray):
        return torch.from_numpy(t if t.flags.writeable else t.copy())
    return t


@dataclass(frozen=True)
class Layout:
    """A legacy layout: the names and shapes of its tensors and its exact conversions.

    ``run_time_forget_bias``: the framework adds a forget bias when the cell runs, which its files do not
    store (TF's cells); every conversion of such a layout needs ``forget_bias`` given, there is no default.
    Tensors may be numpy arrays or torch tensors; what comes back is torch (numpy arrays are shared, not
    copied).
    """

    name: str
    gate_order: str
    tensor_names: Tuple[str, ...]
    source: str
    _to: Callable
    _from: Callable
    optional_names: Tuple[str, ...] = ()
    _attributes: Optional[Callable] = None
    run_time_forget_bias: bool = False

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
        return {n: _as_torch(v) for n, v in params.items() if v is not None}

    def _forget_bias(self, forget_bias: Optional[float], attributes: Optional[Mapping[str, object]] = None):
        if forget_bias is None and self.run_time_forget_bias and (attributes or {}).get("forget_bias") is None:
            raise LayoutError(MISSING_FORGET_BIAS.format(layout=self.name))
        return forget_bias

    def convert(self, params: Mapping[str, object], attributes: Optional[Mapping[str, object]] = None, *,
                forget_bias: Optional[float] = None) -> Converted:
        """Canonical weights and the :func:`compat.lstm.lstm` options that ``attributes`` call for."""
        forget_bias = self._forget_bias(forget_bias, attributes)
        tensors = self._tensors(params)
        attrs = Attributes(self.name, attributes)
        if self._attributes is None:
            fb = 0.0 if forget_bias is None else forget_bias
            attrs.done()
            return Converted(self._to(tensors, fb), {}, ())
        weights, options = self._attributes(self, tensors, attrs, forget_bias)
        attrs.done()
        return Converted(weights, options, tuple(attrs.not_applied))

    def to_canonical(self, params: Mapping[str, object], *, forget_bias: Optional[float] = None,
                     attributes: Optional[Mapping[str, object]] = None) -> LayerWeights:
        """Canonical :class:`LayerWeights` (torch tensors) from the legacy tensors (names in ``tensor_names``
        / ``optional_names``). Refuses attributes that need run-time options: use :func:`convert`."""
        converted = self.convert(params, attributes, forget_bias=forget_bias)
        if converted.options or not isinstance(converted.weights, LayerWeights):
            raise LayoutError(f"{self.name} attributes call for run-time options {converted.options or 'of two directions'} "
                              "that weights alone cannot carry; use compat.layouts.convert(), which returns them")
        return converted.weights

    def from_canonical(self, weights: LayerWeights, *, forget_bias: Optional[float] = None) -> Dict[str, object]:
        """The legacy tensors (torch) of this layout from canonical weights."""
        forget_bias = self._forget_bias(forget_bias)
        return self._from(LayerWeights(*(None if a is None else _as_torch(a) for a in weights)),
                          0.0 if forget_bias is None else forget_bias)


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
            check_shape(n, "torch", p[n], (4 * hidden,))
    no_run_time_forget_bias("torch", forget_bias)
    return LayerWeights(w_ih, w_hh, p.get("bias_ih"), p.get("bias_hh"), w_hr)


def _torch_from(w, forget_bias):
    no_extras(w, "torch", allowed=("weight_hr",))
    no_run_time_forget_bias("torch", forget_bias)
    out = {"weight_ih": w.weight_ih, "weight_hh": w.weight_hh, "bias_ih": w.bias_ih, "bias_hh": w.bias_hh}
    if w.weight_hr is not None:
        out["weight_hr"] = w.weight_hr
    return out


def _torch_attributes(layout, p, attrs: Attributes, forget_bias):
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


# Every layout by name: the canonical one here, each legacy framework's from its package
# (compat/frameworks/<framework>/layout.py calls register() when imported).
LAYOUTS: Dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    if layout.name in LAYOUTS and LAYOUTS[layout.name] is not layout:
        raise ValueError(f"layout {layout.name!r} registered twice")
    LAYOUTS[layout.name] = layout
    return layout


register(Layout("torch", "ifgo", ("weight_ih", "weight_hh"),
                "torch/nn/modules/rnn.py LSTM; cuDNN cudnnRNNForward (CUDNN_LSTM)", _torch_to, _torch_from,
                ("bias_ih", "bias_hh", "weight_hr"), _torch_attributes))


def _layout(layout: str) -> Layout:
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise LayoutError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}") from None


def to_canonical(layout: str, params: Mapping[str, object], *, forget_bias: Optional[float] = None,
                 attributes: Optional[Mapping[str, object]] = None) -> LayerWeights:
    """``LAYOUTS[layout].to_canonical(params, forget_bias=..., attributes=...)``: numpy or torch in, torch out.

    ``forget_bias`` has no default for a layout whose framework adds it at run time (``"tf"``): a wrong
    value changes every prediction, and no checkpoint stores it.
    """
    return _layout(layout).to_canonical(params, forget_bias=forget_bias, attributes=attributes)


def convert(layout: str, params: Mapping[str, object], attributes: Optional[Mapping[str, object]] = None, *,
            forget_bias: Optional[float] = None) -> Converted:
    """Weights (torch) and :func:`compat.lstm.lstm` options of one legacy layer: ``LAYOUTS[layout].convert(...)``.

    ONNX tensors keep their leading num_directions axis here (2 with ``direction="bidirectional"``, and
    then ``weights`` is a (forward, backward) pair). ``forget_bias`` as in :func:`to_canonical`.
    """
    return _layout(layout).convert(params, attributes, forget_bias=forget_bias)


def from_canonical(layout: str, weights: LayerWeights, *, forget_bias: Optional[float] = None) -> Dict[str, object]:
    """``LAYOUTS[layout].from_canonical(weights, forget_bias=...)``: numpy or torch in, torch out."""
    return _layout(layout).from_canonical(weights, forget_bias=forget_bias)


# Each legacy framework's layouts register themselves when its package is imported.
import compat.frameworks  # noqa: E402,F401  (fills LAYOUTS; see compat/frameworks/__init__.py)
