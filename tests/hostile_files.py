"""Seeded mutations of valid files and the bookkeeping of a fuzz run (each case through tests.fuzzing).

``FUZZ_CASES=N`` sets how many truncations and byte flips each loader gets (default 16; 400 under
``HYPOTHESIS_PROFILE=thorough``); ``FUZZ_SEED`` changes the seed; ``FUZZ_REPORT=path.json`` appends every
loader's tally of outcomes there (the counts docs/security.md quotes).
"""
from __future__ import annotations

import collections
import json
import os
import random
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Sequence, Tuple

from tests.fuzzing import Outcome, run_isolated

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
CASES = int(os.environ.get("FUZZ_CASES") or (400 if THOROUGH else 16))
SEED = int(os.environ.get("FUZZ_SEED") or 20240611)
TIMEOUT = 5.0
MEMORY_MB = 1024


def mutations(data: bytes, n: int = CASES, seed: int = SEED) -> Iterator[Tuple[str, bytes]]:
    """``n`` variants of ``data``: alternately a truncation at a random length and one to three random
    byte flips (xor with a random non-zero byte), seeded."""
    rng = random.Random(seed * 7919 + len(data))
    for k in range(n):
        if k % 2 == 0:
            cut = rng.randrange(len(data))
            yield f"truncated to {cut}", data[:cut]
        else:
            out = bytearray(data)
            where = []
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(out))
                out[i] ^= rng.randrange(1, 256)
                where.append(i)
            yield f"bytes {where} flipped", bytes(out)


class Tally:
    """Outcomes of one loader's cases; :meth:`check` fails with every unexpected one listed."""

    def __init__(self, loader: str):
        self.loader = loader
        self.counts: Dict[str, int] = collections.Counter()
        self.bad: list = []

    def run(self, name: str, fn: Callable, path, *args, allowed: Sequence[str] = ("input_error",)) -> Outcome:
        outcome = run_isolated(fn, path, *args, timeout=TIMEOUT, memory_mb=MEMORY_MB)
        self.counts[outcome.kind] += 1
        if outcome.kind not in allowed:
            self.bad.append(f"{name}: {outcome}")
        return outcome

    def check(self) -> None:
        total = sum(self.counts.values())
        print(f"fuzz {self.loader}: {total} cases: {dict(self.counts)}")
        report = os.environ.get("FUZZ_REPORT")
        if report:
            with open(report, "a") as fh:
                fh.write(json.dumps({"loader": self.loader, "cases": total, "outcomes": dict(self.counts)}) + "\n")
        assert not self.bad, f"{self.loader}: {len(self.bad)} of {total} cases failed:\n" + "\n".join(self.bad[:20])


def fuzz_bytes(tally: Tally, loader: Callable, valid: bytes, path: Path, *, load=None, seed: int = SEED,
               allowed: Sequence[str] = ("input_error", "ok"), n: int = CASES) -> None:
    """Write each mutation of ``valid`` to ``path`` and run ``loader(load or path)``."""
    for name, blob in mutations(valid, n, seed):
        path.write_bytes(blob)
        tally.run(name, loader, path if load is None else load, allowed=allowed)


def write_sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (for size caps)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def special_files(tmp: Path) -> Iterable[Tuple[str, Path]]:
    """A directory, a FIFO and a symlink to /dev/zero: none may be read (a loader must refuse them)."""
    d = tmp / "a_directory"
    d.mkdir(exist_ok=True)
    yield "directory", d
    fifo = tmp / "a_fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    yield "fifo", fifo
    zero = tmp / "dev_zero_link"
    if not zero.exists():
        zero.symlink_to("/dev/zero")
    yield "/dev/zero", zero


def deflated_zeros(prefix: bytes, zeros: int, block: int = 1 << 22) -> bytes:
    """A raw deflate stream of ``prefix`` and ``zeros`` zero bytes, built in milliseconds whatever its size:
    after a full flush the compressor restarts, so one block's output repeats verbatim."""
    import zlib

    assert zeros % block == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    assert chunk == again
    return head + chunk * (zeros // block) + c.flush()


def zip64_archive(path: Path, members: Sequence[Tuple[str, bytes, int, int, int]]) -> Path:
    """A zip archive written by hand: members ``(name, data, method, size, crc)`` (method 0 stored,
    8 deflated; ``size`` the declared uncompressed size, which may be a lie), every header with zip64 sizes."""
    import struct

    out = bytearray()
    central = bytearray()
    for name, data, method, size, crc in members:
        offset = len(out)
        raw = name.encode()
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(raw), 20) + raw + struct.pack("<HHQQ", 1, 16, size, len(data))
        out += data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(raw), 28, 0, 0, 0, 0, 0xFFFFFFFF) + raw
        central += struct.pack("<HHQQQ", 1, 24, size, len(data), offset)
    cd_offset = len(out)
    out += central
    eocd64 = len(out)
    n = len(members)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(bytes(out))
    return path


def npz_members(arrays) -> list:
    """``(name, data, 0, size, crc)`` stored members of an .npz for :func:`zip64_archive`."""
    import io
    import zlib

    import numpy as np

    members = []
    for name, array in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
        data = buf.getvalue()
        members.append((name + ".npy", data, 0, len(data), zlib.crc32(data)))
    return members
