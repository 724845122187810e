"""One run of a recurrent stack, as the kernels see it: the cell, the weights, the inputs and the sequence
semantics, validated, time-major and in reading order, with the facts the selection rules read.

Sequence semantics (the driver, :func:`compat.recurrent.run.run`, validates them):

``cont`` [T, B] (Caffe's continuation input, BVLC ``recurrent_layer.cpp`` / ``lstm_layer.cpp``):
    before step t the state is multiplied by ``cont[t]`` (0 restarts a stream; values are numbers).
``mask`` [T, B] (the Theano tutorial's padding mask, DeepLearningTutorials ``lstm.py`` ``_step``):
    at a masked step the state and the output carry the previous values; fractional values blend.
``lengths`` [B] (TF ``dynamic_rnn(sequence_length=...)``, ONNX ``sequence_lens``, packed sequences):
    right-padded sequences; outputs past a sequence's end are 0, its final state is its last valid step's.
    The lengths are validated and kept on the host (the CPU): the packed kernel needs them there, and a
    caller that made them there (with the batch) costs the device no synchronisation.
``past_end``: what the caller reads past each sequence's end. None: the semantics' own outputs there and
    the final state. ``"unread"``: neither (the Theano tutorial's mean pooling multiplies those outputs by
    the mask, and reads no final state): right-padded sequences (``lengths``, or a right-padded mask)
    read one way may then run dense, the padded steps computed like any other, and no final state is
    returned. There ``lengths`` and a right-padded mask with those lengths are the same computation
    (within each sequence both are the plain recurrence); ``lengths`` is the form that reads nothing of
    the device: a mask must be read to know that it is right padding.
Direction: a reverse stack arrives here as a forward one over the reversed input; a bidirectional one
    as (forward, backward) weight pairs per layer.
Dropout: ``dropout`` is the drop probability in effect (0 outside training); ``"between"`` the layers
    (cuDNN, ``torch.nn.LSTM(dropout=...)``) or on every layer's ``"output"`` (TF ``DropoutWrapper``).
    ``cell_masks``: dropout masks inside the cell, on the input and on h_(t-1) per gate block (Keras's
    ``dropout`` / ``recurrent_dropout``; :mod:`compat.recurrent.masks`), None without them; per-step input
    masks are applied to ``x`` before the call is built, so a call never holds them.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from compat.recurrent.cell import Cell

PAST_END = (None, "unread")


class ShapeError(ValueError):
    """An input, state or weight whose shape (or dtype, or device) does not fit the others."""

DROPOUT_PLACEMENTS = ("none", "between", "output")


def right_padded_lengths(mask: Tensor) -> Optional[Tensor]:
    """Lengths [B] (int64, on the CPU) if ``mask`` [T, B] is 0/1 right padding (ones then zeros in each
    column), else None. A mask on the device is copied to the host once, and decided there: that copy is
    one synchronisation with the device, which a caller avoids by giving the lengths it made on the host."""
    host = mask.detach().cpu()
    lengths = (host != 0).sum(0)
    expected = (torch.arange(host.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)).to(host.dtype)
    return lengths if torch.equal(host, expected) else None


def restart_steps(cont: Tensor) -> List[int]:
    """Steps t >= 1 at which some stream's cont differs from 1."""
    return ((cont[1:] != 1).any(dim=1).nonzero().flatten() + 1).tolist()


