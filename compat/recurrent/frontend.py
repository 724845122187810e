"""What the GRU's and the simple RNN's front ends share (:mod:`compat.gru`, :mod:`compat.simple_rnn`): their
weights' and initial state's validation, the call into the driver, and the module over ``torch.nn.GRU``'s /
``torch.nn.RNN``'s parameter names.

Weights, per layer and direction: ``(weight_ih [G*H, in], weight_hh [G*H, H], bias_ih [G*H] or None,
bias_hh [G*H] or None)`` with G the family's gate blocks (3 for the GRU, 1 for the simple RNN), in the
order the cell's ``gate_order`` names. A bidirectional stack takes per layer a (forward, backward) pair,
or the flat list of 2 * layers sets in ``torch.nn.GRU``'s order (l0, l0_reverse, l1, ...). The state is h
alone: [layers * directions, B, H].
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from compat.recurrent.call import DROPOUT_PLACEMENTS, ShapeError
from compat.recurrent.cell import FAMILY_NAMES, Cell
from compat.recurrent.masks import CellMasks, check_kind as check_cell_masks_kind
from compat.recurrent.run import check_options, plan, run
from compat.recurrent.select import KERNELS, Choice
from compat.recurrent.weights import LayerWeights

_FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _shape(t) -> list:
    return list(t.shape) if isinstance(t, Tensor) else type(t).__name__


def _as_layer(w, where: str) -> LayerWeights:
    if isinstance(w, LayerWeights):
        if w.weight_hr is not None or w.peephole is not None:
            raise ShapeError(f"{where} has a projection or peepholes: those are the LSTM's")
        return w
    if not isinstance(w, (tuple, list)) or not 2 <= len(w) <= 4 or not all(
            t is None or isinstance(t, Tensor) for t in w):
        raise ShapeError(f"{where} must be (weight_ih, weight_hh, bias_ih, bias_hh) tensors (biases may be None)")
    return LayerWeights(*w)


def _is_pair(entry) -> bool:
    return (isinstance(entry, (tuple, list)) and not isinstance(entry, LayerWeights) and len(entry) == 2
            and all(isinstance(e, (tuple, list)) for e in entry))


def layers_of(weights, directions: int, family: str) -> List[Tuple[LayerWeights, ...]]:
    """Per layer a tuple of one (bidirectional: two) :class:`LayerWeights`."""
    if isinstance(weights, (Tensor, LayerWeights)) or not isinstance(weights, (tuple, list)) or not weights:
        raise ShapeError(f"the {FAMILY_NAMES[family]}'s weights are a list with one (weight_ih, weight_hh, bias_ih, "
                         "bias_hh) per layer (a (forward, backward) pair of them per layer when bidirectional)")
    entries = list(weights)
    if directions == 2 and not any(_is_pair(e) for e in entries):
        if len(entries) % 2:
            raise ShapeError(f"direction='bidirectional' takes a (forward, backward) pair per layer, or 2 * layers "
                             f"weight sets in torch's order; got {len(entries)} sets")
        entries = [(entries[k], entries[k + 1]) for k in range(0, len(entries), 2)]
    out = []
    for k, entry in enumerate(entries):
        if directions == 2:
            if not _is_pair(entry):
                raise ShapeError(f"direction='bidirectional' takes a (forward, backward) pair of weight sets per "
                                 f"layer; layer {k} is not one")
            out.append((_as_layer(entry[0], f"layer {k} forward"), _as_layer(entry[1], f"layer {k} backward")))
        else:
            if _is_pair(entry):
                raise ShapeError(f"layer {k} is a (forward, backward) pair: pass direction='bidirectional'")
            out.append((_as_layer(entry, f"layer {k}"),))
    return out


def _where(layer: int, d: int, directions: int) -> str:
    return f"layer {layer}" if directions == 1 else f"layer {layer} {('forward', 'backward')[d]}"


def check_layers(layers, input_size: Optional[int], gates: int, family: str) -> int:
    """Validate every layer's shapes; return H. Errors name the layer, direction and tensor."""
    D = len(layers[0])
    hidden = None
    expected_in = input_size
    for layer, dirs in enumerate(layers):
        for d, w in enumerate(dirs):
            where = _where(layer, d, D)
            hh, ih = w.weight_hh.shape, w.weight_ih.shape
            if len(hh) != 2 or hh[0] == 0 or hh[0] != gates * hh[1]:
                raise ShapeError(f"{where} weight_hh has shape {list(hh)}; expected [{gates}H, H] for the "
                                 f"{FAMILY_NAMES[family]}")
            h = hh[1]
            if hidden is None:
                hidden = h
            elif h != hidden:
                raise ShapeError(f"{where} weight_hh has hidden size {h}; layer 0 has {hidden}")
            if len(ih) != 2 or ih[0] != gates * h:
                raise ShapeError(f"{where} weight_ih has shape {list(ih)}; expected [{gates}H={gates * h}, in]")
            if expected_in is not None and ih[1] != expected_in:
                what = ("the input's feature size" if layer == 0 else
                        f"layer {layer - 1}'s output size" + (" (both directions)" if D == 2 else ""))
                raise ShapeError(f"{where} weight_ih has shape {list(ih)}; its input size must equal {what} "
                                 f"{expected_in}")
            for name, b in (("bias_ih", w.bias_ih), ("bias_hh", w.bias_hh)):
                if b is not None and (b.dim() != 1 or b.shape[0] != gates * h):
                    raise ShapeError(f"{where} {name} has shape {_shape(b)}; expected [{gates}H] = [{gates * h}]")
        expected_in = D * hidden
    return hidden


