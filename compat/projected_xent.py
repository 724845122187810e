"""Softmax cross-entropy of a linear projection, ``-log softmax(x @ W + b)[label]`` per row, in one
autograd node that keeps its [N, V] probabilities buffer from step to step.

The same math as ``F.cross_entropy(torch.addmm(b, x, W), labels, reduction="none")`` (TF's
``sparse_softmax_cross_entropy_with_logits(labels, logits=tf.matmul(x, W) + b)``, whose kernel computes
``log(sum(exp(z - max))) - (z[label] - max)`` and the gradient ``softmax - onehot``). At the language
models' sizes (5000 x 8009 logits for the Shakespeare model, 160 MB; 400 x 10000 for PTB) the unfused
graph makes four passes and four fresh tensors of that size a step, and the three matrix products with
the [H, V] weight take most of the rest. Here:

- The forward computes the product into the probabilities buffer and its softmax there in place (torch's
  fused row kernel); with oneDNN's product, which writes a new tensor, in row blocks of about a million
  logits, each block's softmax written straight into the buffer. The loss comes from the
  same pass: with ``m`` the row's maximum and ``p_max = softmax`` at that maximum ``= 1 / sum(exp(z -
  m))``, ``log-sum-exp = m - log(p_max)``, so the loss is ``(m - log(p_max)) - z[label]``, TF's
  expression, with no second exponential pass and no underflow (``p_max >= 1 / V``).
- The backward subtracts the one-hot in place (``softmax - onehot``) and scales the small products by
  the incoming per-row gradient instead of the [N, V] buffer: ``dx = (G @ W^T) * g``, ``dW = (x * g)^T
  @ G``, ``db = G^T g``.
- float32 on the CPU: the products go through oneDNN's inner product (``torch.ops.mkldnn.
  _linear_pointwise``, the library TensorFlow's CPU build uses for its MatMul), not torch's BLAS (MKL,
  which on AMD processors takes its generic code path, slower at these shapes; see
  docs/performance.md). The forward's weight is reordered once a call into oneDNN's blocked layout,
  which pays off from about a thousand rows; below that the forward's product stays with torch.mm.
  ``matmul="aten"`` (or ``torch.backends.mkldnn.flags(enabled=False)``) uses ``torch.mm`` throughout,
  ``matmul="onednn"`` oneDNN throughout. All are plain float32 products (no reduced-precision math);
  they differ from each other in summation order only.

The buffer is taken from a small pool in forward and given back only after its backward has run, so a
graph whose backward never runs, or several graphs alive at once, simply allocate more; nothing is
overwritten while a graph still needs it. (A fresh 160 MB tensor costs more than the arithmetic on it:
its pages fault in one by one.)
"""
from __future__ import annotations

import functools
import threading
from typing import List, Optional

import torch
from torch import Tensor


_BLOCK_ELEMENTS = 1 << 20  # logits per forward block (4 MB of float32)
_ONEDNN_FORWARD_MIN_ROWS = 1024
MATMULS = ("auto", "onednn", "aten")  # which library computes the products


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


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's inner product for dense CPU tensors (and it is enabled)."""
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and _onednn_ops_work()


@functools.lru_cache(maxsize=None)
def _onednn_ops_work() -> bool:
    """The private ops this module calls exist and take the arguments it passes (tried once on a 2 x 3
    product): another torch version that changed them sends every product to ATen instead of failing."""
    try:
        a, w = torch.ones(2, 3), torch.ones(4, 3)
        reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)
        packed = reorder(w, 2) if reorder is not None else w
        out = torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")
        return tuple(out.shape) == (2, 4) and bool((out == 3).all())
    except Exception:  # noqa: BLE001 - any failure means: do not use them
        return False


def _use_onednn(matmul: str, x: Tensor) -> bool:
    if matmul == "aten":
        return False
    ok = x.device.type == "cpu" and x.dtype == torch.float32 and onednn_available()
    if matmul == "onednn" and not ok:
        raise RuntimeError(f"matmul='onednn' needs float32 CPU tensors and torch with oneDNN enabled; got "
                           f"{x.dtype} on {x.device}, oneDNN {'enabled' if onednn_available() else 'unavailable'}")
    return ok


def _packed_weight(weight: Tensor, rows: int) -> Tensor:
    """``weight`` [H, V] as the inner product's [out, in] = [V, H] weight, reordered once into oneDNN's
    blocked layout for blocks of ``rows`` (else every block's call would reorder it again)."""
    w_t = weight.detach().t().contiguous()
    reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)
    return reorder(w_t, rows) if reorder is not None else w_t


