"""The one tolerance table of the test suite, keyed by dtype.

Every comparison of floating-point results goes through :func:`assert_close`. A case that needs a
looser bound passes ``loosen=`` with a factor *and* a reason; the reason is part of the call so that a
reader sees why at the place it is used.
"""
from __future__ import annotations

import numpy as np
import torch

# rtol, atol per dtype. float64: the references and the port do the same arithmetic in a different
# order, which leaves rounding differences near 1e-15 relative; 1e-10 leaves room for sums over a few
# hundred terms. float32: one ulp is 1.2e-7; 1e-5 covers reordered sums over the sizes the tests use.
TOLERANCES = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float16: dict(rtol=1e-2, atol=1e-3),
}

# tf.losses.mean_squared_error (TF 1.x losses_impl.py: ``predictions = math_ops.to_float(predictions)``, the
# labels too) computes in float32 whatever the model's dtype: the losses a float64 TF model reports are
# float32 numbers, compared at float32's tolerance (ports.tf_sine; its float64 variables, accumulators and
# predictions keep float64's). Over the recorded float32 training runs (400 Adagrad steps) the port stays
# within the float32 row itself, at 2% of it: no training comparison is loosened.
TF_LOSSES_DTYPE = torch.float32

_NUMPY_TO_TORCH = {
    np.dtype(np.float64): torch.float64,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float16): torch.float16,
}


def cudnn_float32(device, dtype) -> dict:
    """``loosen=`` and its reason for float32 results of cuDNN's fused LSTM on a CUDA device, else nothing.
    Seen on an H200 (cuDNN 9.19, TF32 off): up to 1.7e-5 from a float64 reference in 2 layers x 2 steps,
    and 6e-5 between the fused kernel and the step loop over 3 layers x 10 steps with weights up to 2."""
    if str(device).startswith("cuda") and dtype == torch.float32:
        return dict(loosen=10, reason="cuDNN's float32 LSTM kernel uses its own activation routines and "
                                      "summation order, and the recurrence amplifies the differences")
    return {}


def tolerance(dtype) -> dict:
    """rtol/atol for a torch or numpy dtype."""
    if not isinstance(dtype, torch.dtype):
        dtype = _NUMPY_TO_TORCH[np.dtype(dtype)]
    return dict(TOLERANCES[dtype])


def _to_tensor(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    return torch.as_tensor(np.asarray(x))


def assert_close(actual, expected, *, dtype=None, loosen: float | None = None, reason: str | None = None,
                 msg: str = ""):
    """Compare ``actual`` with ``expected`` under the table's tolerance for ``dtype``.

    ``dtype`` defaults to the lower precision of the two. ``loosen`` multiplies rtol and atol and must
    come with ``reason``.
    """
    a = _to_tensor(actual)
    e = _to_tensor(expected)
    if dtype is None:
        dtype = a.dtype if a.is_floating_point() else e.dtype
        if e.is_floating_point() and a.is_floating_point() and torch.finfo(e.dtype).eps > torch.finfo(a.dtype).eps:
            dtype = e.dtype
    tol = tolerance(dtype)
    if loosen is not None:
        if not reason:
            raise ValueError("a loosened tolerance must state its reason")
        tol = {k: v * loosen for k, v in tol.items()}
    compare_dtype = torch.float64 if (a.is_floating_point() or e.is_floating_point()) else a.dtype
    torch.testing.assert_close(a.to(compare_dtype), e.to(compare_dtype), **tol,
                               msg=(lambda m: f"{msg}\n{m}") if msg else None)


def assert_close_scaled(actual, expected, *, dtype=None, msg: str = ""):
    """:func:`assert_close` relative to the output's scale: both divided by ``max(1, max |expected|)``, so a
    whole model's outputs (probabilities near 1, exponentials, sums over many steps) are held to the table's
    tolerance of their own magnitude (float32 1e-5 of the scale, float64 1e-10)."""
    e = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0)))
    a = _to_tensor(actual).to(torch.float64) / scale
    assert_close(a, torch.from_numpy(np.asarray(e / scale)), dtype=dtype or _to_tensor(actual).dtype,
                 msg=f"{msg} (relative to the output's scale {scale:.3g})")
