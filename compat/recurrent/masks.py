"""Dropout masks applied inside the cell: on the input x_t and on the previous state h_{t-1} on their way into
each gate block's product (variational dropout: Keras's ``dropout`` / ``recurrent_dropout``; which masks a
Keras version drew is decided in :mod:`compat.frameworks.keras.dropout`, which hands them here).

With an input mask ``a_k`` and a recurrent mask ``m_k`` for gate block k (LSTM i, f, g, o; GRU r, z, n; the
simple RNN's one block), a step computes (:mod:`compat.recurrent.cell` for the rest)::

    pre_k = (a_k * x_t) W_k^T + b_k + (m_k * h_{t-1}) U_k^T
    GRU, reset after the product:  n = g((a_n * x_t) W_n^T + b_in + r * ((m_n * h_{t-1}) U_n^T + b_hn))
    GRU, reset before the product: n = g((a_n * x_t) W_n^T + b_n + (r * (m_n * h_{t-1})) U_n^T)
    GRU, update_uses_dropped_h:    h_t = z * (m_z * h_{t-1}) + (1 - z) * n

The mask values are the caller's (inverted dropout's 0 or 1 / (1 - rate)). ``cont`` scales h_{t-1} before
the mask; a masked step (``mask``) carries the undropped h_{t-1} (Keras's ``K.rnn``), as without masks.

:class:`CellMasks`, per direction of a one-layer stack (a tuple of one, or two: forward, backward; an entry
may be None: that direction's input (or state) is not dropped out):

``input``: ``[B, in]`` one mask for every gate block, or ``[G, B, in]`` one per block in the canonical order
    (:data:`compat.recurrent.cell.CANONICAL_GATE_ORDERS`), the same at every step; with ``input_per_step``,
    a mask of the input's own shape (``[T, B, in]``, ``[B, T, in]`` with ``batch_first``): a new mask at every
    step and element, shared by the gate blocks: ``x * mask`` before any kernel runs (so the fused kernels
    may run it: a bidirectional stack then runs as its two directions).
``recurrent``: ``[B, P]`` or ``[G, B, P]`` (P: the width of h), the same at every step.
``update_uses_dropped_h``: the GRU mixes its update with the dropped-out h_{t-1} (``m_z``: the recurrent
    mask of the z block): Keras 2.0-2.3 ``GRUCell.call`` with ``implementation=2`` (``h_tm1 *=
    rec_dp_mask[0]``).

The driver (:func:`compat.recurrent.run.run`) validates them (:func:`check`) and applies the per-step input
masks (:func:`apply_per_step`); the rest reach the kernels in :attr:`compat.recurrent.call.Call.cell_masks`,
and only the step loop (:mod:`compat.recurrent.loop`) applies them: every other kernel refuses the call
(:func:`refusal`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

from torch import Tensor

from compat.recurrent.cell import FAMILY_NAMES, Cell


class CellMasksError(ValueError):
    """Cell masks that do not fit the call (the message names the field and the shape at fault)."""


class DirectionMasks(NamedTuple):
    """One direction's masks, as the step loop reads them (shapes: :class:`CellMasks`)."""

    input: Optional[Tensor]
    recurrent: Optional[Tensor]
    update_uses_dropped_h: bool


def _entries(name: str, value) -> Optional[Tuple[Optional[Tensor], ...]]:
    if value is None:
        return None
    if isinstance(value, Tensor) or not isinstance(value, (tuple, list)) or not value:
        raise CellMasksError(f"cell_masks.{name} must be None or a tuple of one mask (or None) per direction; got "
                             f"{type(value).__name__}")
    for d, m in enumerate(value):
        if m is not None and not isinstance(m, Tensor):
            raise CellMasksError(f"cell_masks.{name}[{d}] must be a tensor or None; got {type(m).__name__}")
    value = tuple(value)
    return None if all(m is None for m in value) else value


@dataclass(frozen=True)
class CellMasks:
    """Dropout masks inside the cell, per direction (the module docstring gives the shapes and the step)."""

    input: Optional[Tuple[Optional[Tensor], ...]] = None
    recurrent: Optional[Tuple[Optional[Tensor], ...]] = None
    input_per_step: bool = False
    update_uses_dropped_h: bool = False

    def __post_init__(self):
        object.__setattr__(self, "input", _entries("input", self.input))
        object.__setattr__(self, "recurrent", _entries("recurrent", self.recurrent))
        for name in ("input_per_step", "update_uses_dropped_h"):
            if type(getattr(self, name)) is not bool:
                raise CellMasksError(f"cell_masks.{name} must be true or false; got {getattr(self, name)!r}")
        if self.input is not None and self.recurrent is not None and len(self.input) != len(self.recurrent):
            raise CellMasksError(f"cell_masks has input masks for {len(self.input)} directions and recurrent masks "
                                 f"for {len(self.recurrent)}")

    @property
    def empty(self) -> bool:
        return self.input is None and self.recurrent is None

    def direction(self, d: int) -> DirectionMasks:
        """Direction d's masks (the step loop's view)."""
        return DirectionMasks(None if self.input is None else self.input[d],
                              None if self.recurrent is None else self.recurrent[d], self.update_uses_dropped_h)

    def one_direction(self, d: int) -> "CellMasks":
        """The masks of direction d alone (a bidirectional stack run as its two directions)."""
        return CellMasks(None if self.input is None else (self.input[d],),
                         None if self.recurrent is None else (self.recurrent[d],), self.input_per_step,
                         self.update_uses_dropped_h)

    @property
    def splits_directions(self) -> bool:
        """Per-step input masks of a bidirectional stack: each direction reads its own dropped-out input."""
        return self.input_per_step and self.input is not None and len(self.input) == 2


