"""compat.threads: the default thread count leaves the cores other processes are running on."""
from __future__ import annotations

import os

import pytest
import torch

from compat import threads


@pytest.mark.parametrize("busy, cores, expected", [(0, 2, 2), (1, 2, 1), (5, 2, 1), (1, 8, 7), (None, 4, 4)])
def test_default_threads_leaves_busy_cores(monkeypatch, busy, cores, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "other_running_processes", lambda: busy)
    assert threads.default_threads() == expected


def test_running_processes_are_read_from_the_kernel():
    n = threads.other_running_processes()
    if os.path.exists("/proc/stat"):
        assert isinstance(n, int) and n >= 0
    else:
        assert n is None


def test_configure_threads_applies_and_rejects(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "default_threads", lambda: 2)
        assert threads.configure_threads(None) == 2 and torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="at least 1"):
            threads.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_wait_policy_is_set_on_import():
    """Importing compat.threads sets OMP_WAIT_POLICY (PASSIVE unless the environment chose a policy)."""
    assert "OMP_WAIT_POLICY" in os.environ
