"""The named activations the LSTM core accepts (``compat.lstm.lstm(..., activations=(f, g, h))``).

``f`` is the gate activation (i, f, o), ``g`` the cell-input activation, ``h`` the cell-output
activation. Each entry is a name from :data:`ACTIVATIONS`, a tuple ``(name, alpha)`` or
``(name, alpha, beta)`` for the parameterised ones, or a callable on tensors. Names:

- ``"sigmoid"``, ``"tanh"``: the standard ones (the only ones the fused kernel runs).
- ``"hard_sigmoid_keras2"``: Keras 1 / 2 and tf.keras ``hard_sigmoid``, ``clip(0.2 x + 0.5, 0, 1)``
  (``keras/backend/tensorflow_backend.py`` / ``tf_keras/backend.py`` ``hard_sigmoid``).
- ``"hard_sigmoid_keras3"``: Keras 3 ``hard_sigmoid``, ``relu6(x + 3) / 6`` (``keras/src/backend/*/nn.py``
  ``hard_sigmoid``: ``x / 6 + 0.5`` clipped to [0, 1]); a plain ``"hard_sigmoid"`` is refused as ambiguous.
- ``"caffe_tanh"``: BVLC Caffe's LSTM unit tanh, ``2 sigmoid(2x) - 1`` (``lstm_unit_layer.cpp``).
- Keras's other common ones: ``"relu"``, ``"linear"``, ``"softsign"``, ``"softplus"``, ``"elu"``, ``"selu"``.
- ONNX's list (``onnx/docs/Operators.md`` LSTM, "Activation functions"), spelled as there:
  ``"Relu"``, ``"Tanh"``, ``"Sigmoid"``, ``"Affine"`` (alpha x + beta), ``"LeakyRelu"`` (alpha, default
  0.01), ``"ThresholdedRelu"`` (x if x > alpha else 0, as onnxruntime and the ThresholdedRelu operator;
  the LSTM operator's list writes ``>=``; default 1.0), ``"ScaledTanh"`` (alpha tanh(beta
  x)), ``"HardSigmoid"`` (min(max(alpha x + beta, 0), 1); default 0.2, 0.5), ``"Elu"`` (alpha, default
  1.0), ``"Softsign"``, ``"Softplus"``. ``Affine`` and ``ScaledTanh`` have no defaults: give alpha and
  beta. Reading an ONNX node's ``activation_alpha`` / ``activation_beta`` lists into these tuples is
  :func:`compat.frameworks.onnx.layout.onnx_activations`'s job.
"""
from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

Fn = Callable[[Tensor], Tensor]
Spec = Union[str, Tuple, Fn]


class ActivationError(ValueError):
    """An activation name or parameter the core does not know."""


class Named(NamedTuple):
    """One named activation: ``make(alpha, beta)`` returns the function; how many parameters it takes."""

    make: Callable[[Optional[float], Optional[float]], Fn]
    params: int
    defaults: Tuple[Optional[float], Optional[float]] = (None, None)


def _fixed(fn: Fn) -> Named:
    return Named(lambda a, b: fn, 0)


def _hard_sigmoid_keras2(x: Tensor) -> Tensor:
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _hard_sigmoid_keras3(x: Tensor) -> Tensor:
    # relu6(x + 3) / 6 written out (bit for bit what torch's CPU F.hardsigmoid gives): with F.hardsigmoid a
    # float64 Keras 3 layer on CUDA (torch 2.11, H200) ended 3.6e-6 (relative) from the float64 reference,
    # float32-sized, where the CPU matched to 1e-10.
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def _caffe_tanh(x: Tensor) -> Tensor:
    return 2 * torch.sigmoid(2 * x) - 1


def _linear(x: Tensor) -> Tensor:
    return x


def _thresholded_relu(alpha: float) -> Fn:
    return lambda x: torch.where(x > alpha, x, torch.zeros_like(x))


