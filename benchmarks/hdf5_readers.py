"""Which HDF5 reader for hostile Keras files. The measurements behind the choice in docs/security.md.

    pip install -e '.[keras]'        # h5py and pyfive
    python benchmarks/hdf5_readers.py --flips 1000

Readers: h5py in the process and pyfive in the process (plain, unprotected), and the converter's reader
``compat.formats.keras.read_keras`` two ways: as shipped (pyfive in the process behind a bounded file view,
the h5py child for whatever that cannot read; compat.formats.hdf5) and with every file sent to the h5py
child (a fork per file).

1. Time to read the golden Keras .h5 files in a process that has imported torch, as the converter's is
   (median of 20; the plain readers read every root attribute and dataset, read_keras what the converter
   reads).
2. Random byte flips (1 to 3 bytes) of keras3/model.h5 and tf_keras/model.h5, each read by each reader in a
   forked child with a 10 s limit and 2 GiB of memory: how many end in a crash, a hang, the memory cap, a
   Python exception, a clean error (read_keras's InputError), or a read.
"""
from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
GOLDEN = HERE / "tests" / "golden" / "convert"
sys.path.insert(0, str(HERE))
import torch  # noqa: E402,F401 - the converter's process holds torch: forking it costs what it costs there

from compat.formats.hdf5 import IN_PROCESS_MAX_BYTES as SHIPPED_MAX  # noqa: E402


def read_h5py(path):
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        data = {}
        f.visititems(lambda n, o: data.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return attrs, data


def read_pyfive(path):
    import pyfive

    with pyfive.File(str(path)) as f:
        attrs = dict(f.attrs)
        data = {}
        stack = [("", f)]
        while stack:
            prefix, g = stack.pop()
            for name in g:
                obj = g[name]
                full = f"{prefix}/{name}" if prefix else name
                if isinstance(obj, pyfive.Dataset):
                    data[full] = obj[()]
                else:
                    stack.append((full, obj))
    return attrs, data


def read_shipped(path):
    from compat.formats.keras import read_keras

    return read_keras(path)


def read_child(path):
    from compat.formats import hdf5
    from compat.formats.keras import read_keras

    hdf5.IN_PROCESS_MAX_BYTES = -1
    try:
        return read_keras(path)
    finally:
        hdf5.IN_PROCESS_MAX_BYTES = SHIPPED_MAX


READERS = {"h5py in the process": read_h5py, "pyfive in the process": read_pyfive,
           "read_keras: bounded pyfive, else h5py child": read_shipped,
           "read_keras: every file in the h5py child": read_child}


def timing(files):
    print(f"{'reader':44s} " + " ".join(f"{f.parent.name + '/' + f.name:>26s}" for f in files))
    for label, fn in READERS.items():
        row = []
        for f in files:
            fn(f)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                fn(f)
                times.append(time.perf_counter() - t)
            row.append(statistics.median(times) * 1e3)
        print(f"{label:44s} " + " ".join(f"{ms:23.1f} ms" for ms in row))


def flips(files, n, seed):
    from tests.fuzzing import run_isolated

    rng = random.Random(seed)
    counts = {label: collections.Counter() for label in READERS}
    with tempfile.TemporaryDirectory() as d:
        for k in range(n):
            src = files[k % len(files)]
            data = bytearray(src.read_bytes())
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            path = Path(d) / f"flip{k}.h5"
            path.write_bytes(bytes(data))
            for label, fn in READERS.items():
                out = run_isolated(fn, path, timeout=10, memory_mb=2048)
                counts[label][{"exception": "Python exception", "input_error": "clean error",
                               "timeout": "hang"}.get(out.kind, out.kind)] += 1
            path.unlink()
            if (k + 1) % 100 == 0:
                print(f"{k + 1} flips", file=sys.stderr, flush=True)
    kinds = ["crash", "hang", "memory", "Python exception", "clean error", "ok"]
    print(f"{'reader':44s} " + " ".join(f"{k:>16s}" for k in kinds))
    for label, c in counts.items():
        print(f"{label:44s} " + " ".join(f"{c.get(k, 0):16d}" for k in kinds))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flips", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        import pyfive  # noqa: F401
    except ImportError:
        print("this comparison needs pyfive: pip install pyfive", file=sys.stderr)
        return 2
    files = sorted(GOLDEN.glob("*/*.h5"))
    timing(files)
    flips([GOLDEN / "keras3" / "model.h5", GOLDEN / "tf_keras" / "model.h5"], args.flips, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
