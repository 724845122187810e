"""The GRU: the functional :func:`gru` and the module :class:`GRU`, every legacy variant through the one core.

Canonical parameterisation (PyTorch / cuDNN), per layer and direction::

    weight_ih [3H, in]   weight_hh [3H, H]   bias_ih [3H] or None   bias_hh [3H] or None
    rows in gate blocks  r | z | n

    r = f(x W_ir^T + b_ir + h W_hr^T + b_hr)          z = f(x W_iz^T + b_iz + h W_hz^T + b_hz)
    reset_after=True  (cuDNN, torch.nn.GRU, Keras reset_after=True and CuDNNGRU, ONNX linear_before_reset=1):
        n = g(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    reset_after=False (TF1 GRUCell, Keras reset_after=False (Keras 1 and 2's default), ONNX
                       linear_before_reset=0):
        n = g(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
    h' = (1 - z) * n + z * h

f and g are ``activations`` (default sigmoid and tanh); ``clip`` clamps every pre-activation (the argument
of f and g) to [-clip, clip] (ONNX ``clip``).

The pitfall: a reset-before GRU's weights load into ``torch.nn.GRU`` without complaint (the shapes are the
same) and compute other numbers, because torch's GRU (and cuDNN's) only resets after the product. Here
``reset_after=False`` never runs on torch's fused GRU kernel: the selection (:mod:`compat.recurrent.select`)
refuses it, and the step loop runs it.

Gate orders: TF1's ``GRUCell`` stores (r, u) then the candidate (``"rzn"`` once split, see
:mod:`compat.rnn_cell`), Keras and ONNX (z, r, h): ``gate_order="zrn"`` hands those weights over as stored.
Sequence semantics (``lengths``, ``mask``, ``cont``, directions, dropout) are the LSTM's
(:mod:`compat.recurrent.call`); which kernel runs is :mod:`compat.recurrent.select`'s decision.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from compat.recurrent.cell import Cell
from compat.recurrent.frontend import OneStateRNN, run_family, weights_from_torch  # noqa: F401  (re-exported)
from compat.recurrent.masks import CellMasks
from compat.recurrent.select import Choice

STANDARD = ("sigmoid", "tanh")


def gru_cell(reset_after: bool = True, activations=STANDARD, clip: Optional[float] = None,
             gate_order: str = "rzn") -> Cell:
    """The GRU's :class:`compat.recurrent.cell.Cell` for these options (validated: errors name the option)."""
    return Cell("gru", activations, preact_clip=clip, gate_order=gate_order, reset_after=reset_after)


