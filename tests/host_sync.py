"""The test that a computation never reads a device tensor's values on the host, runnable without a GPU.

A CUDA step that calls ``.item()``, ``float()``, ``bool()``, ``torch.equal``, ``nonzero`` or
``.cpu()`` on a device tensor waits for the GPU there (a host synchronisation), and such a step cannot be
captured in a CUDA graph. torch's meta device has shapes and dtypes but no values: every one of those calls
raises on a meta tensor. So a computation that runs to the end with its device tensors (parameters, inputs,
state) on ``meta`` takes no value from the device; host-side tensors (a batch's lengths as the data pipeline
made them) stay on the CPU beside them, as they would beside CUDA tensors.

    model = build().to(META)
    out = run_without_host_sync(lambda: step(model, x.to(META), lengths_on_cpu))

Copies from the host to the device are checked too, as far as torch's dispatcher shows them (``tensor.to``,
``copy_``, ``torch.as_tensor(array, device=...)``, and a host tensor of one or more dimensions that a device
operation takes, which torch copies; not ``torch.tensor`` of a Python number or list made on the device
directly). A host number that an operation reads as a number (a 0-dimensional CPU tensor) is no copy.

- ``copies="none"`` (the default; a step to be captured in a CUDA graph): no copy from the host at all. A
  blocking copy waits for the device; a captured one would repeat a copy from the same host address at every
  replay.
- ``copies="non_blocking"`` (an eager step that must not wait): copies made with ``non_blocking=True`` pass.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

META = torch.device("meta")
COPY_RULES = ("none", "non_blocking")

T = TypeVar("T")


class _HostCopies(TorchDispatchMode):
    """Fails an operation that takes a host tensor and gives a device (meta) one, as ``copies`` says."""

    _COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)
    # operations that take host tensors as host arguments by design (a packed sequence's lengths and batch
    # sizes live on the CPU beside data on the device): no copy
    _HOST_ARGUMENTS = ("aten::_pack_padded_sequence", "aten::_pack_padded_sequence_backward",
                       "aten::_pad_packed_sequence")

    def __init__(self, what: str, copies: str):
        super().__init__()
        self.what, self.copies = what, copies

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not any(t.device == META for t in outputs) or func._schema.name in self._HOST_ARGUMENTS:
            return out
        copy = func in self._COPIES
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        from_host = [t for t in inputs if t.device.type == "cpu" and (copy or t.dim() > 0)]
        if not from_host:
            return out
        where = f"{self.what} copies a host tensor of shape {list(from_host[0].shape)} to the device ({func})"
        if self.copies == "none":
            raise AssertionError(f"{where}: on CUDA that waits for the device, and a CUDA graph would repeat it "
                                 "from the same host memory at every replay")
        if not (copy and kwargs.get("non_blocking", False)):
            raise AssertionError(f"{where} without non_blocking=True (a copy that waits for the device)")
        return out


def run_without_host_sync(fn: Callable[[], T], what: str = "the computation", *, copies: str = "none") -> T:
    """``fn()``, whose device tensors are on :data:`META`; AssertionError (with torch's message) where it asks a
    device tensor for a value on the host, or copies a host tensor to the device other than ``copies``
    (:data:`COPY_RULES`) allows."""
    if copies not in COPY_RULES:
        raise ValueError(f"copies must be one of {COPY_RULES}, not {copies!r}")
    try:
        with _HostCopies(what, copies):
            return fn()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        if "meta" in str(exc).lower():  # torch names the meta device or its meta kernels in these errors
            raise AssertionError(f"{what} reads a device tensor's value on the host (a synchronisation with the "
                                 f"device; it cannot be captured in a CUDA graph): {exc}") from exc
        raise
