"""How many CPU threads the ports use, and how those threads wait.

Every ``python -m ports.<name>`` takes ``--threads N``. Import this module before torch: torch's OpenMP
runtime (libgomp) reads its wait settings once, when torch loads.

How idle threads wait. Between two parallel regions libgomp's worker threads spin before they sleep;
by default for 300,000 rounds (``OMP_WAIT_POLICY`` unset), which on a busy machine takes the cores the
working threads need (a step can become a hundred times slower), while ``OMP_WAIT_POLICY=PASSIVE``
(sleep at once) makes every parallel region pay a futex wake-up, which at two threads made the
fine-grained steps slower than one thread (IMDB float32 23 against 46 updates/s, Caffe deep_short 494
against 790 iterations/s). This module sets ``GOMP_SPINCOUNT`` (:data:`SPIN_COUNT` rounds, tens of
microseconds) unless the environment already chooses ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``: a
worker catches the next region of the same step without a wake-up, and gives its core back soon after.

How many threads. Spinning or not, a parallel region is only as fast as its slowest thread, and a thread
that shares a core with another program's busy process holds up the whole step: on a busy machine one
thread is faster than two. The default (no ``--threads``) is therefore **the cores this process may use
minus the cores other processes are keeping busy**, at least 1, and it follows the machine: the
training steps call :func:`rebalance`, which every :data:`REBALANCE_SECONDS` measures the CPU time the
other processes took (``/proc/stat`` minus this process's own time) and changes the thread count when
that load changed: down at once, up after :data:`RAISE_AFTER_CHECKS` checks in a row. Two threads on
an idle 2-core machine, one beside a CPU-bound process, back to two when it ends. An explicit ``--threads N`` is kept as given. Where ``/proc/stat`` cannot be read, every
core is used. Measured in docs/performance.md ("Threads under contention").
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Iterator, Optional, Tuple

SPIN_COUNT = 10000  # libgomp spin rounds before a worker sleeps (its default: 300000)
REBALANCE_SECONDS = 0.25
RAISE_AFTER_CHECKS = 4  # more threads only after this many checks in a row allowed them (one less: at once)
START_WINDOW_SECONDS = 0.1  # the first measurement of the other processes' load, at start-up

# Read by the OpenMP runtime when torch loads it: this has to run before ``import torch``.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _machine_busy_seconds() -> Optional[float]:
    """CPU seconds every process has spent running since boot (/proc/stat's first line: user, nice,
    system, irq, softirq; idle, iowait and the hypervisor's steal left out), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        if not fields or fields[0] != "cpu":
            return None
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class LoadMeter:
    """The cores' worth of CPU time that *other* processes took between two readings: the machine's busy
    time minus this process's own (all its threads), over the wall time between the readings."""

    def __init__(self) -> None:
        self._last = self._reading()

    @staticmethod
    def _reading() -> Tuple[float, Optional[float], float]:
        return time.monotonic(), _machine_busy_seconds(), time.process_time()

    def others(self) -> Optional[float]:
        """Cores kept busy by other processes since the last call (None where /proc/stat is unreadable)."""
        t0, busy0, own0 = self._last
        self._last = t1, busy1, own1 = self._reading()
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


def threads_beside(others: Optional[float], cores: int) -> int:
    """The thread count beside ``others`` cores of other processes' load: the cores left, at least 1
    (a process using more than half a core counts as one)."""
    if others is None:
        return cores
    return max(1, min(cores, cores - int(others + 0.5)))


def default_threads(window: float = START_WINDOW_SECONDS) -> int:
    """The thread count used when ``--threads`` is not given: the cores other processes left idle over a
    short window, at least 1."""
    meter = LoadMeter()
    time.sleep(window)
    return threads_beside(meter.others(), available_cores())


class _Following:
    """The default thread count kept up to date with the machine's load (see :func:`rebalance`): fewer
    threads as soon as one check finds the cores taken, more only when RAISE_AFTER_CHECKS checks in a row
    found them free (a thread too many costs far more than a thread too few)."""

    def __init__(self, threads: int, meter: LoadMeter):
        self.threads, self.meter = threads, meter
        self.next_check = time.monotonic() + REBALANCE_SECONDS
        self.free_checks = 0

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + REBALANCE_SECONDS
        wanted = threads_beside(self.meter.others(), available_cores())
        if wanted > self.threads:
            self.free_checks += 1
            if self.free_checks < RAISE_AFTER_CHECKS:
                return
        self.free_checks = 0
        if wanted != self.threads:
            import torch

            torch.set_num_threads(wanted)
            self.threads = wanted


_following: Optional[_Following] = None


def rebalance() -> None:
    """Called by the training steps: where the thread count is the default one, re-measure the other
    processes' load every REBALANCE_SECONDS and follow it (a time check otherwise; nothing at all after
    an explicit --threads)."""
    if _following is not None:
        _following.check()


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for torch (default: the cores not kept busy by other processes, at "
                             f"least 1, re-measured every {REBALANCE_SECONDS:g} s while training; "
                             f"{available_cores()} cores here)")


def configure_threads(threads: Optional[int]) -> int:
    """Apply ``--threads`` (None: :func:`default_threads`, then kept up to date by :func:`rebalance`);
    returns the count in effect."""
    import torch

    global _following
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be at least 1; got {threads}")
    meter = LoadMeter()
    n = default_threads() if threads is None else threads
    torch.set_num_threads(n)
    _following = _Following(n, meter) if threads is None else None
    return n


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """torch on one thread inside the block (the caller's count restored after): for steps made only of
    products too small to split, where a second thread adds wake-ups and nothing else."""
    import torch

    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
