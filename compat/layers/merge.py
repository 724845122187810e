"""Merging several inputs: elementwise (Keras's ``Add``, ``Multiply``, ``Average``, ``Subtract``, ``Maximum``,
``Minimum``; Keras 1's ``Merge`` modes) and concatenation."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

OPS = ("add", "multiply", "average", "subtract", "maximum", "minimum")


class Merge(nn.Module):
    """One elementwise operation over a list of same-shaped (or broadcastable) tensors, in the list's order.

    Inputs of different ranks are first given size-1 axes after the batch axis until their ranks agree, as
    Keras's merge layers do (tf.keras ``base_merge.py`` ``_Merge.call``: ``expand_dims(x, axis=1)``).
    ``average`` is the sum divided by the number of inputs; ``subtract`` takes exactly two.

    ``masked``: which inputs carry a mask (``masks`` then holds theirs, in order). Keras >= 3.4's
    ``Multiply``, ``Maximum`` and ``Minimum`` read them (keras ``src/layers/merging/multiply.py``
    ``_merge_function``, ``base_merge.py`` ``_apply_merge_op_and_or_mask``): ``multiply`` counts a masked
    input as 1 at its masked steps, and when every input is masked the output is 0 where none is unmasked;
    ``maximum`` / ``minimum`` take a masked input's steps from the running result (and the result's masked
    steps from the input) before the operation.

    Args:
        op: one of ``add``, ``multiply``, ``average``, ``subtract``, ``maximum``, ``minimum``.
        masked: one boolean per input (None: masks are not read).

    Inputs: a list of tensors; ``masks``: ``[B, T]`` masks of the masked inputs. Outputs: one tensor.
    """

    def __init__(self, op: str, masked: Optional[Sequence[bool]] = None):
        super().__init__()
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}, not {op!r}")
        if masked is not None and op not in ("multiply", "maximum", "minimum"):
            raise ValueError(f"only multiply, maximum and minimum read masks, not {op!r}")
        self.op = op
        self.masked = None if masked is None else [bool(m) for m in masked]

    def forward(self, inputs: Sequence[Tensor], masks: Optional[Sequence[Tensor]] = None) -> Tensor:
        xs: List[Tensor] = list(inputs)
        if self.masked is not None:
            return self._masked(xs, list(masks or []))
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

    def _masked(self, xs: List[Tensor], masks: List[Tensor]) -> Tensor:
        if len(xs) != len(self.masked) or len(masks) != sum(self.masked):
            raise ValueError(f"expected {len(self.masked)} inputs and {sum(self.masked)} masks")
        it = iter(masks)
        ms = [next(it).bool().unsqueeze(-1).expand_as(x) if m else None for x, m in zip(xs, self.masked)]
        if self.op == "multiply":
            every = all(m is not None for m in ms)
            out, out_mask = None, None
            for x, m in zip(xs, ms):
                if m is not None:
                    x = torch.where(m, x, torch.ones_like(x))
                    if every:
                        out_mask = m if out_mask is None else out_mask | m
                out = x if out is None else out * x
            return torch.where(out_mask, out, torch.zeros_like(out)) if every else out
        fn = torch.maximum if self.op == "maximum" else torch.minimum
        out, out_mask = xs[0], ms[0]
        for x, m in zip(xs[1:], ms[1:]):
            if m is not None:
                x = torch.where(m, x, out)
            if out_mask is not None:
                out = torch.where(out_mask, out, x)
            out_mask = out_mask | m if (m is not None and out_mask is not None) else None
            out = fn(out, x)
        return out

    def extra_repr(self) -> str:
        return f"op={self.op!r}" + ("" if self.masked is None else f", masked={self.masked}")


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
