"""compat.formats.tf.save_checkpoint commits like TF's Saver: a failure or a crash at any step leaves a
checkpoint that loads, and no temporary file survives (a killed save's leftovers go at the next save).

Every file-system step of a save (each fsync, hard link and rename, the state file's included) is made
to fail in turn, in process (an exception: the save must roll back to exactly the previous checkpoint)
and in a forked child killed with SIGKILL at that step (a crash: the directory must still load, as the
previous or the new checkpoint, and the next save must clean up).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from compat import atomic
from compat.formats.tf import latest_checkpoint, load_checkpoint, save_checkpoint

OLD = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float64)}
NEW = {"w": -np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, np.float64), "extra": np.int64(5)}


class Injected(OSError):
    pass


def _same(got: dict, expected: dict) -> bool:
    return sorted(got) == sorted(expected) and all(np.array_equal(got[k], expected[k]) for k in expected)


class _StepCounter:
    """Wraps os.replace, os.link and os.fsync; ``action`` runs at the ``fail_at``-th call (0-based)."""

    def __init__(self, monkeypatch, fail_at: int, action):
        self.calls, self.fail_at, self.action = 0, fail_at, action
        for name in ("replace", "link", "fsync"):
            original = getattr(os, name)
            monkeypatch.setattr(os, name, self._wrap(original))

    def _wrap(self, original):
        def step(*args, **kwargs):
            k = self.calls
            self.calls += 1
            if k == self.fail_at:
                self.action()
            return original(*args, **kwargs)
        return step


def _raise():
    raise Injected("injected failure")


def _hidden(directory: Path) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def _count_steps(tmp_path, same_prefix: bool) -> int:
    d = tmp_path / "dry-run"
    save_checkpoint(d / "model.ckpt-1", OLD)
    with pytest.MonkeyPatch.context() as m:
        counter = _StepCounter(m, -1, _raise)
        save_checkpoint(d / ("model.ckpt-1" if same_prefix else "model.ckpt-2"), NEW)
    return counter.calls


@pytest.mark.parametrize("same_prefix", [True, False], ids=["overwrite-prefix", "new-prefix"])
def test_a_failing_save_rolls_back_at_every_step(tmp_path, monkeypatch, same_prefix):
    steps = _count_steps(tmp_path, same_prefix)
    assert steps >= 9  # data, index and folder syncs, renames, the state file's own steps (and links)
    failures = 0
    for fail_at in range(steps):
        d = tmp_path / f"run{fail_at}"
        old_prefix = save_checkpoint(d / "model.ckpt-1", OLD)
        state_before = (d / "checkpoint").read_bytes()
        files_before = sorted(p.name for p in d.iterdir())
        target = d / ("model.ckpt-1" if same_prefix else "model.ckpt-2")
        with monkeypatch.context() as m:
            _StepCounter(m, fail_at, _raise)
            try:
                save_checkpoint(target, NEW)
            except Injected:
                failed = True
            else:  # a folder sync that fails is only a lost durability guarantee: the save goes on
                failed = False
        assert _hidden(d) == [], f"step {fail_at}"
        if not failed:
            assert _same(load_checkpoint(d), NEW), f"step {fail_at}"
            continue
        failures += 1
        assert _same(load_checkpoint(d), OLD), f"step {fail_at}"
        assert _same(load_checkpoint(old_prefix), OLD), f"step {fail_at}"
        assert (d / "checkpoint").read_bytes() == state_before, f"step {fail_at}"
        assert sorted(p.name for p in d.iterdir()) == files_before, f"step {fail_at}"
    assert failures >= steps // 2


def _crash_at(d: Path, target: Path, fail_at: int) -> int:
    """Run the save in a child killed by SIGKILL at step ``fail_at``; returns the child's exit signal (0: none)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            import pytest as _pytest

            with _pytest.MonkeyPatch.context() as m:
                _StepCounter(m, fail_at, lambda: os.kill(os.getpid(), signal.SIGKILL))
                save_checkpoint(target, NEW)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


@pytest.mark.parametrize("same_prefix", [True, False], ids=["overwrite-prefix", "new-prefix"])
def test_a_save_killed_at_any_step_leaves_a_loadable_checkpoint(tmp_path, same_prefix):
    steps = _count_steps(tmp_path, same_prefix)
    outcomes = set()
    for fail_at in range(steps):
        d = tmp_path / f"run{fail_at}"
        old_prefix = save_checkpoint(d / "model.ckpt-1", OLD)
        target = d / ("model.ckpt-1" if same_prefix else "model.ckpt-2")
        assert _crash_at(d, target, fail_at) == signal.SIGKILL
        got = load_checkpoint(d)  # the state file always names a complete checkpoint
        assert _same(got, OLD) or _same(got, NEW), f"step {fail_at}"
        outcomes.add("old" if _same(got, OLD) else "new")
        if not same_prefix:
            assert _same(load_checkpoint(old_prefix), OLD), f"step {fail_at}"
        # The next save to the same place removes what the killed one left, and commits normally.
        save_checkpoint(target, NEW)
        assert _same(load_checkpoint(d), NEW) and _same(load_checkpoint(target), NEW)
        assert _hidden(d) == [], f"step {fail_at}"
        assert latest_checkpoint(d) == str(target)
    assert outcomes == {"old", "new"}


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_atomic_writes_remove_leftovers_of_dead_writers_only(tmp_path):
    target = tmp_path / "summary.json"
    dead = tmp_path / f".summary.json.{_dead_pid()}.0123456789ab.tmp"
    alive = tmp_path / f".summary.json.{os.getppid()}.0123456789ab.tmp"
    other = tmp_path / f".other.json.{_dead_pid()}.0123456789ab.tmp"
    for p in (dead, alive, other):
        p.write_bytes(b"half a file")
    atomic.atomic_write_text(target, "{}")
    assert target.read_text() == "{}"
    assert not dead.exists()
    assert alive.exists() and other.exists()  # a live writer's file, another target's file


def test_a_failed_atomic_write_leaves_nothing(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
