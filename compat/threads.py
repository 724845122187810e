"""How many CPU threads the ports use, and how those threads wait.

Every ``python -m ports.<name>`` takes ``--threads N``. Import this module before torch: it sets
``OMP_WAIT_POLICY=PASSIVE`` (unless the environment already sets it) because torch's OpenMP threads
otherwise spin-wait between parallel regions, and on a machine where another process is busy the
spinning threads take the cores the working ones need (a step can become a hundred times slower).
"""
from __future__ import annotations

import argparse
import os
from typing import Optional

# Read by the OpenMP runtime when torch loads it: this has to run before ``import torch``.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def default_threads() -> int:
    """The thread count used when ``--threads`` is not given: every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: the cores this process may use, "
                             f"{default_threads()} here; threads wait passively, so a busy machine does not "
                             "stall them)")


def configure_threads(threads: Optional[int]) -> int:
    """Apply ``--threads`` (None: :func:`default_threads`); returns the count in effect."""
    import torch

    n = default_threads() if threads is None else threads
    if n < 1:
        raise ValueError(f"--threads must be at least 1; got {n}")
    torch.set_num_threads(n)
    return n
