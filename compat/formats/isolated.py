"""Run a reader whose parser is a C library in a child process that can die without taking the caller down.

A C parser fed a hostile file can segfault, loop for ever or allocate without bound; no Python ``try`` stops
any of these. :func:`run_isolated` forks, and the child runs ``reader()`` under a memory limit
(``RLIMIT_DATA``: every heap and anonymous mapping it makes, above what it inherited), no core dump and
its standard streams on ``/dev/null`` (so the C library cannot print past the caller's one-line error),
and sends back what the reader returned: JSON-able data whose numpy arrays travel as raw bytes after a
JSON header (no pickle crosses the pipe). The parent reads the pipe with a deadline and a byte budget,
kills the child at the deadline, and turns every way the child can end into a :class:`FileFormatError`
naming the file:

* the reader raised an :class:`~compat.errors.InputError`: its message;
* it raised anything else (the library's own exceptions: ``RuntimeError``, ``KeyError``, ``OSError``, ...):
  ``cannot read the <what>: <type>: <message>``;
* it ran out of its memory limit, died of a signal, or ran past the deadline: one line saying which.

Forking costs about 10 ms in a process that has imported torch; the reader's modules are already imported,
so the child starts at once. Where ``os.fork`` does not exist the reader runs in the calling process.
"""
from __future__ import annotations

import gc
import json
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from typing import Any, Callable, List, Tuple, Type

import numpy as np

from compat.errors import FileFormatError, InputError

MiB = 1 << 20
_LEN = struct.Struct("<Q")
_ARRAY_KEY = "$array"


# --------------------------------------------------------------------------------------------- encoding
def _encode(obj: Any, arrays: List[np.ndarray]) -> Any:
    if isinstance(obj, np.ndarray):
        arrays.append(np.ascontiguousarray(obj))
        return {_ARRAY_KEY: len(arrays) - 1, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, dict):
        return {str(k): _encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays) for v in obj]
    return obj


def _decode(obj: Any, buffers: List[bytearray]) -> Any:
    if isinstance(obj, dict):
        if _ARRAY_KEY in obj:
            return np.frombuffer(buffers[obj[_ARRAY_KEY]], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
        return {k: _decode(v, buffers) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, buffers) for v in obj]
    return obj


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view[:4 * MiB])
        view = view[n:]


def _vm_data_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------------------------- the child
def _child(fd: int, reader: Callable[[], Any], memory_bytes: int) -> None:  # pragma: no cover - in the child
    # No garbage collection in the short-lived child: a collection walks every object the parent had, and
    # writing to their headers copies the parent's pages (tens of milliseconds in a process holding torch).
    gc.disable()
    status = {"kind": "error", "message": "the reader did not start"}
    arrays: List[np.ndarray] = []
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(devnull, std)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child exits without closing
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        cap = _vm_data_bytes() + memory_bytes
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
        try:
            result = reader()
            status = {"kind": "ok", "result": _encode(result, arrays),
                      "sizes": [a.nbytes for a in arrays]}
        except InputError as e:
            status = {"kind": "input_error", "message": str(e)}
        except MemoryError:
            status = {"kind": "memory", "message": ""}
        except RecursionError:
            status = {"kind": "error", "message": "RecursionError: the file's structures nest too deeply"}
        except Exception as e:  # noqa: BLE001 - the parser library's own exceptions: a file it cannot read
            status = {"kind": "error", "message": f"{type(e).__name__}: {e}",
                      "trace": traceback.format_exc(limit=-4)}
        header = json.dumps(status).encode()
        _write_all(fd, _LEN.pack(len(header)) + header)
        for a in arrays:
            _write_all(fd, a.reshape(-1).view(np.uint8) if a.nbytes else b"")
    except MemoryError:
        try:
            header = b'{"kind": "memory", "message": ""}'
            os.write(fd, _LEN.pack(len(header)) + header)
        except OSError:
            pass
    finally:
        os._exit(0)


# --------------------------------------------------------------------------------------------- the parent
class _Pipe:
    """Reads a child's pipe with a deadline and a byte budget; the child is killed when either runs out."""

    def __init__(self, fd: int, pid: int, deadline: float, budget: int, fail: Callable[[str], FileFormatError]):
        self.fd, self.pid, self.deadline, self.budget, self.fail = fd, pid, deadline, budget, fail
        self.got = 0

    def read_into(self, buf) -> int:
        view = memoryview(buf).cast("B")
        filled = 0
        while filled < len(view):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if not ready:
                continue
            n = os.readv(self.fd, [view[filled:filled + 4 * MiB]])
            if n == 0:
                break
            filled += n
            self.got += n
            if self.got > self.budget:
                raise self.fail(f"sent more than {self.budget:,} bytes")
        return filled

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        got = self.read_into(buf)
        return bytes(buf[:got])


def _reap(pid: int, kill: bool) -> int:
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def run_isolated(reader: Callable[[], Any], *, where: str, what: str, timeout: float, memory_bytes: int,
                 error: Type[FileFormatError] = FileFormatError) -> Any:
    """``reader()`` in a forked child under ``memory_bytes`` of new memory and ``timeout`` seconds.

    ``where`` names the file in every error; ``what`` says what it is ("HDF5 file"); ``error`` is the class
    raised. The child's result must be made of dicts, lists, strings, numbers, None and numpy arrays of
    numbers (sent as raw bytes).
    """
    def fail(message: str) -> FileFormatError:
        return error(f"{where}: cannot read the {what}: {message}")

    if not hasattr(os, "fork"):
        return reader()
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads (torch's): the child runs one reader,
        # takes no lock a parent thread may hold, and exits without running Python's shutdown.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(write_fd, reader, memory_bytes)
    os.close(write_fd)
    pipe = _Pipe(read_fd, pid, time.monotonic() + timeout, memory_bytes + MiB, fail)
    killed = True
    try:
        try:
            raw_len = pipe.read(_LEN.size)
            if len(raw_len) < _LEN.size:
                status = _reap(pid, kill=False)
                killed = False
                raise fail(_death(status, timeout))
            (n,) = _LEN.unpack(raw_len)
            if n > 64 * MiB:
                raise fail("the reader's answer is malformed")
            header = json.loads(pipe.read(n).decode())
            if header["kind"] == "ok":
                buffers = []
                for size in header["sizes"]:
                    buf = bytearray(size)
                    if pipe.read_into(buf) != size:
                        raise fail("the reader stopped before sending every array")
                    buffers.append(buf)
                result = _decode(header["result"], buffers)
        except TimeoutError:
            raise fail(f"no answer within {timeout:.0f} s (the parser loops on it)") from None
        status = _reap(pid, kill=False)
        killed = False
    finally:
        os.close(read_fd)
        if killed:
            _reap(pid, kill=True)
    kind = header["kind"]
    if kind == "ok":
        return result
    if kind == "input_error":
        raise error(header["message"])
    if kind == "memory":
        raise fail(f"it needs more than the {memory_bytes / MiB:,.0f} MiB allowed to read it")
    raise fail(header["message"])


def _death(status: int, timeout: float) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the parser crashed on it ({name}); the file is damaged or hostile"
    return f"the reader ended without an answer (exit status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status})"


def fork_available() -> bool:
    return hasattr(os, "fork")


__all__: Tuple[str, ...] = ("run_isolated", "fork_available")
