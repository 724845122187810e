"""Running a stack one layer and one direction at a time (the kernels that step through time), and the
time reversals that reverse and bidirectional stacks need."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from compat.recurrent.call import Call

# run_layer(x [T, B, in], weights, *state, cont, mask, live) -> (out [T, B, P], *state_T), the state one
# direction's: the LSTM's h0 [B, P], c0 [B, H]; the GRU's and the simple RNN's h0 [B, H].
# ``live`` [T, B] bool is False past a sequence's length (with ``lengths``). With cell masks (only the step
# loop takes them) also ``masks=``: the direction's :class:`compat.recurrent.masks.DirectionMasks`.
LayerRunner = Callable[..., Tuple[Tensor, Tensor, Tensor]]


def reversal_index(T: int, lengths: Optional[Tensor]) -> Optional[Tensor]:
    """[T, B] gather index reversing each column's first lengths[b] steps (None: reverse all of them)."""
    if lengths is None:
        return None
    steps = torch.arange(T, device=lengths.device).unsqueeze(1)
    return torch.where(steps < lengths.unsqueeze(0), lengths.unsqueeze(0) - 1 - steps, steps)


def reverse_time(x: Tensor, index: Optional[Tensor]) -> Tensor:
    """x [T, B, ...] read back to front (tf.reverse_sequence with lengths, tf.reverse without)."""
    if index is None:
        return x.flip(0)
    return x.gather(0, index.view(index.shape + (1,) * (x.dim() - 2)).expand_as(x))


def by_layer(call: Call, run_layer: LayerRunner, *, mask: Optional[Tensor] = None
             ) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """The stack, layer by layer: each direction through ``run_layer``, dropout where the call places it.
    ``mask`` is the mask the kernel honours (the call's, or None where it runs unmasked)."""
    T, L, D = call.steps, call.num_layers, call.directions
    live = None
    lengths = call.device_lengths
    if lengths is not None:
        live = torch.arange(T, device=call.x.device).unsqueeze(1) < lengths.unsqueeze(0)
    bw_reversal = reversal_index(T, lengths) if D == 2 else None
    p = call.dropout
    inp = call.x
    finals = [[] for _ in call.state]  # per state tensor, per layer and direction
    for layer, dirs in enumerate(call.layers):
        outs = []
        for d, w in enumerate(dirs):
            k = layer * D + d
            xs, cont_, mask_ = inp, call.cont, mask
            if d == 1:
                xs, cont_, mask_ = reverse_time(inp, bw_reversal), None, None if mask is None else mask.flip(0)
            masks = {} if call.cell_masks is None else {"masks": call.cell_masks.direction(d)}
            out, *final = run_layer(xs, w, *(s[k] for s in call.state), cont_, mask_, live, **masks)
            outs.append(out if d == 0 else reverse_time(out, bw_reversal))
            for kept, s in zip(finals, final):
                kept.append(s)
        out = outs[0] if D == 1 else torch.cat(outs, dim=2)
        if p > 0 and (layer < L - 1 or call.dropout_placement == "output"):
            out = F.dropout(out, p, training=True)
        inp = out
    if len(finals[0]) == 1:
        return inp, tuple(kept[0].unsqueeze(0) for kept in finals)
    return inp, tuple(torch.stack(kept) for kept in finals)


def input_bias(w) -> Optional[Tensor]:
    """The one bias of the input term: bias_ih + bias_hh (either may be absent)."""
    if w.bias_hh is None:
        return w.bias_ih
    return w.bias_hh if w.bias_ih is None else w.bias_ih + w.bias_hh


__all__ = ["by_layer", "input_bias", "reversal_index", "reverse_time"]
