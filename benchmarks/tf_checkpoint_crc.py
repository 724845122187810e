"""Reading and verifying a TF checkpoint: CRC-32C in C (google-crc32c) against the numpy fallback, in one
process, and, where TensorFlow imports (``tox -e legacy``), against TensorFlow's own reader.

    python benchmarks/tf_checkpoint_crc.py                       # 256 MiB, 5 rounds
    .tox/legacy/bin/python benchmarks/tf_checkpoint_crc.py       # the same, and tf.train.load_checkpoint

Writes one V2 checkpoint of ``--mib`` MiB of float32 (``--tensors`` variables) in a temporary folder, then,
round by round in turn (the machine's noise falls on every side alike), reads every tensor and checks its
CRC-32C against the index: ``compat.formats.tf.load_checkpoint`` with google-crc32c, the same with the numpy
CRC-32C, and ``tf.train.load_checkpoint(prefix)`` + ``get_tensor`` of every name (TF checks the same CRCs).
Prints each side's median seconds, MiB/s and the ratios against the numpy side; plus the bare CRC-32C of the
same bytes in memory. Figures: docs/performance.md, "Reading TF checkpoints".
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compat.formats.tf import crc32c as crc_module  # noqa: E402
from compat.formats.tf import load_checkpoint, save_checkpoint  # noqa: E402


def numpy_crc():
    """The numpy fallback in force, as without google-crc32c."""
    return mock.patch.object(crc_module, "_FAST_EXTEND", None)


def tensorflow_reader() -> Callable[[str], Dict[str, np.ndarray]] | None:
    try:
        import tensorflow as tf
    except ImportError:
        return None

    def read(prefix: str) -> Dict[str, np.ndarray]:
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    return read


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=256, help="checkpoint size in MiB (default 256)")
    p.add_argument("--tensors", type=int, default=4, help="variables it is split into (default 4)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per side (default 5)")
    args = p.parse_args(argv)
    if crc_module.BACKEND != "google-crc32c":
        print("google-crc32c's C extension is not installed: pip install -e '.[fast-crc32c]'", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    per = args.mib * (1 << 20) // 4 // args.tensors
    variables = {f"layer_{i}/kernel": rng.standard_normal(per, dtype=np.float32) for i in range(args.tensors)}
    total_mib = sum(v.nbytes for v in variables.values()) / (1 << 20)

    with tempfile.TemporaryDirectory() as folder:
        prefix = save_checkpoint(Path(folder) / "model.ckpt", variables)

        def ours() -> Dict[str, np.ndarray]:
            return load_checkpoint(prefix)

        def ours_numpy() -> Dict[str, np.ndarray]:
            with numpy_crc():
                return load_checkpoint(prefix)

        sides: Dict[str, Callable[[], object]] = {"google-crc32c": ours, "numpy CRC-32C": ours_numpy}
        tf_read = tensorflow_reader()
        if tf_read is not None:
            sides["tf.train.load_checkpoint"] = lambda: tf_read(prefix)
        for side in sides.values():  # warm-up: the page cache, imports; and every side reads the same values
            out = side()
            assert all(np.array_equal(out[k], v) for k, v in variables.items())
        times: Dict[str, List[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, side in sides.items():
                t0 = time.perf_counter()
                side()
                times[name].append(time.perf_counter() - t0)

        blob = b"".join(v.tobytes() for v in variables.values())
        crc_times: Dict[str, List[float]] = {"google-crc32c": [], "numpy CRC-32C": []}
        for _ in range(args.rounds):
            for name, fn in (("google-crc32c", crc_module.crc32c), ("numpy CRC-32C", crc_module.crc32c_numpy)):
                t0 = time.perf_counter()
                fn(blob)
                crc_times[name].append(time.perf_counter() - t0)

    print(f"A {total_mib:.0f} MiB TF checkpoint ({args.tensors} float32 variables), read and verified; "
          f"medians of {args.rounds} interleaved rounds")
    base = statistics.median(times["numpy CRC-32C"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:<26} {m:8.3f} s  {total_mib / m:8.0f} MiB/s  x{base / m:6.2f} against numpy CRC-32C")
    print("The CRC-32C alone, of the same bytes in memory:")
    base = statistics.median(crc_times["numpy CRC-32C"])
    for name, ts in crc_times.items():
        m = statistics.median(ts)
        print(f"  {name:<26} {m:8.3f} s  {total_mib / m:8.0f} MiB/s  x{base / m:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
