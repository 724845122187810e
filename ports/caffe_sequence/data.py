"""The example's data (lstm_sequence.cpp): the target function, its normalised sequence, and the training
windows with their clip input."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch


def f_x(t: np.ndarray) -> np.ndarray:
    """lstm_sequence.cpp ``f_x`` (float argument, double arithmetic, float result)."""
    t = t.astype(np.float32).astype(np.float64)
    v = 0.5 * np.sin(2 * t) - 0.05 * np.cos(17 * t + 0.8) + 0.05 * np.sin(25 * t + 10) - 0.02 * np.cos(45 * t + 0.3)
    return v.astype(np.float32)


def target_sequence(total_length: int) -> np.ndarray:
    """The normalised, mean-centred target of lstm_sequence.cpp, in float32 as there.

    max_abs over f(i * 0.01f); the mean accumulates f(i * 0.01) / max_abs in float (the argument computed
    in double, then rounded to float by f_x's signature); value_i = f(i * 0.01f) / max_abs - mean.
    """
    i = np.arange(total_length)
    t_float = (i.astype(np.float32) * np.float32(0.01)).astype(np.float32)
    t_double = (i * 0.01).astype(np.float32)
    vals = f_x(t_float)
    max_abs = np.float32(np.max(np.abs(vals)))
    mean = np.float32(0.0)
    for v in f_x(t_double) / max_abs:
        mean = np.float32(mean + np.float32(v))
    mean = np.float32(mean / np.float32(total_length))
    return (vals / max_abs - mean).astype(np.float32)


def training_windows(sequence: torch.Tensor, seq_length: int, device) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """(clip, label) of each window the training cycles through: clip = 1 except clip[0] = (window index > 0),
    so that the state carries from window to window and restarts with the sequence (lstm_sequence.cpp)."""
    windows = []
    for k in range(len(sequence) // seq_length):
        clip = torch.ones(seq_length, 1, device=device)
        clip[0] = float(k > 0)
        label = sequence[k * seq_length:(k + 1) * seq_length].reshape(-1, 1).to(device)
        windows.append((clip, label))
    return windows


__all__ = ["f_x", "target_sequence", "training_windows"]
