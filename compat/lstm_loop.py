"""The LSTM core's step loop: one layer, one direction, one time step after another.

:func:`loop_layer` is the plain recurrence with the Caffe ``cont`` and Theano ``mask`` semantics and the
custom-activation and gradient quirks the ports need; it does no other per-step work.
:func:`variant_loop_layer` adds what legacy cells have beyond that, in the order the legacy cells apply
them (see :class:`StepSemantics`). :mod:`compat.lstm` chooses between them and the fused kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Fn = Callable[[Tensor], Tensor]


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


def loop_layer(x: Tensor, w, h: Tensor, c: Tensor, cont: Optional[Tensor], mask: Optional[Tensor],
               tanh: Fn, sigmoid: Fn, preact_grad_clip: Optional[float],
               weight_grad_ignores_cont: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """One plain layer over the whole sequence, step by step. x [T, B, in] -> ([T, B, H], h_T, c_T)."""
    x_proj = _input_transform(x, w)
    outputs = []
    for t in range(x.shape[0]):
        scale = None if cont is None else cont[t].unsqueeze(1)
        gates = x_proj[t] + _recurrent_product(h, w.weight_hh, scale, weight_grad_ignores_cont)
        if scale is not None:
            c_prev = c * scale
            h_prev = h * scale
        else:
            c_prev, h_prev = c, h
        if preact_grad_clip is not None:
            gates = _ClampGrad.apply(gates, preact_grad_clip)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)
        if mask is not None:
            # lstm.py _step blends the cell first and takes h from the blended cell (h = o * tanh(c));
            # the same as tanh of the unblended cell for 0/1 masks, not for fractional ones.
            m = mask[t].unsqueeze(1)
            c_new = m * c_new + (1 - m) * c_prev
            h_new = m * (sigmoid(o) * tanh(c_new)) + (1 - m) * h_prev
        else:
            h_new = sigmoid(o) * tanh(c_new)
        h, c = h_new, c_new
        outputs.append(h)
    return torch.stack(outputs), h, c


@dataclass(frozen=True)
class StepSemantics:
    """What one step computes beyond the plain recurrence. Per step, in this order::

        z = x W_ih^T + b + (cont * h) W_hh^T                   i, f, g, o = split(z)
        i += p_i * c_prev;  f += p_f * c_prev                  (peepholes: TF LSTMCell, ONNX P)
        i, f, g = clamp(., -preact_clip, preact_clip)          (ONNX clip, on every pre-activation)
        i = gate(i);  f = 1 - i if input_forget else gate(f)   (ONNX input_forget)
        c = f * c_prev + i * cell_input(g)
        c = clamp(c, -cell_clip, cell_clip)                    (TF LSTMCell cell_clip)
        c = m * c + (1 - m) * c_prev                           (Theano mask)
        o += p_o * c;  o = clamp(o, -preact_clip, preact_clip) (the new, clipped cell)
        h = gate(o) * cell_output(c)
        h = clamp(h W_hr^T, -proj_clip, proj_clip)             (projection: TF num_proj, torch proj_size)
        h = m * h + (1 - m) * h_prev                           (Theano mask)

    With ``lengths``, a step past a sequence's end keeps (h, c) and outputs 0.
    """

    gate: Fn = torch.sigmoid
    cell_input: Fn = torch.tanh
    cell_output: Fn = torch.tanh
    cell_clip: Optional[float] = None
    proj_clip: Optional[float] = None
    preact_clip: Optional[float] = None
    input_forget: bool = False
    preact_grad_clip: Optional[float] = None
    weight_grad_ignores_cont: bool = False


def variant_loop_layer(x: Tensor, w, h: Tensor, c: Tensor, cont: Optional[Tensor], mask: Optional[Tensor],
                       live: Optional[Tensor], sem: StepSemantics) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer with peepholes, projection, clips, coupled gates or named activations, step by step.

    ``live`` [T, B] bool: False past a sequence's length (the state is kept, the output is 0).
    Returns ([T, B, P], h_T, c_T).
    """
    x_proj = _input_transform(x, w)
    peephole = w.peephole
    if peephole is not None:
        p_i, p_f, p_o = peephole[0], peephole[1], peephole[2]
    w_hr = w.weight_hr
    gate, cell_input, cell_output = sem.gate, sem.cell_input, sem.cell_output
    pc = sem.preact_clip
    outputs = []
    for t in range(x.shape[0]):
        scale = None if cont is None else cont[t].unsqueeze(1)
        gates = x_proj[t] + _recurrent_product(h, w.weight_hh, scale, sem.weight_grad_ignores_cont)
        if scale is not None:
            c_prev, h_prev = c * scale, h * scale
        else:
            c_prev, h_prev = c, h
        if sem.preact_grad_clip is not None:
            gates = _ClampGrad.apply(gates, sem.preact_grad_clip)
        i, f, g, o = gates.chunk(4, dim=1)
        if peephole is not None:
            i = i + p_i * c_prev
            f = f + p_f * c_prev
        if pc is not None:
            i, g = i.clamp(-pc, pc), g.clamp(-pc, pc)
        i = gate(i)
        if sem.input_forget:
            f = 1 - i
        else:
            f = gate(f if pc is None else f.clamp(-pc, pc))
        c_new = f * c_prev + i * cell_input(g)
        if sem.cell_clip is not None:
            c_new = c_new.clamp(-sem.cell_clip, sem.cell_clip)
        if mask is not None:
            m = mask[t].unsqueeze(1)
            c_new = m * c_new + (1 - m) * c_prev
        if peephole is not None:
            o = o + p_o * c_new
        if pc is not None:
            o = o.clamp(-pc, pc)
        h_new = gate(o) * cell_output(c_new)
        if w_hr is not None:
            h_new = h_new @ w_hr.t()
            if sem.proj_clip is not None:
                h_new = h_new.clamp(-sem.proj_clip, sem.proj_clip)
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