def _softplus_onnx(x: Tensor) -> Tensor:
    # ONNX Softplus is log(1 + exp(x)) exactly; F.softplus returns x itself above its threshold of 20, which is
    # e^-x (up to 2e-9) short: visible in float64 once a recurrence amplifies it.
    return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


def _hard_sigmoid_onnx(alpha: float, beta: float) -> Fn:
    return lambda x: torch.clamp(alpha * x + beta, 0.0, 1.0)


#: name -> :class:`Named`. See the module docstring for the sources.
ACTIVATIONS: Dict[str, Named] = {
    "sigmoid": _fixed(torch.sigmoid),
    "tanh": _fixed(torch.tanh),
    "hard_sigmoid_keras2": _fixed(_hard_sigmoid_keras2),
    "hard_sigmoid_keras3": _fixed(_hard_sigmoid_keras3),
    "caffe_tanh": _fixed(_caffe_tanh),
    "relu": _fixed(torch.relu),
    "linear": _fixed(_linear),
    "softsign": _fixed(F.softsign),
    "softplus": _fixed(F.softplus),
    "elu": _fixed(F.elu),
    "selu": _fixed(torch.selu),
    "Relu": _fixed(torch.relu),
    "Tanh": _fixed(torch.tanh),
    "Sigmoid": _fixed(torch.sigmoid),
    "Affine": Named(lambda a, b: (lambda x: a * x + b), 2),
    "LeakyRelu": Named(lambda a, b: (lambda x: F.leaky_relu(x, a)), 1, (0.01, None)),
    "ThresholdedRelu": Named(lambda a, b: _thresholded_relu(a), 1, (1.0, None)),
    "ScaledTanh": Named(lambda a, b: (lambda x: a * torch.tanh(b * x)), 2),
    "HardSigmoid": Named(lambda a, b: _hard_sigmoid_onnx(a, b), 2, (0.2, 0.5)),
    "Elu": Named(lambda a, b: (lambda x: F.elu(x, a)), 1, (1.0, None)),
    "Softsign": _fixed(F.softsign),
    "Softplus": _fixed(_softplus_onnx),
}

_STANDARD = {("sigmoid", "tanh", "tanh"), ("Sigmoid", "Tanh", "Tanh")}


def activation(spec: Spec) -> Fn:
    """The function for one entry: a name, ``(name, alpha[, beta])``, or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, str):
        name, args = spec, ()
    elif isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        name, args = spec[0], tuple(spec[1:])
    else:
        raise ActivationError(f"an activation is a name, a (name, alpha[, beta]) tuple or a callable; got {spec!r}")
    if name == "hard_sigmoid":
        raise ActivationError("'hard_sigmoid' differs between Keras versions: use 'hard_sigmoid_keras2' "
                              "(clip(0.2 x + 0.5, 0, 1)) or 'hard_sigmoid_keras3' (relu6(x + 3) / 6)")
    named = ACTIVATIONS.get(name)
    if named is None:
        raise ActivationError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    if len(args) > named.params:
        raise ActivationError(f"activation {name!r} takes {named.params} parameter(s); got {list(args)}")
    values = [float(a) if a is not None else None for a in args]
    values += [None] * (2 - len(values))
    for k in range(named.params):
        if values[k] is None:
            values[k] = named.defaults[k]
        if values[k] is None:
            raise ActivationError(f"activation {name!r} needs {('alpha', 'beta')[:named.params]}; got {list(args)}")
    return named.make(values[0], values[1])


def resolve(activations: Optional[Sequence[Spec]]) -> Optional[Tuple[Fn, Fn, Fn]]:
    """``(f, g, h)`` functions for an ``activations`` triple; None for the standard (sigmoid, tanh, tanh)."""
    if activations is None:
        return None
    if isinstance(activations, (str, bytes)) or len(activations) != 3:
        raise ActivationError("activations is a triple (gate, cell input, cell output), e.g. "
                              f"('hard_sigmoid_keras2', 'tanh', 'tanh'); got {activations!r}")
    if tuple(a if isinstance(a, str) else None for a in activations) in _STANDARD:
        return None
    return tuple(activation(a) for a in activations)
