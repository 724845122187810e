"""The test that a computation never reads a device tensor's values on the host, runnable without a GPU.

A CUDA step that calls ``.item()``, ``float()``, ``bool()``, ``torch.equal``, ``nonzero`` or
``.cpu()`` on a device tensor waits for the GPU there (a host synchronisation), and such a step cannot be
captured in a CUDA graph. torch's meta device has shapes and dtypes but no values: every one of those calls
raises on a meta tensor. So a computation that runs to the end with its device tensors (parameters, inputs,
state) on ``meta`` takes no value from the device; host-side tensors (a batch's lengths as the data pipeline
made them) stay on the CPU beside them, as they would beside CUDA tensors.

    model = build().to(META)
    out = run_without_host_sync(lambda: step(model, x.to(META), lengths_on_cpu))

A copy from the host to a CUDA device made without ``non_blocking=True`` waits for the device too (torch
synchronises the stream after it); ``blocking_copies=False`` fails such a copy to ``meta`` as well (and
any host tensor of one or more dimensions that a device operation takes, which torch would copy so).
"""
from __future__ import annotations

import contextlib
from typing import Callable, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

META = torch.device("meta")

T = TypeVar("T")



class _NoBlockingCopies(TorchDispatchMode):
    """Fails every operation that takes a host tensor and gives a device (meta) one, unless it is a copy made
    with ``non_blocking=True``; a host scalar (0 dimensions) that an operation reads as a number is not a copy."""

    _COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)
    # operations that take host tensors as host arguments by design (a packed sequence's lengths and batch
    # sizes live on the CPU beside data on the device): no copy
    _HOST_ARGUMENTS = ("aten::_pack_padded_sequence", "aten::_pack_padded_sequence_backward",
                       "aten::_pad_packed_sequence")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if any(t.device == META for t in outputs) and func._schema.name not in self._HOST_ARGUMENTS:
            copy = func in self._COPIES
            from_host = [t for t in inputs if t.device.type == "cpu" and (copy or t.dim() > 0)]
            if from_host and not (copy and kwargs.get("non_blocking", False)):
                raise AssertionError(f"{func} copies a host tensor of shape {list(from_host[0].shape)} to the device "
                                     "without non_blocking=True (a copy that waits for the device)")
        return out


def run_without_host_sync(fn: Callable[[], T], what: str = "the computation", *, blocking_copies: bool = True) -> T:
    """``fn()``, whose device tensors are on :data:`META`; AssertionError (with torch's message) where it asks a
    device tensor for a value on the host, and, ``blocking_copies=False``, where it copies a host tensor to the
    device without ``non_blocking=True``."""
    try:
        with (contextlib.nullcontext() if blocking_copies else _NoBlockingCopies()):
            return fn()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        if "meta" in str(exc).lower():  # torch names the meta device or its meta kernels in these errors
            raise AssertionError(f"{what} reads a device tensor's value on the host (a synchronisation with the "
                                 f"device; it cannot be captured in a CUDA graph): {exc}") from exc
        raise
