"""Merging several inputs: elementwise (Keras's ``Add``, ``Multiply``, ``Average``, ``Subtract``, ``Maximum``,
``Minimum``; Keras 1's ``Merge`` modes) and concatenation."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor, nn

OPS = ("add", "multiply", "average", "subtract", "maximum", "minimum")


class Merge(nn.Module):
    """One elementwise operation over a list of same-shaped (or broadcastable) tensors, in the list's order.

    Inputs of different ranks are first given size-1 axes after the batch axis until their ranks agree, as
    Keras's merge layers do (tf.keras ``base_merge.py`` ``_Merge.call``: ``expand_dims(x, axis=1)``).
    ``average`` is the sum divided by the number of inputs; ``subtract`` takes exactly two.

    Args:
        op: one of ``add``, ``multiply``, ``average``, ``subtract``, ``maximum``, ``minimum``.

    Inputs: a list of tensors. Outputs: one tensor.
    """

    def __init__(self, op: str):
        super().__init__()
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}, not {op!r}")
        self.op = op

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        xs: List[Tensor] = list(inputs)
        if self.op == "subtract" and len(xs) != 2:
            raise ValueError(f"subtract takes exactly two inputs, not {len(xs)}")
        rank = max(x.dim() for x in xs)
        xs = [x.reshape(x.shape[0], *([1] * (rank - x.dim())), *x.shape[1:]) if x.dim() < rank else x for x in xs]
        out = xs[0]
        for x in xs[1:]:
            if self.op in ("add", "average"):
                out = out + x
            elif self.op == "multiply":
                out = out * x
            elif self.op == "subtract":
                out = out - x
            elif self.op == "maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.op == "average" else out

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class Concatenate(nn.Module):
    """``torch.cat(inputs, dim=axis)`` (Keras's ``Concatenate(axis)``: the axis counts the batch axis).

    Inputs: a list of tensors. Outputs: their concatenation.
    """

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return torch.cat(list(inputs), dim=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
