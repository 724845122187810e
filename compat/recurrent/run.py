"""The driver: one recurrent stack's run, from the caller's tensors to the kernel the selection picks.

It validates the sequence semantics (``cont``, ``mask``, ``lengths``, their shapes and combinations),
makes the input time-major, reads a reverse stack's input back to front, builds the :class:`Call`, asks
:func:`compat.recurrent.select.select` for the kernel and runs it, and returns the outputs in the
caller's time order and layout. A family's front end (:func:`compat.lstm.lstm`) validates its weights
and state first.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from compat.recurrent.call import DROPOUT_PLACEMENTS, PAST_END, Call, ShapeError
from compat.recurrent.cell import Cell
from compat.recurrent.fused import PACKED, canonical_layers, fused_on_packed, plain_reason
from compat.recurrent.masks import CellMasks, apply_per_step, check as check_cell_masks
from compat.recurrent.select import Choice, KernelError, select
from compat.recurrent.stack import reversal_index, reverse_time

DIRECTIONS = ("forward", "reverse", "bidirectional")


def _shape(t) -> list:
    return list(t.shape)


def check_lengths(lengths, T: int, B: int) -> Tensor:
    """The validated lengths [B], int64, on the host: the core's own tensor (a copy), which the kernels read
    there (the packed kernel's pack_padded_sequence takes CPU lengths) and copy to the device where they
    compute with them (:attr:`compat.recurrent.call.Call.device_lengths`). Lengths given on the CPU (a list,
    numpy, a CPU tensor) cost the device nothing; lengths given on the device are copied to the host here,
    once: an unavoidable synchronisation, since their values decide the packing (and are checked here)."""
    lengths = torch.as_tensor(lengths)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.dtype.is_complex:
        raise ShapeError(f"lengths must hold integers; got dtype {lengths.dtype}")
    if _shape(lengths) != [B]:
        raise ShapeError(f"lengths has shape {_shape(lengths)}; expected [B] = [{B}]")
    lengths = lengths.detach().to(device="cpu", dtype=torch.int64, copy=True)
    if bool(((lengths < 0) | (lengths > T)).any()):
        raise ShapeError(f"lengths {lengths.tolist()} must lie in [0, T={T}]")
    return lengths


def check_options(direction: str, dropout: float, dropout_placement: str, past_end: Optional[str]) -> None:
    if dropout_placement not in DROPOUT_PLACEMENTS:
        raise ValueError(f"dropout_placement must be one of {DROPOUT_PLACEMENTS}, not {dropout_placement!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a drop probability in [0, 1); got {dropout}")
    if past_end not in PAST_END:
        raise ValueError(f"past_end must be None or 'unread', not {past_end!r}")


def _call(cell: Cell, layers: tuple, x: Tensor, state, cont, mask, lengths, batch_first: bool, direction: str,
          dropout: float, dropout_placement: str, training: bool, past_end: Optional[str], zero_state: bool = False,
          cell_masks: Optional[CellMasks] = None):
    """The validated, time-major :class:`Call` in reading order, and the reversal to undo (a reverse stack).
    ``cell_masks``: validated (:func:`compat.recurrent.masks.check`), of one direction where per step."""
    x, cell_masks = apply_per_step(x, cell_masks)
    if batch_first:
        x = x.transpose(0, 1)
        cont = None if cont is None else cont.transpose(0, 1)
        mask = None if mask is None else mask.transpose(0, 1)
    T, B, _ = x.shape
    for name, seq in (("cont", cont), ("mask", mask)):
        if seq is not None and _shape(seq) != [T, B]:
            layout = "[B, T]" if batch_first else "[T, B]"
            raise ShapeError(f"{name} has shape {_shape(seq.transpose(0, 1) if batch_first else seq)}; "
                             f"expected {layout} = {[B, T] if batch_first else [T, B]} to match the input")
    if cont is not None and mask is not None:
        raise ValueError("cont (Caffe) and mask (Theano) are different sequence semantics; pass one of them")
    if lengths is not None:
        if cont is not None or mask is not None:
            raise ValueError("lengths (right padding with zero outputs) does not combine with cont or mask")
        lengths = check_lengths(lengths, T, B)
    if cont is not None and cont.dtype != x.dtype:
        cont = cont.to(x.dtype)
    if mask is not None and mask.dtype != x.dtype:
        mask = mask.to(x.dtype)
    # A reverse stack is a forward stack over the reversed sequence, its output reversed back.
    reversal = None
    if direction == "reverse":
        reversal = reversal_index(T, None if lengths is None else lengths.to(x.device, non_blocking=True))
        x = reverse_time(x, reversal)
        mask = None if mask is None else mask.flip(0)
    p = dropout if (training and dropout_placement != "none") else 0.0
    call = Call(cell, layers, x, state, cont=cont, mask=mask, lengths=lengths, dropout=p,
                dropout_placement=dropout_placement, training=training, past_end=past_end, zero_state=zero_state,
                cell_masks=cell_masks)
    return call, reversal


def run(cell: Cell, layers: tuple, x, state: Tuple[Tensor, ...], *, cont: Optional[Tensor] = None,
        mask: Optional[Tensor] = None, lengths=None, batch_first: bool = False, direction: str = "forward",
        dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
        past_end: Optional[str] = None, kernel: str = "auto", zero_state: bool = False,
        cell_masks: Optional[CellMasks] = None):
    """``(output, state)`` of the stack; see :func:`compat.lstm.lstm` for the arguments. ``layers``: per layer
    a tuple of one (two: bidirectional) validated weight sets; ``state``: the validated initial state
    (``zero_state``: the caller gave none, and ``state`` holds zeros); ``cell_masks``: dropout masks inside the
    cell (:mod:`compat.recurrent.masks`). With ``past_end="unread"`` the state returned is None."""
    if cont is not None and direction != "forward":
        raise ValueError("cont (Caffe) runs forward only: its multipliers restart streams in reading order")
    if isinstance(x, PackedSequence):
        for name, value in (("cont", cont), ("mask", mask), ("lengths", lengths), ("cell_masks", cell_masks)):
            if value is not None:
                raise ValueError(f"{name} does not apply to a PackedSequence input (it carries its own lengths)")
        return _run_packed(cell, layers, x, state, direction=direction, dropout=dropout,
                           dropout_placement=dropout_placement, training=training, kernel=kernel)
    cell_masks = check_cell_masks(cell_masks, cell, layers, x, batch_first)
    if cell_masks is not None and cell_masks.splits_directions:
        return _directions_apart(cell, layers, x, state, cell_masks, mask=mask, lengths=lengths,
                                 batch_first=batch_first, dropout=dropout, dropout_placement=dropout_placement,
                                 training=training, past_end=past_end, kernel=kernel, zero_state=zero_state)
    call, reversal = _call(cell, layers, x, state, cont, mask, lengths, batch_first, direction, dropout,
                           dropout_placement, training, past_end, zero_state, cell_masks)
    output, final = select(call, kernel).kernel.run(call)
    if direction == "reverse":
        output = reverse_time(output, reversal)
    if batch_first:
        output = output.transpose(0, 1)
    return output, (None if past_end == "unread" else final)


def plan(cell: Cell, layers: tuple, x: Tensor, state: Tuple[Tensor, ...], *, cont: Optional[Tensor] = None,
         mask: Optional[Tensor] = None, lengths=None, batch_first: bool = False, direction: str = "forward",
         dropout: float = 0.0, dropout_placement: str = "between", training: bool = False,
         past_end: Optional[str] = None, kernel: str = "auto", zero_state: bool = False,
         cell_masks: Optional[CellMasks] = None) -> Choice:
    """The kernel :func:`run` would run for these arguments (and the rule that chose it); nothing is computed.
    (Per-step input masks on a bidirectional stack: the forward direction's; the backward one's is the same.)"""
    if isinstance(x, PackedSequence):
        raise ValueError("the kernel is planned for a dense x ([T, B, in], or [B, T, in] batch first); a "
                         "PackedSequence runs on the packed kernel where it runs the cell, else padded on the step loop")
    if cont is not None and direction != "forward":
        raise ValueError("cont (Caffe) runs forward only: its multipliers restart streams in reading order")
    cell_masks = check_cell_masks(cell_masks, cell, layers, x, batch_first)
    if cell_masks is not None and cell_masks.splits_directions:
        layers, state = tuple((dirs[0],) for dirs in layers), tuple(s[0:1] for s in state)
        cell_masks, direction = cell_masks.one_direction(0), "forward"
    call, _ = _call(cell, layers, x, state, cont, mask, lengths, batch_first, direction, dropout, dropout_placement,
                    training, past_end, zero_state, cell_masks)
    return select(call, kernel)


def _directions_apart(cell: Cell, layers: tuple, x: Tensor, state, cell_masks: CellMasks, **options):
    """A one-layer bidirectional stack whose directions read differently dropped-out inputs (per-step input
    masks, one per direction): its forward and its reverse direction run apart, each on its own input
    (any kernel may run each), the outputs concatenated and the final states stacked as the stack's."""
    outputs, finals = [], []
    for d, direction in enumerate(("forward", "reverse")):
        out, final = run(cell, tuple((dirs[d],) for dirs in layers), x, tuple(s[d:d + 1] for s in state),
                         direction=direction, cell_masks=cell_masks.one_direction(d), **options)
        outputs.append(out)
        finals.append(final)
    output = torch.cat(outputs, dim=2)
    if finals[0] is None:
        return output, None
    return output, tuple(torch.cat(pair) for pair in zip(*finals))


def _run_packed(cell: Cell, layers: tuple, packed: PackedSequence, state, *, direction: str, dropout: float,
                dropout_placement: str, training: bool, kernel: str):
    """A PackedSequence input: the packed kernel on its data where that runs the cell, else padded and run
    with ``lengths`` (the output packed again)."""
    D = len(layers[0])
    p = dropout if (training and dropout_placement != "none") else 0.0
    probe = Call(cell, layers, packed.data.unsqueeze(1), state)  # the cell's eligibility, not the sequence's
    reason = plain_reason(probe) or ("a reverse-only stack reads each sequence back to front"
                                     if direction == "reverse" else None)
    if kernel in ("auto", PACKED.name) and reason is None:
        data, *final = fused_on_packed(packed, canonical_layers(layers, cell), state,
                                       p if len(layers) > 1 else 0.0, training, D == 2, cell.fused_mode)
        if p > 0 and dropout_placement == "output":
            data = torch.nn.functional.dropout(data, p, training=True)
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), tuple(final)
    if kernel == PACKED.name:
        raise KernelError(f"kernel='packed' cannot run this PackedSequence: {reason}")
    padded, lengths = pad_packed_sequence(packed)
    out, final = run(cell, layers, padded, state, lengths=lengths, direction=direction,
                     dropout=dropout, dropout_placement=dropout_placement, training=training, kernel=kernel)
    order = packed.sorted_indices
    if order is not None:
        out = out.index_select(1, order)
        lengths = lengths.index_select(0, order.cpu())
    data = pack_padded_sequence(out, lengths, enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), final


__all__ = ["DIRECTIONS", "check_lengths", "check_options", "plan", "run"]
