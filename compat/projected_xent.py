"""Softmax cross-entropy of a linear projection, ``-log softmax(x @ W + b)[label]`` per row, in one
autograd node that keeps its [N, V] logits buffer from step to step.

The same math as ``F.cross_entropy(torch.addmm(b, x, W), labels, reduction="none")`` (TF's
``sparse_softmax_cross_entropy_with_logits(labels, logits=tf.matmul(x, W) + b)``), computed as
``logsumexp(logits) - logits[label]``; the gradient of the logits, ``(softmax - onehot) * g``, is formed
in place in the logits buffer during backward, and that buffer goes back to a small pool for the next
step. At the language models' sizes (5000 x 8009 logits for the Shakespeare model, 160 MB) the unfused
graph allocates four such tensors a step (logits, log-softmax, the zero-filled NLL gradient, the
log-softmax gradient), and on the CPU each fresh allocation of that size is a fresh mapping whose pages
fault in one by one: they cost more than the arithmetic. A buffer is taken from the pool in forward and
given back only after its backward has run, so a graph whose backward never runs, or several graphs
alive at once, simply allocate more; nothing is overwritten while a graph still needs it.
"""
from __future__ import annotations

import threading
from typing import List, Optional

import torch
from torch import Tensor


_BLOCK_ELEMENTS = 1 << 20  # 4 MB of float32 per temporary block


class BufferPool:
    """Reusable buffers of one shape, dtype and device at a time (at most ``keep`` of them)."""

    def __init__(self, keep: int = 1):
        self.keep = keep
        self._free: List[Tensor] = []
        self._lock = threading.Lock()

    def take(self, shape, dtype, device) -> Tensor:
        with self._lock:
            for k, buf in enumerate(self._free):
                if tuple(buf.shape) == tuple(shape) and buf.dtype == dtype and buf.device == device:
                    return self._free.pop(k)
        return torch.empty(shape, dtype=dtype, device=device)

    def give(self, buf: Tensor) -> None:
        with self._lock:
            self._free.insert(0, buf)
            del self._free[self.keep:]


class _ProjectedXent(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, labels, pool):
        logits = pool.take((x.shape[0], weight.shape[1]), x.dtype, x.device)
        if bias is None:
            torch.mm(x, weight, out=logits)
        else:
            torch.addmm(bias, x, weight, out=logits)
        # In row blocks: logsumexp's [rows, V] temporaries stay small enough for the allocator to reuse.
        rows = max(1, _BLOCK_ELEMENTS // max(1, logits.shape[1]))
        lse = torch.cat([torch.logsumexp(block, dim=1) for block in logits.split(rows)])
        loss = lse - logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        ctx.save_for_backward(x, weight, labels, lse)
        ctx.logits, ctx.pool, ctx.has_bias = logits, pool, bias is not None
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, weight, labels, lse = ctx.saved_tensors
        g = ctx.logits
        ctx.logits = None
        g.sub_(lse.unsqueeze(1)).exp_()                                       # softmax
        g.scatter_add_(1, labels.unsqueeze(1), torch.full_like(lse, -1.0).unsqueeze(1))  # - onehot
        g.mul_(grad.unsqueeze(1))
        gx = torch.mm(g, weight.t()) if ctx.needs_input_grad[0] else None
        gw = torch.mm(x.t(), g) if ctx.needs_input_grad[1] else None
        gb = g.sum(0) if (ctx.has_bias and ctx.needs_input_grad[2]) else None
        ctx.pool.give(g)
        return gx, gw, gb, None, None


def projected_cross_entropy(x: Tensor, weight: Tensor, bias: Optional[Tensor], labels: Tensor,
                            pool: Optional[BufferPool] = None) -> Tensor:
    """Per-row ``-log softmax(x @ weight + bias)[labels]``: x [N, H], weight [H, V], bias [V] or None,
    labels [N] integer ids in [0, V). Returns [N]. Differentiable once in x, weight and bias. ``pool``
    keeps the logits buffer between calls (a fresh one each call when None)."""
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"x {list(x.shape)} and weight {list(weight.shape)} do not multiply ([N, H] @ [H, V])")
    if bias is not None and tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(f"bias has shape {list(bias.shape)}; expected [V] = [{weight.shape[1]}]")
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels have shape {list(labels.shape)}; expected [N] = [{x.shape[0]}]")
    return _ProjectedXent.apply(x, weight, bias, labels.long(), pool if pool is not None else BufferPool(0))


__all__ = ["BufferPool", "projected_cross_entropy"]
