"""Atomic file writes: a temporary file in the target's folder, flushed and synced, then renamed over the target.

An interrupted run leaves either the previous file or the new one, never half of one. A failed write
removes its temporary file. A process killed outright (``kill -9``, power loss) cannot clean up: its
temporary file stays, under a recognisable name ``.<target name>.<pid>.<random>.tmp<suffix>``, and the
next write to the same target removes every such leftover whose process is gone (a process of this
machine: a writer on another host sharing the folder over a network file system is not seen, so keep one
writer per target there).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]

_IN_FLIGHT: set = set()  # temporary paths this process is writing now (never leftovers)
_LOCK = threading.Lock()


def temp_name(target_name: str, tag: str = "tmp") -> str:
    """``.<target_name>.<pid>.<random>.<tag>``: hidden, and recognisable as this writer's leftover."""
    return f".{target_name}.{os.getpid()}.{secrets.token_hex(6)}.{tag}"


def leftover_pid(file_name: str, target_name: str, tags=("tmp",), rest: str = "") -> int | None:
    """The writer's pid if ``file_name`` is a temporary name of ``target_name`` (then ``rest``), else None."""
    m = re.fullmatch(re.escape(f".{target_name}.") + r"(\d+)\.[0-9a-f]{12}\.(?:" + "|".join(tags) + ")" + rest,
                     file_name, re.DOTALL)
    return int(m.group(1)) if m else None


def is_stale(path: PathLike, pid: int) -> bool:
    """True if the temporary file ``path`` written by ``pid`` belongs to no live writer."""
    if pid == os.getpid():
        with _LOCK:
            return os.fspath(path) not in _IN_FLIGHT
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False


def remove_leftovers(target: PathLike, suffix: str = "") -> list:
    """Remove the temporary files that killed writers of ``target`` left; returns their paths."""
    target = Path(target)
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        pid = leftover_pid(name, target.name, rest=re.escape(suffix))
        path = target.parent / name
        if pid is not None and is_stale(path, pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def fsync_directory(directory: PathLike) -> None:
    """Make a rename in ``directory`` durable (best effort: some file systems cannot sync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def in_flight(*paths: PathLike) -> Iterator[None]:
    """Mark temporary paths as being written by this process (so no cleanup removes them)."""
    keys = [os.fspath(p) for p in paths]
    with _LOCK:
        _IN_FLIGHT.update(keys)
    try:
        yield
    finally:
        with _LOCK:
            _IN_FLIGHT.difference_update(keys)


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success sync it and rename it onto ``path``, else remove it.

    ``suffix`` lets writers that insist on an extension (``numpy.savez`` adds ``.npz``) keep it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target, suffix)
    tmp_path = target.parent / (temp_name(target.name) + suffix)
    with in_flight(tmp_path):
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        os.close(fd)
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_path, target)
            fsync_directory(target.parent)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