def gru(x, weights, hx: Optional[Tensor] = None, *, reset_after: bool = True, activations=STANDARD,
        clip: Optional[float] = None, gate_order: str = "rzn", batch_first: bool = False, direction: str = "forward",
        lengths=None, mask: Optional[Tensor] = None, cont: Optional[Tensor] = None, dropout: float = 0.0,
        training: bool = False, kernel: Optional[str] = None, dropout_placement: str = "between",
        past_end: Optional[str] = None, cell: Optional[Cell] = None, cell_masks: Optional[CellMasks] = None):
    """Run a stacked GRU over a sequence. The functional form of :class:`GRU`.

    Args:
        x: [T, B, in] (or [B, T, in] with ``batch_first``), or a ``PackedSequence`` (the output is one too).
        weights: per layer ``(weight_ih [3H, in], weight_hh [3H, H], bias_ih [3H] or None, bias_hh [3H] or None)``
            in ``gate_order``; bidirectional: per layer a (forward, backward) pair of them, or 2 * layers sets
            in torch's order.
        hx: h0 [layers * directions, B, H]; zeros when None.
        reset_after: where the reset gate acts (module docstring).
        activations: ``(gate f, candidate g)``: names of :data:`compat.lstm_activations.ACTIVATIONS` (the ONNX
            list included), ``(name, alpha[, beta])`` tuples, or callables.
        clip: the ONNX ``clip`` on every pre-activation (> 0, None for none).
        gate_order: the order of the r, z, n blocks in the weights' rows (``"zrn"``: Keras's and ONNX's).
        direction: ``"forward"``, ``"reverse"`` or ``"bidirectional"`` (as :func:`compat.lstm.lstm`).
        lengths, mask, cont: the sequence semantics of :func:`compat.lstm.lstm` (one of them).
        dropout, training, dropout_placement: dropout between the layers (``"between"``, torch's) or on every
            layer's output (``"output"``), in training only.
        past_end: ``"unread"`` as :func:`compat.lstm.lstm` (h_n is then None).
        kernel: None (the selection decides) or a kernel's name to force (an error says why it cannot).
        cell: the options above as one :class:`Cell` (then they must be left at their defaults).
        cell_masks: dropout masks inside the cell of a one-layer stack, on the input and on h_(t-1) per gate
            block (:class:`compat.recurrent.masks.CellMasks`: Keras's ``dropout`` / ``recurrent_dropout``).

    Returns:
        ``(output [T, B, D * H], h_n [layers * directions, B, H])``.
    """
    if cell is None:
        cell = gru_cell(reset_after, activations, clip, gate_order)
    elif cell.family != "gru":
        raise ValueError(f"gru() runs a GRU cell; this cell's family is {cell.family!r}")
    return run_family("gru", cell, x, weights, hx, cont=cont, mask=mask, lengths=lengths, batch_first=batch_first,
                      direction=direction, dropout=dropout, dropout_placement=dropout_placement, training=training,
                      past_end=past_end, kernel=kernel, cell_masks=cell_masks)


def which_kernel(x: Tensor, weights, hx: Optional[Tensor] = None, *, reset_after: bool = True,
                 activations=STANDARD, clip: Optional[float] = None, gate_order: str = "rzn",
                 batch_first: bool = False, direction: str = "forward", lengths=None, mask=None, cont=None,
                 dropout: float = 0.0, training: bool = False, kernel: Optional[str] = None,
                 dropout_placement: str = "between", past_end: Optional[str] = None,
                 cell_masks: Optional[CellMasks] = None) -> Choice:
    """The kernel :func:`gru` would run for these arguments (``choice.name``, ``choice.rule.why``)."""
    cell = gru_cell(reset_after, activations, clip, gate_order)
    return run_family("gru", cell, x, weights, hx, cont=cont, mask=mask, lengths=lengths, batch_first=batch_first,
                      direction=direction, dropout=dropout, dropout_placement=dropout_placement, training=training,
                      past_end=past_end, kernel=kernel, plan_only=True, cell_masks=cell_masks)


class GRU(OneStateRNN):
    """Stacked GRU over parameters named as ``torch.nn.GRU``'s (its state dict loads into and from one of the
    same sizes). ``reset_after``, ``activations`` and ``clip`` as :func:`gru`; ``direction="reverse"`` for a
    reverse-only stack; ``dropout_placement`` as :func:`compat.lstm.lstm`.
    ``forward(input, hx=None, *, lengths=None, mask=None, cont=None, kernel=None)`` -> ``(output, h_n)``."""

    family = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 reset_after: bool = True, activations=STANDARD, clip: Optional[float] = None,
                 direction: str = "forward", dropout_placement: str = "between", device=None, dtype=None):
        super().__init__(gru_cell(reset_after, activations, clip), input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, direction, dropout_placement, device, dtype)
        self.reset_after, self.activations, self.clip = bool(reset_after), self.cell.activations, self.cell.preact_clip

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if not self.reset_after:
            s += ", reset_after=False"
        if self.activations != STANDARD:
            s += f", activations={self.activations!r}"
        if self.clip is not None:
            s += f", clip={self.clip}"
        return s


__all__ = ["GRU", "STANDARD", "gru", "gru_cell", "weights_from_torch", "which_kernel"]
