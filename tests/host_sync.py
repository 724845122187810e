"""The test that a computation never reads a device tensor's values on the host, runnable without a GPU.

A CUDA step that calls ``.item()``, ``float()``, ``bool()``, ``torch.equal``, ``nonzero`` or
``.cpu()`` on a device tensor waits for the GPU there (a host synchronisation), and such a step cannot be
captured in a CUDA graph. torch's meta device has shapes and dtypes but no values: every one of those calls
raises on a meta tensor. So a computation that runs to the end with its device tensors (parameters, inputs,
state) on ``meta`` takes no value from the device; host-side tensors (a batch's lengths as the data pipeline
made them) stay on the CPU beside them, as they would beside CUDA tensors.

    model = build().to(META)
    out = run_without_host_sync(lambda: step(model, x.to(META), lengths_on_cpu))
"""
from __future__ import annotations

from typing import Callable, TypeVar

import torch

META = torch.device("meta")

T = TypeVar("T")



def run_without_host_sync(fn: Callable[[], T], what: str = "the computation") -> T:
    """``fn()``, whose device tensors are on :data:`META`; AssertionError (with torch's message) where it asks a
    device tensor for a value on the host."""
    try:
        return fn()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        if "meta" in str(exc).lower():  # torch names the meta device or its meta kernels in these errors
            raise AssertionError(f"{what} reads a device tensor's value on the host (a synchronisation with the "
                                 f"device; it cannot be captured in a CUDA graph): {exc}") from exc
        raise
