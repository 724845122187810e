"""Run a loader on one hostile file in a child process with a memory cap and a time limit.

    outcome = run_isolated(read_caffemodel, path)
    assert outcome.kind == "input_error", outcome

The child is forked from the test process (about 10 ms: torch and the loaders are already imported), limits its own
data segment to ``memory_mb`` above what it already uses, runs ``loader(path, *args)`` and reports back
through a pipe. The parent kills it at ``timeout`` seconds. Outcomes:

``ok``            the loader returned (a file that is still valid after mutation, say); a string it returns
                  (a digest of what it read) comes back as the message
``input_error``   it raised :class:`compat.errors.InputError`: the clear, expected refusal
``exception``     it raised anything else (a traceback a user would see): a bug
``memory``        it raised MemoryError or hit the cap
``crash``         the child died of a signal (a segfault, say)
``timeout``       it ran past the time limit (a hang or quadratic work)
"""
from __future__ import annotations

import json
import os
import resource
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

from compat.errors import InputError

OUTCOMES = ("ok", "input_error", "exception", "memory", "crash", "timeout")


@dataclass
class Outcome:
    kind: str
    message: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0

    def __str__(self) -> str:
        return f"{self.kind} after {self.seconds:.2f} s, peak {self.peak_mb:.0f} MB: {self.message[:2000]}"


def _vm_data_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(write_fd: int, loader: Callable, path: Any, args: tuple, memory_mb: int) -> None:
    result: dict
    try:
        torch.set_num_threads(1)  # no OpenMP team in a forked child
        cap = _vm_data_bytes() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

        try:
            returned = loader(path, *args)
            # a loader may return a digest of what it read: the caller compares it with the valid file's
            result = {"kind": "ok", "message": returned if isinstance(returned, str) else ""}
        except InputError as e:
            result = {"kind": "input_error", "message": f"{type(e).__name__}: {e}"}
        except MemoryError:
            result = {"kind": "memory", "message": traceback.format_exc(limit=-8)}
        except BaseException as e:  # noqa: BLE001 - every other exception is what the fuzz suite hunts
            result = {"kind": "exception", "message": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-8)}"}
    except BaseException as e:  # noqa: BLE001
        result = {"kind": "exception", "message": f"harness: {type(e).__name__}: {e}"}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_mb"] = usage.ru_maxrss / 1024
    try:
        os.write(write_fd, json.dumps(result).encode()[:60000])
    finally:
        os._exit(0)


def run_isolated(loader: Callable, path: Any, *args: Any, timeout: float = 5.0, memory_mb: int = 1024) -> Outcome:
    """``loader(path, *args)`` in a forked child under ``memory_mb`` of extra memory and ``timeout`` seconds."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(write_fd, loader, path, args, memory_mb)
    os.close(write_fd)
    chunks = []
    deadline = start + timeout
    status = None
    try:
        while True:
            waited, status = os.waitpid(pid, os.WNOHANG)
            if waited:
                break
            if time.perf_counter() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Outcome("timeout", f"killed after {timeout} s", time.perf_counter() - start)
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    if os.WIFSIGNALED(status):
        return Outcome("crash", f"killed by signal {os.WTERMSIG(status)}", seconds)
    try:
        result = json.loads(b"".join(chunks).decode())
    except ValueError:
        return Outcome("crash", "the child exited without a result", seconds)
    return Outcome(result["kind"], result.get("message", ""), seconds, result.get("peak_mb", 0.0))
