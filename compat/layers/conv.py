"""1-D convolution over channels-last input, with TF's ``same`` and Keras's ``causal`` padding."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

PADDINGS = ("valid", "same", "causal")


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1):
    """(before, after) of TF's ``same`` padding (``tensorflow/core/framework/common_shape_fns.cc``
    ``GetWindowedOutputSizeVerbose``): ``ceil(length / stride)`` outputs, the total padding split with the odd
    element after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + effective - length, 0)
    return total // 2, total - total // 2


class Conv1d(nn.Conv1d):
    """``torch.nn.Conv1d`` (same parameters: ``weight`` [out, in / groups, k], ``bias`` [out]) that reads and
    writes ``[B, T, C]`` when ``channels_last`` and pads as Keras's ``Conv1D``:

    - ``"valid"``: none; ``"same"``: TF's split, the odd element after (:func:`same_padding`), zeros;
    - ``"causal"``: ``(k - 1) * dilation`` zeros before the sequence (keras ``Conv1D`` ``_compute_causal_padding``).

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as ``torch.nn.Conv1d``.
        padding: ``"valid"``, ``"same"`` or ``"causal"``.
        channels_last: inputs and outputs are ``[B, T, C]`` (Keras's default ``data_format``).

    Inputs: x ``[B, T, in]`` (``[B, in, T]`` without ``channels_last``). Outputs: ``[B, T', out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: str = "valid",
                 dilation: int = 1, groups: int = 1, bias: bool = True, channels_last: bool = True,
                 device=None, dtype=None):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation,
                         groups=groups, bias=bias, device=device, dtype=dtype)
        self.keras_padding, self.channels_last = padding, channels_last

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.transpose(1, 2)
        k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
        if self.keras_padding == "same":
            x = F.pad(x, same_padding(x.shape[2], k, s, d))
        elif self.keras_padding == "causal":
            x = F.pad(x, ((k - 1) * d, 0))
        y = super().forward(x)
        return y.transpose(1, 2) if self.channels_last else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", keras_padding={self.keras_padding!r}, channels_last={self.channels_last}"
