"""The fused kernel with the junhyukoh gradient quirks, checked in the backward pass.

``clipping_threshold`` (the clamp of the gate pre-activations' gradient at every step) and the dW_h defect
(W_hh's gradient against the raw h_{t-1}) change only gradients, which torch's fused kernel computes
itself. This kernel runs each layer's forward on the fused kernel, keeps its graph, and in the backward
pass (1) computes the unclamped gradient through it, the gradient of every step's gate pre-activations
included (the input term enters the kernel through an identity input weight, so its gradient is exactly
that); (2) where no element of that gradient exceeds the threshold, the clamp is the identity at every
step and the gradient is exact: the defect's term, sum over steps of (1 - cont_t) g_t^T h_{t-1}, is added
to W_hh's; (3) where some element exceeds it, the layer's backward is recomputed on the step loop, which
clamps as the fork does. Early in the fork's training the clamp acts (the unclamped gradients grow
backwards through time), later rarely: this is the fast exact kernel where the compiled loop is not
available (no C compiler, or CUDA).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from compat.recurrent.call import Call, restart_steps
from compat.recurrent.cell import CANONICAL_GATE_ORDER
from compat.recurrent.fused import canonical_layers, fused_call
from compat.recurrent.loop import lstm_layer
from compat.recurrent.masks import refusal as cell_masks_refusal
from compat.recurrent.stack import by_layer
from compat.recurrent.weights import LayerWeights


def _fused_layer(x_proj: Tensor, weight_hh: Tensor, h0: Tensor, c0: Tensor, cont: Optional[Tensor]):
    """One layer on the fused kernel from its input term x_proj [T, B, 4H]: (out, h_T, c_T)."""
    eye = torch.eye(x_proj.shape[2], dtype=x_proj.dtype, device=x_proj.device)
    layers = ((LayerWeights(eye, weight_hh),),)
    h, c = h0.unsqueeze(0), c0.unsqueeze(0)
    if cont is None:
        out, h, c = fused_call(x_proj, layers, (h, c), 0.0, False)
        return out, h[0], c[0]
    bounds = [0] + restart_steps(cont) + [x_proj.shape[0]]
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        scale = cont[start].view(1, -1, 1)
        out, h, c = fused_call(x_proj[start:stop], layers, (h * scale, c * scale), 0.0, False)
        pieces.append(out)
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0], h[0], c[0]


def _grads(outputs, inputs, grad_outputs, retain_graph: bool = False):
    grads = torch.autograd.grad(outputs, inputs, grad_outputs, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs)]


class _CheckedLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_proj, weight_hh, h0, c0, cont, cell):
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (x_proj, weight_hh, h0, c0)]
            outs = _fused_layer(*leaves, cont)
        ctx.graph = (leaves, outs)
        ctx.cont, ctx.cell = cont, cell
        return tuple(t.detach() for t in outs)

    @staticmethod
    def backward(ctx, dout, dh, dc):
        leaves, outs = ctx.graph
        cont, cell = ctx.cont, ctx.cell
        grads_out = [torch.zeros_like(o) if g is None else g for g, o in zip((dout, dh, dc), outs)]
        d_xproj, d_whh, d_h0, d_c0 = _grads(outs, leaves, grads_out, retain_graph=True)
        clip = cell.preact_grad_clip
        if clip is not None and bool((d_xproj.abs() > clip).any()):
            # The clamp acts somewhere: the step loop, which clamps at every step (and adds the defect).
            with torch.enable_grad():
                again = [t.detach().requires_grad_() for t in leaves]
                eye = torch.eye(again[0].shape[2], dtype=again[0].dtype, device=again[0].device)
                loop_outs = lstm_layer(again[0], LayerWeights(eye, again[1]), again[2], again[3], cont, None, None,
                                       cell)
                return (*_grads(loop_outs, again, grads_out), None, None)
        if cell.weight_grad_ignores_cont and cont is not None:
            # dW_h against the raw h_{t-1}: the kernel's gradient used cont_t h_{t-1}; add (1 - cont_t) h_{t-1}.
            out = outs[0].detach()
            h_prev = torch.cat([leaves[2].detach().unsqueeze(0), out[:-1]])
            d_whh = d_whh + torch.einsum("tbg,tbh->gh", d_xproj * (1 - cont).unsqueeze(2), h_prev)
        return d_xproj, d_whh, d_h0, d_c0, None, None


class Checked:
    name = "checked"
    families = ("lstm",)
    what = "torch.lstm per layer, the junhyukoh gradient quirks checked in backward (the step loop where the clamp acts)"

    @staticmethod
    def supports(call: Call) -> Optional[str]:
        reason = call.cell.plain_only("the checked kernel", projection=True)
        reason = reason or cell_masks_refusal(call, "checked")
        if reason is not None:
            return reason
        if call.directions == 2 or call.lengths is not None or call.mask is not None:
            return "the checked kernel runs one direction with cont only (no mask, no lengths)"
        return None

    @staticmethod
    def run(call: Call):
        layers = canonical_layers(call.layers, call.cell)
        cell = dataclasses.replace(call.cell, gate_order=CANONICAL_GATE_ORDER)  # the weights' order from here on

        def layer(x, w, h0, c0, cont, mask, live):
            x_proj = F.linear(x, w.weight_ih, w.bias_ih)
            if w.bias_hh is not None:
                x_proj = x_proj + w.bias_hh
            return _CheckedLayer.apply(x_proj, w.weight_hh, h0, c0, cont, cell)

        return by_layer(call.with_layers(layers), layer)


CHECKED = Checked()

__all__ = ["CHECKED"]
