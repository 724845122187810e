"""A module applied to every step of a sequence."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


class TimeDistributed(nn.Module):
    """``module`` applied to each ``x[:, t]`` (Keras's ``TimeDistributed``): the batch and time axes are
    merged, the module runs once, and they are split again.

    ``masked_steps="previous_output"``: at a masked step the output is the previous step's output (zeros
    before the first unmasked step). tf.keras (and Keras >= 2.3) takes this path when the input's batch size
    is fixed in the model: ``TimeDistributed.call`` then runs the module through ``backend.rnn`` with the mask
    (``tf_keras/layers/rnn/time_distributed.py``), whose masked steps repeat the previous output.

    Args:
        module: the per-step module (``[N, ...]`` -> ``[N, ...]``).
        masked_steps: None (the mask changes nothing) or ``"previous_output"``.

    Inputs: x ``[B, T, ...]``, optionally mask ``[B, T]``. Outputs: ``[B, T, ...]``.
    """

    def __init__(self, module: nn.Module, masked_steps: Optional[str] = None):
        super().__init__()
        if masked_steps not in (None, "previous_output"):
            raise ValueError(f"masked_steps must be None or 'previous_output', not {masked_steps!r}")
        self.module, self.masked_steps = module, masked_steps

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        B, T = x.shape[0], x.shape[1]
        y = self.module(x.reshape(B * T, *x.shape[2:]))
        y = y.reshape(B, T, *y.shape[1:])
        if mask is None or self.masked_steps is None:
            return y
        keep = mask.bool().reshape(B, T, *([1] * (y.dim() - 2)))
        steps, prev = [], torch.zeros_like(y[:, 0])
        for t in range(T):
            prev = torch.where(keep[:, t], y[:, t], prev)
            steps.append(prev)
        return torch.stack(steps, 1)

    def extra_repr(self) -> str:
        return f"masked_steps={self.masked_steps!r}" if self.masked_steps else ""
