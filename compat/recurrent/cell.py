"""What one step of a recurrent cell computes: one validated, immutable value.

A :class:`Cell` says everything about the recurrence that is not a tensor: the family (the LSTM now; the
GRU and simple RNNs are the next families and take the same seam), the activations, the clips, the
variants a legacy framework adds (peepholes, a projection, coupled gates), the order of the gate blocks
in the weights handed over, and the legacy gradient quirks. The kernels read it to say whether they can
run a call (:mod:`compat.recurrent.kernels`); the step loop reads it to compute a step.

For the LSTM, per step, in this order (:func:`compat.recurrent.loop.lstm_layer` writes it out)::

    z = x W_ih^T + b + (cont * h) W_hh^T                   i, f, g, o = split(z, gate_order)
    i += p_i * c_prev;  f += p_f * c_prev                  (peepholes: TF LSTMCell, ONNX P)
    i, f, g = clamp(., -preact_clip, preact_clip)          (ONNX clip, on every pre-activation)
    i = gate(i);  f = 1 - i if input_forget else gate(f)   (ONNX input_forget)
    c = f * c_prev + i * cell_input(g)
    c = clamp(c, -cell_clip, cell_clip)                    (TF LSTMCell cell_clip)
    c = m * c + (1 - m) * c_prev                           (Theano mask)
    o += p_o * c;  o = clamp(o, -preact_clip, preact_clip) (the new, clipped cell)
    h = gate(o) * cell_output(c)
    h = clamp(h W_hr^T, -proj_clip, proj_clip)             (projection: TF num_proj, torch proj_size)
    h = m * h + (1 - m) * h_prev                           (Theano mask)

The gradient quirks change only the backward pass: ``preact_grad_clip`` clamps the gradient of the gate
pre-activations z at every step (junhyukoh/caffe-lstm ``clipping_threshold``, lstm_layer.cpp
``Backward_cpu`` ``caffe_bound``); ``weight_grad_ignores_cont`` takes W_hh's gradient against the raw
h_{t-1} also where ``cont`` zeroed it (the same function accumulates dW_h at every step).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

from torch import Tensor

from compat import lstm_activations

Fn = Callable[[Tensor], Tensor]

FAMILIES = ("lstm",)
CANONICAL_GATE_ORDER = "ifgo"  # PyTorch / cuDNN: rows i | f | g | o
STANDARD_ACTIVATIONS = ("sigmoid", "tanh", "tanh")


class CellError(ValueError):
    """A cell option the core does not know or cannot combine."""


def _positive(name: str, value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    if not value > 0:
        raise CellError(f"{name} must be > 0 (None for none); got {value}")
    return value


@dataclass(frozen=True)
class Cell:
    """The semantics of one recurrent step (see the module docstring for the LSTM's).

    ``activations``: ``(gate, cell input, cell output)``, each a name of
    :data:`compat.lstm_activations.ACTIVATIONS`, a ``(name, alpha[, beta])`` tuple or a callable.
    ``gate_order``: the order of the four gate blocks along the weights' rows (and the biases): the
    canonical ``"ifgo"``, or a legacy framework's own when its weights are handed over as stored, without
    a conversion at every call (Caffe's blobs ``"ifog"``, the Theano tutorial's ``"ifog"`` (its c is g),
    TF's kernel ``"igfo"`` (its j is g)). ``peepholes`` / ``projection``: the weights carry a peephole
    [3, H] / a weight_hr [P, H] in every layer.
    """

    family: str = "lstm"
    activations: Tuple = STANDARD_ACTIVATIONS
    peepholes: bool = False
    projection: bool = False
    cell_clip: Optional[float] = None
    proj_clip: Optional[float] = None
    preact_clip: Optional[float] = None
    input_forget: bool = False
    gate_order: str = CANONICAL_GATE_ORDER
    preact_grad_clip: Optional[float] = None
    weight_grad_ignores_cont: bool = False
    # Derived once, in __post_init__ (the kernels read them at every call).
    functions: Tuple[Fn, Fn, Fn] = field(init=False, repr=False, compare=False)
    standard_activations: bool = field(init=False, repr=False, compare=False)
    gate_index: Tuple[int, int, int, int] = field(init=False, repr=False, compare=False)
    _beyond_plain: Optional[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise CellError(f"cell family {self.family!r} is not one the core runs; known: {list(FAMILIES)}")
        if not isinstance(self.gate_order, str) or sorted(self.gate_order) != sorted(CANONICAL_GATE_ORDER):
            raise CellError(f"gate_order must be a permutation of 'ifgo', not {self.gate_order!r}")
        activations = tuple(self.activations) if isinstance(self.activations, (tuple, list)) else self.activations
        object.__setattr__(self, "activations", activations)
        # unknown names and wrong arity fail here, once; None for sigmoid gates and tanh by name (a callable is
        # never taken for them)
        standard = lstm_activations.resolve(activations) is None
        for name in ("cell_clip", "proj_clip", "preact_clip", "preact_grad_clip"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        if self.proj_clip is not None and not self.projection:
            raise CellError("proj_clip clips the projected h, and these weights have no projection (weight_hr)")
        for name in ("peepholes", "projection", "input_forget", "weight_grad_ignores_cont"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        # (gate, cell_input, cell_output) as functions; where the i, f, g and o blocks sit in the weights' rows
        object.__setattr__(self, "functions", tuple(lstm_activations.activation(a) for a in activations))
        object.__setattr__(self, "standard_activations", standard)
        object.__setattr__(self, "gate_index", tuple(self.gate_order.index(g) for g in CANONICAL_GATE_ORDER))
        found = [] if standard else [f"activations {activations!r}"]
        found += [name for name in ("peepholes", "input_forget") if getattr(self, name)]
        found += [f"{name}={getattr(self, name)}" for name in ("cell_clip", "proj_clip", "preact_clip")
                  if getattr(self, name) is not None]
        object.__setattr__(self, "_beyond_plain", ", ".join(found) or None)

    # ------------------------------------------------------------------------------ what kernels read
    @property
    def canonical_gate_order(self) -> bool:
        return self.gate_order == CANONICAL_GATE_ORDER

    @property
    def gradient_quirks(self) -> bool:
        """A legacy gradient rule beyond autograd's (it matters only where a gradient is taken)."""
        return self.preact_grad_clip is not None or self.weight_grad_ignores_cont

    def beyond_plain(self, *, projection: bool = False) -> Optional[str]:
        """What this cell computes in its forward pass beyond the plain LSTM (sigmoid gates, tanh, no clips,
        peepholes or coupled gates), named for an error message; None for the plain LSTM. ``projection``:
        a projection counts too (torch's fused kernel takes one narrower than the cell: its caller judges)."""
        if projection and self.projection:
            return "a projection" if self._beyond_plain is None else self._beyond_plain + ", a projection"
        return self._beyond_plain

    def plain_only(self, kernel: str, *, projection: bool = False) -> Optional[str]:
        """The reason ``kernel`` (a kernel that runs the plain LSTM only, ``projection``: without a projection
        either) cannot run this cell, or None where it can."""
        beyond = self.beyond_plain(projection=projection)
        if beyond is None:
            return None
        return f"{kernel} runs the plain LSTM{' without a projection' if projection else ''}; this cell has {beyond}"

    def quirks(self) -> str:
        """The gradient quirks, named for an error message."""
        found = []
        if self.preact_grad_clip is not None:
            found.append(f"preact_grad_clip={self.preact_grad_clip}")
        if self.weight_grad_ignores_cont:
            found.append("weight_grad_ignores_cont")
        return ", ".join(found)


__all__ = ["CANONICAL_GATE_ORDER", "FAMILIES", "STANDARD_ACTIVATIONS", "Cell", "CellError"]
