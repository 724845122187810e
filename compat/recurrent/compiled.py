"""The compiled step loop (:mod:`compat.fastloop`) as a kernel: one C loop per layer over raw CPU memory.

It runs the plain LSTM in any gate order, with ``cont`` and the junhyukoh gradient quirks inside (the
clamp at every step, dW_h against the raw h), forward direction, float32 and float64 on the CPU, where a
C compiler built it. Where a gradient is taken and the layer is tiny (up to :data:`INPUT_IN_LOOP_MAX`
multiply-adds in its input term) the loop computes the input term too. Without autograd it runs its forward
alone, reading W_hh transposed in place where the weights hold it that way (a TF kernel's lower half,
handed over as its transpose), else from a copy.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from compat import fastloop
from compat.recurrent.call import Call
from compat.recurrent.masks import refusal as cell_masks_refusal
from compat.recurrent.stack import by_layer, input_bias


# Up to this many multiply-adds (T * B * I * 4H) the input term x W_ih^T + b is computed inside the loop as
# well, forward and backward: there torch's matrix products cost more in calls than in arithmetic, and split
# themselves across threads (a parallel region, a wake-up, for a product of microseconds); above, torch's
# products are faster (measured in docs/performance.md: the Caffe sequence nets, H 7-50).
INPUT_IN_LOOP_MAX = 100_000


class Compiled:
    name = "compiled"
    families = ("lstm",)
    what = "compat.fastloop's C step loop, one call per layer (CPU, float32/float64)"

    @staticmethod
    def supports(call: Call) -> Optional[str]:
        reason = call.cell.plain_only("the compiled loop", projection=True)
        reason = reason or cell_masks_refusal(call, "compiled")
        if reason is not None:
            return reason
        if not call.on_cpu:
            return f"the compiled loop runs on the CPU; the input is on {call.x.device}"
        if call.x.dtype not in (torch.float32, torch.float64):
            return f"the compiled loop runs float32 and float64; the input is {call.x.dtype}"
        if call.directions == 2:
            return "the compiled loop runs one direction"
        if (call.lengths is not None or call.mask is not None) and not call.padding_unread:
            return ("the compiled loop runs lengths or a mask only where they are right padding and the steps past "
                    "each end are not read (past_end='unread')")
        if not fastloop.available():
            return f"the compiled loop is unavailable here: {fastloop.unavailable_reason()}"
        return None

    @staticmethod
    def run(call: Call):
        cell = call.cell
        grad = call.needs_grad

        def layer(x, w, h0, c0, cont, mask, live):
            if not grad:
                return fastloop.lstm_layer_inference(F.linear(x, w.weight_ih, input_bias(w)), w.weight_hh, h0, c0,
                                                     cont, gate_order=cell.gate_order)
            if x.numel() * w.weight_ih.shape[0] <= INPUT_IN_LOOP_MAX:
                return fastloop.lstm_layer_from_input(x, w.weight_ih, input_bias(w), w.weight_hh, h0, c0, cont,
                                                      gate_order=cell.gate_order, grad_clip=cell.preact_grad_clip,
                                                      weight_grad_ignores_cont=cell.weight_grad_ignores_cont)
            return fastloop.lstm_layer(F.linear(x, w.weight_ih, input_bias(w)), w.weight_hh, h0, c0, cont,
                                       gate_order=cell.gate_order, grad_clip=cell.preact_grad_clip,
                                       weight_grad_ignores_cont=cell.weight_grad_ignores_cont)

        return by_layer(call, layer, mask=None)


COMPILED = Compiled()

__all__ = ["COMPILED"]