def _linear(a: Tensor, w_out_in: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``a @ w_out_in^T (+ bias)`` by oneDNN's inner product (w_out_in [out, in], as nn.Linear keeps it)."""
    return torch.ops.mkldnn._linear_pointwise(a, w_out_in, bias, "none", [], "")


class _ProjectedXent(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, labels, pool, onednn):
        N, V = x.shape[0], weight.shape[1]
        probs = pool.take((N, V), x.dtype, x.device)
        loss = x.new_empty(N)
        # Repacking the weight for oneDNN costs about as much as it saves on a few hundred rows; from about a
        # thousand rows it wins (docs/performance.md).
        onednn_forward = onednn and (N >= _ONEDNN_FORWARD_MIN_ROWS or onednn == "all")
        # oneDNN writes each block's product into a new tensor: blocks small enough to stay in cache for
        # the softmax. torch.mm writes into the buffer itself, and the softmax runs there in place: one block.
        rows = max(1, _BLOCK_ELEMENTS // max(1, V)) if onednn_forward else max(1, N)
        w_t = _packed_weight(weight, min(rows, N)) if onednn_forward else None
        for start in range(0, N, rows):
            stop = min(N, start + rows)
            p = probs[start:stop]
            if onednn_forward:
                z = _linear(x[start:stop], w_t, bias)
            else:
                z = p  # the product in place, then its softmax over it
                if bias is None:
                    torch.mm(x[start:stop], weight, out=z)
                else:
                    torch.addmm(bias, x[start:stop], weight, out=z)
            z_max = z.amax(dim=1, keepdim=True)
            z_label = z.gather(1, labels[start:stop].unsqueeze(1))
            torch.softmax(z, dim=1, out=p)
            # log-sum-exp = max - log(softmax at the max): TF's log(sum(exp(z - max))) + max, without a
            # second exponential pass (amax, not max with indices: a tenth of the time).
            lse = z_max - p.amax(dim=1, keepdim=True).log_()
            loss[start:stop] = (lse - z_label).squeeze(1)
        ctx.save_for_backward(x, weight, labels)
        ctx.probs, ctx.pool, ctx.has_bias, ctx.onednn = probs, pool, bias is not None, onednn
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, weight, labels = ctx.saved_tensors
        g = ctx.probs
        ctx.probs = None
        if g is None:
            raise RuntimeError("projected_cross_entropy: backward ran twice through the same graph "
                               "(its buffer was handed back after the first; no retain_graph support)")
        g.scatter_add_(1, labels.unsqueeze(1), torch.full((g.shape[0], 1), -1.0, dtype=g.dtype, device=g.device))
        scale = grad.unsqueeze(1)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = (_linear(g, weight.contiguous(), None) if ctx.onednn else torch.mm(g, weight.t())).mul_(scale)
        if ctx.needs_input_grad[1]:
            xs = x * scale
            gw = _linear(xs.t(), g.t(), None) if ctx.onednn else torch.mm(xs.t(), g)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = torch.mv(g.t(), grad)
        ctx.pool.give(g)
        return gx, gw, gb, None, None, None


def projected_cross_entropy(x: Tensor, weight: Tensor, bias: Optional[Tensor], labels: Tensor,
                            pool: Optional[BufferPool] = None, *, matmul: str = "auto") -> Tensor:
    """Per-row ``-log softmax(x @ weight + bias)[labels]``: x [N, H], weight [H, V], bias [V] or None,
    labels [N] integer ids in [0, V). Returns [N]. Differentiable once in x, weight and bias. ``pool``
    keeps the probabilities buffer between calls (a fresh one each call when None). ``matmul``: "auto"
    (oneDNN's products for float32 on the CPU where torch has them, the forward's from about a thousand
    rows; else torch.mm), "onednn" (every product by oneDNN), "aten" (torch.mm)."""
    if x.dim() != 2 or weight.dim() != 2 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"x {list(x.shape)} and weight {list(weight.shape)} do not multiply ([N, H] @ [H, V])")
    if bias is not None and tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(f"bias has shape {list(bias.shape)}; expected [V] = [{weight.shape[1]}]")
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels have shape {list(labels.shape)}; expected [N] = [{x.shape[0]}]")
    if matmul not in MATMULS:
        raise ValueError(f"matmul must be one of {MATMULS}, not {matmul!r}")
    onednn = _use_onednn(matmul, x) and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype)
    if onednn and matmul == "onednn":
        onednn = "all"  # asked for by name: the forward's product too, whatever the number of rows
    return _ProjectedXent.apply(x, weight, bias, labels.long(), pool if pool is not None else BufferPool(0), onednn)


__all__ = ["MATMULS", "BufferPool", "onednn_available", "projected_cross_entropy"]
