"""A checkpoint save killed midway (``kill -9`` at every file-system step, and halfway through each file it
writes) leaves the previous checkpoint loadable, bit for bit; the next save cleans up after it.

The ports' training checkpoints and the converter's output are both :func:`compat.checkpoint.save`; the
child process saves checkpoint B over checkpoint A and SIGKILLs itself at the k-th step (an ``os.open``,
``os.fsync``, ``os.replace`` or ``os.unlink``, or a file write cut after half its bytes), for every k until
a save completes. After each kill the checkpoint must load and be A (or B, once B's manifest is in place).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from compat import checkpoint


def _content(scale: float) -> dict:
    torch.manual_seed(0)
    return {"config": {"hidden_size": 4, "scale": scale}, "epoch": int(scale),
            "model": {"w": torch.randn(64, 64) * scale, "b": torch.zeros(64) + scale}}


def _same(a: dict, b: dict) -> bool:
    return a["config"] == b["config"] and a["epoch"] == b["epoch"] and all(
        torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def _save_and_die_at(path: Path, content: dict, step: int) -> None:
    """In a forked child: save, SIGKILLing this process at file-system step ``step`` (never returns)."""
    count = [0]

    def tick():
        count[0] += 1
        if count[0] == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def counted(fn):
        def wrapper(*args, **kwargs):
            tick()
            return fn(*args, **kwargs)
        return wrapper

    for name in ("open", "fsync", "replace", "unlink"):
        setattr(os, name, counted(getattr(os, name)))
    real_write_bytes, real_write_text = Path.write_bytes, Path.write_text

    def half_then(fn, data, self_path):
        count[0] += 1
        if count[0] == step:  # half of the file on disk, then the kill
            with open(self_path, "wb" if isinstance(data, bytes) else "w") as fh:
                fh.write(data[:len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(self_path, data)

    Path.write_bytes = lambda self, data: half_then(real_write_bytes, data, self)
    Path.write_text = lambda self, data, encoding=None, errors=None, newline=None: half_then(real_write_text, data,
                                                                                             self)
    checkpoint.save(path, "test.kill", content)
    os._exit(0)


def test_a_save_killed_at_any_step_leaves_the_previous_checkpoint(tmp_path):
    a, b = _content(1.0), _content(2.0)
    outcomes = []
    for step in range(1, 80):
        folder = tmp_path / f"k{step}"
        folder.mkdir()
        path = folder / "run"
        checkpoint.save(path, "test.kill", a)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                _save_and_die_at(path, b, step)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        loaded = checkpoint.load(path, "test.kill")
        if _same(loaded, a):
            outcomes.append("previous")
        else:
            assert _same(loaded, b), f"step {step}: the checkpoint is neither the previous one nor the new one"
            outcomes.append("new")
        # the next save removes what the killed one left, and the folder holds one checkpoint again
        checkpoint.save(path, "test.kill", a)
        assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".safetensors")) == ["run.json"]
        assert len(list(folder.glob("*.safetensors"))) == 1
        if not killed:
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
            break
    else:
        raise AssertionError("the save never completed within 80 steps")
    print(f"{len(outcomes) - 1} kills: {outcomes}")
    assert outcomes[-1] == "new" and "previous" in outcomes, outcomes
    # once "new", always "new": the manifest's rename is the one commit point
    first_new = outcomes.index("new")
    assert set(outcomes[first_new:]) == {"new"}, outcomes
