"""The weights the kernels take, per layer and direction: :class:`LayerWeights`. :mod:`compat.lstm` documents
the LSTM's layout; the GRU and the simple RNN use the same tuple without ``weight_hr`` and ``peephole``
(:mod:`compat.recurrent.frontend` documents theirs)."""
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
        """H: the LSTM cell state's width (an LSTM's weights: 4H rows)."""
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
