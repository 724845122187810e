"""The step loop: one layer, one direction, one time step after another, in Python and torch operations.

It runs every cell the core knows (:class:`compat.recurrent.cell.Cell`: named or custom activations,
peepholes, a projection of any width, clips, coupled gates, any gate order, the gradient quirks) with every
sequence semantics (``cont``, ``mask``, ``lengths``, both directions): the kernel that always applies, and
the reference the faster kernels are tested against. Per step it costs a dozen tensor operations and
autograd nodes, whatever the sizes.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from compat.recurrent.call import Call
from compat.recurrent.cell import Cell
from compat.recurrent.stack import by_layer


class _ClampGrad(torch.autograd.Function):
    """Identity forward; clamps the incoming gradient to [-threshold, threshold]."""

    @staticmethod
    def forward(ctx, x, threshold):
        ctx.threshold = threshold
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(-ctx.threshold, ctx.threshold), None


def _recurrent_product(h: Tensor, weight_hh: Tensor, scale: Optional[Tensor], weight_grad_ignores_scale: bool) -> Tensor:
    """(scale * h) @ weight_hh^T, optionally with weight_hh's gradient taken against the unscaled h."""
    if scale is None:
        return h @ weight_hh.t()
    scaled = h * scale
    if not weight_grad_ignores_scale:
        return scaled @ weight_hh.t()
    # junhyukoh caffe-lstm lstm_layer.cpp Backward_cpu accumulates dW_h against the raw h_{t-1} even where
    # clip is 0. Forward value: (scale*h) W^T exactly (the added terms cancel to an exact 0); gradient to
    # weight_hh: g^T h (raw); gradient to h: scale * (g W), as the forward implies.
    raw = h.detach() @ weight_hh.t()
    return scaled @ weight_hh.detach().t() + (raw - raw.detach())


def _input_transform(x: Tensor, w) -> Tensor:
    """All steps' input transforms in one product, both biases included."""
    x_proj = F.linear(x, w.weight_ih, w.bias_ih)
    if w.bias_hh is not None:
        x_proj = x_proj + w.bias_hh
    return x_proj


def lstm_layer(x: Tensor, w, h: Tensor, c: Tensor, cont: Optional[Tensor], mask: Optional[Tensor],
               live: Optional[Tensor], cell: Cell) -> Tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer over the whole sequence, step by step, as :mod:`compat.recurrent.cell` writes it.

    x [T, B, in]; ``live`` [T, B] bool: False past a sequence's length (the state is kept, the output is 0).
    Returns ([T, B, P], h_T, c_T).
    """
    x_proj = _input_transform(x, w)
    peephole = w.peephole
    if peephole is not None:
        p_i, p_f, p_o = peephole[0], peephole[1], peephole[2]
    w_hr = w.weight_hr
    gate, cell_input, cell_output = cell.functions
    pc, cc, grad_clip = cell.preact_clip, cell.cell_clip, cell.preact_grad_clip
    gate_index = None if cell.canonical_gate_order else cell.gate_index
    outputs = []
    for t in range(x.shape[0]):
        scale = None if cont is None else cont[t].unsqueeze(1)
        gates = x_proj[t] + _recurrent_product(h, w.weight_hh, scale, cell.weight_grad_ignores_cont)
        if scale is not None:
            c_prev, h_prev = c * scale, h * scale
        else:
            c_prev, h_prev = c, h
        if grad_clip is not None:
            gates = _ClampGrad.apply(gates, grad_clip)
        if gate_index is None:
            i, f, g, o = gates.chunk(4, dim=1)
        else:
            blocks = gates.chunk(4, dim=1)
            i, f, g, o = (blocks[k] for k in gate_index)
        if peephole is not None:
            i = i + p_i * c_prev
            f = f + p_f * c_prev
        if pc is not None:
            i, g = i.clamp(-pc, pc), g.clamp(-pc, pc)
        i = gate(i)
        if cell.input_forget:
            f = 1 - i
        else:
            f = gate(f if pc is None else f.clamp(-pc, pc))
        c_new = f * c_prev + i * cell_input(g)
        if cc is not None:
            c_new = c_new.clamp(-cc, cc)
        if mask is not None:
            # lstm.py _step blends the cell first and takes h from the blended cell (h = o * tanh(c));
            # the same as tanh of the unblended cell for 0/1 masks, not for fractional ones.
            m = mask[t].unsqueeze(1)
            c_new = m * c_new + (1 - m) * c_prev
        if peephole is not None:
            o = o + p_o * c_new
        if pc is not None:
            o = o.clamp(-pc, pc)
        h_new = gate(o) * cell_output(c_new)
        if w_hr is not None:
            h_new = h_new @ w_hr.t()
            if cell.proj_clip is not None:
                h_new = h_new.clamp(-cell.proj_clip, cell.proj_clip)
        if mask is not None:
            h_new = m * h_new + (1 - m) * h_prev
        if live is not None:
            alive = live[t].unsqueeze(1)
            outputs.append(torch.where(alive, h_new, torch.zeros_like(h_new)))
            h = torch.where(alive, h_new, h_prev)
            c = torch.where(alive, c_new, c_prev)
        else:
            h, c = h_new, c_new
            outputs.append(h)
    return torch.stack(outputs), h, c


class Loop:
    """The step loop (this module)."""

    name = "loop"
    what = "the step loop in Python: every cell, gate order, quirk and sequence semantics"

    @staticmethod
    def supports(call: Call) -> Optional[str]:
        return None  # every LSTM call

    @staticmethod
    def run(call: Call):
        cell = call.cell
        return by_layer(call, lambda x, w, h0, c0, cont, mask, live: lstm_layer(x, w, h0, c0, cont, mask, live, cell),
                        mask=call.mask)


LOOP = Loop()

__all__ = ["LOOP", "lstm_layer"]