def check_input(x, *, batch_first: bool, direction: str, dropout: float, dropout_placement: str, past_end,
                kernel: str, cell_masks=None):
    """What every family checks first: the call's options, the kernel's name, the cell masks' kind and the
    input's rank; return (whether x is packed, its data tensor, the number of directions). (The driver checks
    the cell masks' shapes against the weights.)"""
    check_options(direction, dropout, dropout_placement, past_end)
    if kernel != "auto" and kernel not in KERNELS:
        raise ValueError(f"kernel must be 'auto' or one of {list(KERNELS)}, not {kernel!r}")
    check_cell_masks_kind(cell_masks)
    packed = isinstance(x, PackedSequence)
    if not packed and (not isinstance(x, Tensor) or x.dim() != 3):
        raise ShapeError(f"input x has shape {_shape(x) if isinstance(x, Tensor) else type(x).__name__}; "
                         f"expected 3 dimensions ({'[B, T, in]' if batch_first else '[T, B, in]'})")
    return packed, (x.data if packed else x), 2 if direction == "bidirectional" else 1


def check_steps(x, packed: bool, batch_first: bool) -> None:
    """A padded input needs at least one time step (a packed one has one by construction)."""
    if not packed and x.shape[1 if batch_first else 0] == 0:
        raise ShapeError(f"input x has shape {_shape(x)}: no time steps")


def prepare(family: str, cell: Cell, x, weights, hx, *, batch_first: bool, direction: str, dropout: float,
            dropout_placement: str, past_end, kernel: str, cell_masks=None):
    """Validate the input, weights and state of a one-state family; return (layers, state)."""
    packed, data, D = check_input(x, batch_first=batch_first, direction=direction, dropout=dropout,
                                  dropout_placement=dropout_placement, past_end=past_end, kernel=kernel,
                                  cell_masks=cell_masks)
    layers = layers_of(weights, D, family)
    hidden = check_layers(layers, data.shape[-1], cell.gates, family)
    check_steps(x, packed, batch_first)
    for layer, dirs in enumerate(layers):
        for d, w in enumerate(dirs):
            for name, t in zip(_FIELDS, w):
                if t is not None and (t.dtype != data.dtype or t.device != data.device):
                    raise ShapeError(f"{_where(layer, d, D)} {name} has dtype {t.dtype} on {t.device}; the input x "
                                     f"has dtype {data.dtype} on {data.device}")
    L = len(layers)
    B = int(x.batch_sizes[0]) if packed else x.shape[0 if batch_first else 1]
    if hx is None:
        h0 = data.new_zeros(L * D, B, hidden)
    else:
        h0 = hx
        if not isinstance(h0, Tensor) or _shape(h0) != [L * D, B, hidden]:
            raise ShapeError(f"initial state hx has shape {_shape(h0)}; expected [layers * directions, B, H] = "
                             f"{[L * D, B, hidden]}")
        if h0.dtype != data.dtype or h0.device != data.device:
            raise ShapeError(f"initial state hx has dtype {h0.dtype} on {h0.device}; the input x has dtype "
                             f"{data.dtype} on {data.device}")
    return tuple(layers), (h0,)


def run_family(family: str, cell: Cell, x, weights, hx, *, cont, mask, lengths, batch_first: bool, direction: str,
               dropout: float, dropout_placement: str, training: bool, past_end, kernel, plan_only: bool = False,
               cell_masks: Optional[CellMasks] = None):
    """``(output, h_n)`` of the stack (or, ``plan_only``, the :class:`Choice` that would run it)."""
    kernel = "auto" if kernel is None else kernel
    layers, state = prepare(family, cell, x, weights, hx, batch_first=batch_first, direction=direction,
                            dropout=dropout, dropout_placement=dropout_placement, past_end=past_end, kernel=kernel,
                            cell_masks=cell_masks)
    options = dict(cont=cont, mask=mask, lengths=lengths, batch_first=batch_first, direction=direction,
                   dropout=dropout, dropout_placement=dropout_placement, training=training, past_end=past_end,
                   kernel=kernel, cell_masks=cell_masks)
    if plan_only:
        return plan(cell, layers, x, state, **options)
    output, final = run(cell, layers, x, state, **options)
    return output, (None if final is None else final[0])


