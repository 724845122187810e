"""torch's fused recurrent kernels (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``, ``torch.rnn_relu``: cuDNN
on CUDA, oneDNN or ATen's kernel on the CPU), three ways:

- :data:`FUSED`: one call over the dense sequence (a ``cont`` that restarts streams only at step 0 scales
  the initial state; right padding whose padded steps nobody reads, ``lengths`` or a mask, is left out);
- :data:`PACKED`: right-padded sequences (``lengths``, or a mask that is right padding) as a packed
  sequence, the steps past each end filled as the semantics say (0, or the carried h for a mask);
- :data:`SEGMENTS`: a ``cont`` that restarts streams mid-sequence: one fused call per stretch between
  restarts, the state scaled by ``cont`` at each.

All three run the plain cell of each family only: the LSTM with sigmoid gates, tanh, no clips, no
peepholes, a projection narrower than the cell, without the legacy gradient quirks where a gradient is
taken; the GRU with the reset gate after the recurrent product (cuDNN's and torch's only GRU), sigmoid
and tanh, no clip; the simple RNN with tanh or relu, no clip. A GRU whose reset gate comes before the
product (TF1, Keras reset_after=False, ONNX linear_before_reset=0) never runs here. Weights in a legacy
gate order are gathered into the canonical one first.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from compat.recurrent.call import Call
from compat.recurrent.cell import Cell
from compat.recurrent.masks import refusal as cell_masks_refusal


# ------------------------------------------------------------------------------------------ eligibility
def plain_reason(call: Call) -> Optional[str]:
    """Why torch's fused kernel cannot compute this call's cell (None when it can)."""
    cell = call.cell
    reason = cell.plain_only("the fused kernel")
    if reason is not None:
        return reason
    if cell.fused_mode is None:  # every cell beyond its family's plain one has a reason above; kept as a guard
        return f"torch has no fused kernel for this {cell.family} cell"
    if cell.projection and call.output_size >= call.hidden_size:
        return (f"torch's fused kernel takes projections narrower than the cell; this one projects H "
                f"{call.hidden_size} to {call.output_size}")
    if cell.gradient_quirks and call.needs_grad:
        return f"the gradient quirks ({cell.quirks()}) act in the backward pass, which the fused kernel computes itself"
    return None


def canonical_layers(layers, cell: Cell):
    """The weights with their gate blocks in the canonical order (as stored when they are). The blocks are
    sliced and concatenated where the weights are: no index is copied from the host (a copy to a CUDA device
    waits for it)."""
    if cell.canonical_gate_order:
        return layers
    H = layers[0][0].weight_hh.shape[0] // cell.gates

    def gathered(t):
        return None if t is None else torch.cat([t[j * H:(j + 1) * H] for j in cell.gate_index])

    return tuple(tuple(w._replace(weight_ih=gathered(w.weight_ih), weight_hh=gathered(w.weight_hh),
                                  bias_ih=gathered(w.bias_ih), bias_hh=gathered(w.bias_hh)) for w in dirs)
                 for dirs in layers)


# ------------------------------------------------------------------------------------------ torch.lstm, torch.gru
def _flat_weights(layers: Sequence[tuple]) -> Tuple[list, bool]:
    """torch.lstm's flat parameter list: per layer and direction w_ih, w_hh, [b_ih, b_hh], [w_hr]."""
    has_bias = any(w.bias_ih is not None or w.bias_hh is not None for dirs in layers for w in dirs)
    flat = []
    for dirs in layers:
        for w in dirs:
            flat += [w.weight_ih, w.weight_hh]
            if has_bias:
                zeros = None
                for b in (w.bias_ih, w.bias_hh):
                    if b is None:
                        zeros = zeros if zeros is not None else w.weight_hh.new_zeros(w.weight_hh.shape[0])
                        b = zeros
                    flat.append(b)
            if w.weight_hr is not None:
                flat.append(w.weight_hr)
    # cuDNN copies the weights into one buffer through flat views, which fails on the transposed views
    # the Keras and ONNX layouts give ("view size is not compatible with input tensor's size and stride").
    flat = [t.contiguous() if t.is_cuda else t for t in flat]
    return flat, has_bias


