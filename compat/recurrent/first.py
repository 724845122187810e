"""The first step from a zero state as a kernel: a sequence of one step whose initial state was not given.

From ``h_prev = c_prev = 0`` the LSTM step (:mod:`compat.recurrent.cell`) needs neither the recurrent
product nor the forget gate::

    z = x W_ih^T + b_ih + b_hh        (h_prev W_hh^T is 0)
    c = sigmoid(i) * tanh(g)          (f * c_prev is 0: the forget gate is never read)
    h = sigmoid(o) * tanh(c)

the step loop's numbers (it computes ``f * 0 + i * tanh(g)``, the same value). The whole stack is one
autograd node with its backward written out (:class:`_FirstSteps`): seven tensor operations a layer
forward and about a dozen backward, where the step loop records a dozen autograd nodes a layer. The
gradients are the step loop's: 0 on the forget rows of W_ih and the biases, 0 on W_hh (``dz^T h_prev``), as
TF's ``BasicLSTMCell`` gives its kernel's state rows from a zero state (the TF book's sine regressor:
``dynamic_rnn`` over one step, no initial state).

It runs the plain LSTM (sigmoid gates, tanh; any gate order), one direction, one step, no initial state
given, no ``mask`` or ``lengths`` (``cont`` scales the zero state: nothing, so it is accepted where it
takes no gradient), no dropout and no gradient quirks. The step loop runs the rest.
"""
from __future__ import annotations

from typing import Optional

import torch

from compat.recurrent.call import Call
from compat.recurrent.masks import refusal as cell_masks_refusal

_sigmoid_backward = torch.ops.aten.sigmoid_backward
_tanh_backward = torch.ops.aten.tanh_backward


class _FirstSteps(torch.autograd.Function):
    """``(output [1, B, H], h_n [L, B, H], c_n [L, B, H])`` of the stack's first step from zeros.

    ``apply(gate_index, x [B, in], *weights)``, ``weights`` per layer ``weight_ih, weight_hh, bias_ih,
    bias_hh`` (a bias may be None); ``gate_index``: where the i, f, g and o blocks sit in the rows."""

    @staticmethod
    def forward(ctx, gate_index, x, *weights):
        ctx.set_materialize_grads(False)
        L = len(weights) // 4
        H = weights[1].shape[1]
        B = x.shape[0]
        bi, _, bg, bo = (slice(k * H, (k + 1) * H) for k in gate_index)
        h_n = x.new_empty(L, B, H)
        c_n = x.new_empty(L, B, H)
        saved = []
        inp = x
        for k in range(L):
            weight_ih, _, bias_ih, bias_hh = weights[4 * k:4 * k + 4]
            # the step loop's input term, rounded as it rounds it: (x W_ih^T + b_ih) + b_hh
            z = inp @ weight_ih.t() if bias_ih is None else torch.addmm(bias_ih, inp, weight_ih.t())
            if bias_hh is not None:
                z.add_(bias_hh)
            tg = z[:, bg].tanh()
            s = z.sigmoid_()  # all four blocks in one operation (f's is never read)
            c = torch.mul(s[:, bi], tg, out=c_n[k])
            tc = c.tanh()
            inp = torch.mul(s[:, bo], tc, out=h_n[k])
            saved += [s, tg, tc]
        out = h_n[L - 1:].clone()
        ctx.gate_index, ctx.L = gate_index, L
        # h_n and c_n are the caller's to change in place: a lower layer's h is recomputed in backward
        ctx.save_for_backward(x, *saved, *weights[0::4])
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, d_out, d_h_n, d_c_n):
        x, *rest = ctx.saved_tensors
        L = ctx.L
        saved, weights_ih = rest[:3 * L], rest[3 * L:]
        H = saved[1].shape[1]
        bi, _, bg, bo = (slice(k * H, (k + 1) * H) for k in ctx.gate_index)
        order = sorted(range(4), key=lambda j: ctx.gate_index[j])  # i, f, g, o indices in storage order
        needs = ctx.needs_input_grad
        grads = [None] * (1 + 4 * L)
        dh = d_out[0] if d_out is not None else None
        for k in range(L - 1, -1, -1):
            if d_h_n is not None:
                dh = d_h_n[k] if dh is None else dh + d_h_n[k]
            dc = None if d_c_n is None else d_c_n[k]
            s, tg, tc = saved[3 * k:3 * k + 3]
            if dh is None:
                dh = torch.zeros_like(tc)
            so, si = s[:, bo], s[:, bi]
            d_o = _sigmoid_backward(dh * tc, so)
            d_c = _tanh_backward(dh * so, tc)
            if dc is not None:
                d_c = d_c + dc
            d_i = _sigmoid_backward(d_c * tg, si)
            d_g = _tanh_backward(d_c * si, tg)
            blocks = (d_i, torch.zeros_like(d_i), d_g, d_o)
            dz = torch.cat([blocks[j] for j in order], 1)
            if k == 0:
                inp = x
            else:  # the layer below's h, as forward computed it
                s_below, _, tc_below = saved[3 * k - 3:3 * k]
                inp = s_below[:, bo] * tc_below
            w_ih = weights_ih[k]
            at = 1 + 4 * k  # this layer's weights among apply's tensor arguments (after gate_index and x)
            if needs[at + 1]:
                grads[at] = dz.t() @ inp
            if needs[at + 2]:
                grads[at + 1] = w_ih.new_zeros(w_ih.shape[0], H)
            if needs[at + 3] or needs[at + 4]:
                db = dz.sum(0)
                grads[at + 2] = db if needs[at + 3] else None
                grads[at + 3] = db if needs[at + 4] else None
            if k > 0 or needs[1]:
                dh = dz @ w_ih
        grads[0] = dh if needs[1] else None
        return (None, *grads)


class FirstStep:
    """The first step from a zero state (this module)."""

    name = "first"
    families = ("lstm",)
    what = "one step from no initial state: the input product and the i, g and o gates, one autograd node"

    @staticmethod
    def supports(call: Call) -> Optional[str]:
        if call.steps != 1:
            return "the first-step kernel runs a sequence of one step"
        if not call.zero_state:
            return "the first-step kernel runs from no initial state (zeros it need not read)"
        reason = call.cell.plain_only("the first-step kernel", projection=True)
        reason = reason or cell_masks_refusal(call, "first-step")
        if reason is not None:
            return reason
        if call.cell.gradient_quirks:
            return f"the first-step kernel has no gradient quirks; this cell has {call.cell.quirks()}"
        if call.directions == 2:
            return "the first-step kernel runs one direction"
        if call.mask is not None or call.lengths is not None:
            return "the first-step kernel has no mask or lengths"
        if call.cont is not None and call.cont.requires_grad:
            return "the first-step kernel takes no gradient of cont"
        if call.dropout > 0:
            return "the first-step kernel has no dropout"
        return None

    @staticmethod
    def run(call: Call):
        weights = []
        for (w,) in call.layers:
            weights += [w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh]
        out, h_n, c_n = _FirstSteps.apply(call.cell.gate_index, call.x[0], *weights)
        return out, (h_n, c_n)


FIRST = FirstStep()

__all__ = ["FIRST"]
