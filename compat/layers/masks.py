"""Masks as values: the layer that zeroes masked steps, and the operations that make and combine masks.

A mask is a boolean tensor, ``[B, T]`` for a sequence, True at the steps that count. The legacy frameworks
compute masks beside the layers (Keras: ``compute_mask``, or, in Keras 3 model files, operations of the
saved graph); a converted model computes them with these modules, each the operation of the same name in
``keras.ops`` (Keras 3, ``keras/src/ops/numpy.py``) or the Keras backend (``K.not_equal``, ``K.any``,
``K.all``, ``K.expand_dims``, ``K.concatenate``, ``K.ones_like``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

Number = Union[int, float, bool]


class Masking(nn.Module):
    """Keras's ``Masking(mask_value)``: a step whose features all equal ``mask_value`` is set to zero
    (keras ``core.py`` ``Masking.call``: ``inputs * any(inputs != mask_value, axis=-1, keepdims=True)``).
    Its mask is :class:`NotEqual` then :class:`Reduce` (``any`` over the last axis).

    Inputs: x ``[B, T, F]``. Outputs: the same shape.
    """

    def __init__(self, mask_value: float = 0.0):
        super().__init__()
        self.mask_value = float(mask_value)

    def forward(self, x: Tensor) -> Tensor:
        return x * (x != self.mask_value).any(dim=-1, keepdim=True).to(x.dtype)

    def extra_repr(self) -> str:
        return f"mask_value={self.mask_value}"


class NotEqual(nn.Module):
    """``a != b``, ``b`` a second input or the constant ``other`` (an embedding's mask: ``ids != 0``).

    Inputs: a, optionally b. Outputs: a boolean tensor of the broadcast shape.
    """

    def __init__(self, other: Optional[Number] = None):
        super().__init__()
        self.other = other

    def forward(self, a: Tensor, b: Optional[Tensor] = None) -> Tensor:
        if (b is None) == (self.other is None):
            raise ValueError("NotEqual compares with a second input or with its constant, one of them")
        return a != (self.other if b is None else b)

    def extra_repr(self) -> str:
        return "" if self.other is None else f"other={self.other!r}"


class Reduce(nn.Module):
    """``any`` or ``all`` over ``axis`` (None: every axis), keeping it with ``keepdims``.

    Inputs: x (nonzero is true). Outputs: a boolean tensor.
    """

    def __init__(self, op: str, axis: Optional[Union[int, Sequence[int]]] = None, keepdims: bool = False):
        super().__init__()
        if op not in ("any", "all"):
            raise ValueError(f"op must be 'any' or 'all', not {op!r}")
        self.op, self.keepdims = op, bool(keepdims)
        self.axis = axis if axis is None or isinstance(axis, int) else tuple(axis)

    def forward(self, x: Tensor) -> Tensor:
        x = x.bool()
        fn = torch.any if self.op == "any" else torch.all
        if self.axis is None:
            out = fn(x)
            return out.reshape([1] * x.dim()) if self.keepdims else out
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        for a in sorted((a % x.dim() for a in axes), reverse=True):
            x = fn(x, dim=a, keepdim=self.keepdims)
        return x

    def extra_repr(self) -> str:
        return f"op={self.op!r}, axis={self.axis}, keepdims={self.keepdims}"


class ExpandDims(nn.Module):
    """``x.unsqueeze(axis)``. Inputs: x. Outputs: x with one more axis."""

    def __init__(self, axis: int):
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Fill(nn.Module):
    """A boolean tensor of x's shape, all ``value`` (``zeros_like(x, "bool")``, ``ones_like``)."""

    def __init__(self, value: bool):
        super().__init__()
        self.value = bool(value)

    def forward(self, x: Tensor) -> Tensor:
        return torch.full(x.shape, self.value, dtype=torch.bool, device=x.device)

    def extra_repr(self) -> str:
        return f"value={self.value}"


class Logical(nn.Module):
    """``or`` or ``and`` of two inputs (broadcast), as booleans. Outputs: a boolean tensor."""

    def __init__(self, op: str):
        super().__init__()
        if op not in ("or", "and"):
            raise ValueError(f"op must be 'or' or 'and', not {op!r}")
        self.op = op

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.logical_or(a, b) if self.op == "or" else torch.logical_and(a, b)

    def extra_repr(self) -> str:
        return f"op={self.op!r}"


class Cat(nn.Module):
    """``torch.cat(xs, dim=axis)`` of masks (``keras.ops.concatenate``, ``K.concatenate``)."""

    def __init__(self, axis: int):
        super().__init__()
        self.axis = int(axis)

    def forward(self, xs: Sequence[Tensor]) -> Tensor:
        return torch.cat(list(xs), dim=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
