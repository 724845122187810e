"""1-D pooling with TF's ``same`` padding, and global pooling that honours a mask."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compat.layers.conv import same_padding

MODES = ("max", "avg")


class Pool1d(nn.Module):
    """Max or average pooling over the time axis as TF pools (``tf.nn.max_pool1d`` / ``avg_pool1d``):

    - ``"valid"``: windows inside the sequence only;
    - ``"same"``: ``ceil(T / stride)`` windows, padding split as :func:`compat.layers.conv.same_padding`; the
      padding is never a maximum and is not counted in an average (TF's ``AvgPool`` divides by the window's
      elements inside the input).

    Args:
        mode: ``"max"`` or ``"avg"``.
        pool_size, stride: the window and its step.
        padding: ``"valid"`` or ``"same"``.
        channels_last: inputs and outputs are ``[B, T, C]``.

    Inputs: x ``[B, T, C]`` (``[B, C, T]`` without ``channels_last``). Outputs: ``[B, T', C]``.
    """

    def __init__(self, mode: str, pool_size: int, stride: int, padding: str = "valid", channels_last: bool = True):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")
        if pool_size < 1 or stride < 1:
            raise ValueError(f"pool_size and stride must be positive, not {pool_size}, {stride}")
        self.mode, self.pool_size, self.stride, self.padding = mode, pool_size, stride, padding
        self.channels_last = channels_last

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.transpose(1, 2)
        k, s = self.pool_size, self.stride
        if self.padding == "valid":
            y = F.max_pool1d(x, k, s) if self.mode == "max" else F.avg_pool1d(x, k, s)
        else:
            pad = same_padding(x.shape[2], k, s)
            if self.mode == "max":
                y = F.max_pool1d(F.pad(x, pad, value=float("-inf")), k, s)
            else:
                total = F.avg_pool1d(F.pad(x, pad), k, s) * k
                ones = torch.ones((1, 1, x.shape[2]), dtype=x.dtype, device=x.device)
                count = F.avg_pool1d(F.pad(ones, pad), k, s) * k
                y = total / count
        return y.transpose(1, 2) if self.channels_last else y

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, pool_size={self.pool_size}, stride={self.stride}, padding={self.padding!r}, "
                f"channels_last={self.channels_last}")


class GlobalPool1d(nn.Module):
    """Max or average over the time axis; an average honours a mask as Keras's ``GlobalAveragePooling1D``
    (tf.keras ``global_average_pooling1d.py`` ``call``, Keras 3 the same): ``sum(x * m) / sum(m)`` over the
    steps, which is NaN for a sequence whose every step is masked, as in Keras.

    Args:
        mode: ``"max"`` or ``"avg"``.
        channels_last: the time axis is 1 (``[B, T, C]``), else 2 (``[B, C, T]``).
        keepdims: keep the time axis (length 1).

    Inputs: x, and for ``"avg"`` optionally mask ``[B, T]`` (nonzero at the steps that count).
    Outputs: ``[B, C]`` (``[B, 1, C]`` with ``keepdims``).
    """

    def __init__(self, mode: str, channels_last: bool = True, keepdims: bool = False):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode, self.channels_last, self.keepdims = mode, channels_last, keepdims

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        axis = 1 if self.channels_last else 2
        if self.mode == "max":
            if mask is not None:
                raise ValueError("a global max pooling takes no mask")
            return x.amax(dim=axis, keepdim=self.keepdims)
        if mask is None:
            return x.mean(dim=axis, keepdim=self.keepdims)
        m = mask.to(x.dtype).unsqueeze(2 if self.channels_last else 1)
        return (x * m).sum(dim=axis, keepdim=self.keepdims) / m.sum(dim=axis, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, channels_last={self.channels_last}, keepdims={self.keepdims}"
