"""Conversion time of the golden fixtures, this tree against a baseline tree, interleaved, medians.

    git archive main | tar -x -C /tmp/baseline          # a clean copy of the tree to compare with
    python benchmarks/convert_speed.py --baseline /tmp/baseline --rounds 7
    python benchmarks/convert_speed.py --baseline /tmp/baseline --rounds 7 --cli

The library call (default): one worker process per tree converts each fixture (``compat.convert.convert``:
reading, writing and verifying) on demand, and the two trees' conversions alternate one by one, ``--repeat``
pairs per fixture and round, the order flipping every pair, so a burst of load on this shared machine
falls on both. ``--cli``: each round runs ``python -m compat.convert FIXTURE --to OUT`` once per fixture and
tree, alternating, and takes the process's wall time (start-up and imports included: what a user waits
for). Printed: per file, the median time of each tree and the median of the pairs' ratios this /
baseline; then the geometric mean of those ratios.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
FIXTURES = [  # (path under tests/golden/convert, options)
    ("keras3/model.h5", {}), ("keras3/model.keras", {}), ("keras3/masked_state.keras", {}),
    ("tf_keras/model.h5", {}), ("tf_keras/keras1_lstm.h5", {}),
    ("onnx/peepholes.onnx", {}), ("onnx/bidirectional_lengths.onnx", {}),
    ("tf1/basic/model.ckpt", {"forget_bias": 1.0}), ("tf1/stack_bidirectional/model.ckpt", {"forget_bias": 1.0}),
]
THEANO = "../checkpoints/theano_imdb_pytensor/saveto_lstm_model.npz"

# A worker per tree: converts the fixture named on each line of its input and answers with the seconds it
# took, so that the two trees' conversions can alternate one by one.
WORKER = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from compat.convert import convert
with tempfile.TemporaryDirectory() as d:
    for line in sys.stdin:
        path, options = json.loads(line)
        t = time.perf_counter()
        convert(path, d + "/o", **options)
        print(time.perf_counter() - t, flush=True)
"""


class Worker:
    def __init__(self, tree: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(tree)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
                                     env=dict(os.environ, OMP_NUM_THREADS="1"))

    def time(self, path: str, options: dict) -> float:
        self.proc.stdin.write(json.dumps([path, options]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker stopped (exit {self.proc.wait()})")
        return float(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def run_cli(tree: Path, path: str, options: dict, out: str) -> float:
    argv = [sys.executable, "-m", "compat.convert", path, "--to", out]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    t = time.perf_counter()
    subprocess.run(argv, capture_output=True, cwd=str(tree), env=env, check=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, type=Path, help="a copy of the tree to compare with")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeat", type=int, default=5, help="pairs per fixture and round (library call)")
    p.add_argument("--cli", action="store_true", help="time whole `python -m compat.convert` processes")
    p.add_argument("--only", metavar="TEXT", help="only the fixtures whose path contains TEXT (to repeat a row)")
    args = p.parse_args(argv)
    golden = HERE / "tests" / "golden" / "convert"
    fixtures = [(str(golden / f), o) for f, o in FIXTURES] + [(str((golden / THEANO).resolve()), {})]
    fixtures = [(f, o) for f, o in fixtures if args.only is None or args.only in f]
    trees = {"this": HERE, "baseline": args.baseline.resolve()}
    times = {label: {path: [] for path, _ in fixtures} for label in trees}
    pair_ratios = {path: [] for path, _ in fixtures}
    with tempfile.TemporaryDirectory() as d:
        workers = {} if args.cli else {label: Worker(tree) for label, tree in trees.items()}
        try:
            for path, options in fixtures:  # warm-up: imports, first conversions
                for w in workers.values():
                    w.time(path, options)
            for r in range(args.rounds):
                for path, options in fixtures:
                    for k in range(1 if args.cli else args.repeat):
                        got = {}
                        order = ["this", "baseline"] if (r + k) % 2 == 0 else ["baseline", "this"]
                        for label in order:
                            got[label] = (run_cli(trees[label], path, options, f"{d}/o") if args.cli else
                                          workers[label].time(path, options))
                            times[label][path].append(got[label])
                        pair_ratios[path].append(got["this"] / got["baseline"])
                print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        finally:
            for w in workers.values():
                w.close()
    ratios = []
    print(f"{'fixture':45s} {'baseline ms':>12s} {'this ms':>9s} {'ratio':>7s} {'pairs':>6s}")
    for path, _ in fixtures:
        base = statistics.median(times["baseline"][path])
        this = statistics.median(times["this"][path])
        ratio = statistics.median(pair_ratios[path])
        ratios.append(ratio)
        name = str(Path(path).relative_to(golden.parent.parent)) if "golden" in path else path
        print(f"{name[-45:]:45s} {base * 1e3:12.1f} {this * 1e3:9.1f} {ratio:7.3f} {len(pair_ratios[path]):6d}")
    print(f"geometric mean of the ratios: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f} "
          f"(ratio: the median of this / baseline over conversions run back to back, the order alternating; "
          + ("one `python -m compat.convert` process per conversion" if args.cli else
             "one worker process per tree") + f"; {args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
