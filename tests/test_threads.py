"""compat.threads: who chooses the thread count (--threads, OMP_NUM_THREADS, the caller, the program), the
usable cores (affinity, cgroup v2 and v1 quotas), the other processes' load and following it; and that
importing the project changes neither the environment nor torch's thread count."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compat import threads

REPO = Path(__file__).resolve().parent.parent


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
        monkeypatch.setattr(threads.time, "sleep", lambda s: self.advance(s, others=0.0, own=0.0))

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


def test_unreadable_proc_stat_uses_every_usable_core(monkeypatch):
    monkeypatch.setattr(threads, "_machine_busy_seconds", lambda: None)
    monkeypatch.setattr(threads, "usable_cores", lambda: 3)
    assert threads.default_threads(window=0.0) == 3


# ------------------------------------------------------------------------------------------- who chooses
@pytest.fixture
def thread_count():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_explicit_threads_are_kept_and_never_followed(thread_count):
    chosen = threads.configure_threads(1, owns_process=True, environ={"OMP_NUM_THREADS": "2"})
    assert (chosen.count, chosen.chosen_by, chosen.follower) == (1, "--threads", None)
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="at least 1"):
        threads.configure_threads(0, owns_process=True)


@pytest.mark.parametrize("environ, owns_process, chosen_by", [({"OMP_NUM_THREADS": "1"}, True, "OMP_NUM_THREADS"),
                                                              ({}, False, "the caller")])
def test_omp_num_threads_and_the_callers_count_are_left_as_they_are(thread_count, environ, owns_process, chosen_by):
    """OMP_NUM_THREADS (torch read it when it loaded) and a caller's own count (``torch.set_num_threads`` before
    calling ``main()`` from Python) are not changed, nor followed."""
    torch.set_num_threads(1)
    chosen = threads.configure_threads(None, owns_process=owns_process, environ=environ)
    assert (chosen.count, chosen.chosen_by, chosen.follower) == (1, chosen_by, None)
    assert torch.get_num_threads() == 1
    chosen.check()  # nothing to follow
    assert torch.get_num_threads() == 1


def test_the_programs_default_follows_the_machine(monkeypatch, thread_count):
    """The program's own choice: 2 threads on an idle 2-core machine, 1 once another process keeps a core busy
    (at the next check), 2 again only after several free checks in a row."""
    clock = FakeClock(monkeypatch)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    chosen = threads.configure_threads(None, owns_process=True, environ={})
    assert chosen.chosen_by == "the program" and chosen.count == 2 and torch.get_num_threads() == 2
    clock.advance(threads.REBALANCE_SECONDS / 2, others=1.0, own=1.0)
    chosen.check()
    assert torch.get_num_threads() == 2  # not yet a re-measurement
    clock.advance(threads.REBALANCE_SECONDS, others=1.0, own=1.0)
    chosen.check()
    assert torch.get_num_threads() == 1
    for _ in range(threads.RAISE_AFTER_CHECKS - 1):
        clock.advance(threads.REBALANCE_SECONDS * 1.5, others=0.0, own=1.0)
        chosen.check()
        assert torch.get_num_threads() == 1
    clock.advance(threads.REBALANCE_SECONDS * 1.5, others=0.0, own=1.0)
    chosen.check()
    assert torch.get_num_threads() == 2


def test_a_programs_cap_bounds_its_own_choice_only(monkeypatch, thread_count):
    """``at_most``: a program whose products are too small to split caps its own choice (1: nothing to follow;
    2 on a 4-core machine: followed, never above 2); --threads and OMP_NUM_THREADS still win."""
    clock = FakeClock(monkeypatch)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    one = threads.configure_threads(None, owns_process=True, environ={}, at_most=1)
    assert (one.count, one.chosen_by, one.follower) == (1, "the program", None) and torch.get_num_threads() == 1
    two = threads.configure_threads(None, owns_process=True, environ={}, at_most=2)
    assert (two.count, two.chosen_by) == (2, "the program") and torch.get_num_threads() == 2
    for _ in range(threads.RAISE_AFTER_CHECKS + 1):  # the machine stays idle: four cores free, still 2
        clock.advance(threads.REBALANCE_SECONDS * 1.5, others=0.0, own=2.0)
        two.check()
        assert torch.get_num_threads() == 2
    clock.advance(threads.REBALANCE_SECONDS * 1.5, others=3.0, own=1.0)
    two.check()
    assert torch.get_num_threads() == 1
    assert threads.configure_threads(3, owns_process=True, environ={}, at_most=1).count == 3
    torch.set_num_threads(2)
    assert threads.configure_threads(None, owns_process=True, environ={"OMP_NUM_THREADS": "2"}, at_most=1).count == 2


def test_busy_process_is_measured():
    """A real CPU-bound child process shows up as about one core of other load (this process idle)."""
    if threads._machine_busy_seconds() is None:
        pytest.skip("no /proc/stat on this system: the default uses every usable core (tested above)")
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        meter = threads.LoadMeter()
        time.sleep(0.5)
        assert meter.others() >= 0.5
    finally:
        child.kill()
        child.wait()


# ------------------------------------------------------------------------------------------ the quota
def _cgroup(tmp_path, self_cgroup: str, files: dict) -> tuple:
    root = tmp_path / "sys_fs_cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(self_cgroup)
    return root, proc


@pytest.mark.parametrize("self_cgroup, files, expected", [
    ("0::/user.slice/job\n", {"user.slice/job/cpu.max": "150000 100000\n"}, 1.5),
    ("0::/user.slice/job\n", {"user.slice/job/cpu.max": "max 100000\n", "user.slice/cpu.max": "200000 100000"}, 2.0),
    ("0::/a/b\n", {"a/b/cpu.max": "300000 100000", "a/cpu.max": "100000 100000"}, 1.0),  # the tightest ancestor
    ("0::/\n", {"cpu.max": "50000 100000"}, 0.5),  # a container's own root
    ("0::/free\n", {"free/cpu.max": "max 100000"}, None),
    ("4:cpu,cpuacct:/docker/x\n", {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000",
                                   "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"}, 2.5),
    ("4:cpu,cpuacct:/docker/x\n", {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "-1",
                                   "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000"}, None),
    ("", {}, None),  # nothing readable
])
def test_cgroup_cpu_quota(tmp_path, self_cgroup, files, expected):
    root, proc = _cgroup(tmp_path, self_cgroup, files)
    assert threads.cgroup_cpu_limit(root, proc) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("limit, affinity, expected", [(None, 4, 4), (1.5, 4, 1), (2.0, 4, 2), (8.0, 2, 2),
                                                       (0.5, 2, 1)])
def test_usable_cores_are_the_affinity_capped_by_the_quota(monkeypatch, limit, affinity, expected):
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: limit)
    monkeypatch.setattr(threads, "affinity_cores", lambda: affinity)
    assert threads.usable_cores() == expected


# ------------------------------------------------------------------------------------ the user's process
_IMPORT_EVERYTHING = r"""
import importlib, json, os, pkgutil, sys
before_env = dict(os.environ)
import torch
before_threads = torch.get_num_threads()
names = []
for package in ("compat", "ports", "reference"):
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name.endswith(".__main__"):
            continue  # the programs' own entry points: they run the program
        importlib.import_module(info.name)
        names.append(info.name)
after_env = dict(os.environ)
print(json.dumps({"modules": names, "threads": [before_threads, torch.get_num_threads()],
                  "changed": sorted(k for k in set(before_env) | set(after_env) if before_env.get(k) != after_env.get(k))}))
"""


def test_importing_any_module_changes_neither_the_environment_nor_torch():
    """Every module of compat, ports and reference imported in a fresh process: os.environ and torch's thread
    count are what they were (the programs' ``__main__`` modules, which run the programs, are left out)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 50 and "compat.recurrent.select" in result["modules"]
    assert result["changed"] == []
    assert result["threads"][0] == result["threads"][1]


def test_a_program_run_as_python_m_leaves_the_environment_alone(tmp_path):
    """``python -m ports.<name>`` sets no environment variable either (how OpenMP threads wait is the user's
    choice), and --help says how many cores it may use."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = str(REPO)
    code = ("import json, os, runpy, sys; before = dict(os.environ); sys.argv = ['x', '--help']\n"
            "try:\n    runpy.run_module('ports.tf_ptb', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(json.dumps(sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert "usable cores here" in out.stdout
