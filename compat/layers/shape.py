"""Reshaping without the batch axis, as Keras's ``Reshape``, ``Permute``, ``Flatten`` and ``RepeatVector``."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


class Reshape(nn.Module):
    """``x.reshape(B, *target_shape)``; one entry may be -1 (Keras's ``Reshape``).

    Inputs: x ``[B, ...]``. Outputs: ``[B, *target_shape]``.
    """

    def __init__(self, target_shape: Sequence[int]):
        super().__init__()
        self.target_shape = tuple(int(d) for d in target_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.target_shape)

    def extra_repr(self) -> str:
        return f"target_shape={self.target_shape}"


class Permute(nn.Module):
    """Permutes the axes after the batch axis; ``dims`` counts them from 1 (Keras's ``Permute((2, 1))`` swaps
    the two axes after the batch).

    Inputs: x ``[B, d1, ..., dn]``. Outputs: ``x.permute(0, *dims)``.
    """

    def __init__(self, dims: Sequence[int]):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"dims {self.dims} is not a permutation of 1..{len(self.dims)}")

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, *self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Flatten(nn.Module):
    """Every axis after the batch axis flattened into one; with ``channels_first`` input of rank >= 3 the
    features are moved last first (tf.keras ``Flatten(data_format="channels_first")``).

    Inputs: x ``[B, ...]``. Outputs: ``[B, prod(...)]``.
    """

    def __init__(self, channels_first: bool = False):
        super().__init__()
        self.channels_first = channels_first

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_first and x.dim() >= 3:
            x = x.permute(0, *range(2, x.dim()), 1)
        return x.reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        return f"channels_first={self.channels_first}"


class RepeatVector(nn.Module):
    """``[B, F]`` -> ``[B, n, F]``: the vector repeated ``n`` times (Keras's ``RepeatVector``)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = int(n)

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(1).expand(x.shape[0], self.n, *x.shape[1:]).contiguous()

    def extra_repr(self) -> str:
        return f"n={self.n}"

