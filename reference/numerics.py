"""Numerics the references share: nothing framework-specific lives here."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float64, computed without overflow for large |x| (complex input stays
    complex128, for complex-step differentiation; the branch then follows the real part)."""
    x = np.asarray(x)
    x = x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    out = np.empty_like(x)
    pos = x.real >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out