def _kernel_mode(dropout: float, training: bool, tensors) -> Tuple[float, bool]:
    """torch.lstm's ``(dropout, train)``. ``train`` also tells cuDNN to keep what a backward needs, and a
    backward through a call made with train=False fails on CUDA ("cudnn RNN backward can only be called in
    training mode"; the CPU kernels do not mind, and keep their inference path): on CUDA, where a gradient
    is wanted, the call is made in training mode with the dropout switched off unless ``training``. The
    forward values are the same either way."""
    if training or not tensors[0].is_cuda:
        return (dropout if training else 0.0), training
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    return 0.0, wants_grad


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The warnings torch.lstm gives that are notes, not problems."""
    with warnings.catch_warnings():
        # cuDNN copies non-contiguous weights into one buffer per call (once per forward, not per step).
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        # the CPU falls back from oneDNN to ATen's kernel for projections
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        yield


#: Cell.fused_mode -> torch's kernel. Each takes (input, [batch_sizes,] hx, flat weights, has_biases, layers,
#: dropout, train, bidirectional[, batch_first]); the LSTM's hx is the pair (h, c), the others' h alone.
_TORCH_KERNELS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def fused_call(x: Tensor, layers, state: Tuple[Tensor, ...], dropout: float, training: bool,
               bidirectional: bool = False, mode: str = "lstm") -> Tuple[Tensor, ...]:
    """One torch kernel call (``mode``: torch.lstm, torch.gru, torch.rnn_tanh, torch.rnn_relu) over the dense
    x [T, B, in]: (output, *final state)."""
    flat, has_bias = _flat_weights(layers)
    dropout, training = _kernel_mode(dropout, training, [x, *state, *flat])
    hx = state if mode == "lstm" else state[0]
    with _quiet():
        out = _TORCH_KERNELS[mode](x, hx, flat, has_bias, len(layers), dropout, training, bidirectional, False)
    return tuple(out)


def fused_on_packed(packed: PackedSequence, layers, state: Tuple[Tensor, ...], dropout: float, training: bool,
                    bidirectional: bool, mode: str = "lstm") -> Tuple[Tensor, ...]:
    """torch's kernel on a PackedSequence's data, states in the caller's batch order (as torch.nn.LSTM / GRU / RNN):
    (data, *final state)."""
    if packed.sorted_indices is not None:
        state = tuple(s.index_select(1, packed.sorted_indices) for s in state)
    flat, has_bias = _flat_weights(layers)
    dropout, training = _kernel_mode(dropout, training, [packed.data, *state, *flat])
    hx = state if mode == "lstm" else state[0]
    with _quiet():
        data, *final = _TORCH_KERNELS[mode](packed.data, packed.batch_sizes, hx, flat, has_bias, len(layers),
                                            dropout, training, bidirectional)
    if packed.unsorted_indices is not None:
        final = [s.index_select(1, packed.unsorted_indices) for s in final]
    return (data, *final)


def _fused_packed(x: Tensor, lengths: Tensor, layers, state: Tuple[Tensor, ...], dropout: float, training: bool,
                  bidirectional: bool, carry_last: bool, mode: str) -> Tuple[Tensor, ...]:
    """Right-padded sequences through the packed kernel; ``lengths`` [B] on the host (the call's), so that
    nothing here reads the device: pack_padded_sequence takes them there, the columns to run are chosen
    there, and their index goes to the device without waiting for it.

    Outputs past a sequence's end: its last h (``carry_last``, the mask semantics, one direction) or 0
    (the ``lengths`` semantics, as pad_packed_sequence fills them). Zero-length columns keep their initial
    state.
    """
    T, B, _ = x.shape
    h0 = state[0]
    out_width = h0.shape[2] * (2 if bidirectional else 1)
    all_nonempty = bool((lengths > 0).all())
    if all_nonempty:
        xs, lens, states = x, lengths, state
    else:
        nonempty_host = (lengths > 0).nonzero().flatten()
        nonempty = nonempty_host.to(x.device, non_blocking=True)
        xs, lens = x.index_select(1, nonempty), lengths.index_select(0, nonempty_host)
        states = tuple(s.index_select(1, nonempty) for s in state)
    # Sorted here, on the host: pack_padded_sequence(enforce_sorted=False) copies its order to the device
    # with a blocking copy, and pad_packed_sequence copies the inverse order back to the host.
    sorted_lens, order_host = torch.sort(lens, descending=True)
    order = order_host.to(x.device, non_blocking=True)
    unorder = torch.empty_like(order_host).scatter_(0, order_host, torch.arange(order_host.numel()))
    unorder = unorder.to(x.device, non_blocking=True)
    packed = pack_padded_sequence(xs.index_select(1, order), sorted_lens, enforce_sorted=True)
    out_data, *finals = fused_on_packed(PackedSequence(packed.data, packed.batch_sizes, order, unorder), layers,
                                        states, dropout, training, bidirectional, mode)
    out, _ = pad_packed_sequence(PackedSequence(out_data, packed.batch_sizes), total_length=T)
    out = out.index_select(1, unorder)
    if carry_last and bool((lens < T).any()):  # the mask semantics read past some end: h carried there
        steps = torch.arange(T).unsqueeze(1)
        padded = (steps >= lens.unsqueeze(0)).to(device=x.device, non_blocking=True).unsqueeze(2)
        out = torch.where(padded, finals[0][-1].unsqueeze(0), out)
    if all_nonempty:
        return (out, *finals)
    if carry_last:
        out_full = h0[-1].unsqueeze(0).expand(T, B, out_width)
    else:
        out_full = h0.new_zeros(T, B, out_width)
    out_full = out_full.index_copy(1, nonempty, out)
    return (out_full, *(s.index_copy(1, nonempty, f) for s, f in zip(state, finals)))


def _between(call: Call) -> float:
    """The dropout torch.lstm applies itself: between layers."""
    return call.dropout if call.num_layers > 1 else 0.0


# ----------------------------------------------------------------------------------------------- kernels
class _TorchRNN:
    """What the three forms share: each family's plain cell only (:func:`plain_reason`), each form's own sequences
    (:meth:`sequence_reason`), the weights gathered into the canonical gate order first, and the output
    dropout applied after torch's own between the layers."""

    name = what = ""
    families = ("lstm", "gru", "rnn")

    def supports(self, call: Call) -> Optional[str]:
        return plain_reason(call) or cell_masks_refusal(call, self.name) or self.sequence_reason(call)

    def run(self, call: Call):
        output, *final = self.run_canonical(call, canonical_layers(call.layers, call.cell))
        if call.dropout > 0 and call.dropout_placement == "output":
            output = F.dropout(output, call.dropout, training=True)
        return output, tuple(final)

    def sequence_reason(self, call: Call) -> Optional[str]:
        raise NotImplementedError

    def run_canonical(self, call: Call, layers) -> Tuple[Tensor, ...]:
        raise NotImplementedError


class Fused(_TorchRNN):
    """:func:`fused_call` over the dense sequence."""

    name = "fused"
    what = "torch.lstm / torch.gru / torch.rnn_* over the dense sequence (cuDNN, oneDNN or ATen)"

    def sequence_reason(self, call: Call) -> Optional[str]:
        if (call.lengths is not None or call.mask is not None) and not call.padding_unread:
            return ("lengths or a mask run in the dense kernel only where they are right padding read one way and "
                    "the steps past each end are not read (past_end='unread'); else on the packed kernel")
        if call.restarts:
            return "cont restarts streams after step 0 (the segments kernel runs one call per stretch)"
        return None

    def run_canonical(self, call: Call, layers):
        state = call.state
        if call.cont is not None:  # restarts at step 0 only: the initial state, scaled
            scale = call.cont[0].view(1, call.batch, 1)
            state = tuple(s * scale for s in state)
        return fused_call(call.x, layers, state, _between(call), call.training, call.directions == 2,
                          call.cell.fused_mode)


class Packed(_TorchRNN):
    """Right-padded sequences as a packed sequence."""

    name = "packed"
    what = "torch's fused kernel over a packed sequence (lengths, or a mask that is right padding)"

    def sequence_reason(self, call: Call) -> Optional[str]:
        if call.lengths is None and call.mask is None:
            return "the packed kernel runs right-padded sequences (lengths, or a mask that is right padding)"
        if call.mask is not None:
            if call.mask_lengths is None:
                return "the mask is not right padding (ones, then zeros, in every column)"
            if call.directions == 2:
                return "a mask read both ways (Keras's go_backwards reverses the whole time axis, padding included)"
        if call.every_sequence_empty:
            return "every sequence is empty: the packed kernel would have nothing to run and would cut the graph"
        return None

    def run_canonical(self, call: Call, layers):
        carry = call.lengths is None  # the mask semantics: h carried past each end
        lengths = call.mask_lengths if carry else call.lengths  # both on the host
        return _fused_packed(call.x, lengths, layers, call.state, _between(call), call.training, call.directions == 2,
                             carry_last=carry, mode=call.cell.fused_mode)


class Segments(_TorchRNN):
    """One fused call per stretch between the steps at which ``cont`` restarts a stream."""

    name = "segments"
    what = "torch's fused kernel once per stretch between cont's restarts, the state scaled by cont at each"

    def sequence_reason(self, call: Call) -> Optional[str]:
        return "the segments kernel runs a cont input" if call.cont is None else None

    def run_canonical(self, call: Call, layers):
        cont, B, T = call.cont, call.batch, call.steps
        bounds = [0] + call.restarts + [T]
        pieces: List[Tensor] = []
        state = call.state
        for start, stop in zip(bounds[:-1], bounds[1:]):
            scale = cont[start].view(1, B, 1)
            out, *state = fused_call(call.x[start:stop], layers, tuple(s * scale for s in state), _between(call),
                                     call.training, mode=call.cell.fused_mode)
            pieces.append(out)
        return ((pieces[0] if len(pieces) == 1 else torch.cat(pieces)), *state)


FUSED, PACKED, SEGMENTS = Fused(), Packed(), Segments()

__all__ = ["FUSED", "PACKED", "SEGMENTS", "canonical_layers", "fused_call", "fused_on_packed", "plain_reason"]
