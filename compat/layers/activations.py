"""Named activations, the legacy frameworks' included: one module per name.

:func:`activation` returns a plain ``torch.nn`` module wherever the function is exactly PyTorch's, else one
of this module's. The legacy functions that are not PyTorch's:

- ``hard_sigmoid`` of Keras 1 and 2 (and tf.keras): ``clip(0.2 x + 0.5, 0, 1)`` (keras 2.x
  ``backend/tensorflow_backend.py`` ``hard_sigmoid``; ``tf_keras/backend.py`` ``hard_sigmoid``):
  :class:`HardSigmoid`. Keras 3's is ``relu6(x + 3) / 6`` (``keras/src/activations/activations.py``
  ``hard_sigmoid``), which is ``torch.nn.Hardsigmoid``.
- ``softplus``: ``log(1 + exp(x))`` exactly (:class:`Softplus`); ``torch.nn.Softplus`` returns x above its
  threshold (20), 2e-9 away.
- ``exponential``: ``exp(x)`` (:class:`Exponential`).
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
from torch import Tensor, nn


class HardSigmoid(nn.Module):
    """``clip(slope * x + offset, 0, 1)``: Keras 1/2's and tf.keras's ``hard_sigmoid`` with the defaults.

    Args:
        slope: 0.2 in Keras 1/2 and tf.keras.
        offset: 0.5.

    Inputs: x of any shape. Outputs: the same shape.
    """

    def __init__(self, slope: float = 0.2, offset: float = 0.5):
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x * self.slope + self.offset, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"slope={self.slope}, offset={self.offset}"


class Softplus(nn.Module):
    """``log(1 + exp(x))`` without a threshold (``logaddexp(x, 0)``). Inputs: x. Outputs: the same shape."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


class Exponential(nn.Module):
    """``exp(x)``. Inputs: x. Outputs: the same shape."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x)


# name -> a factory of the module; "hard_sigmoid" is resolved by the caller (it differs by version)
FACTORIES: Dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
    "log_softmax": lambda: nn.LogSoftmax(dim=-1),
    "softsign": nn.Softsign,
    "softplus": Softplus,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,                       # the exact erf form (Keras's default approximate=False)
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu6": nn.ReLU6,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),  # Keras 3 activations.leaky_relu: negative_slope=0.2
    "mish": nn.Mish,
    "exponential": Exponential,
    "hard_sigmoid_keras2": HardSigmoid,    # clip(0.2 x + 0.5, 0, 1)
    "hard_sigmoid_keras3": nn.Hardsigmoid,  # relu6(x + 3) / 6
    "hard_silu": nn.Hardswish,              # Keras 3 hard_silu: x * relu6(x + 3) / 6
}
NAMES = tuple(FACTORIES)


def activation(name: str) -> nn.Module:
    """The module of activation ``name`` (one of :data:`NAMES`)."""
    try:
        return FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(NAMES)}") from None