def check_kind(masks) -> None:
    """``cell_masks`` is a :class:`CellMasks` or None (the front ends ask first, before any shape)."""
    if masks is not None and not isinstance(masks, CellMasks):
        raise CellMasksError(f"cell_masks must be a compat.recurrent.masks.CellMasks or None; got "
                             f"{type(masks).__name__}")


def check(masks, cell: Cell, layers: tuple, x: Tensor, batch_first: bool) -> Optional[CellMasks]:
    """``masks`` validated against the call (x dense, as the caller gave it); None where it holds no mask."""
    check_kind(masks)
    if masks is None:
        return None
    if masks.update_uses_dropped_h:
        if cell.family != "gru":
            raise CellMasksError(f"update_uses_dropped_h is the GRU's (its update gate); this cell is a "
                                 f"{FAMILY_NAMES[cell.family]}")
        if masks.recurrent is None:
            raise CellMasksError("update_uses_dropped_h mixes the update with the dropped-out h_(t-1): it needs "
                                 "recurrent masks")
    if masks.empty:
        return None
    if len(layers) != 1:
        raise CellMasksError(f"cell masks are one layer's (each layer draws its own); this stack has {len(layers)} "
                             "layers: run them one at a time")
    if masks.recurrent is not None and cell.weight_grad_ignores_cont:
        raise CellMasksError("recurrent masks do not combine with weight_grad_ignores_cont (junhyukoh caffe-lstm's "
                             "gradient rule has no dropout inside the cell)")
    D = len(layers[0])
    G = cell.gates
    w = layers[0][0]
    n_in, width = w.weight_ih.shape[1], w.weight_hh.shape[1]
    B = x.shape[0 if batch_first else 1]
    if masks.input_per_step:
        per_step = list(x.shape)
        layout = "[B, T, in]" if batch_first else "[T, B, in]"
        wanted = {"input": ([per_step], f"x's shape {layout} = {per_step} (input_per_step)")}
    else:
        wanted = {"input": ([[B, n_in], [G, B, n_in]], f"[B, in] = {[B, n_in]} or [G, B, in] = {[G, B, n_in]}")}
    wanted["recurrent"] = ([[B, width], [G, B, width]], f"[B, H] = {[B, width]} or [G, B, H] = {[G, B, width]}")
    for name, (shapes, words) in wanted.items():
        entries = getattr(masks, name)
        if entries is None:
            continue
        if len(entries) != D:
            raise CellMasksError(f"cell_masks.{name} has masks for {len(entries)} directions; the stack has {D}")
        for d, m in enumerate(entries):
            if m is None:
                continue
            if list(m.shape) not in shapes:
                raise CellMasksError(f"cell_masks.{name}[{d}] has shape {list(m.shape)}; expected {words}")
            if m.dtype != x.dtype or m.device != x.device:
                raise CellMasksError(f"cell_masks.{name}[{d}] has dtype {m.dtype} on {m.device}; the input x has "
                                     f"dtype {x.dtype} on {x.device}")
    return masks


def apply_per_step(x: Tensor, masks: Optional[CellMasks]) -> Tuple[Tensor, Optional[CellMasks]]:
    """``(x * the per-step input mask, the masks left for the kernel)`` for one direction (x in the caller's
    layout and time order, as the mask); the masks as given where they have no per-step input mask."""
    if masks is None or not masks.input_per_step or masks.input is None:
        return x, masks
    (m,) = masks.input
    if m is not None:
        x = x * m  # tf-keras LSTM.call on the fused path: inputs = inputs * dropout_mask[0], a mask per step
    rest = CellMasks(None, masks.recurrent, False, masks.update_uses_dropped_h)
    return x, (None if rest.empty else rest)


def refusal(call, kernel: str) -> Optional[str]:
    """Why ``kernel`` (any but the step loop) cannot run a call with cell masks; None without them."""
    if call.cell_masks is None:
        return None
    return (f"the {kernel} kernel applies no dropout masks inside the cell (on the input per gate block or on "
            f"h_(t-1)); the step loop does")


__all__ = ["CellMasks", "CellMasksError", "DirectionMasks", "apply_per_step", "check", "check_kind", "refusal"]
