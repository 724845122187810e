"""This checkout's port against another checkout's (another branch, an earlier commit), interleaved.

    python benchmarks/ab_trees.py WORKLOAD --other ../other-checkout [--threads N] [--rounds R] [--steps S]
    python benchmarks/ab_trees.py WORKLOAD --other . --other-env GOMP_SPINCOUNT=10000   # one setting's effect

For the workloads of benchmarks/vs_legacy.py (its ``port`` side: ``benchmarks/port_runners.py`` of each
checkout). Each checkout runs in a process of its own (the same interpreter, its own source tree first on
the path, the same environment: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` =
``--threads``; ``--other-env`` changes the other side's, e.g. ``GOMP_SPINCOUNT=10000`` for a checkout whose
programs still bounded libgomp's spinning), driven round by round from this one: one warm-up round each, then ``--rounds`` rounds of ``--steps`` steps, the order alternating (A B,
B A, ...); halfway, both processes are replaced by fresh ones started in the other order (a process started
first or second can run a few percent faster, whatever its code: this evens it out). Printed: each side's median rate and min-max, and the median of the per-round ratios
this / other with its min-max: on a shared machine the pairwise ratio is the figure to trust. The same for
the rate per CPU second of the side's process (all its threads): at one thread, where other processes
share the cores, the steadier figure. Last, the ratio of each side's fastest round: the least disturbed
round of each, the figure least moved by other processes on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from workload_data import DEFAULT_STEPS, UNITS, WORKLOADS

HERE = Path(__file__).resolve().parent.parent


def serve(tree: Path, workload: str, threads: int, seed: int) -> None:
    """The worker: build the checkout's port runner, then answer each step count with the seconds taken."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    sys.modules.pop("workload_data", None)  # the checkout's own (this script's was imported for the table)
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    import port_runners

    runner = port_runners.build(workload, argparse.Namespace(seed=seed, threads=threads, on_step=None))
    print(json.dumps({"ready": str(tree)}), flush=True)
    for line in sys.stdin:
        n = int(line)
        if n < 0:
            return
        cpu0 = time.process_time()
        seconds = runner(n)
        print(json.dumps({"seconds": seconds, "cpu": time.process_time() - cpu0}), flush=True)


class Worker:
    def __init__(self, tree: Path, workload: str, threads: int, seed: int, extra_env=()):
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        for item in extra_env:
            name, _, value = item.partition("=")
            if value:
                env[name] = value
            else:
                env.pop(name, None)
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(tree), workload,
                                      "--threads", str(threads), "--seed", str(seed)], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        if not ready:
            raise SystemExit(f"{tree}: the worker failed to start")

    def __call__(self, n: int):
        """(wall seconds, CPU seconds) of ``n`` steps."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer["seconds"], answer["cpu"]

    def close(self) -> None:
        try:
            self.proc.stdin.write("-1\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        self.proc.wait(30)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--other", type=Path, help="the other checkout (its benchmarks/port_runners.py is used)")
    p.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help="threads on both sides (default 1)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per side (default 7)")
    p.add_argument("--steps", type=int, default=None, help="steps per round (default: vs_legacy.py's)")
    p.add_argument("--other-env", action="append", default=[], metavar="VAR=VALUE",
                   help="an environment variable set (VAR= removes it) for the other side's process only: with "
                        "--other . it measures what one setting changes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.workload, args.threads, args.seed)
        return 0
    if args.other is None:
        p.error("--other is required")
    steps = args.steps or DEFAULT_STEPS[args.workload]
    sides = {"other": args.other.resolve(), "this": HERE}
    rates = {name: [] for name in sides}
    cpu_rates = {name: [] for name in sides}
    halves = (("other", "this"), ("this", "other"))  # the order the processes are started in
    for half, start_order in enumerate(halves):
        workers = {name: Worker(sides[name], args.workload, args.threads, args.seed,
                                args.other_env if name == "other" else ()) for name in start_order}
        try:
            for w in workers.values():
                w(max(1, steps // 4))
            n_rounds = args.rounds // 2 if half == 0 else args.rounds - args.rounds // 2
            for r in range(n_rounds):
                for name in (("other", "this") if r % 2 == 0 else ("this", "other")):
                    wall, cpu = workers[name](steps)
                    rates[name].append(steps / wall)
                    cpu_rates[name].append(steps / cpu)
        finally:
            for w in workers.values():
                w.close()
    unit = UNITS.get(args.workload, "steps/s")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {args.workload}, {args.threads} thread(s), {args.rounds} rounds x {steps} steps, load {load:.1f}; "
          f"other = {sides['other']} {' '.join(args.other_env)}, this = {sides['this']}")
    for what, table, per in (("wall", rates, unit), ("cpu", cpu_rates, unit.replace("/s", " per CPU s"))):
        for name in ("other", "this"):
            v = table[name]
            print(f"{what:<4} {name:<6} {statistics.median(v):>12,.2f} {per}  min-max {min(v):,.2f}-{max(v):,.2f}")
        pairs = [b / a for a, b in zip(table["other"], table["this"])]
        print(f"{what:<4} this / other: median of the pairwise ratios {statistics.median(pairs):.3f} "
              f"(min-max {min(pairs):.3f}-{max(pairs):.3f}); ratio of the medians "
              f"{statistics.median(table['this']) / statistics.median(table['other']):.3f}; of the fastest rounds "
              f"{max(table['this']) / max(table['other']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
