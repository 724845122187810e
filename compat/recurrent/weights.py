"""The weights the kernels take, per layer and direction: the LSTM's :class:`LayerWeights` (the GRU's and
the simple RNN's beside it when those families come). :mod:`compat.lstm` documents the layout."""
from __future__ import annotations

from typing import NamedTuple, Optional

from torch import Tensor


class LayerWeights(NamedTuple):
    """One layer's (one direction's) parameters in the canonical (PyTorch / cuDNN) layout: rows in gate blocks
    i, f, g, o, or in the order the call's cell names (:attr:`compat.recurrent.cell.Cell.gate_order`)."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Optional[Tensor] = None
    bias_hh: Optional[Tensor] = None
    weight_hr: Optional[Tensor] = None
    peephole: Optional[Tensor] = None

    @property
    def hidden_size(self) -> int:
        """H: the cell state's width."""
        return self.weight_hh.shape[0] // 4

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def proj_size(self) -> int:
        """P with a projection, 0 without (as ``torch.nn.LSTM``)."""
        return 0 if self.weight_hr is None else self.weight_hr.shape[0]

    @property
    def output_size(self) -> int:
        """The width of h and of the outputs: P with a projection, else H."""
        return self.proj_size or self.hidden_size


__all__ = ["LayerWeights"]
