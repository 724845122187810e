"""Batch normalisation at inference over any axis."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchNorm(nn.Module):
    """``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` over feature axis ``axis``, as Keras's
    ``BatchNormalization`` computes at inference (``tf.nn.batch_normalization``; Keras 1's ``running_std`` holds
    the variance despite its name: keras 1.2 ``normalization.py`` passes it to ``K.batch_normalization`` as the
    variance). ``torch.nn.BatchNorm1d`` in eval mode computes the same with the features on axis 1.

    Args:
        num_features: the size of axis ``axis``.
        eps: added to the variance (Keras's ``epsilon``, default 1e-3).
        axis: the feature axis of the input (Keras's, counting the batch axis; -1 by default).

    Inputs: x with ``num_features`` on ``axis``. Outputs: the same shape.

    Attributes: ``weight``, ``bias`` (Keras's ``gamma``, ``beta``: ones and zeros when the layer had no
    ``scale`` or ``center``), buffers ``running_mean``, ``running_var``.
    """

    def __init__(self, num_features: int, eps: float = 1e-3, axis: int = -1, device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        self.num_features, self.eps, self.axis = num_features, eps, axis
        self.weight = nn.Parameter(torch.ones(num_features, **factory))
        self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))

    def forward(self, x: Tensor) -> Tensor:
        shape = [1] * x.dim()
        shape[self.axis] = self.num_features
        inv = torch.rsqrt(self.running_var + self.eps) * self.weight
        return (x - self.running_mean.view(shape)) * inv.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, axis={self.axis}"


class LayerNorm(nn.LayerNorm):
    """``torch.nn.LayerNorm`` over one axis anywhere (Keras's ``LayerNormalization(axis=k)``, the axis counting
    the batch axis): the axis is moved last, normalised, and moved back. ``axis=-1`` is ``torch.nn.LayerNorm``.

    Inputs: x with ``num_features`` on ``axis``. Outputs: the same shape.
    """

    def __init__(self, num_features: int, eps: float = 1e-3, axis: int = -1, device=None, dtype=None):
        super().__init__(num_features, eps=eps, device=device, dtype=dtype)
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.movedim(self.axis, -1)).movedim(-1, self.axis)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", axis={self.axis}"
