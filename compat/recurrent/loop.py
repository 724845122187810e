"""The step loop: one layer, one direction, one time step after another, in Python and torch operations.

It runs every cell the core knows (the LSTM, :func:`lstm_layer`; the GRU, :func:`gru_layer`; the simple RNN,
:func:`rnn_layer`) (:class:`compat.recurrent.cell.Cell`: named or custom activations,
peepholes, a projection of any width, clips, coupled gates, any gate order, the gradient quirks) with every
sequence semantics (``cont``, ``mask``, ``lengths``, both directions), and the dropout masks inside the cell
(:mod:`compat.recurrent.masks`: on the input and on h_(t-1), per gate block or one for all): the kernel that
always applies, and the reference the faster kernels are tested against. Per step it costs a dozen tensor
operations and autograd nodes, whatever the sizes.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from compat.recurrent.call import Call
from compat.recurrent.cell import CANONICAL_GATE_ORDERS, Cell
from compat.recurrent.fused import canonical_layers
from compat.recurrent.masks import DirectionMasks
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


def _input_term(x: Tensor, w, m: Optional[Tensor] = None) -> Tensor:
    """x W_ih^T + b_ih for all steps; with input masks ``m`` (:mod:`compat.recurrent.masks`), per gate block k
    (a_k * x) W_k^T + b_k: ``m`` [B, in] one mask for every block, [G, B, in] one per block (the weights' order)."""
    if m is None:
        return F.linear(x, w.weight_ih, w.bias_ih)
    if m.dim() == 2:
        return F.linear(x * m, w.weight_ih, w.bias_ih)
    G = m.shape[0]
    weights = w.weight_ih.chunk(G, 0)
    biases = [None] * G if w.bias_ih is None else w.bias_ih.chunk(G, 0)
    return torch.cat([F.linear(x * m[k], weights[k], biases[k]) for k in range(G)], dim=-1)


def _input_transform(x: Tensor, w, m: Optional[Tensor] = None) -> Tensor:
    """All steps' input transforms in one product, both biases included (``m``: input masks, :func:`_input_term`)."""
    x_proj = _input_term(x, w, m)
    if w.bias_hh is not None:
        x_proj = x_proj + w.bias_hh
    return x_proj


def _dropped_product(weight_hh: Tensor, m: Tensor):
    """The function h -> (m_k * h) U_k^T of every gate block k, one [B, G*H] tensor as h W_hh^T is: ``m`` [B, P]
    one recurrent mask for every block (one product), [G, B, P] one per block (one batched product)."""
    if m.dim() == 2:
        w_t = weight_hh.t()
        return lambda h: (h * m) @ w_t
    G, B, P = m.shape
    w_t = weight_hh.reshape(G, -1, P).transpose(1, 2)
    return lambda h: torch.bmm(h * m, w_t).transpose(0, 1).reshape(B, -1)


def _block(m: Optional[Tensor], k: int) -> Optional[Tensor]:
    """Gate block k's mask of ``m`` (one mask for every block, or one per block)."""
    return m if m is None or m.dim() == 2 else m[k]


def _blocks(m: Optional[Tensor], start: int, stop: int) -> Optional[Tensor]:
    """The masks of gate blocks start..stop-1 (one mask for every block stays itself)."""
    return m if m is None or m.dim() == 2 else m[start:stop]


def _in_weight_order(m: Optional[Tensor], cell: Cell) -> Optional[Tensor]:
    """Per-block masks (canonical order) in the order of the weights' gate blocks (the cell's ``gate_order``)."""
    if m is None or m.dim() == 2 or cell.canonical_gate_order:
        return m
    canonical = CANONICAL_GATE_ORDERS[cell.family]
    return m[[canonical.index(g) for g in cell.gate_order]]


def lstm_layer(x: Tensor, w, h: Tensor, c: Tensor, cont: Optional[Tensor], mask: Optional[Tensor],
               live: Optional[Tensor], cell: Cell,
               masks: Optional[DirectionMasks] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer over the whole sequence, step by step, as :mod:`compat.recurrent.cell` writes it.

    x [T, B, in]; ``live`` [T, B] bool: False past a sequence's length (the state is kept, the output is 0);
    ``masks``: the dropout masks inside the cell (:mod:`compat.recurrent.masks`). Returns ([T, B, P], h_T, c_T).
    """
    m_in, m_rec = (None, None) if masks is None else (masks.input, masks.recurrent)
    x_proj = _input_transform(x, w, _in_weight_order(m_in, cell))
    dropped = None if m_rec is None else _dropped_product(w.weight_hh, _in_weight_order(m_rec, cell))
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
        if dropped is None:
            gates = x_proj[t] + _recurrent_product(h, w.weight_hh, scale, cell.weight_grad_ignores_cont)
        else:  # Keras LSTMCell.call (implementation=1): h_tm1_i = h_tm1 * rec_dp_mask[0], ... per gate
            gates = x_proj[t] + dropped(h if scale is None else h * scale)
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


def _clamp(t: Tensor, clip: Optional[float]) -> Tensor:
    return t if clip is None else t.clamp(-clip, clip)


def _carry(t: int, h_next: Tensor, h_prev: Tensor, mask: Optional[Tensor], live: Optional[Tensor]):
    """(output, state) of step t for a one-tensor state: the mask blends, ``live`` keeps the state past the end
    (and outputs 0 there)."""
    if mask is not None:
        keep = mask[t].unsqueeze(1)
        h_next = keep * h_next + (1 - keep) * h_prev
    if live is None:
        return h_next, h_next
    alive = live[t].unsqueeze(1)
    return torch.where(alive, h_next, torch.zeros_like(h_next)), torch.where(alive, h_next, h_prev)


def gru_layer(x: Tensor, w, h: Tensor, cont: Optional[Tensor], mask: Optional[Tensor], live: Optional[Tensor],
              cell: Cell, masks: Optional[DirectionMasks] = None) -> Tuple[Tensor, Tensor]:
    """One GRU layer over the whole sequence, step by step (:mod:`compat.recurrent.cell` writes the step out).

    ``w``'s rows in the canonical blocks r | z | n. Returns ([T, B, H], h_T). The input term of all steps is
    one product, every bias outside the reset folded into it; per step, reset before the product: the r and
    z rows' recurrent product with their input term added inside (one addmm), f on both, the n rows' product
    of r * h likewise, g, and h' = n + z (h - n) as one lerp: seven operations and autograd nodes, fewer than
    torch's own GRU cell takes. Reset after the product: the recurrent product of all rows, then the gates.
    ``masks``: the dropout masks inside the cell (:mod:`compat.recurrent.masks`), the recurrent ones in the
    products (one batched product per step where each block has its own).
    """
    H = h.shape[1]
    gate, candidate = cell.functions
    clip = cell.preact_clip
    w_hh, b_hh = w.weight_hh, w.bias_hh
    m_in, m_rec = (None, None) if masks is None else (masks.input, masks.recurrent)
    # Keras 2.0-2.3 GRUCell.call (implementation=2): h_tm1 *= rec_dp_mask[0] before h = z * h_tm1 + (1 - z) * hh
    m_blend = _block(m_rec, 1) if masks is not None and masks.update_uses_dropped_h else None
    x_proj = _input_term(x, w, m_in)
    if cell.reset_after:
        # b_hn stays inside the reset (r * (h W_hn^T + b_hn)); b_hr and b_hz join the input term.
        w_hh_t = w_hh.t()
        dropped = None if m_rec is None else _dropped_product(w_hh, m_rec)
        b_n = None if b_hh is None else b_hh[2 * H:]
        if b_hh is not None:
            x_proj = x_proj + torch.cat([b_hh[:2 * H], b_hh.new_zeros(H)])
    else:
        # reset before the product: r * h enters the n rows' product; every bias is outside it and joins the
        # input term (TF1 GRUCell's single candidate bias is that sum).
        w_rz_t, w_n_t = w_hh[:2 * H].t(), w_hh[2 * H:].t()
        dropped = None if m_rec is None else _dropped_product(w_hh[:2 * H], _blocks(m_rec, 0, 2))
        m_n = _block(m_rec, 2)
        if b_hh is not None:
            x_proj = x_proj + b_hh
    x_rz = x_proj[..., :2 * H].unbind(0)
    x_n = x_proj[..., 2 * H:].unbind(0)
    outputs = []
    for t in range(x.shape[0]):
        h_prev = h if cont is None else h * cont[t].unsqueeze(1)
        if cell.reset_after:
            hh = h_prev @ w_hh_t if dropped is None else dropped(h_prev)
            rz = gate(_clamp(x_rz[t] + hh[:, :2 * H], clip))
            r, z = rz.chunk(2, dim=1)
            h_n = hh[:, 2 * H:] if b_n is None else hh[:, 2 * H:] + b_n
            n = candidate(_clamp(x_n[t] + r * h_n, clip))
        elif dropped is None:
            rz = gate(_clamp(torch.addmm(x_rz[t], h_prev, w_rz_t), clip))
            r, z = rz.chunk(2, dim=1)
            n = candidate(_clamp(torch.addmm(x_n[t], r * h_prev, w_n_t), clip))
        else:  # Keras GRUCell.call: K.dot(r * h_tm1_h, recurrent_kernel[:, 2 * units:]), h_tm1_h the dropped h
            rz = gate(_clamp(x_rz[t] + dropped(h_prev), clip))
            r, z = rz.chunk(2, dim=1)
            n = candidate(_clamp(torch.addmm(x_n[t], r * (h_prev * m_n), w_n_t), clip))
        h_next = torch.lerp(n, h_prev if m_blend is None else h_prev * m_blend, z)  # (1 - z) * n + z * h
        out, h = _carry(t, h_next, h_prev, mask, live)
        outputs.append(out)
    return torch.stack(outputs), h


def rnn_layer(x: Tensor, w, h: Tensor, cont: Optional[Tensor], mask: Optional[Tensor], live: Optional[Tensor],
              cell: Cell, masks: Optional[DirectionMasks] = None) -> Tuple[Tensor, Tensor]:
    """One simple RNN layer over the whole sequence: h' = g(clip(x W_ih^T + b_ih + h W_hh^T + b_hh)); ``masks``:
    the dropout masks inside the cell (Keras SimpleRNNCell.call: ``inputs * dp_mask``, ``prev_output *
    rec_dp_mask``). Returns ([T, B, H], h_T)."""
    (activation,) = cell.functions
    clip = cell.preact_clip
    m_in, m_rec = (None, None) if masks is None else (masks.input, masks.recurrent)
    x_proj = _input_transform(x, w, m_in).unbind(0)
    w_hh_t = w.weight_hh.t()
    dropped = None if m_rec is None else _dropped_product(w.weight_hh, m_rec)
    outputs = []
    for t in range(x.shape[0]):
        h_prev = h if cont is None else h * cont[t].unsqueeze(1)
        pre = torch.addmm(x_proj[t], h_prev, w_hh_t) if dropped is None else x_proj[t] + dropped(h_prev)
        h_next = activation(_clamp(pre, clip))
        out, h = _carry(t, h_next, h_prev, mask, live)
        outputs.append(out)
    return torch.stack(outputs), h


class Loop:
    """The step loop (this module)."""

    name = "loop"
    what = "the step loop in Python: every cell, gate order, quirk, sequence semantics and cell mask"
    families = ("lstm", "gru", "rnn")

    @staticmethod
    def supports(call: Call) -> Optional[str]:
        return None  # every call

    @staticmethod
    def run(call: Call):
        cell = call.cell
        if cell.family == "lstm":
            return by_layer(call, lambda x, w, h0, c0, cont, mask, live, masks=None:
                            lstm_layer(x, w, h0, c0, cont, mask, live, cell, masks), mask=call.mask)
        layer = gru_layer if cell.family == "gru" else rnn_layer
        return by_layer(call.with_layers(canonical_layers(call.layers, cell)),
                        lambda x, w, h0, cont, mask, live, masks=None: layer(x, w, h0, cont, mask, live, cell, masks),
                        mask=call.mask)


LOOP = Loop()

__all__ = ["LOOP", "gru_layer", "lstm_layer", "rnn_layer"]
