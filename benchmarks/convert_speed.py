"""Conversion time of the golden fixtures, this tree against a baseline tree, interleaved, medians.

    git archive main | tar -x -C /tmp/baseline          # a clean copy of the tree to compare with
    python benchmarks/convert_speed.py --baseline /tmp/baseline --rounds 7
    python benchmarks/convert_speed.py --baseline /tmp/baseline --rounds 7 --cli

The library call (default): each round runs one fresh process per tree (alternating which goes first);
each process converts every fixture (``compat.convert.convert``, reading, writing and verifying)
``--repeat`` times after one warm-up and reports its per-file minimum. ``--cli``: each round runs
``python -m compat.convert FIXTURE --to OUT`` once per fixture and tree, the two trees alternating, and
takes the process's wall time (start-up and imports included: what a user waits for). Printed: per file,
the median over rounds for each tree and the ratio this / baseline; then the geometric mean of the ratios.
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

CHILD = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from compat.convert import convert
fixtures, repeat = json.loads(sys.argv[2]), int(sys.argv[3])
out = {}
with tempfile.TemporaryDirectory() as d:
    for path, options in fixtures:
        convert(path, d + "/o", **options)
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            convert(path, d + "/o", **options)
            best = min(best, time.perf_counter() - t)
        out[path] = best
print(json.dumps(out))
"""


def run(tree: Path, fixtures, repeat: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tree), json.dumps(fixtures), str(repeat)],
                          capture_output=True, text=True, cwd=tempfile.gettempdir(), check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cli", action="store_true", help="time whole `python -m compat.convert` processes")
    args = p.parse_args(argv)
    golden = HERE / "tests" / "golden" / "convert"
    fixtures = [(str(golden / f), o) for f, o in FIXTURES] + [(str((golden / THEANO).resolve()), {})]
    times = {"this": [], "baseline": []}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            order = [("this", HERE), ("baseline", args.baseline.resolve())]
            order = order if r % 2 == 0 else order[::-1]
            if args.cli:
                got = {label: {} for label, _ in order}
                for path, options in fixtures:
                    for label, tree in order:
                        got[label][path] = run_cli(tree, path, options, f"{d}/o")
                for label, _ in order:
                    times[label].append(got[label])
            else:
                for label, tree in order:
                    times[label].append(run(tree, fixtures, args.repeat))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    ratios = []
    print(f"{'fixture':45s} {'baseline ms':>12s} {'this ms':>9s} {'ratio':>7s}")
    for path, _ in fixtures:
        base = statistics.median(t[path] for t in times["baseline"])
        this = statistics.median(t[path] for t in times["this"])
        ratios.append(this / base)
        name = str(Path(path).relative_to(golden.parent.parent)) if "golden" in path else path
        print(f"{name[-45:]:45s} {base * 1e3:12.1f} {this * 1e3:9.1f} {this / base:7.3f}")
    print(f"geometric mean of the ratios: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f} "
          f"({args.rounds} interleaved rounds, " + ("one process per fixture and tree" if args.cli else
                                                      f"best of {args.repeat} per process") + ", medians over rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