class Call:
    """What a kernel runs (read-only once built). ``layers``: per layer a tuple of one (or, bidirectional, two)
    weight sets; ``state``: the initial state per layer and direction (the LSTM's ``(h0 [L*D, B, P],
    c0 [L*D, B, H])``); ``zero_state``: the caller gave none (``state`` holds zeros a kernel need not read).
    The facts the selection rules read are attributes or computed on first use."""

    __slots__ = ("cell", "layers", "x", "state", "cont", "mask", "lengths", "dropout", "dropout_placement",
                 "training", "past_end", "zero_state", "steps", "batch", "on_cpu", "_needs_grad", "_mask_lengths",
                 "_restarts", "_device_lengths", "cell_masks")

    def __init__(self, cell: Cell, layers: Tuple[tuple, ...], x: Tensor, state: Tuple[Tensor, ...], *,
                 cont: Optional[Tensor] = None, mask: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
                 dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
                 past_end: Optional[str] = None, zero_state: bool = False, cell_masks=None):
        self.cell, self.layers, self.x, self.state = cell, layers, x, state
        self.cell_masks = cell_masks  # compat.recurrent.masks.CellMasks, validated, no per-step input masks
        self.zero_state = zero_state  # the caller gave no initial state: ``state`` holds zeros
        self.cont, self.mask, self.lengths = cont, mask, lengths
        self.dropout, self.dropout_placement, self.training, self.past_end = dropout, dropout_placement, training, past_end
        self.steps, self.batch = x.shape[0], x.shape[1]
        self.on_cpu = x.is_cpu
        self._needs_grad = self._mask_lengths = self._restarts = self._device_lengths = None

    def with_layers(self, layers: Tuple[tuple, ...]) -> "Call":
        """The same call on other weights (the same shapes, another gate order)."""
        return Call(self.cell, layers, self.x, self.state, cont=self.cont, mask=self.mask, lengths=self.lengths,
                    dropout=self.dropout, dropout_placement=self.dropout_placement, training=self.training,
                    past_end=self.past_end, zero_state=self.zero_state, cell_masks=self.cell_masks)

    # ---------------------------------------------------------------------------------- sizes
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def directions(self) -> int:
        return len(self.layers[0])

    @property
    def hidden_size(self) -> int:
        return self.state[-1].shape[2]

    @property
    def output_size(self) -> int:
        """The width of h: P with a projection, else H."""
        return self.state[0].shape[2]

    # ---------------------------------------------------------------------------- derived facts
    @property
    def needs_grad(self) -> bool:
        """Whether autograd records this call (a gradient may be asked of it)."""
        if self._needs_grad is None:
            self._needs_grad = torch.is_grad_enabled() and self._any_requires_grad()
        return self._needs_grad

    def _any_requires_grad(self) -> bool:
        for dirs in self.layers:
            for w in dirs:
                for t in w:
                    if t is not None and t.requires_grad:
                        return True
        return self.x.requires_grad or any(t.requires_grad for t in self.state)

    @property
    def device_lengths(self) -> Optional[Tensor]:
        """``lengths`` (kept on the host) on the input's device, for the kernels that compute with them there:
        one copy from the host, made without waiting for the device (``non_blocking``; ``lengths`` is the
        core's own tensor, made by :func:`compat.recurrent.run.check_lengths`)."""
        if self.lengths is None:
            return None
        if self._device_lengths is None:
            self._device_lengths = self.lengths.to(self.x.device, non_blocking=True)
        return self._device_lengths

    @property
    def mask_lengths(self) -> Optional[Tensor]:
        """The lengths of a mask that is right padding, on the host (None without a mask, or for any other
        mask): :func:`right_padded_lengths`, one read of a mask on the device."""
        if self.mask is None:
            return None
        if self._mask_lengths is None:
            self._mask_lengths = (right_padded_lengths(self.mask),)
        return self._mask_lengths[0]

    @property
    def restarts(self) -> List[int]:
        """Steps t >= 1 at which ``cont`` restarts (or scales) some stream."""
        if self._restarts is None:
            self._restarts = [] if self.cont is None else restart_steps(self.cont)
        return self._restarts

    @property
    def padding_unread(self) -> bool:
        """The sequences are right padding, read one way, and nothing past their ends is read: the padded
        steps may be computed like any other (the mask, or the lengths, left out). ``lengths`` says so
        without reading the device; a mask is read once (:attr:`mask_lengths`). Both ways of a
        bidirectional layer are excluded: its backward direction reads the padded steps first."""
        if self.past_end != "unread" or self.directions != 1:
            return False
        if self.lengths is not None:
            return True
        return self.mask is not None and self.mask_lengths is not None

    @property
    def every_sequence_empty(self) -> bool:
        lengths = self.lengths if self.lengths is not None else self.mask_lengths
        return lengths is not None and not bool(lengths.any())  # on the host: no read of the device


__all__ = ["Call", "DROPOUT_PLACEMENTS", "PAST_END", "ShapeError", "restart_steps", "right_padded_lengths"]