class OneStateRNN(nn.Module):
    """The module of a one-state family (GRU, simple RNN): parameters named as ``torch.nn.GRU`` / ``torch.nn.RNN``
    (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the backward
    direction), so that a state dict loads into and from torch's module of the same sizes."""

    family = ""

    def __init__(self, cell: Cell, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                 dropout: float, bidirectional: bool, direction: str, dropout_placement: str, device, dtype):
        super().__init__()
        if dropout_placement not in DROPOUT_PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
        if direction not in ("forward", "reverse") or (bidirectional and direction != "forward"):
            raise ValueError("direction is 'forward' or 'reverse' (a reverse-only stack); use bidirectional=True "
                             f"for both; got direction={direction!r}, bidirectional={bidirectional}")
        for name, value, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                                 ("num_layers", num_layers, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1); got {dropout}")
        self.cell = cell
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.dropout_placement = bidirectional, dropout_placement
        self.direction = "bidirectional" if bidirectional else direction
        factory = dict(device=device, dtype=dtype)
        G, D = cell.gates, 2 if bidirectional else 1
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else D * hidden_size
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                self.register_parameter("weight_ih" + sfx, nn.Parameter(torch.empty(G * hidden_size, in_size, **factory)))
                self.register_parameter("weight_hh" + sfx, nn.Parameter(torch.empty(G * hidden_size, hidden_size,
                                                                                    **factory)))
                if bias:
                    self.register_parameter("bias_ih" + sfx, nn.Parameter(torch.empty(G * hidden_size, **factory)))
                    self.register_parameter("bias_hh" + sfx, nn.Parameter(torch.empty(G * hidden_size, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch.nn.GRU and torch.nn.RNN."""
        bound = 1.0 / self.hidden_size ** 0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self) -> list:
        """The live parameters per layer: LayerWeights, or (forward, backward) pairs when bidirectional."""
        return weights_from_torch(self)

    def _run(self, x, hx, *, lengths, mask, cont, kernel, cell_masks, plan_only: bool = False):
        return run_family(self.family, self.cell, x, self.layer_weights(), hx, cont=cont, mask=mask, lengths=lengths,
                          batch_first=self.batch_first, direction=self.direction, dropout=self.dropout,
                          dropout_placement=self.dropout_placement, training=self.training, past_end=None,
                          kernel=kernel, plan_only=plan_only, cell_masks=cell_masks)

    def forward(self, input, hx: Optional[Tensor] = None, *, lengths=None, mask: Optional[Tensor] = None,
                cont: Optional[Tensor] = None, kernel: Optional[str] = None, cell_masks: Optional[CellMasks] = None):
        """``(output, h_n)`` as torch's module returns them (a PackedSequence in gives one out); ``lengths``,
        ``mask``, ``cont`` and ``cell_masks`` as :func:`compat.gru.gru`; ``kernel`` forces a kernel."""
        return self._run(input, hx, lengths=lengths, mask=mask, cont=cont, kernel=kernel, cell_masks=cell_masks)

    def which_kernel(self, input, hx: Optional[Tensor] = None, *, lengths=None, mask=None, cont=None,
                     kernel: Optional[str] = None, cell_masks: Optional[CellMasks] = None) -> Choice:
        """The kernel :meth:`forward` would run (``choice.name``, ``choice.rule.why``); nothing is computed."""
        return self._run(input, hx, lengths=lengths, mask=mask, cont=cont, kernel=kernel, cell_masks=cell_masks,
                         plan_only=True)

    def extra_repr(self) -> str:
        s = (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
             f"batch_first={self.batch_first}, dropout={self.dropout}")
        if self.bidirectional:
            s += ", bidirectional=True"
        elif self.direction != "forward":
            s += f", direction={self.direction!r}"
        return s


def weights_from_torch(module: nn.Module) -> list:
    """The weights of a ``torch.nn.GRU`` / ``torch.nn.RNN`` (or of our modules): its live parameters per layer,
    (forward, backward) pairs when bidirectional."""
    def one(sfx):
        return LayerWeights(getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx),
                            getattr(module, "bias_ih" + sfx, None), getattr(module, "bias_hh" + sfx, None))
    out = []
    for k in range(module.num_layers):
        out.append((one(f"_l{k}"), one(f"_l{k}_reverse")) if module.bidirectional else one(f"_l{k}"))
    return out


__all__ = ["OneStateRNN", "check_layers", "layers_of", "prepare", "run_family", "weights_from_torch"]
