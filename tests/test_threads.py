"""compat.threads: the default thread count leaves the cores other processes keep busy, and follows them."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from compat import threads


@pytest.mark.parametrize("others, cores, expected", [(0.0, 2, 2), (0.4, 2, 2), (0.6, 2, 1), (1.0, 2, 1), (5.0, 2, 1),
                                                     (1.0, 8, 7), (2.4, 8, 6), (None, 4, 4)])
def test_threads_beside_other_load(others, cores, expected):
    assert threads.threads_beside(others, cores) == expected


class FakeClock:
    """The machine's busy seconds, this process's CPU seconds and the wall clock, advanced by hand."""

    def __init__(self, monkeypatch):
        self.wall, self.busy, self.own = 100.0, 5000.0, 3.0
        monkeypatch.setattr(threads.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(threads.time, "process_time", lambda: self.own)
        monkeypatch.setattr(threads, "_machine_busy_seconds", lambda: self.busy)

    def advance(self, seconds, others, own):
        self.wall += seconds
        self.own += own * seconds
        self.busy += (own + others) * seconds


def test_load_meter_leaves_out_this_process(monkeypatch):
    clock = FakeClock(monkeypatch)
    meter = threads.LoadMeter()
    clock.advance(2.0, others=1.0, own=1.8)
    assert meter.others() == pytest.approx(1.0)
    clock.advance(1.0, others=0.25, own=2.0)
    assert meter.others() == pytest.approx(0.25)


def test_unreadable_proc_stat_uses_every_core(monkeypatch):
    monkeypatch.setattr(threads, "_machine_busy_seconds", lambda: None)
    monkeypatch.setattr(threads, "available_cores", lambda: 3)
    assert threads.default_threads(window=0.0) == 3


def test_default_follows_the_machine(monkeypatch):
    """configure_threads(None): 2 threads on an idle 2-core machine, 1 once another process keeps a core
    busy (at the next rebalance), 2 again when it stops; an explicit count is never changed."""
    clock = FakeClock(monkeypatch)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads.time, "sleep", lambda s: clock.advance(s, others=0.0, own=0.0))
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(None) == 2 and torch.get_num_threads() == 2
        clock.advance(threads.REBALANCE_SECONDS / 2, others=1.0, own=1.0)
        threads.rebalance()
        assert torch.get_num_threads() == 2  # not yet a rebalance interval
        clock.advance(threads.REBALANCE_SECONDS, others=1.0, own=1.0)
        threads.rebalance()
        assert torch.get_num_threads() == 1
        for _ in range(threads.RAISE_AFTER_CHECKS - 1):  # up again only after several free checks in a row
            clock.advance(threads.REBALANCE_SECONDS * 1.5, others=0.0, own=1.0)
            threads.rebalance()
            assert torch.get_num_threads() == 1
        clock.advance(threads.REBALANCE_SECONDS * 1.5, others=0.0, own=1.0)
        threads.rebalance()
        assert torch.get_num_threads() == 2
        assert threads.configure_threads(1) == 1
        clock.advance(threads.REBALANCE_SECONDS * 2, others=0.0, own=1.0)
        threads.rebalance()
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="at least 1"):
            threads.configure_threads(0)
    finally:
        threads._following = None
        torch.set_num_threads(before)


def test_busy_process_is_measured():
    """A real CPU-bound child process shows up as about one core of other load (this process idle)."""
    if threads._machine_busy_seconds() is None:
        pytest.skip("no /proc/stat on this system: the default uses every core (tested above)")
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        meter = threads.LoadMeter()
        time.sleep(0.5)
        assert meter.others() >= 0.5
    finally:
        child.kill()
        child.wait()


def test_single_threaded_restores_the_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with threads.single_threaded():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_wait_settings_are_set_on_import():
    """Importing compat.threads bounds libgomp's spinning (unless the environment chose a wait policy)."""
    assert "OMP_WAIT_POLICY" in os.environ or os.environ.get("GOMP_SPINCOUNT") is not None
