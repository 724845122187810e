"""The simple (Elman) RNN: the functional :func:`simple_rnn` and the module :class:`RNN`.

Per layer and direction ``(weight_ih [H, in], weight_hh [H, H], bias_ih [H] or None, bias_hh [H] or None)``
(``torch.nn.RNN``'s, TF1 ``BasicRNNCell``'s kernel split at row ``in``, Keras ``SimpleRNN``'s transposed,
ONNX ``RNN``'s W, R and the halves of B)::

    h' = g(clip(x W_ih^T + b_ih + h W_hh^T + b_hh))

g is ``activation``: a name of :data:`compat.lstm_activations.ACTIVATIONS` (``"tanh"``, ``"relu"``, the ONNX
list ``"Relu"``, ``"Tanh"``, ``"Sigmoid"``, ``"Affine"``, ``"LeakyRelu"``, ``"ThresholdedRelu"``,
``"ScaledTanh"``, ``"HardSigmoid"``, ``"Elu"``, ``"Softsign"``, ``"Softplus"``, Keras's
``"hard_sigmoid_keras2"`` / ``"hard_sigmoid_keras3"``), a ``(name, alpha[, beta])`` tuple or a callable;
``clip`` the ONNX ``clip`` on the pre-activation. tanh and relu without a clip run on torch's fused
``rnn_tanh`` / ``rnn_relu`` kernels; everything else on the step loop. Sequence semantics as
:func:`compat.lstm.lstm`.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from compat.recurrent.cell import Cell
from compat.recurrent.frontend import OneStateRNN, run_family, weights_from_torch  # noqa: F401  (re-exported)
from compat.recurrent.masks import CellMasks
from compat.recurrent.select import Choice


def rnn_cell(activation="tanh", clip: Optional[float] = None) -> Cell:
    """The simple RNN's :class:`compat.recurrent.cell.Cell` (validated: errors name the option)."""
    return Cell("rnn", (activation,), preact_clip=clip)


def simple_rnn(x, weights, hx: Optional[Tensor] = None, *, activation="tanh", clip: Optional[float] = None,
               batch_first: bool = False, direction: str = "forward", lengths=None, mask: Optional[Tensor] = None,
               cont: Optional[Tensor] = None, dropout: float = 0.0, training: bool = False,
               kernel: Optional[str] = None, dropout_placement: str = "between", past_end: Optional[str] = None,
               cell: Optional[Cell] = None, cell_masks: Optional[CellMasks] = None):
    """Run a stacked simple RNN over a sequence; the arguments as :func:`compat.gru.gru` (one gate block per
    layer: weight_ih [H, in], weight_hh [H, H]). Returns ``(output, h_n)``."""
    if cell is None:
        cell = rnn_cell(activation, clip)
    elif cell.family != "rnn":
        raise ValueError(f"simple_rnn() runs a simple RNN cell; this cell's family is {cell.family!r}")
    return run_family("rnn", cell, x, weights, hx, cont=cont, mask=mask, lengths=lengths, batch_first=batch_first,
                      direction=direction, dropout=dropout, dropout_placement=dropout_placement, training=training,
                      past_end=past_end, kernel=kernel, cell_masks=cell_masks)


def which_kernel(x: Tensor, weights, hx: Optional[Tensor] = None, *, activation="tanh", clip: Optional[float] = None,
                 batch_first: bool = False, direction: str = "forward", lengths=None, mask=None, cont=None,
                 dropout: float = 0.0, training: bool = False, kernel: Optional[str] = None,
                 dropout_placement: str = "between", past_end: Optional[str] = None,
                 cell_masks: Optional[CellMasks] = None) -> Choice:
    """The kernel :func:`simple_rnn` would run for these arguments."""
    return run_family("rnn", rnn_cell(activation, clip), x, weights, hx, cont=cont, mask=mask, lengths=lengths,
                      batch_first=batch_first, direction=direction, dropout=dropout,
                      dropout_placement=dropout_placement, training=training, past_end=past_end, kernel=kernel,
                      plan_only=True, cell_masks=cell_masks)


class RNN(OneStateRNN):
    """Stacked simple RNN over parameters named as ``torch.nn.RNN``'s. ``nonlinearity``: any activation
    :func:`simple_rnn` takes (torch's "tanh" and "relu" included); ``clip`` the ONNX clip.
    ``forward(input, hx=None, *, lengths=None, mask=None, cont=None, kernel=None)`` -> ``(output, h_n)``."""

    family = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity="tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 clip: Optional[float] = None, direction: str = "forward", dropout_placement: str = "between",
                 device=None, dtype=None):
        super().__init__(rnn_cell(nonlinearity, clip), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, direction, dropout_placement, device, dtype)
        self.nonlinearity, self.clip = nonlinearity, self.cell.preact_clip

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
        return s + (f", clip={self.clip}" if self.clip is not None else "")


__all__ = ["RNN", "rnn_cell", "simple_rnn", "weights_from_torch", "which_kernel"]
