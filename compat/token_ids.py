"""Token ids checked against a vocabulary: one rule and one message for every model that looks ids up.

A lookup past the table is an IndexError deep inside an embedding or a loss on the CPU, and a device-side
assert on CUDA that leaves the process unusable; the legacy programs fail likewise or, worse, read garbage
(TF's ``embedding_lookup`` on a GPU returns zeros for an id out of range: gather_op's GPU kernel). Every model
checks its ids before the lookup, with this message. Ids still on the host (numpy, a CPU tensor) cost the
device nothing; ids on the device are read back (two values, one wait): the sync-free steps check theirs on
the host before they copy them (ports/tf_ptb/train.py, ports/tf_shakespeare/train.py).
"""
from __future__ import annotations

import numpy as np
import torch


def check_token_ids(ids, vocab_size: int, what: str, hint: str = "") -> None:
    """Raise ValueError naming the id outside ``[0, vocab_size)`` (the lowest if one is negative, else the
    highest) and ``what`` holds it; ``hint`` is appended to the message. ``ids``: a numpy array, a tensor or
    anything numpy reads; an empty one passes."""
    if isinstance(ids, torch.Tensor):
        if not ids.numel():
            return
        low, high = (int(v) for v in torch.aminmax(ids.detach()))
    else:
        ids = np.asarray(ids)
        if not ids.size:
            return
        low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"word id {bad} in {what} is outside the vocabulary [0, {vocab_size})"
                         + (f" ({hint})" if hint else ""))
