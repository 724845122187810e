"""What one step of a recurrent cell computes: one validated, immutable value.

A :class:`Cell` says everything about the recurrence that is not a tensor: the family (``"lstm"``,
``"gru"``, ``"rnn"``: the simple RNN), the activations, the clips, the
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

For the GRU (rows r | z | n, PyTorch / cuDNN; :func:`compat.recurrent.loop.gru_layer`), f the gate and g the
candidate activation, clip the ONNX ``clip`` on every pre-activation::

    r = f(clip(x W_ir^T + b_ir + h W_hr^T + b_hr))         z likewise
    reset_after (cuDNN, torch.nn.GRU, Keras reset_after=True, ONNX linear_before_reset=1):
        n = g(clip(x W_in^T + b_in + r * (h W_hn^T + b_hn)))
    reset before the product (TF1 GRUCell, Keras reset_after=False, ONNX linear_before_reset=0):
        n = g(clip(x W_in^T + b_in + (r * h) W_hn^T + b_hn))
    h' = (1 - z) * n + z * h

For the simple RNN (one block; :func:`compat.recurrent.loop.rnn_layer`): h' = g(clip(x W_ih^T + b_ih +
h W_hh^T + b_hh)). ``cont`` scales h before each step, a mask blends h' with h, as for the LSTM.

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

FAMILIES = ("lstm", "gru", "rnn")
CANONICAL_GATE_ORDER = "ifgo"  # PyTorch / cuDNN: rows i | f | g | o
STANDARD_ACTIVATIONS = ("sigmoid", "tanh", "tanh")
#: Per family: the canonical order of the gate blocks along the weights' rows (PyTorch / cuDNN), and the
#: standard activations (the ones torch's fused kernels compute).
CANONICAL_GATE_ORDERS = {"lstm": CANONICAL_GATE_ORDER, "gru": "rzn", "rnn": "h"}
FAMILY_ACTIVATIONS = {"lstm": STANDARD_ACTIVATIONS, "gru": ("sigmoid", "tanh"), "rnn": ("tanh",)}
FAMILY_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "simple RNN"}
# What each family's activations are, for errors.
_ACTIVATION_ROLES = {"lstm": "(gate, cell input, cell output)", "gru": "(gate, candidate)", "rnn": "(activation,)"}
# The simple RNN's activations torch runs fused: torch.rnn_tanh and torch.rnn_relu.
_FUSED_RNN = {"tanh": "rnn_tanh", "Tanh": "rnn_tanh", "relu": "rnn_relu", "Relu": "rnn_relu"}


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
    activations: Optional[Tuple] = None  # the family's standard ones (FAMILY_ACTIVATIONS)
    peepholes: bool = False
    projection: bool = False
    cell_clip: Optional[float] = None
    proj_clip: Optional[float] = None
    preact_clip: Optional[float] = None
    input_forget: bool = False
    gate_order: Optional[str] = None  # the family's canonical order (CANONICAL_GATE_ORDERS)
    preact_grad_clip: Optional[float] = None
    weight_grad_ignores_cont: bool = False
    reset_after: bool = True  # the GRU's: the reset gate multiplies the recurrent product (True) or h (False)
    # Derived once, in __post_init__ (the kernels read them at every call).
    functions: Tuple[Fn, Fn, Fn] = field(init=False, repr=False, compare=False)
    standard_activations: bool = field(init=False, repr=False, compare=False)
    gate_index: Tuple[int, ...] = field(init=False, repr=False, compare=False)
    fused_mode: Optional[str] = field(init=False, repr=False, compare=False)
    _beyond_plain: Optional[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise CellError(f"cell family {self.family!r} is not one the core runs; known: {list(FAMILIES)}")
        canonical = CANONICAL_GATE_ORDERS[self.family]
        if self.gate_order is None:
            object.__setattr__(self, "gate_order", canonical)
        if not isinstance(self.gate_order, str) or sorted(self.gate_order) != sorted(canonical):
            raise CellError(f"gate_order must be a permutation of {canonical!r} for the {FAMILY_NAMES[self.family]}, "
                            f"not {self.gate_order!r}")
        activations = self.activations if self.activations is not None else FAMILY_ACTIVATIONS[self.family]
        activations = tuple(activations) if isinstance(activations, (tuple, list)) else activations
        object.__setattr__(self, "activations", activations)
        for name in ("cell_clip", "proj_clip", "preact_clip", "preact_grad_clip"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        object.__setattr__(self, "reset_after", bool(self.reset_after))
        if self.family != "lstm":
            self._check_lstm_only()
            self._derive_gru_rnn(activations)
            return
        # unknown names and wrong arity fail here, once; None for sigmoid gates and tanh by name (a callable is
        # never taken for them)
        standard = lstm_activations.resolve(activations) is None
        if not self.reset_after:
            raise CellError("reset_after is the GRU's option; an LSTM cell has no reset gate")
        if self.proj_clip is not None and not self.projection:
            raise CellError("proj_clip clips the projected h, and these weights have no projection (weight_hr)")
        for name in ("peepholes", "projection", "input_forget", "weight_grad_ignores_cont"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        # (gate, cell_input, cell_output) as functions; where the i, f, g and o blocks sit in the weights' rows
        object.__setattr__(self, "functions", tuple(lstm_activations.activation(a) for a in activations))
        object.__setattr__(self, "standard_activations", standard)
        object.__setattr__(self, "gate_index", tuple(self.gate_order.index(g) for g in CANONICAL_GATE_ORDER))
        object.__setattr__(self, "fused_mode", "lstm")
        found = [] if standard else [f"activations {activations!r}"]
        found += [name for name in ("peepholes", "input_forget") if getattr(self, name)]
        found += [f"{name}={getattr(self, name)}" for name in ("cell_clip", "proj_clip", "preact_clip")
                  if getattr(self, name) is not None]
        object.__setattr__(self, "_beyond_plain", ", ".join(found) or None)

    def _check_lstm_only(self) -> None:
        """The GRU and the simple RNN have none of the LSTM's variants or quirks."""
        lstm_only = [name for name in ("peepholes", "projection", "input_forget", "weight_grad_ignores_cont")
                     if getattr(self, name)]
        lstm_only += [name for name in ("cell_clip", "proj_clip", "preact_grad_clip") if getattr(self, name) is not None]
        if lstm_only:
            raise CellError(f"{lstm_only} are LSTM options; a {FAMILY_NAMES[self.family]} cell has none of them")
        if self.family == "rnn" and not self.reset_after:
            raise CellError("reset_after is the GRU's option; a simple RNN cell has no reset gate")

    def _derive_gru_rnn(self, activations) -> None:
        """The GRU's and the simple RNN's derived fields: functions, gate index, what torch runs fused."""
        family = self.family
        count = len(FAMILY_ACTIVATIONS[family])
        if isinstance(activations, (str, bytes)) or not isinstance(activations, tuple) or len(activations) != count:
            raise CellError(f"the {FAMILY_NAMES[family]}'s activations are {_ACTIVATION_ROLES[family]}, each a name, "
                            f"a (name, alpha[, beta]) tuple or a callable; got {activations!r}")
        try:
            functions = tuple(lstm_activations.activation(a) for a in activations)
        except lstm_activations.ActivationError as e:
            raise CellError(str(e)) from None
        names = tuple(a if isinstance(a, str) else None for a in activations)
        if family == "gru":
            standard = names in (("sigmoid", "tanh"), ("Sigmoid", "Tanh"))
            mode = "gru" if standard and self.reset_after and self.preact_clip is None else None
        else:
            standard = names[0] in ("tanh", "Tanh")
            mode = _FUSED_RNN.get(names[0]) if self.preact_clip is None else None
        object.__setattr__(self, "functions", functions)
        object.__setattr__(self, "standard_activations", standard)
        canonical = CANONICAL_GATE_ORDERS[family]
        object.__setattr__(self, "gate_index", tuple(self.gate_order.index(g) for g in canonical))
        object.__setattr__(self, "fused_mode", mode)
        found = []
        if family == "gru" and not standard:
            found.append(f"activations {activations!r}")
        if family == "rnn" and names[0] not in _FUSED_RNN:
            found.append(f"activation {activations[0]!r} (torch runs tanh and relu)")
        if not self.reset_after:
            found.append("the reset gate applied before the recurrent product (reset_after=False)")
        if self.preact_clip is not None:
            found.append(f"preact_clip={self.preact_clip}")
        object.__setattr__(self, "_beyond_plain", ", ".join(found) or None)

    # ------------------------------------------------------------------------------ what kernels read
    @property
    def canonical_gate_order(self) -> bool:
        return self.gate_order == CANONICAL_GATE_ORDERS[self.family]

    @property
    def gates(self) -> int:
        """How many blocks of H rows the weights hold (4, 3, 1)."""
        return len(CANONICAL_GATE_ORDERS[self.family])

    @property
    def state_size(self) -> int:
        """How many tensors the state has: (h, c) for the LSTM, (h,) otherwise."""
        return 2 if self.family == "lstm" else 1

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
        """The reason ``kernel`` (a kernel that runs the plain cell of its family only (the plain LSTM; the GRU
        with the reset after the product, sigmoid and tanh; the tanh or relu RNN), ``projection``: without a
        projection either) cannot run this cell, or None where it can."""
        beyond = self.beyond_plain(projection=projection)
        if beyond is None:
            return None
        return (f"{kernel} runs the plain {FAMILY_NAMES[self.family]}{' without a projection' if projection else ''}; "
                f"this cell has {beyond}")

    def quirks(self) -> str:
        """The gradient quirks, named for an error message."""
        found = []
        if self.preact_grad_clip is not None:
            found.append(f"preact_grad_clip={self.preact_grad_clip}")
        if self.weight_grad_ignores_cont:
            found.append("weight_grad_ignores_cont")
        return ", ".join(found)


__all__ = ["CANONICAL_GATE_ORDER", "CANONICAL_GATE_ORDERS", "FAMILIES", "FAMILY_ACTIVATIONS", "FAMILY_NAMES",
           "STANDARD_ACTIVATIONS", "Cell", "CellError"]
