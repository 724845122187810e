"""The test that a computation never reads a device tensor's values on the host, runnable without a GPU.

A CUDA step that calls ``.item()``, ``float()``, ``bool()``, ``torch.equal``, ``nonzero`` or
``.cpu()`` on a device tensor waits for the GPU there (a host synchronisation), and such a step cannot be
captured in a CUDA graph. torch's meta device has shapes and dtypes but no values: every one of those calls
raises on a meta tensor. So a computation that runs to the end with its device tensors (parameters, inputs,
state) on ``meta`` takes no value from the device; host-side tensors (a batch's lengths as the data pipeline
made them) stay on the CPU beside them, as they would beside CUDA tensors.

    model = build().to(META)
    out = run_without_host_sync(lambda: step(model, x.to(META), lengths_on_cpu))

A copy from the host into a device tensor inside the step (``tensor.to(device)``, ``copy_`` from a CPU
tensor, ``torch.as_tensor(array, device=device)``) waits for the device too on CUDA (pageable memory) and
cannot be captured; the check fails on those as well, as far as torch's dispatcher shows them (it does not
show ``torch.tensor`` of a Python number or list made on the device directly). A CPU number taking part in
an operation (``x.mul_(torch.tensor(2.0))``) is no copy and passes.
"""
from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode

META = torch.device("meta")

T = TypeVar("T")
_COPIES = (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default)


class _NoHostToDeviceCopies(TorchDispatchMode):
    """Fails a copy whose source is a CPU tensor and whose result is a meta (device) tensor."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _COPIES:
            source = args[1] if func is torch.ops.aten.copy_.default else args[0]
            target = args[0].device if func is torch.ops.aten.copy_.default else kwargs.get("device")
            if (isinstance(source, torch.Tensor) and source.device.type == "cpu" and target is not None
                    and torch.device(target) == META):
                raise AssertionError(f"{self.what} copies a host tensor of shape {list(source.shape)} to the device "
                                     f"({func}): on CUDA that waits for the device and cannot be captured")
        return func(*args, **kwargs)


def run_without_host_sync(fn: Callable[[], T], what: str = "the computation") -> T:
    """``fn()``, whose device tensors are on :data:`META`; AssertionError (with torch's message) where it asks a
    device tensor for a value on the host, or copies a host tensor to the device."""
    try:
        with _NoHostToDeviceCopies(what):
            return fn()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        if "meta" in str(exc).lower():  # torch names the meta device or its meta kernels in these errors
            raise AssertionError(f"{what} reads a device tensor's value on the host (a synchronisation with the "
                                 f"device; it cannot be captured in a CUDA graph): {exc}") from exc
        raise
