"""How many CPU threads a command-line program gives torch.

For the ``python -m ports.<name>`` programs (and the benchmarks), which own their process: importing this
module changes nothing, and no library function calls it. A program calls :func:`configure_threads` with
``--threads``: the count in effect, and, where the program chooses it, a :class:`LoadFollower` whose
:meth:`~LoadFollower.check` the program's own training loop calls. How idle OpenMP threads wait is left to
the environment (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``): bounding libgomp's spinning measured no faster
anywhere, and slower beside a busy process (docs/performance.md, "Threads under contention").

Who chooses the thread count, in this order: ``--threads N``; else ``OMP_NUM_THREADS`` (torch read it when
it loaded); else, when ``main()`` was called from Python rather than as ``python -m`` (the caller owns the
process, and may have called ``torch.set_num_threads``), torch's count as the caller left it; else the
program: the cores this process may use (its CPU affinity and its cgroup's CPU quota, cgroup v2 ``cpu.max``
or v1 ``cpu.cfs_quota_us``) minus the cores other processes keep busy (``/proc/stat``), at least 1, then
followed while training: down at once when other processes take a core, up only after
:data:`RAISE_AFTER_CHECKS` checks in a row found it free (a thread too many costs far more than a thread too
few: a parallel region is only as fast as its slowest thread). Where ``/proc/stat`` cannot be read, every
usable core is used.
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Tuple

REBALANCE_SECONDS = 0.25
RAISE_AFTER_CHECKS = 4  # more threads only after this many checks in a row allowed them (one less: at once)
START_WINDOW_SECONDS = 0.1  # the first measurement of the other processes' load, at start-up


# ------------------------------------------------------------------------------------------- the cores
def affinity_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_self_cgroup: Path) -> Tuple[Optional[str], Optional[str]]:
    """(the v2 cgroup path, the v1 cpu controller's path) of this process, from /proc/self/cgroup."""
    text = _read(proc_self_cgroup)
    v2 = v1 = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2 = parts[2]
        elif "cpu" in parts[1].split(","):
            v1 = parts[2]
    return v2, v1


def _upwards(root: Path, path: Optional[str]):
    """The cgroup folder of ``path`` under ``root`` and each of its parents, then ``root`` itself."""
    if path:
        folder = root / path.lstrip("/")
        while folder != root and root in folder.parents:
            yield folder
            folder = folder.parent
    yield root


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"), proc_self_cgroup: Path = Path("/proc/self/cgroup")
                     ) -> Optional[float]:
    """The CPU quota of this process's cgroup in cores (quota / period; the tightest of its ancestors'), or
    None where none is set or none can be read. cgroup v2: ``cpu.max`` ("max 100000" or "150000 100000");
    v1: ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    v2, v1 = _cgroup_paths(proc_self_cgroup)
    limits = []
    for folder in _upwards(root, v2):
        text = _read(folder / "cpu.max")
        if text:
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                try:
                    limits.append(int(fields[0]) / int(fields[1]))
                except (ValueError, ZeroDivisionError):
                    pass
    for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        for folder in _upwards(root / mount, v1):
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            try:
                if quota is not None and period is not None and int(quota) > 0:
                    limits.append(int(quota) / int(period))
            except (ValueError, ZeroDivisionError):
                pass
    return min(limits) if limits else None


def usable_cores() -> int:
    """The cores this process may use: its affinity, capped by its cgroup's CPU quota (whole cores, at least 1)."""
    cores = affinity_cores()
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return cores


# -------------------------------------------------------------------------------------- the others' load
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
    """The program's own choice: the usable cores other processes left idle over a short window, at least 1."""
    meter = LoadMeter()
    time.sleep(window)
    return threads_beside(meter.others(), usable_cores())


class LoadFollower:
    """The program's thread count kept up to date with the machine's load. :meth:`check` is cheap (a clock
    read) between re-measurements, every :data:`REBALANCE_SECONDS`: fewer threads as soon as one check finds
    the cores taken, more only when :data:`RAISE_AFTER_CHECKS` checks in a row found them free."""

    def __init__(self, threads: int, meter: Optional[LoadMeter] = None, at_most: Optional[int] = None):
        self.threads, self.meter, self.at_most = threads, meter or LoadMeter(), at_most
        self.next_check = time.monotonic() + REBALANCE_SECONDS
        self.free_checks = 0

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + REBALANCE_SECONDS
        wanted = threads_beside(self.meter.others(), usable_cores())
        if self.at_most is not None:
            wanted = min(wanted, self.at_most)
        if wanted > self.threads:
            self.free_checks += 1
            if self.free_checks < RAISE_AFTER_CHECKS:
                return
        self.free_checks = 0
        if wanted != self.threads:
            import torch

            torch.set_num_threads(wanted)
            self.threads = wanted


class Threads(NamedTuple):
    """What :func:`configure_threads` decided: the count in effect, who chose it, and the follower to call
    from the training loop (None unless the program chose the count)."""

    count: int
    chosen_by: str  # "--threads", "OMP_NUM_THREADS", "the caller", "the program"
    follower: Optional[LoadFollower]

    def check(self) -> None:
        """Follow the machine's load (nothing unless the program chose the count)."""
        if self.follower is not None:
            self.follower.check()

    def __str__(self) -> str:
        return f"{self.count} CPU thread{'s' if self.count > 1 else ''}"


def add_threads_argument(parser: argparse.ArgumentParser, at_most: Optional[int] = None, why: str = "") -> None:
    """``--threads``; ``at_most`` (and ``why``) as the program passes them to :func:`configure_threads`."""
    if at_most == 1:
        default = f"1: {why}" if why else "1"
    else:
        default = (f"the usable cores not kept busy by other processes{f', at most {at_most}' if at_most else ''}, at "
                   f"least 1, re-measured every {REBALANCE_SECONDS:g} s while training")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads for torch (default: OMP_NUM_THREADS if set, else {default}; "
                             f"{usable_cores()} usable cores here)")


def configure_threads(requested: Optional[int], *, owns_process: bool,
                      environ: Mapping[str, str] = os.environ, at_most: Optional[int] = None) -> Threads:
    """Apply ``--threads`` (``requested``) as the module docstring says. ``owns_process``: the program runs
    as ``python -m`` (its ``__main__``), not from a caller's Python. ``at_most``: a cap on the program's own
    choice (a program whose products are too small to split), not on ``--threads`` or the environment's."""
    import torch

    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1; got {requested}")
        torch.set_num_threads(requested)
        return Threads(requested, "--threads", None)
    if environ.get("OMP_NUM_THREADS", "").strip():
        return Threads(torch.get_num_threads(), "OMP_NUM_THREADS", None)
    if not owns_process:
        return Threads(torch.get_num_threads(), "the caller", None)
    if at_most == 1:  # nothing to measure or follow
        torch.set_num_threads(1)
        return Threads(1, "the program", None)
    meter = LoadMeter()
    n = default_threads() if at_most is None else min(default_threads(), at_most)
    torch.set_num_threads(n)
    return Threads(n, "the program", LoadFollower(n, meter, at_most))


__all__ = ["LoadFollower", "LoadMeter", "Threads", "add_threads_argument", "affinity_cores", "cgroup_cpu_limit",
           "configure_threads", "default_threads", "threads_beside", "usable_cores"]
