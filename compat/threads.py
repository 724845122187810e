"""How many CPU threads the ports use, and how those threads wait.

Every ``python -m ports.<name>`` takes ``--threads N``. Import this module before torch: it sets
``OMP_WAIT_POLICY=PASSIVE`` (unless the environment already sets it) because torch's OpenMP threads
otherwise spin-wait between parallel regions, and on a machine where another process is busy the
spinning threads take the cores the working ones need (a step can become a hundred times slower).

The default thread count (no ``--threads``) is the number of cores this process may use *minus the
processes already running on them* when the program starts, at least 1: all cores on an idle machine,
one thread beside one other CPU-bound process on two cores. A parallel region is only as fast as its
slowest thread, so a thread that has to share a core with another program's busy process holds up the
whole step: on a busy machine fewer threads run faster than more (measured in docs/performance.md,
"Threads under contention"). The count of running processes is the kernel's instantaneous
``procs_running`` (``/proc/stat``), sampled a few times; where it cannot be read, every core is used.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Optional

# Read by the OpenMP runtime when torch loads it: this has to run before ``import torch``.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def other_running_processes(samples: int = 5, interval: float = 0.01) -> Optional[int]:
    """Runnable tasks other than this one, the median of a few readings of /proc/stat's procs_running
    (None where the kernel does not expose it)."""
    readings = []
    for k in range(samples):
        try:
            with open("/proc/stat") as fh:
                for line in fh:
                    if line.startswith("procs_running"):
                        readings.append(int(line.split()[1]))
                        break
        except (OSError, ValueError):
            return None
        if k + 1 < samples:
            time.sleep(interval)
    if not readings:
        return None
    return max(0, int(statistics.median(readings)) - 1)  # the reading counts this process


def default_threads() -> int:
    """The thread count used when ``--threads`` is not given: the cores not already busy, at least 1."""
    cores = available_cores()
    busy = other_running_processes()
    if busy is None:
        return cores
    return max(1, min(cores, cores - busy))


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for torch (default: the cores not busy with other processes when the "
                             f"program starts, at least 1; {available_cores()} cores here; threads wait passively)")


def configure_threads(threads: Optional[int]) -> int:
    """Apply ``--threads`` (None: :func:`default_threads`); returns the count in effect."""
    import torch

    n = default_threads() if threads is None else threads
    if n < 1:
        raise ValueError(f"--threads must be at least 1; got {n}")
    torch.set_num_threads(n)
    return n
